"""What the lab puts into a guest's root filesystem before it boots: the machine around the VM.

On EC2 the user data comes from IMDS, SSM and IMDS are on the network, and the Qdrant image is in a
registry. Here the user data is a NoCloud seed (gzip'd, the bytes EC2 hands the instance), the
bootstrap's environment points IMDS at the lab's double, SSM's name resolves to the gateway (moto),
and the image is
imported from a tarball when dockerd first starts. Nothing here touches what the user data writes.
Pure: settings in, files out; `write_guest_files` puts them in place.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.booted.qdrant_image import import_changes
from lab.booted.slirp import GATEWAY
from lab.booted.ssm import aws_hostnames
from lab.processes import run
from model.settings import HostSettings

SEED_DIR = "/var/lib/cloud/seed/nocloud"
IMAGE_TARBALL = "/var/lib/secure-qdrant-lab/qdrant-image.tar"
UNIT_DIR = "/etc/systemd/system"
IMPORT_SCRIPT = "/usr/local/sbin/secure-qdrant-lab-import-image"
TRUST_DIR = "/usr/local/share/ca-certificates"
FSTAB_GENERATOR = "/lib/systemd/system-generators/systemd-fstab-generator"
FSCK = "systemd-fsck@"


@dataclass(frozen=True)
class GuestFile:
    path: str
    content: bytes = b""
    mode: int = 0o644
    link_to: str | None = None
    """A symlink to this target instead of a file (how `systemctl enable` enables a unit)."""


@dataclass(frozen=True)
class Machine:
    """The lab's stand-ins for EC2 around one guest."""

    instance_id: str
    imds_port: int
    trusted_cas: tuple[bytes, ...]
    """PEM CAs the guest trusts besides Debian's: the lab's ACME server's and SSM's."""


def seed_files(user_data_gzip: bytes, instance_id: str) -> list[GuestFile]:
    meta_data = f"instance-id: {instance_id}\nlocal-hostname: {instance_id}\n"
    return [
        GuestFile(f"{SEED_DIR}/user-data", user_data_gzip, 0o600),
        GuestFile(f"{SEED_DIR}/meta-data", meta_data.encode(), 0o600),
    ]


def environment_file(machine: Machine) -> GuestFile:
    """Every service's environment: IMDS at the lab's double; credentials for moto (which accepts
    any), where the VM's come from its instance role."""
    variables = {
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{GATEWAY}:{machine.imds_port}",
        "AWS_ACCESS_KEY_ID": "lab",
        "AWS_SECRET_ACCESS_KEY": "lab",
    }
    settings = " ".join(f'"{name}={value}"' for name, value in variables.items())
    text = f"[Manager]\nDefaultEnvironment={settings}\n"
    return GuestFile("/etc/systemd/system.conf.d/90-secure-qdrant-lab.conf", text.encode())


def hosts_file(host: HostSettings, hosts: str) -> GuestFile:
    """SSM's and CloudWatch's names resolving to the gateway, behind which moto listens on
    HTTPS's port."""
    names = " ".join(aws_hostnames(host.region))
    return GuestFile("/etc/hosts", f"{hosts}{GATEWAY} {names}\n".encode())


def image_files(host: HostSettings) -> list[GuestFile]:
    """dockerd, once started (by the bootstrap's packages step), imports the lab's Qdrant image
    under the pinned tag unless it has it: a host image with Qdrant baked in."""
    changes = " ".join(f"--change {shlex.quote(change)}" for change in import_changes(host))
    image = shlex.quote(host.qdrant_image)
    script = f"""\
#!/bin/sh
set -e
docker image inspect {image} >/dev/null 2>&1 && exit 0
docker import {changes} {IMAGE_TARBALL} {image} >/dev/null
"""
    drop_in = f"[Service]\nExecStartPost={IMPORT_SCRIPT}\n"
    return [
        GuestFile(IMPORT_SCRIPT, script.encode(), 0o755),
        GuestFile(f"{UNIT_DIR}/docker.service.d/secure-qdrant-lab-image.conf", drop_in.encode()),
    ]


def trust_files(machine: Machine) -> list[GuestFile]:
    return [
        GuestFile(f"{TRUST_DIR}/secure-qdrant-lab-{index}.crt", ca)
        for index, ca in enumerate(machine.trusted_cas)
    ]


def guest_files(
    host: HostSettings, user_data_gzip: bytes, machine: Machine, hosts: str
) -> list[GuestFile]:
    """Every lab file of one guest; `hosts` is the rootfs's own /etc/hosts, which SSM's name
    joins."""
    return [
        *seed_files(user_data_gzip, machine.instance_id),
        environment_file(machine),
        hosts_file(host, hosts),
        *image_files(host),
        *trust_files(machine),
    ]


def write_fstab_units(root: Path) -> None:
    """The units the VM's systemd makes of its fstab at every boot (the data volume's mount, once
    the bootstrap wrote its line), made by the guest's own fstab generator from the guest's own
    fstab. Inside nspawn systemd skips that: its generator ignores every device line in a
    container ("Running in a container, ignoring fstab device entry"), so nothing would order
    nginx after the mount. The lab runs the generator on the stopped root instead (chroot: no
    container) and puts its units where the guest's systemd loads them. One deviation: the
    generator makes the mount need systemd-fsck@ for the device (fstab's pass 2), which binds to
    a device unit, and a container has none ("unsupported"), so the mount could never start. The
    lab drops that dependency: the guest mounts the volume unchecked, the VM checks it first."""
    staging = root / "tmp" / "secure-qdrant-lab-fstab-units"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    inside = f"/{staging.relative_to(root)}"
    try:
        run(["chroot", str(root), FSTAB_GENERATOR, inside, inside, inside])
        for unit in sorted(staging.rglob("*")):
            if not unit.is_dir():
                target = root / UNIT_DIR.lstrip("/") / unit.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                unit.rename(target)
                if target.suffix == ".mount" and not target.is_symlink():
                    lines = target.read_text().splitlines(keepends=True)
                    target.write_text("".join(line for line in lines if FSCK not in line))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_guest_files(root: Path, files: Sequence[GuestFile]) -> None:
    """Put `files` under `root`, then rebuild its CA bundle so the lab's CAs are trusted."""
    for file in files:
        path = root / file.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        if file.link_to is not None:
            path.symlink_to(file.link_to)
        else:
            path.write_bytes(file.content)
            path.chmod(file.mode)
    run(["chroot", str(root), "update-ca-certificates", "--fresh"])
