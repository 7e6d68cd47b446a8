"""The real bootstrap on this machine: cloud-init's files and the unit's command, with lab settings,
as root.

`bootstrap_lab()` does what cloud-init and the bootstrap's unit do on the VM: it writes every
`write_files` entry of the rendered user data and runs the unit's command, with `HostSettings` and
`HostSystem` pointed into a scratch directory, a sparse file on a loop device as the data volume
and a moto server as SSM. Only the steps that need no apt, Docker, ufw or systemd run (`LAB_STEPS`).

Nothing leaks into this machine: the bootstrap runs in a private mount namespace, so its mounts end
with it; fstab and /etc/letsencrypt are scratch files; the loop device is detached on exit.

`edge_bootstrap_lab()` adds what the DNS, nginx and certificate steps need: an IMDSv2 double that
gives 127.0.0.1 as the public address, the lab's domain resolving there (a scratch /etc/hosts, bound
inside the namespace only), pebble as the ACME server and nginx already serving (as the distro's is
on the VM), all on free loopback ports.

`python -m lab.bootstrap` runs it once and prints what the bootstrap logged.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.bootstrap_run import run_bootstrap, run_loader
from lab.cloud_init import write_files
from lab.config_store import ConfigStore, lab_source
from lab.edge import LAB_VOLUME_ID, lab_host_settings
from lab.moto import LAB_REGION, Ssm, moto_ssm
from lab.nginx import Nginx
from lab.pebble import Pebble, running_pebble
from lab.processes import (
    LOOPBACK,
    CommandFailed,
    LabUnavailable,
    Service,
    free_port,
    require_tools,
    run,
    wait_until,
)
from model.settings import PORTS, BootstrapWaits, HostSettings, Limits, Ports
from model.user_data import ec2_user_data, qdrant_env_path

LAB_STEPS = ("data_volume", "secrets", "ready")
EDGE_STEPS = ("data_volume", "secrets", "nginx_http", "dns", "certificate", "nginx_tls", "ready")
# `.invalid` never resolves: `LAB_STEPS` hold no certificate step, and nothing may reach a real ACME
# server by mistake (the edge lab brings its own pebble).
LAB_ACME_SERVER = "https://acme.invalid/directory"
VOLUME_SIZE_BYTES = 64 * 1024 * 1024
VOLUME_IMAGE = "data-volume.img"
# Short, so a test of a key that never appears, or of a Qdrant that never gets healthy, ends soon.
LAB_WAITS = BootstrapWaits(secrets=3, qdrant=60)
# Stands in for the cli.ini the distro's certbot package puts in /etc/letsencrypt.
DISTRO_CERTBOT_INI = "# from the distro's certbot package\n"
_TOOLS = (
    "losetup", "unshare", "nsenter", "mkfs.ext4", "blkid", "findmnt", "mount", "bash", "tune2fs",
    "resize2fs", "blockdev",
)  # fmt: skip


def require_root_lab() -> None:
    """Raise `LabUnavailable` unless this process may make loop devices and mounts."""
    if os.geteuid() != 0:
        raise LabUnavailable("the bootstrap lab needs root (loop devices, mounts, chown)")
    require_tools(*_TOOLS)


@contextmanager
def loop_device(image: Path, size: int = VOLUME_SIZE_BYTES) -> Iterator[str]:
    """A sparse file attached as a loop device: the lab's EBS volume. Detached on exit."""
    with image.open("wb") as sparse:
        sparse.truncate(size)
    device = run(["losetup", "--find", "--show", str(image)]).strip()
    try:
        yield device
    finally:
        run(["losetup", "--detach", device])


class MountNamespace:
    """A private mount namespace, held open by a sleeping process: its mounts vanish with it."""

    def __init__(self, log: Path) -> None:
        self._holder = Service(
            "mount-namespace",
            ["unshare", "--mount", "--propagation", "private", "sleep", "infinity"],
            log,
        )
        own = os.readlink("/proc/self/ns/mnt")
        wait_until(lambda: os.readlink(f"/proc/{self.pid}/ns/mnt") != own, "a mount namespace")

    @property
    def pid(self) -> int:
        return self._holder.pid

    def command(self, *arguments: str) -> list[str]:
        return ["nsenter", "--target", str(self.pid), "--mount", "--", *arguments]

    def path(self, path: str) -> Path:
        """`path` as seen from inside the namespace (with its mounts)."""
        return Path(f"/proc/{self.pid}/root{path}")

    def stop(self) -> None:
        self._holder.stop()


