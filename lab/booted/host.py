"""One booted host: the VM's rendered user data on a Debian 12 guest, from first boot to ready.

`booted_host()` starts the lab's stand-ins for AWS on this machine's loopback (moto as SSM over
TLS, the IMDSv2 double, pebble as Let's Encrypt), renders the user data with the VM's own paths and
ports (only endpoints, domain and waits are the lab's), attaches a loop device as the data volume,
boots a copy of the cached rootfs with the seed and waits for `secure-qdrant: ready`. The guest's
ports 80, 443 and 6334 are published on a loopback address of its own (`BootedHost.address`), which
pebble's DNS gives as the domain's address, so HTTP-01 validation reaches the guest's nginx.
Everything (guest, slirp4netns, servers, loop device, cgroups, files) goes on exit.

Its parts serve a host's whole life (`lifecycle`): `host_lab()` is what outlives a guest (the
stand-ins, the keys, the user data, the data disk), `new_instance_root()` a fresh instance's root
filesystem, `boot()` one boot of a root until that boot's own `ready` line.
"""

from __future__ import annotations

import base64
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from lab.booted.cache import CACHE_DIR
from lab.booted.ebs import Volume, VolumeStore, nitro_device_link, volume_store
from lab.booted.nspawn import Bind, Guest, booted, one_guest_at_a_time
from lab.booted.outside import ADMIN_CIDR
from lab.booted.provision import (
    IMAGE_TARBALL,
    Machine,
    guest_files,
    write_fstab_units,
    write_guest_files,
)
from lab.booted.qdrant_image import image_tarball
from lab.booted.rootfs import guest_rootfs
from lab.booted.slirp import GATEWAY, Forward
from lab.booted.ssm import TlsSsm, tls_moto_ssm
from lab.bootstrap import LAB_REGION, imds_double
from lab.config_store import ConfigStore, lab_source
from lab.edge import LAB_DOMAIN, LAB_EMAIL, lab_target
from lab.pebble import running_pebble
from lab.processes import LOOPBACK, CommandFailed, run
from model.audit_log import audit_log_group_name
from model.settings import (
    DEFAULT_QDRANT_VERSION,
    PORTS,
    BootstrapWaits,
    HostSettings,
    Limits,
    TokenSpec,
)
from model.user_data import BOOTSTRAP_UNIT, ec2_user_data
from verify.target import Target

VOLUME_SIZE_BYTES = 1024**3
# The bootstrap's apt downloads, kept for the next guest: the packages are the same every time.
APT_ARCHIVES = CACHE_DIR / "apt-archives"
# apt installs a few hundred MB on a cold cache; the rest is seconds.
READY_TIMEOUT_SECONDS = 900
# Bounded like the VM's, shorter: a host that cannot come up says so within minutes.
BOOTED_WAITS = BootstrapWaits(secrets=120, qdrant=300)
# The bootstrap's journal tag and the line a successful run ends with.
BOOTSTRAP_TAG = "secure-qdrant"
READY_LINE = "ready"


class BootFailed(RuntimeError):
    """cloud-init finished without the host becoming ready; the message carries its output."""


@dataclass(frozen=True)
class BootedHost:
    host: HostSettings
    guest: Guest
    address: str
    """This machine's loopback address the guest's public ports are published on."""
    api_key: str
    read_only_api_key: str
    client_ca: Path
    boot_to_ready_seconds: float
    ssm: TlsSsm
    """The parameters the guest reads its keys from (a rotation writes new ones here)."""
    store: ConfigStore
    """Where the guest's configuration is published (a change is published here)."""
    volume_id: str
    """The data volume the guest's configuration names."""

    def verify_target(self, tokens: Sequence[TokenSpec] = ()) -> Target:
        """The guest as `verify` sees a deployment: its domain, reached at `address`."""
        target = lab_target(self.host, self.api_key, self.read_only_api_key, self.client_ca, tokens)
        return replace(target, address=self.address)

    def bootstrap_log(self) -> str:
        return self.guest.run("journalctl", "--no-pager", "--output=cat", "-t", BOOTSTRAP_TAG)


def lab_address() -> str:
    """A loopback address of this machine no other lab uses (they all use 127.0.0.1), so the guest
    gets the real port numbers: 80, 443, 6334."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def guest_url(url: str) -> str:
    """A URL of a server on this machine's 127.0.0.1 as the guest reaches it."""
    return url.replace(f"//{LOOPBACK}:", f"//{GATEWAY}:", 1)


def booted_host_settings(acme_server: str) -> HostSettings:
    """The VM's settings: its paths, ports and listen addresses; the lab's domain and endpoints."""
    return HostSettings(
        domain=LAB_DOMAIN,
        acme_email=LAB_EMAIL,
        acme_server=acme_server,
        qdrant_version=DEFAULT_QDRANT_VERSION,
        limits=Limits(),
        admin_cidrs=(ADMIN_CIDR,),
        region=LAB_REGION,
        api_key_parameter="/secure-qdrant/booted/api-key",
        read_only_api_key_parameter="/secure-qdrant/booted/read-only-api-key",
        previous_api_key_parameter="/secure-qdrant/booted/previous-api-key",
        waits=BOOTED_WAITS,
    )


