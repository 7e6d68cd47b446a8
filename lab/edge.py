"""The whole edge of the host on loopback: Qdrant double, pebble, certbot and nginx, for real.

`running_edge_lab()` brings it up with the VM's own files: it renders the user data with lab
settings, writes its loader as cloud-init would, publishes the configuration to a moto server's S3,
lets the loader fetch and write it, and runs the real bootstrap's edge steps (HTTP-only
site, certificate over HTTP-01 from pebble, TLS site) against an nginx that already serves, as the
distro's does. Every process goes down again on exit. Tests, benchmarks and fault injection start
from it; `lab.bootstrap` runs the other steps (data volume, secrets, DNS), which need root.

Ports: every listener is a free high port on 127.0.0.1 (and ::1 for nginx), carried in the lab's
`HostSettings`, so the lab runs next to anything else and nothing listens beyond loopback. Paths:
`HostPaths` pointed into one scratch directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from lab.bootstrap_run import run_bootstrap, run_loader
from lab.certbot import Certbot
from lab.cloud_init import write_files
from lab.config_store import ConfigStore, lab_source
from lab.moto import moto_ssm
from lab.nginx import Nginx
from lab.pebble import CERTIFICATE_VALIDITY_SECONDS, Pebble, running_pebble
from lab.processes import LOOPBACK as LOOPBACK_ADDRESS
from lab.processes import CommandFailed, LabUnavailable, free_port
from lab.qdrant_double import DoubleConfig, QdrantDouble, unit_environment
from model.nginx_config import IN_PROGRESS_MAX
from model.settings import (
    DEFAULT_QDRANT_VERSION,
    LOOPBACK,
    QDRANT_AUDIT,
    ClientLimits,
    HostPaths,
    HostSettings,
    Limits,
    Ports,
    TokenSpec,
)
from model.tokens import mint_tokens, token_claims
from model.user_data import CLOUD_INIT_DIR, QDRANT_UNIT, ec2_user_data, staged_site_path
from verify.target import Target, Token

# The one name that reaches loopback on any machine (RFC 6761; every hosts file has it) without
# help from the lab: curl and qdrant-client dial the name the certificate carries, as they would
# the VM's. Let's Encrypt would refuse it, pebble and certbot issue it (the config check still
# refuses it for a real stack).
LAB_DOMAIN = "localhost"
# Named in the user data; no step the edge lab runs looks for the volume.
LAB_VOLUME_ID = "vol-0000000000000lab0"
# The bootstrap's steps that build the edge: no volume, keys, IMDS or DNS needed.
TLS_EDGE_STEPS = ("nginx_http", "certificate", "nginx_tls")
PUBLIC_ADDRESS = "::1"
LAB_EMAIL = "ops@lab.test"


def unthrottled(allowance: int) -> Limits:
    """Limits whose every rate, burst and count is `allowance`, per address and per credential."""
    per_address = Limits(rate_limit_rps=allowance, rest_burst=allowance, grpc_burst=allowance)
    return replace(
        per_address,
        credential_rate_limit_rps=allowance,
        credential_burst=allowance,
        clients=ClientLimits(requests_per_address=min(allowance, IN_PROGRESS_MAX)),
    )


# For clients that test what a credential may do, not the rate limit: none of their calls is a 429.
UNTHROTTLED = unthrottled(10_000)


def audit_environment(directory: Path) -> dict[str, str]:
    """Qdrant's audit settings as the unit hands them over, writing into `directory`: never
    `/qdrant` on the machine the lab runs on."""
    return replace(QDRANT_AUDIT, directory=str(directory)).environment()


def _unchanged(site: str) -> str:
    return site


@dataclass(frozen=True)
class LabFaults:
    """Deliberate misconfigurations, so tests can prove that `verify` catches each one."""

    tls_site: Callable[[str], str] = _unchanged
    """Rewrites the rendered TLS site (which also holds the port-80 server) before nginx loads it."""
    qdrant_host: str = LOOPBACK_ADDRESS
    """Where the Qdrant double listens; anything wider than loopback exposes cleartext Qdrant."""
    read_only_writes: bool = False
    certificate_validity_seconds: int = CERTIFICATE_VALIDITY_SECONDS


NO_FAULTS = LabFaults()


@dataclass(frozen=True)
class EdgeLab:
    host: HostSettings
    api_key: str
    read_only_api_key: str
    client_ca: Path
    """The root pebble issued the site's certificate under: all a client may trust."""
    workdir: Path
    nginx: Nginx
    certbot: Certbot
    pebble: Pebble
    qdrant: QdrantDouble

    @property
    def domain(self) -> str:
        return self.host.domain

    def verify_target(self, tokens: Sequence[TokenSpec] = ()) -> Target:
        return lab_target(self.host, self.api_key, self.read_only_api_key, self.client_ca, tokens)

    def renew_certificate(self) -> None:
        """`certbot renew` now; its deploy hook, not the lab, reloads nginx."""
        self.certbot.renew()


def lab_target(
    host: HostSettings,
    api_key: str,
    read_only_api_key: str,
    client_ca: Path,
    tokens: Sequence[TokenSpec] = (),
) -> Target:
    """A lab as `verify` sees a deployment. IPv6 loopback plays the public address: nginx listens
    there, the Qdrant double (on 127.0.0.1) does not."""
    minted = mint_tokens(tuple(tokens), api_key)
    ports = host.ports
    return Target(
        domain=host.domain,
        address=PUBLIC_ADDRESS,
        api_key=api_key,
        read_only_api_key=read_only_api_key,
        tokens=tuple(Token(spec.name, minted[spec.name], token_claims(spec)) for spec in tokens),
        https_port=ports.https,
        grpc_port=ports.grpc_tls,
        http_port=ports.http,
        closed_ports=ports.loopback_only,
        ca_file=str(client_ca),
    )