class _ImdsHandler(BaseHTTPRequestHandler):
    """The two IMDSv2 calls the bootstrap makes: a PUT for a session token, then a GET for the
    public address that must present it. A GET without the token is refused, as IMDSv2 refuses it."""

    server: _ImdsServer

    def do_PUT(self) -> None:
        ttl = self.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        if self.path == "/latest/api/token" and ttl:
            self._reply(200, self.server.token)
        else:
            self._reply(400, "")

    def do_GET(self) -> None:
        if self.headers["X-aws-ec2-metadata-token"] != self.server.token:
            self._reply(401, "")
        elif self.path == "/latest/meta-data/public-ipv4":
            self._reply(200, self.server.public_ipv4)
        else:
            self._reply(404, "")

    def _reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the bootstrap's own log is what a test reads."""


class _ImdsServer(ThreadingHTTPServer):
    def __init__(self, public_ipv4: str) -> None:
        super().__init__((LOOPBACK, 0), _ImdsHandler)
        self.token = secrets.token_urlsafe(32)
        self.public_ipv4 = public_ipv4


@dataclass(frozen=True)
class Imds:
    endpoint: str
    """For `AWS_EC2_METADATA_SERVICE_ENDPOINT`."""
    token: str
    """The session token it hands out: a credential, so it must not show in any log."""