def this_boot_log(guest: Guest) -> list[str]:
    """The bootstrap's lines of the guest's current boot: the journal keeps earlier boots' too."""
    return guest.run(
        "journalctl", "--no-pager", "--output=cat", "--boot", "-t", BOOTSTRAP_TAG
    ).splitlines()


def _ready_this_boot(guest: Guest) -> bool:
    try:
        return READY_LINE in this_boot_log(guest)
    except CommandFailed:
        # Early in the boot journald does not answer yet: nothing is ready so far.
        return False


def wait_until_ready(
    guest: Guest,
    timeout: float = READY_TIMEOUT_SECONDS,
    watch: Callable[[Guest], None] = lambda _: None,
) -> None:
    """Until this boot's bootstrap run says `ready` (the marker file outlives a reboot, so it proves
    nothing about this one), calling `watch` between looks. cloud-init only starts the bootstrap's
    unit, so a run that failed (the unit waiting to retry, as on the VM) ends the wait early."""
    deadline = time.monotonic() + timeout
    while not _ready_this_boot(guest):
        if not guest.running() or time.monotonic() > deadline or _bootstrap_failed(guest):
            raise BootFailed(f"the guest did not become ready:\n{_failure_report(guest)}")
        watch(guest)
        time.sleep(1)


def _bootstrap_failed(guest: Guest) -> bool:
    try:
        state = guest.run("systemctl", "show", "--property=ActiveState,SubState", BOOTSTRAP_UNIT)
    except CommandFailed:
        # Early in the boot systemd does not answer yet: nothing has failed so far.
        return False
    return "ActiveState=failed" in state or "SubState=auto-restart" in state


def _failure_report(guest: Guest) -> str:
    """The end of cloud-init's output, then what systemd saw fail (the bootstrap logs no secret)."""
    output = guest.path("/var/log/cloud-init-output.log")
    log = (
        output.read_text(errors="replace")[-6000:] if output.exists() else "(no cloud-init output)"
    )
    if not guest.running():
        return log
    listed = guest.run("systemctl", "--failed", "--plain", "--no-legend").splitlines()
    failed = [line.split()[0] for line in listed if line.strip()]
    journals = [
        guest.run("journalctl", "--no-pager", "--lines=15", f"--unit={unit}") for unit in failed
    ]
    bootstrap = guest.run(
        "journalctl", "--no-pager", "--output=cat", "--lines=40", "-t", BOOTSTRAP_TAG
    )
    return "\n".join(
        [
            log,
            *(f"--- failed: {unit}\n{text}" for unit, text in zip(failed, journals, strict=False)),
            f"--- the bootstrap's last lines\n{bootstrap}",
        ]
    )


@dataclass(frozen=True)
class HostLab:
    """What stays while the host boots, reboots and is replaced: the stand-ins for AWS and Let's
    Encrypt on this machine, the keys, the rendered user data and the data disk."""

    workdir: Path
    host: HostSettings
    user_data: bytes
    """Gzip'd, as EC2 hands it to every instance launched with it."""
    address: str
    api_key: str
    read_only_api_key: str
    client_ca: Path
    imds_port: int
    trusted_cas: tuple[bytes, ...]
    volumes: VolumeStore
    volume: Volume
    """The data volume attached to the instance: the user data names it."""
    pebble_log: Path
    ssm: TlsSsm
    store: ConfigStore


@contextmanager
def host_lab(workdir: Path) -> Iterator[HostLab]:
    """Moto as SSM (holding the keys), the IMDS double, pebble and a blank data disk; all go on
    exit. Holds the guest lock throughout: moto needs this machine's 127.0.0.1:443."""
    # Built (or found cached) before the lock: a build need not hold up another guest.
    guest_rootfs(), image_tarball()
    address = lab_address()
    with ExitStack() as stack:
        stack.enter_context(one_guest_at_a_time())
        ssm = stack.enter_context(tls_moto_ssm(workdir / "moto", LAB_REGION))
        # The public address the guest reads from IMDS: its domain resolves to it on the guest.
        imds = stack.enter_context(imds_double(LOOPBACK))
        pebble = stack.enter_context(
            running_pebble(
                workdir / "pebble",
                PORTS.http,
                validation_address=address,
                listener_names=(GATEWAY,),
            )
        )
        host = booted_host_settings(guest_url(pebble.directory_url))
        api_key, read_only_api_key = secrets.token_hex(24), secrets.token_hex(24)
        ssm.put(host.api_key_parameter, api_key)
        ssm.put(host.read_only_api_key_parameter, read_only_api_key)
        # What `pulumi up` creates before the instance (components/audit_log.py).
        ssm.client("logs").create_log_group(logGroupName=audit_log_group_name(host.name))
        volumes = stack.enter_context(volume_store(workdir / "ebs"))
        volume = volumes.create(VOLUME_SIZE_BYTES)
        store = ConfigStore(ssm, lab_source(host))
        client_ca = workdir / "client-ca.pem"
        client_ca.write_bytes(pebble.issuing_root())
        yield HostLab(
            workdir=workdir,
            host=host,
            user_data=instance_user_data(store, host, volume),
            address=address,
            api_key=api_key,
            read_only_api_key=read_only_api_key,
            client_ca=client_ca,
            imds_port=int(imds.endpoint.rsplit(":", 1)[1]),
            trusted_cas=(pebble.listener_ca.read_bytes(), ssm.ca.read_bytes()),
            volumes=volumes,
            volume=volume,
            pebble_log=workdir / "pebble" / "pebble.log",
            ssm=ssm,
            store=store,
        )


