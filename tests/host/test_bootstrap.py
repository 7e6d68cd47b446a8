"""The real bootstrap script, run as cloud-init runs it, on this machine (`lab/bootstrap.py`).

The data volume is a sparse file on a loop device, SSM is a moto server on 127.0.0.1, and every
path (fstab and /etc/letsencrypt included) is in the test's scratch directory. The bootstrap runs in
a private mount namespace, so its mounts end with the test; the loop device is detached by the
fixture. Needs root and util-linux/e2fsprogs; skipped with the reason otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from lab.bootstrap import (
    DISTRO_CERTBOT_INI,
    EDGE_STEPS,
    LAB_STEPS,
    VOLUME_SIZE_BYTES,
    BootstrapLab,
    EdgeBootstrap,
    Ssm,
    bootstrap_lab,
    edge_bootstrap_lab,
    lab_host,
    moto_ssm,
    require_root_lab,
)
from lab.demo import start_qdrant
from lab.processes import CommandFailed, LabUnavailable, clean_env, run, wait_until
from model.nginx_config import certificate_paths
from model.settings import LEGACY_QDRANT_UID, BootstrapWaits
from model.user_data import BOOTSTRAP_UNIT, DATA_VOLUME_UNITS, QDRANT_UID, bootstrap_command

Snapshot = dict[str, tuple[object, ...]]


@pytest.fixture(scope="module")
def ssm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ssm]:
    with ExitStack() as stack:
        try:
            require_root_lab()
            server = stack.enter_context(moto_ssm(tmp_path_factory.mktemp("moto")))
        except LabUnavailable as reason:
            pytest.skip(str(reason))
        yield server


@pytest.fixture
def lab(ssm: Ssm, tmp_path: Path) -> Iterator[BootstrapLab]:
    with bootstrap_lab(tmp_path, ssm) as bootstrap:
        yield bootstrap


@pytest.fixture
def patient_lab(ssm: Ssm, tmp_path: Path) -> Iterator[BootstrapLab]:
    """A lab whose bootstrap waits a minute for the key parameters, as the VM waits minutes."""
    host = dataclasses.replace(lab_host(tmp_path), waits=BootstrapWaits(secrets=60, qdrant=60))
    with bootstrap_lab(tmp_path, ssm, host) as bootstrap:
        yield bootstrap


def fresh_edge(ssm: Ssm, stack: ExitStack) -> EdgeBootstrap:
    """An edge lab with nothing run yet, torn down with `stack`."""
    # nginx's workers run as `nobody` and must reach the webroot: no 0700 pytest directory.
    workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-edge-bootstrap-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    workdir.chmod(0o755)
    try:
        return stack.enter_context(edge_bootstrap_lab(workdir, ssm))
    except LabUnavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def edge(ssm: Ssm) -> Iterator[EdgeBootstrap]:
    """One bootstrap through the nginx and certificate steps, shared by the module's edge tests."""
    with ExitStack() as stack:
        lab = fresh_edge(ssm, stack)
        succeed(lab.lab, EDGE_STEPS)
        yield lab


def succeed(lab: BootstrapLab, steps: Sequence[str] = LAB_STEPS, trace: bool = False) -> str:
    """Run the steps; fail the test with the bootstrap's log if they fail; return the log."""
    result = lab.run(steps, trace=trace)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def in_background(
    lab: BootstrapLab, steps: Sequence[str]
) -> Future[subprocess.CompletedProcess[str]]:
    """The bootstrap started as cloud-init starts it, while the test goes on."""
    pool = ThreadPoolExecutor(max_workers=1)
    running = pool.submit(lab.run, steps)
    pool.shutdown(wait=False)
    return running


def volume_uuid(lab: BootstrapLab) -> str:
    return run(["blkid", "-p", "-s", "UUID", "-o", "value", lab.device]).strip()


def fstab_lines(lab: BootstrapLab) -> list[str]:
    return Path(lab.host.paths.fstab).read_text().splitlines()


def mounted_source(lab: BootstrapLab) -> str:
    """What is mounted at the data mount inside the bootstrap's namespace ("" for nothing)."""
    command = ["findmnt", "-n", "-o", "SOURCE", "--mountpoint", lab.host.paths.data_mount]
    try:
        return run(lab.namespace.command(*command)).strip()
    except CommandFailed:
        return ""