@contextmanager
def imds_double(public_ipv4: str) -> Iterator[Imds]:
    """An IMDSv2 stand-in on loopback."""
    server = _ImdsServer(public_ipv4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Imds(f"http://{LOOPBACK}:{server.server_address[1]}", server.token)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def lab_host(
    workdir: Path,
    ports: Ports = PORTS,
    acme_server: str = LAB_ACME_SERVER,
    limits: Limits = Limits(),
) -> HostSettings:
    host = lab_host_settings(workdir, ports, acme_server, limits)
    return dataclasses.replace(host, region=LAB_REGION, waits=LAB_WAITS)


@dataclass(frozen=True)
class BootstrapLab:
    workdir: Path
    host: HostSettings
    user_data: str
    """As EC2 receives it: gzip-compressed, base64-encoded."""
    api_key: str
    read_only_api_key: str
    ssm: Ssm
    namespace: MountNamespace
    environment: Mapping[str, str]
    """Added to the bootstrap's environment (e.g. the trust anchor for the ACME server)."""
    store: ConfigStore
    """Where the host's configuration is published (the moto server's S3)."""

    @property
    def device(self) -> str:
        return self.host.data_volume_device

    @property
    def secrets_file(self) -> str:
        return qdrant_env_path(self.host)

    def run(
        self, steps: Sequence[str] = LAB_STEPS, trace: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """One run of the bootstrap, as its unit starts it, inside the namespace; `trace` runs it
        under `bash -x`."""
        return run_bootstrap(
            self.host,
            steps,
            {**self.aws_environment, **self.environment},
            trace=trace,
            wrap=lambda argv: self.namespace.command(*argv),
        )

    def converge(self) -> subprocess.CompletedProcess[str]:
        """One run of the converge unit, as its timer starts it, inside the namespace."""
        return run_loader(
            self.host,
            {**self.aws_environment, **self.environment},
            wrap=lambda argv: self.namespace.command(*argv),
        )

    @property
    def aws_environment(self) -> dict[str, str]:
        return self.ssm.environment

    def view(self, path: str) -> Path:
        """`path` as the bootstrap sees it, data volume mounted."""
        return self.namespace.path(path)

    def grow_volume(self, size: int) -> None:
        """What modifying the EBS volume does: the same device, bigger, filesystem untouched."""
        with (self.workdir / VOLUME_IMAGE).open("r+b") as image:
            image.truncate(size)
        run(["losetup", "--set-capacity", self.device])


def _prepare_distro_files(host: HostSettings) -> None:
    """What Ubuntu has before the bootstrap runs: an fstab, certbot's /etc/letsencrypt and
    fail2ban's configuration (the converge program tests a candidate jail against it)."""
    if Path("/etc/fail2ban").is_dir():
        shutil.copytree("/etc/fail2ban", host.paths.fail2ban_dir, symlinks=True, dirs_exist_ok=True)
    fstab = Path(host.paths.fstab)
    fstab.parent.mkdir(parents=True, exist_ok=True)
    fstab.write_text("# <file system> <mount point> <type> <options> <dump> <pass>\n")
    letsencrypt = Path(host.paths.letsencrypt_link)
    letsencrypt.mkdir(parents=True, exist_ok=True)
    (letsencrypt / "cli.ini").write_text(DISTRO_CERTBOT_INI)


@contextmanager
def bootstrap_lab(
    workdir: Path,
    ssm: Ssm,
    host: HostSettings | None = None,
    nginx_args: tuple[str, ...] = (),
    environment: Mapping[str, str] | None = None,
) -> Iterator[BootstrapLab]:
    """The loader written as cloud-init would, the configuration published, written by a first
    converge run, keys in SSM, a blank volume; no bootstrap step run yet."""
    require_root_lab()
    with ExitStack() as stack:
        device = stack.enter_context(loop_device(workdir / VOLUME_IMAGE))
        host = dataclasses.replace(
            host or lab_host(workdir), data_volume_device=device, nginx_args=nginx_args
        )
        store = ConfigStore(ssm, lab_source(host))
        user_data = ec2_user_data(host, LAB_VOLUME_ID, store.source)
        _prepare_distro_files(host)
        write_files(user_data)
        store.publish(host, LAB_VOLUME_ID)
        first = run_loader(host, {**ssm.environment, **(environment or {})})
        if first.returncode != 0:
            raise CommandFailed(f"the first converge run failed:\n{first.stderr}")
        api_key, read_only_api_key = secrets.token_hex(24), secrets.token_hex(24)
        ssm.put(host.api_key_parameter, api_key)
        ssm.put(host.read_only_api_key_parameter, read_only_api_key)
        namespace = MountNamespace(workdir / "namespace.log")
        stack.callback(namespace.stop)
        yield BootstrapLab(
            workdir=workdir,
            host=host,
            user_data=user_data,
            api_key=api_key,
            read_only_api_key=read_only_api_key,
            ssm=ssm,
            namespace=namespace,
            environment=dict(environment or {}),
            store=store,
        )


@dataclass(frozen=True)
class EdgeBootstrap:
    lab: BootstrapLab
    client_ca: Path
    """The root pebble issues under: what a client of the lab's TLS site trusts."""
    imds: Imds
    pebble: Pebble
    nginx: Service

    def nginx_workers(self) -> set[int]:
        """The nginx master's workers: a reload replaces every one of them."""
        pid = self.nginx.pid
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _as_is(host: HostSettings) -> HostSettings:
    return host


@contextmanager
def edge_bootstrap_lab(
    workdir: Path,
    ssm: Ssm,
    ports: Ports | None = None,
    configure: Callable[[HostSettings], HostSettings] = _as_is,
    names: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
) -> Iterator[EdgeBootstrap]:
    """`bootstrap_lab` with pebble and a running nginx, for `EDGE_STEPS`: on free ports unless
    `ports` are given, with `limits` and the lab's host settings changed by `configure`, and
    further `names` (name -> address) in the namespace's /etc/hosts.

    nginx runs inside the bootstrap's mount namespace: the certificate it loads is on the data
    volume, which is only mounted there. Run as root, its workers drop to `nobody`, so `workdir`
    (and the way to it) must be world-traversable.
    """
    require_root_lab()
    with ExitStack() as stack:
        ports = ports or Ports(
            http=free_port(),
            https=free_port(),
            grpc_tls=free_port(),
            qdrant_rest=free_port(),
            qdrant_grpc=free_port(),
        )
        pebble = stack.enter_context(running_pebble(workdir / "pebble", ports.http))
        imds = stack.enter_context(imds_double(LOOPBACK))
        host = configure(lab_host(workdir, ports, pebble.directory_url, limits))
        nginx = Nginx(host, workdir / "nginx")
        lab = stack.enter_context(
            bootstrap_lab(
                workdir,
                ssm,
                host,
                nginx_args=tuple(nginx.command()[1:]),
                environment={
                    "REQUESTS_CA_BUNDLE": str(pebble.listener_ca),
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint,
                },
            )
        )
        hosts = workdir / "hosts"
        entries = {"localhost": LOOPBACK, host.domain: LOOPBACK, **(names or {})}
        hosts.write_text("".join(f"{address} {name}\n" for name, address in entries.items()))
        run(lab.namespace.command("mount", "--bind", str(hosts), "/etc/hosts"))
        nginx.install_distro_default_site()
        server = stack.enter_context(
            Service("nginx", lab.namespace.command(*nginx.command()), workdir / "nginx.log")
        )
        server.wait_for_port(ports.http)
        client_ca = workdir / "client-ca.pem"
        client_ca.write_bytes(pebble.issuing_root())
        yield EdgeBootstrap(lab, client_ca, imds, pebble, server)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="secure-qdrant-bootstrap-") as scratch:
        workdir = Path(scratch)
        with moto_ssm(workdir / "moto") as ssm, bootstrap_lab(workdir, ssm) as lab:
            result = lab.run()
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            print(Path(lab.host.paths.fstab).read_text(), end="")
            print(run(lab.namespace.command("findmnt", "--mountpoint", lab.host.paths.data_mount)))
            return result.returncode


if __name__ == "__main__":
    sys.exit(main())
