"""One booted host: the VM's rendered user data on a Debian 12 guest, from first boot to ready.

`booted_host()` starts the lab's stand-ins for AWS on this machine's loopback (moto as SSM over
TLS, the IMDSv2 double, pebble as Let's Encrypt), renders the user data with the VM's own paths and
ports (only endpoints, domain and waits are the lab's), attaches a loop device as the data volume,
boots a copy of the cached rootfs with the seed and waits for `secure-qdrant: ready`. The guest's
ports 80, 443 and 6334 are published on a loopback address of its own (`BootedHost.address`), which
pebble's DNS gives as the domain's address, so HTTP-01 validation reaches the guest's nginx.
Everything (guest, slirp4netns, servers, loop device, cgroups, files) goes on exit.
"""

from __future__ import annotations

import base64
import random
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from components.settings import (
    DEFAULT_QDRANT_VERSION,
    PORTS,
    BootstrapWaits,
    HostSettings,
    Limits,
    TokenSpec,
)
from components.user_data import BOOTSTRAP_UNIT, ec2_user_data
from lab.booted.nspawn import Bind, Guest, booted
from lab.booted.outside import ADMIN_CIDR
from lab.booted.provision import IMAGE_TARBALL, Machine, guest_files, write_guest_files
from lab.booted.qdrant_image import image_tarball
from lab.booted.rootfs import guest_rootfs
from lab.booted.slirp import GATEWAY, Forward
from lab.booted.ssm import TlsSsm, tls_moto_ssm
from lab.booted.cache import CACHE_DIR
from lab.bootstrap import LAB_REGION, imds_double, loop_device
from lab.edge import LAB_DOMAIN, LAB_EMAIL, lab_target
from lab.pebble import running_pebble
from lab.processes import LOOPBACK, CommandFailed, run
from verify.target import Target

VOLUME_ID = "vol-0000000000booted0"
VOLUME_SIZE_BYTES = 1024**3
# The bootstrap's apt downloads, kept for the next guest: the packages are the same every time.
APT_ARCHIVES = CACHE_DIR / "apt-archives"
# apt installs a few hundred MB on a cold cache; the rest is seconds.
READY_TIMEOUT_SECONDS = 900
# Bounded like the VM's, shorter: a host that cannot come up says so within minutes.
BOOTED_WAITS = BootstrapWaits(secrets=120, qdrant=300)


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

    def verify_target(self, tokens: Sequence[TokenSpec] = ()) -> Target:
        """The guest as `verify` sees a deployment: its domain, reached at `address`."""
        target = lab_target(self.host, self.api_key, self.read_only_api_key, self.client_ca, tokens)
        return replace(target, address=self.address)

    def bootstrap_log(self) -> str:
        return self.guest.run("journalctl", "--no-pager", "--output=cat", "-t", "secure-qdrant")


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


def wait_until_ready(guest: Guest, host: HostSettings, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until the bootstrap's ready marker exists. cloud-init only starts the bootstrap's unit, so a
    run that failed (the unit waiting to retry, as on the VM) is what ends the wait early."""
    deadline = time.monotonic() + timeout
    marker = guest.path(host.paths.ready_marker)
    while not marker.exists():
        if not guest.running() or time.monotonic() > deadline or _bootstrap_failed(guest):
            raise BootFailed(f"the guest did not become ready:\n{_failure_report(guest)}")
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
    log = output.read_text(errors="replace")[-6000:] if output.exists() else "(no cloud-init output)"
    if not guest.running():
        return log
    listed = guest.run("systemctl", "--failed", "--plain", "--no-legend").splitlines()
    failed = [line.split()[0] for line in listed if line.strip()]
    journals = [
        guest.run("journalctl", "--no-pager", "--lines=15", f"--unit={unit}") for unit in failed
    ]
    bootstrap = guest.run("journalctl", "--no-pager", "--output=cat", "--lines=40", "-t", "secure-qdrant")
    return "\n".join(
        [
            log,
            *(f"--- failed: {unit}\n{text}" for unit, text in zip(failed, journals)),
            f"--- the bootstrap's last lines\n{bootstrap}",
        ]
    )


@contextmanager
def booted_host(workdir: Path) -> Iterator[BootedHost]:
    """A guest booted to ready from the rendered user data, and everything around it."""
    rootfs, tarball = guest_rootfs(), image_tarball()
    address = lab_address()
    with ExitStack() as stack:
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
        device = stack.enter_context(loop_device(workdir / "data-volume.img", VOLUME_SIZE_BYTES))

        root = workdir / "root"
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        run(["cp", "-a", "--reflink=auto", str(rootfs), str(root)])
        machine = Machine(
            instance_id=f"i-{secrets.token_hex(8)}",
            imds_port=int(imds.endpoint.rsplit(":", 1)[1]),
            trusted_cas=(pebble.listener_ca.read_bytes(), ssm.ca.read_bytes()),
        )
        user_data = base64.b64decode(ec2_user_data(host, VOLUME_ID))
        hosts = (root / "etc/hosts").read_text()
        write_guest_files(root, guest_files(host, user_data, machine, hosts))

        (APT_ARCHIVES / "partial").mkdir(parents=True, exist_ok=True)
        binds = (
            Bind(device, host.data_volume_device),
            # Without udev there is no /dev/disk/by-uuid: mount resolves the fstab line's UUID= by
            # probing the disks /proc/partitions names, which the guest must have under that name.
            Bind(device, device),
            Bind(str(tarball), IMAGE_TARBALL, read_only=True),
            Bind(str(APT_ARCHIVES), "/var/cache/apt/archives"),
        )
        forwards = [Forward(address, port, port) for port in PORTS.public]
        started = time.monotonic()
        guest = stack.enter_context(
            booted(root, f"sq-{secrets.token_hex(4)}", workdir, binds, forwards)
        )
        wait_until_ready(guest, host)
        boot_to_ready = time.monotonic() - started
        client_ca = workdir / "client-ca.pem"
        client_ca.write_bytes(pebble.issuing_root())
        yield BootedHost(
            host=host,
            guest=guest,
            address=address,
            api_key=api_key,
            read_only_api_key=read_only_api_key,
            client_ca=client_ca,
            boot_to_ready_seconds=boot_to_ready,
            ssm=ssm,
        )