def instance_user_data(store: ConfigStore, host: HostSettings, volume: Volume) -> bytes:
    """What `pulumi up` does for an instance on this data volume: publishes the host's
    configuration (the guest's S3 is the lab's moto) and renders the user data, gzip'd as EC2
    hands it to every instance launched with it."""
    store.publish(host, volume.volume_id)
    return base64.b64decode(ec2_user_data(host, volume.volume_id, store.source))


def new_instance_root(lab: HostLab, root: Path) -> None:
    """A fresh copy of the image at `root`, seeded as a new instance: its own id, the same user
    data. Removing it is the caller's."""
    run(["cp", "-a", "--reflink=auto", str(guest_rootfs()), str(root)])
    machine = Machine(
        instance_id=f"i-{secrets.token_hex(8)}",
        imds_port=lab.imds_port,
        trusted_cas=lab.trusted_cas,
    )
    hosts = (root / "etc/hosts").read_text()
    write_guest_files(root, guest_files(lab.host, lab.user_data, machine, hosts))


def _disk_binds(volume: Volume) -> list[Bind]:
    """The data volume under the names the guest looks it up by. Without udev there are no
    /dev/disk links: the lab makes those udev would on a Nitro instance (only by-id names the EBS
    volume: the bootstrap must find it by the id its user data holds). mount resolves the
    bootstrap's `UUID=` by probing the disks /proc/partitions names (the device's own name);
    systemd's mount unit for the fstab line, at later boots, opens /dev/disk/by-uuid/UUID, which
    exists once there is a filesystem."""
    device = volume.device
    binds = [Bind(device, nitro_device_link(volume.volume_id)), Bind(device, device)]
    try:
        uuid = run(["blkid", "-p", "-s", "UUID", "-o", "value", device]).strip()
    except CommandFailed:
        # A blank disk (blkid exits 2): udev would make no by-uuid link either.
        return binds
    return [*binds, Bind(device, f"/dev/disk/by-uuid/{uuid}")]


@contextmanager
def boot(
    lab: HostLab, root: Path, workdir: Path, watch: Callable[[Guest], None] = lambda _: None
) -> Iterator[BootedHost]:
    """`root` booted as an instance with the lab's data disk, until this boot's `ready` (calling
    `watch` while waiting); shut down cleanly on exit."""
    image = image_tarball()
    workdir.mkdir(parents=True, exist_ok=True)
    (APT_ARCHIVES / "partial").mkdir(parents=True, exist_ok=True)
    binds = (
        *_disk_binds(lab.volume),
        Bind(str(image), IMAGE_TARBALL, read_only=True),
        Bind(str(APT_ARCHIVES), "/var/cache/apt/archives"),
    )
    forwards = [Forward(lab.address, port, port) for port in PORTS.public]
    write_fstab_units(root)
    started = time.monotonic()
    with booted(root, f"sq-{secrets.token_hex(4)}", workdir, binds, forwards) as guest:
        wait_until_ready(guest, watch=watch)
        yield BootedHost(
            host=lab.host,
            guest=guest,
            address=lab.address,
            api_key=lab.api_key,
            read_only_api_key=lab.read_only_api_key,
            client_ca=lab.client_ca,
            boot_to_ready_seconds=time.monotonic() - started,
            ssm=lab.ssm,
            store=lab.store,
            volume_id=lab.volume.volume_id,
        )


@contextmanager
def booted_host(workdir: Path) -> Iterator[BootedHost]:
    """A guest booted to ready from the rendered user data, and everything around it."""
    with host_lab(workdir) as lab:
        root = workdir / "root"
        try:
            new_instance_root(lab, root)
            with boot(lab, root, workdir) as booted_guest:
                yield booted_guest
        finally:
            shutil.rmtree(root, ignore_errors=True)