def snapshot(lab: BootstrapLab) -> Snapshot:
    """Every file the bootstrap could touch, as it sees them (data volume mounted): type, mode,
    owner, and for files content and mtime, so that even an identical rewrite shows."""
    root = lab.view(str(lab.workdir))
    ignored = {"data-volume.img", "namespace.log"}
    state: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            relative = str(path.relative_to(root))
            if relative in ignored:
                continue
            info = path.lstat()
            entry: tuple[object, ...] = (info.st_mode, info.st_uid, info.st_gid)
            if path.is_symlink():
                entry += (os.readlink(path),)
            elif path.is_file():
                entry += (info.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
            state[relative] = entry
    state["<fstab>"] = tuple(fstab_lines(lab))
    state["<mount>"] = (mounted_source(lab), volume_uuid(lab))
    return state


# --------------------------------------------------------------------------- the data volume


def test_blank_volume_gets_ext4_and_is_mounted_by_uuid(lab: BootstrapLab) -> None:
    """Mounting by UUID survives device renames (NVMe order changes between boots); `nofail`
    keeps a missing volume from dropping the host into emergency mode, out of reach."""
    succeed(lab)
    uuid = volume_uuid(lab)
    assert run(["blkid", "-p", "-s", "TYPE", "-o", "value", lab.device]).strip() == "ext4"
    entries = [line.split() for line in fstab_lines(lab) if not line.startswith("#")]
    assert len(entries) == 1
    (source, mount_point, fs_type, options, _, _) = entries[0]
    assert (source, mount_point, fs_type) == (f"UUID={uuid}", lab.host.paths.data_mount, "ext4")
    assert "nofail" in options.split(",")
    assert mounted_source(lab) == lab.device


def test_a_mount_that_silently_mounts_nothing_stops_the_bootstrap(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """With `nofail`, mount exits 0 without mounting when it cannot resolve the fstab line's UUID
    (seen on a host without udev links): going on would put Qdrant's data on the root disk."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "mount").write_text("#!/bin/sh\nexit 0\n")
    (shim / "mount").chmod(0o755)
    path = f"{shim}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    silent_mount = dataclasses.replace(lab, environment={**lab.environment, "PATH": path})

    result = silent_mount.run(["data_volume"])

    assert result.returncode != 0
    assert "is not mounted at" in result.stderr


def test_volume_that_holds_data_is_mounted_never_reformatted(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """The volume is the database: a replaced instance must find the old data, not an empty disk."""
    existing = tmp_path / "existing"
    (existing / "storage").mkdir(parents=True)
    (existing / "storage" / "collection.dat").write_text("points that must survive\n")
    run(["mkfs.ext4", "-q", "-d", str(existing), lab.device])
    uuid_before = volume_uuid(lab)

    succeed(lab)

    assert volume_uuid(lab) == uuid_before
    kept = lab.view(f"{lab.host.paths.qdrant_storage}/collection.dat")
    assert kept.read_text() == "points that must survive\n"


def test_volume_with_a_foreign_filesystem_is_left_alone(lab: BootstrapLab) -> None:
    """A disk that is not what the bootstrap expects may hold someone's data: refuse, change
    nothing, and say why."""
    run(["mkfs.ext2", "-q", lab.device])
    uuid_before, fstab_before = volume_uuid(lab), fstab_lines(lab)

    result = lab.run()

    assert result.returncode != 0
    assert "refusing to touch it" in result.stderr
    assert (volume_uuid(lab), fstab_lines(lab)) == (uuid_before, fstab_before)
    assert mounted_source(lab) == ""


def test_fstab_gets_one_line_for_the_volume_and_keeps_the_rest(lab: BootstrapLab) -> None:
    """fstab is the host's: other entries must survive, and a line left by an earlier volume at
    the same mount point must go, or the next boot would mount the wrong (or no) disk there."""
    fstab = Path(lab.host.paths.fstab)
    other = "UUID=11111111-2222-3333-4444-555555555555 /srv/other ext4 defaults 0 2"
    data_mount = lab.host.paths.data_mount
    stale = f"UUID=99999999-8888-7777-6666-555555555555 {data_mount} ext4 defaults 0 2"
    fstab.write_text(fstab.read_text() + f"{other}\n{stale}\n")

    succeed(lab)

    lines = fstab_lines(lab)
    assert other in lines and stale not in lines
    assert [line for line in lines if lab.host.paths.data_mount in line] == [
        f"UUID={volume_uuid(lab)} {lab.host.paths.data_mount} ext4 defaults,nofail,nodev,nosuid 0 2"
    ]


def test_qdrant_directories_belong_to_the_container_user(lab: BootstrapLab) -> None:
    """Qdrant runs as an unprivileged uid: it must own its storage, and others must not read it."""
    succeed(lab)
    for directory in (lab.host.paths.qdrant_storage, lab.host.paths.qdrant_snapshots):
        info = lab.view(directory).stat()
        assert (info.st_uid, info.st_gid) == (QDRANT_UID, QDRANT_UID), directory
        assert stat.S_IMODE(info.st_mode) == 0o750, directory


def volume_with(lab: BootstrapLab, tree: Path) -> None:
    """The data volume as an earlier deploy left it: ext4 holding `tree`, owners included."""
    run(["mkfs.ext4", "-q", "-d", str(tree), lab.device])


def owners(lab: BootstrapLab, *paths: str) -> list[int]:
    return [lab.view(path).lstat().st_uid for path in paths]


def test_volume_of_an_earlier_deploy_is_handed_from_the_legacy_uid_to_qdrants(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """Earlier releases ran Qdrant as uid 1000 (Ubuntu's sudo-capable `ubuntu` user). An upgraded
    host must give the old data to the new uid, or Qdrant cannot write its own database; what the
    old uid did not own (here a root-owned file) keeps its owner."""
    tree = tmp_path / "earlier"
    for directory in ("storage/collections/products", "snapshots"):
        (tree / directory).mkdir(parents=True)
    (tree / "storage/collections/products/segment.dat").write_text("points that must survive\n")
    (tree / "storage/root-owned").write_text("not Qdrant's\n")
    for path in [tree / "storage", *(tree / "storage").rglob("*"), tree / "snapshots"]:
        if path.name != "root-owned":
            os.lchown(path, LEGACY_QDRANT_UID, LEGACY_QDRANT_UID)
    volume_with(lab, tree)

    output = succeed(lab)

    storage, snapshots = lab.host.paths.qdrant_storage, lab.host.paths.qdrant_snapshots
    migrated = [
        storage, f"{storage}/collections", f"{storage}/collections/products",
        f"{storage}/collections/products/segment.dat", snapshots,
    ]  # fmt: skip
    assert owners(lab, *migrated) == [QDRANT_UID] * len(migrated)
    assert owners(lab, f"{storage}/root-owned") == [0]
    assert f"from uid {LEGACY_QDRANT_UID} to {QDRANT_UID}" in output


def test_storage_no_longer_owned_by_the_legacy_uid_is_not_walked_again(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """Migration happens once, decided by the storage directory's owner: a later boot must not walk
    (and re-own) a large database, nor undo an operator's deliberate ownership inside it."""
    tree = tmp_path / "migrated"
    (tree / "storage").mkdir(parents=True)
    (tree / "storage" / "kept-by-operator").write_text("x\n")
    os.chown(tree / "storage", QDRANT_UID, QDRANT_UID)
    os.chown(tree / "storage" / "kept-by-operator", LEGACY_QDRANT_UID, LEGACY_QDRANT_UID)
    volume_with(lab, tree)

    output = succeed(lab)

    assert owners(lab, f"{lab.host.paths.qdrant_storage}/kept-by-operator") == [LEGACY_QDRANT_UID]
    assert "moving" not in output


CAP_SYS_RESOURCE = 24


def may_resize_online() -> bool:
    (effective,) = [
        line.split()[1]
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("CapEff:")
    ]
    return bool(int(effective, 16) >> CAP_SYS_RESOURCE & 1)


def superblock(lab: BootstrapLab, field: str) -> int:
    for line in run(["tune2fs", "-l", lab.device]).splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value)
    raise AssertionError(f"tune2fs shows no {field!r}")


def test_grown_volume_gets_its_filesystem_grown_online_with_the_data_intact(
    lab: BootstrapLab,
) -> None:
    """Raising `dataVolumeSizeGb` grows the EBS device in place, never the filesystem on it: without
    a resize the added space stays unusable while Qdrant runs out of disk."""
    succeed(lab)
    data = lab.view(f"{lab.host.paths.qdrant_storage}/collection.dat")
    data.write_text("points that must survive\n")
    blocks = superblock(lab, "Block count")

    lab.grow_volume(2 * VOLUME_SIZE_BYTES)
    output = succeed(lab, ("data_volume",))

    assert f"from {blocks} to {2 * blocks} blocks" in output
    assert data.read_text() == "points that must survive\n"
    if not may_resize_online():
        pytest.skip(
            "the kernel resizes a mounted ext4 only for CAP_SYS_RESOURCE, which this "
            "machine's root lacks: the growth was found and attempted, not done"
        )
    assert superblock(lab, "Block count") == 2 * blocks
    usable = os.statvfs(lab.view(lab.host.paths.data_mount))
    assert usable.f_blocks * usable.f_frsize > VOLUME_SIZE_BYTES


def test_volume_of_the_filesystem_size_is_not_resized(lab: BootstrapLab) -> None:
    """A boot without growth must leave the filesystem alone: no resize, no superblock write."""
    succeed(lab)
    blocks = superblock(lab, "Block count")

    output = succeed(lab, ("data_volume",))

    assert superblock(lab, "Block count") == blocks
    assert "growing the filesystem" not in output


FSTAB_GENERATORS = (
    "/usr/lib/systemd/system-generators/systemd-fstab-generator",
    "/lib/systemd/system-generators/systemd-fstab-generator",
)


def systemd_verify(
    units: Sequence[str], unit_path: Sequence[Path | str], log_level: str = "info"
) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on `units` (search path `unit_path`, then the machine's own unit
    directories): systemd loads them and queues their start jobs, as at boot."""
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        env=clean_env(
            SYSTEMD_UNIT_PATH=":".join(map(str, unit_path)) + ":", SYSTEMD_LOG_LEVEL=log_level
        ),
        capture_output=True,
        text=True,
        check=False,
    )


def systemd_dependencies(unit: str, unit_path: Sequence[Path | str]) -> dict[str, set[str]]:
    """`unit`'s dependencies (and its other settings) as systemd itself loads them, read from the
    unit dump `systemd_verify` prints at debug level. Fails the test if systemd rejects the unit."""
    result = systemd_verify([unit], unit_path, "debug")
    assert result.returncode == 0, result.stderr[-3000:]
    dependencies: dict[str, set[str]] = {}
    in_unit = False
    for line in result.stdout.splitlines():
        if line.startswith("\t-> Unit "):
            in_unit = line == f"\t-> Unit {unit}:"
        elif in_unit and line.startswith("\t\t") and ": " in line:
            kind, _, value = line.strip().partition(": ")
            dependencies.setdefault(kind, set()).add(value.split(" (")[0])
        elif not line.startswith("\t"):
            in_unit = False
    assert dependencies, f"systemd-analyze showed no dump of {unit}"
    return dependencies


def require_systemd_tools() -> None:
    for tool in ("systemd-analyze", "systemd-escape", "systemctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def generate_mount_units(lab: BootstrapLab, tmp_path: Path) -> tuple[Path, str]:
    """What systemd's fstab generator makes of the lab's fstab at boot, and the name of the data
    mount's unit (which exists only once the bootstrap has written the volume's line)."""
    require_systemd_tools()
    generator = next((path for path in FSTAB_GENERATORS if Path(path).exists()), None)
    if generator is None:
        pytest.skip("systemd-fstab-generator is not installed")
    generated = tmp_path / "generator"
    generated.mkdir()
    run([generator, *[str(generated)] * 3], env=clean_env(SYSTEMD_FSTAB=lab.host.paths.fstab))
    data_mount = lab.host.paths.data_mount
    return generated, run(["systemd-escape", "--path", "--suffix=mount", data_mount]).strip()


def test_nginx_and_certbot_start_only_once_the_data_volume_is_mounted(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """`nofail` takes the data volume out of local-fs.target's requirements, so after a reboot nginx
    could start before the mount and find no certificate (/etc/letsencrypt links into the volume),
    and certbot could renew into the empty mount point. systemd's own fstab generator reads the
    fstab line the bootstrap wrote, and systemd loads the distro's units with our drop-ins: both
    must require, and be ordered after, the mount unit for the data mount, as Qdrant's unit is."""
    succeed(lab, ("data_volume",))
    generated, mount_unit = generate_mount_units(lab, tmp_path)
    assert (generated / mount_unit).is_file(), sorted(p.name for p in generated.iterdir())
    data_mount = lab.host.paths.data_mount

    for unit in DATA_VOLUME_UNITS:
        dependencies = systemd_dependencies(unit, [lab.host.paths.systemd_unit_dir, generated])
        assert data_mount in dependencies.get("RequiresMountsFor", set()), unit
        assert mount_unit in dependencies.get("Requires", set()), unit
        assert mount_unit in dependencies.get("After", set()), unit


def test_bootstrap_unit_starts_after_the_network_and_on_later_boots_after_the_data_mount(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """Every boot after the first has the fstab line the first run wrote: systemd (its fstab
    generator, then the unit as it loads it) must order the bootstrap after that mount and after
    the network, run exactly the bootstrap command, and retry it when it fails."""
    succeed(lab, ("data_volume",))
    generated, mount_unit = generate_mount_units(lab, tmp_path)
    unit_dir = lab.host.paths.systemd_unit_dir
    assert not systemd_verify([BOOTSTRAP_UNIT], [unit_dir, generated]).stderr, "systemd warned"

    dependencies = systemd_dependencies(BOOTSTRAP_UNIT, [unit_dir, generated])

    for kind in ("Wants", "After"):
        assert {"network-online.target", mount_unit} <= dependencies.get(kind, set()), kind
    assert dependencies["Command Line"] == {" ".join(bootstrap_command(lab.host))}
    assert dependencies["Type"] == {"exec"}
    assert dependencies["Restart"] == {"on-failure"}


def test_bootstrap_unit_starts_on_a_first_boot_that_has_no_data_mount_yet(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """On first boot (cloud-init's `systemctl enable --now`) no fstab line names the volume, so
    its mount unit does not exist: that must not keep the bootstrap, which creates it, from
    starting."""
    generated, mount_unit = generate_mount_units(lab, tmp_path)
    assert not (generated / mount_unit).exists()

    result = systemd_verify([BOOTSTRAP_UNIT], [lab.host.paths.systemd_unit_dir, generated])

    assert result.returncode == 0, result.stderr
    assert not result.stderr


def test_enabled_bootstrap_unit_makes_no_ordering_cycle_with_the_boot_or_cloud_init(
    lab: BootstrapLab, tmp_path: Path
) -> None:
    """Enabled as cloud-init enables it, the unit is wanted by multi-user.target, which is ordered
    after it, and cloud-final is ordered after multi-user.target. An ordering back (After=
    cloud-final, say) would be a cycle: systemd would drop a job at boot, perhaps the bootstrap."""
    require_systemd_tools()
    cloud_final = Path("/lib/systemd/system/cloud-final.service")
    if not cloud_final.exists():
        pytest.skip("cloud-init's units are not installed")
    root = tmp_path / "root"
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(Path(lab.host.paths.systemd_unit_dir, BOOTSTRAP_UNIT), unit_dir)
    run(["systemctl", f"--root={root}", "enable", BOOTSTRAP_UNIT])
    assert (unit_dir / "multi-user.target.wants" / BOOTSTRAP_UNIT).is_symlink()

    result = systemd_verify(["multi-user.target", cloud_final.name, BOOTSTRAP_UNIT], [unit_dir])

    assert result.returncode == 0, result.stderr
    assert "ordering cycle" not in result.stderr


def test_letsencrypt_lives_on_the_volume_behind_the_distro_path(lab: BootstrapLab) -> None:
    """certbot's timer renews through the distro path; the link makes it renew the certificate a
    replaced instance inherits, and keeps what the distro put there."""
    succeed(lab)
    link = Path(lab.host.paths.letsencrypt_link)
    assert link.is_symlink() and os.readlink(link) == lab.host.paths.letsencrypt_dir
    carried = lab.view(f"{lab.host.paths.letsencrypt_dir}/cli.ini")
    assert carried.read_text() == DISTRO_CERTBOT_INI


# --------------------------------------------------------------------------- the API keys


def test_secrets_file_is_root_only_and_holds_both_keys(lab: BootstrapLab) -> None:
    """The keys grant full (or read) access to every collection: only root may read them."""
    succeed(lab)
    secrets_file = Path(lab.secrets_file)
    info = secrets_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
    assert secrets_file.read_text().splitlines() == [
        f"QDRANT__SERVICE__API_KEY={lab.api_key}",
        f"QDRANT__SERVICE__READ_ONLY_API_KEY={lab.read_only_api_key}",
    ]


def test_keys_never_reach_the_output_even_under_xtrace(lab: BootstrapLab) -> None:
    """The bootstrap's output lands in cloud-init's world-readable log and on the serial console:
    a key there is a key leaked, and `bash -x` shows every expanded command line."""
    output = succeed(lab, trace=True)
    assert "+ " in output, "expected an xtrace"
    for key in (lab.api_key, lab.read_only_api_key):
        assert key not in output


def test_missing_key_parameter_stops_before_any_secrets_file(lab: BootstrapLab) -> None:
    """Qdrant 1.18 takes an empty key as a valid key: a missing one must stop the bootstrap, not
    start Qdrant with a key anyone can guess."""
    lab.ssm.delete(lab.host.read_only_api_key_parameter)

    result = lab.run()

    assert result.returncode != 0
    assert f"gave up after {lab.host.waits.secrets}s" in result.stderr
    assert lab.host.read_only_api_key_parameter in result.stderr
    assert not Path(lab.secrets_file).exists()
    assert not list(Path(lab.secrets_file).parent.glob(".qdrant.env.*")), "a partial file was left"
    assert not Path(lab.host.paths.ready_marker).exists()


def test_key_parameters_that_appear_after_boot_are_waited_for(patient_lab: BootstrapLab) -> None:
    """The instance can boot before its key parameters exist or its role's policy has propagated
    (IAM is eventually consistent): a run that gave up at once would leave the host without Qdrant
    until the unit's next run, minutes later. Waiting must not print the keys either."""
    lab = patient_lab
    lab.ssm.delete(lab.host.api_key_parameter)
    lab.ssm.delete(lab.host.read_only_api_key_parameter)

    running = in_background(lab, LAB_STEPS)
    time.sleep(3)
    assert not running.done(), running.result().stderr
    lab.ssm.put(lab.host.api_key_parameter, lab.api_key)
    lab.ssm.put(lab.host.read_only_api_key_parameter, lab.read_only_api_key)
    result = running.result(timeout=90)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SSM parameters not readable yet (ParameterNotFound" in output
    assert Path(lab.secrets_file).read_text().splitlines() == [
        f"QDRANT__SERVICE__API_KEY={lab.api_key}",
        f"QDRANT__SERVICE__READ_ONLY_API_KEY={lab.read_only_api_key}",
    ]
    for key in (lab.api_key, lab.read_only_api_key):
        assert key not in output


# --------------------------------------------------------------------------- the run as a whole


def test_second_run_changes_nothing(lab: BootstrapLab) -> None:
    """Re-running the bootstrap (by hand, or after a partial failure) must be safe: no reformat,
    no duplicate fstab line, no file rewritten."""
    succeed(lab)
    first = snapshot(lab)

    succeed(lab)

    assert snapshot(lab) == first


def test_a_run_that_failed_half_way_is_finished_by_the_next_without_cleanup(
    lab: BootstrapLab,
) -> None:
    """A first boot whose key parameter is not there yet fails after the volume is formatted,
    recorded and mounted. The unit runs the bootstrap again minutes later, as this test does: that
    run must pick up where the first stopped (no second filesystem or fstab line) and finish."""
    lab.ssm.delete(lab.host.api_key_parameter)
    failed = lab.run()
    assert failed.returncode != 0
    assert "failed in step secrets" in failed.stderr
    lab.ssm.put(lab.host.api_key_parameter, lab.api_key)
    uuid = volume_uuid(lab)

    output = succeed(lab)

    assert volume_uuid(lab) == uuid
    assert [line for line in fstab_lines(lab) if lab.host.paths.data_mount in line] == [
        f"UUID={uuid} {lab.host.paths.data_mount} ext4 defaults,nofail,nodev,nosuid 0 2"
    ]
    assert Path(lab.secrets_file).read_text().splitlines()[0] == (
        f"QDRANT__SERVICE__API_KEY={lab.api_key}"
    )
    assert output.rstrip().endswith("secure-qdrant: ready")


def test_a_second_run_while_one_is_running_is_refused_and_changes_nothing(
    patient_lab: BootstrapLab,
) -> None:
    """systemd never runs the unit twice at once, but an operator can start the script by hand
    while the unit's run waits (here: for a key parameter). Interleaved, two runs would race on
    fstab, the filesystem and certbot; the second must stop before touching anything."""
    lab = patient_lab
    lab.ssm.delete(lab.host.api_key_parameter)
    running = in_background(lab, LAB_STEPS)
    secrets_dir = Path(lab.secrets_file).parent
    wait_until(
        lambda: any(secrets_dir.glob(".qdrant.env.*")),
        "the first run to wait for the key parameter",
    )
    before = snapshot(lab)

    second = lab.run()

    assert second.returncode != 0
    assert "another bootstrap run holds" in second.stderr
    assert snapshot(lab) == before
    lab.ssm.put(lab.host.api_key_parameter, lab.api_key)
    first = running.result(timeout=90)
    assert first.returncode == 0, first.stderr


def test_ready_marker_is_written_and_announced_last(lab: BootstrapLab) -> None:
    """Callers wait on the marker (or the log line) before trusting the host; it must only appear
    once every selected step has succeeded."""
    output = succeed(lab)
    assert Path(lab.host.paths.ready_marker).exists()
    assert output.rstrip().endswith("secure-qdrant: ready")


def test_unknown_step_is_refused_before_anything_runs(lab: BootstrapLab) -> None:
    """A misspelt step list must not silently skip a hardening step while reporting success."""
    result = lab.run(steps=("data_volume", "firewal"))

    assert result.returncode != 0
    assert "unknown step 'firewal'" in result.stderr
    assert not [line for line in fstab_lines(lab) if lab.host.paths.data_mount in line]
    probe = subprocess.run(["blkid", "-p", lab.device], capture_output=True, check=False)
    assert probe.returncode == 2, "the volume was formatted"


# --------------------------------------------------------------------------- nginx and certificate


def leaf_certificate(fullchain: str) -> bytes:
    """The first certificate of a PEM chain, as DER."""
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(fullchain.split(end)[0] + end)


def served_certificate(edge: EdgeBootstrap) -> bytes:
    """The certificate nginx presents for the domain, verified against pebble's root."""
    host = edge.lab.host
    context = ssl.create_default_context(cafile=str(edge.client_ca))
    with socket.create_connection(("127.0.0.1", host.ports.https), timeout=5) as connection:
        with context.wrap_socket(connection, server_hostname=host.domain) as tls:
            certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_tls_site_goes_live_with_the_certificate_on_the_volume(edge: EdgeBootstrap) -> None:
    """Qdrant is only ever reachable through TLS, with a certificate the ACME server issued for
    the domain and kept on the data volume, where a replaced instance finds it."""
    fullchain, _ = certificate_paths(edge.lab.host)
    on_volume = leaf_certificate(edge.lab.view(fullchain).read_text())
    assert served_certificate(edge) == on_volume


def test_rerun_reuses_the_certificate_and_keeps_tls_up(edge: EdgeBootstrap) -> None:
    """Every issuance counts against Let's Encrypt's rate limits, and falling back to the HTTP-only
    site would take TLS down: a re-run must do neither."""
    fullchain, _ = certificate_paths(edge.lab.host)
    before = edge.lab.view(fullchain).read_text()

    output = succeed(edge.lab, EDGE_STEPS)

    assert "reusing the certificate on the data volume" in output
    assert "TLS site already live" in output
    assert edge.lab.view(fullchain).read_text() == before
    assert served_certificate(edge) == leaf_certificate(before)


def test_dns_step_waits_for_the_domain_to_reach_the_imds_public_address(
    edge: EdgeBootstrap,
) -> None:
    """HTTP-01 can only succeed once the name points at this host; asking the ACME server earlier
    burns Let's Encrypt's failed-validation limit. The address comes from IMDSv2 (tokens only)."""
    output = succeed(edge.lab, ("dns",))
    assert f"{edge.lab.host.domain} resolves to 127.0.0.1" in output


def test_no_credential_reaches_the_output_of_a_full_run_under_xtrace(edge: EdgeBootstrap) -> None:
    """cloud-init's log and the console are readable by far more than root: neither the API keys
    nor the IMDS session token (which reads the instance role's credentials) may appear there."""
    output = succeed(edge.lab, EDGE_STEPS, trace=True)
    assert "+ " in output, "expected an xtrace"
    for credential in (edge.lab.api_key, edge.lab.read_only_api_key, edge.imds.token):
        assert credential not in output


def test_timer_style_renewal_reloads_nginx_through_the_stored_hook(edge: EdgeBootstrap) -> None:
    """certbot.timer runs a bare `certbot renew`: only what the bootstrap stored in the lineage's
    renewal config (server, webroot, deploy hook) makes the renewed certificate go live. A hook
    that does not reload nginx leaves it serving the old certificate until it expires."""
    host = edge.lab.host
    renewal = edge.lab.view(f"{host.paths.letsencrypt_dir}/renewal/{host.domain}.conf").read_text()
    # Never leave loopback: the stored server must be the lab's pebble.
    assert f"server = {host.acme_server}\n" in renewal
    before = served_certificate(edge)

    run(
        edge.lab.namespace.command(
            "certbot", "renew", "--force-renewal", "--no-random-sleep-on-renew", "--non-interactive",
            "--config-dir", host.paths.letsencrypt_link,
            "--work-dir", host.paths.certbot_work_dir,
            "--logs-dir", host.paths.certbot_logs_dir,
        ),
        env=clean_env(**edge.lab.environment),
    )  # fmt: skip

    wait_until(lambda: served_certificate(edge) != before, "nginx to serve the renewed certificate")
    fullchain, _ = certificate_paths(host)
    assert served_certificate(edge) == leaf_certificate(edge.lab.view(fullchain).read_text())


# What a crash in the seconds after a renewal can leave empty: certbot writes no file with fsync.
CRASHED_FILES = {
    "certificate and key": ("live/{domain}/fullchain.pem", "live/{domain}/privkey.pem"),
    "certificate alone": ("live/{domain}/cert.pem",),
    "renewal config": ("renewal/{domain}.conf",),
}


@pytest.mark.parametrize("emptied", CRASHED_FILES.values(), ids=CRASHED_FILES.keys())
def test_a_lineage_left_unreadable_by_a_crash_after_a_renewal_is_kept_aside_and_replaced(
    ssm: Ssm,
    emptied: tuple[str, ...],  # noqa: F811
) -> None:
    """certbot does not fsync: a power cut, or a restored snapshot taken in the seconds after a
    renewal, leaves renewed files empty (ext4's delayed allocation) behind links or names already
    committed, and certbot refuses such a lineage outright, at once or at its next renewal. The
    host must serve TLS again, and what certbot wrote is kept, never deleted."""
    with ExitStack() as stack:
        edge = fresh_edge(ssm, stack)
        succeed(edge.lab, EDGE_STEPS)
        host = edge.lab.host
        for path in emptied:
            # Through the live links: the archive's files.
            file = f"{host.paths.letsencrypt_dir}/{path.format(domain=host.domain)}"
            edge.lab.view(file).write_bytes(b"")

        output = succeed(edge.lab, EDGE_STEPS)

        [kept] = re.findall(r"its lineage is kept in (\S+)", output)
        assert edge.lab.view(f"{kept}/renewal/{host.domain}.conf").is_file()
        assert edge.lab.view(f"{kept}/live/{host.domain}").is_dir()
        fullchain, _ = certificate_paths(host)
        issued = leaf_certificate(edge.lab.view(fullchain).read_text())
        # The deploy hook's reload completes after certbot returns: old workers serve until then.
        wait_until(lambda: served_certificate(edge) == issued, "nginx to serve the new certificate")


def test_tls_is_served_while_qdrant_is_still_loading(ssm: Ssm) -> None:
    """Qdrant loads every collection before it answers, which on a large volume outlasts any fixed
    wait, and a run that gives up is retried only minutes later. So the edge must come up first,
    with the certificate, and the host turn ready only once Qdrant is healthy. Run in the
    bootstrap's own step order, with no Qdrant listening: TLS is served while the bootstrap still
    waits."""
    with ExitStack() as stack:
        edge = fresh_edge(ssm, stack)
        running = in_background(edge.lab, (*EDGE_STEPS, "qdrant_health"))

        def tls_served() -> bool:
            assert not running.done(), running.result().stderr
            try:
                served_certificate(edge)
            except OSError:
                return False
            return True

        wait_until(tls_served, "the TLS site while Qdrant is down", timeout=60)
        assert not Path(edge.lab.host.paths.ready_marker).exists()
        start_qdrant(edge, stack)
        result = running.result(timeout=90)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.index("certificate issued") < output.index("Qdrant is healthy")
    assert output.rstrip().endswith("secure-qdrant: ready")