def lab_host_settings(
    workdir: Path, ports: Ports, acme_server: str, limits: Limits
) -> HostSettings:
    """The VM's settings with the lab's ports, and every path inside `workdir`."""
    return HostSettings(
        domain=LAB_DOMAIN,
        acme_email=LAB_EMAIL,
        acme_server=acme_server,
        qdrant_version=DEFAULT_QDRANT_VERSION,
        limits=limits,
        admin_cidrs=(),
        region="lab",
        api_key_parameter="lab/api-key",
        read_only_api_key_parameter="lab/read-only-api-key",
        previous_api_key_parameter="lab/previous-api-key",
        ports=ports,
        paths=HostPaths(
            data_mount=str(workdir / "data"),
            secrets_dir=str(workdir / "secrets"),
            acme_webroot=str(workdir / "acme"),
            nginx_conf_dir=str(workdir / "nginx" / "conf"),
            nginx_log_dir=str(workdir / "nginx" / "logs"),
            ready_marker=str(workdir / "ready"),
            bootstrap=str(workdir / "sbin" / "secure-qdrant-bootstrap"),
            metrics_publisher=str(workdir / "sbin" / "secure-qdrant-metrics"),
            fstab=str(workdir / "etc" / "fstab"),
            letsencrypt_link=str(workdir / "etc" / "letsencrypt"),
            certbot_work_dir=str(workdir / "certbot" / "work"),
            certbot_logs_dir=str(workdir / "certbot" / "logs"),
            systemd_unit_dir=str(workdir / "etc" / "systemd"),
            fail2ban_dir=str(workdir / "etc" / "fail2ban"),
        ),
        listen=LOOPBACK,
    )


def _require_traversable(workdir: Path) -> None:
    if os.geteuid() != 0:
        return
    closed = [p for p in workdir.resolve().parents if not p.stat().st_mode & stat.S_IXOTH]
    if closed:
        raise LabUnavailable(
            f"nginx's workers (user nobody) cannot enter {closed[0]}: choose a lab directory "
            "whose parents are world-searchable, e.g. under /tmp"
        )


@contextmanager
def running_edge_lab(
    workdir: Path | None = None,
    limits: Limits = Limits(),
    faults: LabFaults = NO_FAULTS,
    public_ports: Ports | None = None,
) -> Iterator[EdgeLab]:
    """The lab, up and holding a certificate. A given `workdir` is kept afterwards for inspection;
    without one a temporary directory is used and removed. nginx and pebble's validation listen on
    the `http`, `https` and `grpc_tls` of `public_ports` (free high ports by default: only a
    network namespace of the lab's own has the VM's free)."""
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-lab-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        # Run as root, nginx's workers drop to `nobody`, which must still reach the webroot.
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)
        _require_traversable(workdir)
        api_key, read_only_api_key = secrets.token_hex(24), secrets.token_hex(24)
        qdrant = stack.enter_context(
            QdrantDouble(
                DoubleConfig.from_env(
                    # Qdrant as the deployed unit configures it, with the keys of its env file.
                    {
                        **unit_environment((CLOUD_INIT_DIR / QDRANT_UNIT).read_text()),
                        "QDRANT__SERVICE__API_KEY": api_key,
                        "QDRANT__SERVICE__READ_ONLY_API_KEY": read_only_api_key,
                        **audit_environment(workdir / "qdrant-audit"),
                    },
                    rest_host=faults.qdrant_host,
                    rest_port=0,
                    grpc_port=0,
                    read_only_writes=faults.read_only_writes,
                )
            )
        )
        public = public_ports or Ports(http=free_port(), https=free_port(), grpc_tls=free_port())
        ports = replace(public, qdrant_rest=qdrant.rest_port, qdrant_grpc=qdrant.grpc_port)
        pebble = stack.enter_context(
            running_pebble(workdir / "pebble", ports.http, faults.certificate_validity_seconds)
        )
        host = lab_host_settings(workdir, ports, pebble.directory_url, limits)
        nginx = Nginx(host, workdir / "nginx")
        host = replace(host, nginx_args=tuple(nginx.command()[1:]))

        # As on the VM: the user data's loader fetches the published configuration and writes it.
        moto = stack.enter_context(moto_ssm(workdir / "moto"))
        store = ConfigStore(moto, lab_source(host))
        write_files(ec2_user_data(host, LAB_VOLUME_ID, store.source))
        store.publish(host, LAB_VOLUME_ID)
        loaded = run_loader(host, moto.environment)
        if loaded.returncode != 0:
            raise CommandFailed(f"the first converge run failed:\n{loaded.stderr}")
        tls_site = Path(staged_site_path(host, "tls"))
        tls_site.write_text(faults.tls_site(tls_site.read_text()))
        nginx.install_distro_default_site()
        stack.callback(nginx.stop)
        nginx.start()
        bootstrap = run_bootstrap(
            host, TLS_EDGE_STEPS, {"REQUESTS_CA_BUNDLE": str(pebble.listener_ca)}
        )
        if bootstrap.returncode != 0:
            raise CommandFailed(f"the bootstrap failed:\n{bootstrap.stderr}")
        # The bootstrap's own reloads return before old workers (old config) are gone.
        nginx.reload()
        certbot = Certbot(host, pebble.listener_ca)

        client_ca = workdir / "client-ca.pem"
        client_ca.write_bytes(pebble.issuing_root())
        yield EdgeLab(
            host=host,
            api_key=api_key,
            read_only_api_key=read_only_api_key,
            client_ca=client_ca,
            workdir=workdir,
            nginx=nginx,
            certbot=certbot,
            pebble=pebble,
            qdrant=qdrant,
        )
