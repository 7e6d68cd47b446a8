"""The three things measured, all in front of one Qdrant double on loopback:

- `direct`: the double itself, plain HTTP and gRPC (the limit);
- `guide`: nginx running the hardening guide's site (the baseline);
- `ours`: nginx running this project's rendered site, exactly as `running_edge_lab` deploys it.

Both nginx instances use the certificate certbot obtained from pebble in the lab (ECDSA P-256) and
the same `Limits`, lifted so far that no request of a run is ever refused: the rendered config is
measured as rendered, with only its numbers changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.edge import EdgeLab, lab_host_settings, running_edge_lab, unthrottled
from lab.guide_nginx import certbot_tls_files, render_guide_site
from lab.nginx import Nginx
from lab.processes import LOOPBACK, free_port
from model.nginx_config import certificate_paths
from model.settings import Ports

# No client of a run may reach the limit: 1M requests/s with a burst as big, for REST and gRPC.
LIFTED_LIMITS = unthrottled(1_000_000)
BENCH_COLLECTION = "bench"


@dataclass(frozen=True)
class Target:
    name: str
    rest_url: str
    """scheme://127.0.0.1:port, no path."""
    grpc_port: int
    proxy: Nginx | None
    """The nginx in front of the double, whose workers' CPU time is the cost of the edge."""

    @property
    def tls(self) -> bool:
        return self.proxy is not None

    @property
    def rest_port(self) -> int:
        return int(self.rest_url.rsplit(":", 1)[1])

    def proxy_pids(self) -> set[int]:
        return self.proxy.workers() if self.proxy is not None else set()


@dataclass(frozen=True)
class Bench:
    lab: EdgeLab
    direct: Target
    guide: Target
    ours: Target

    @property
    def targets(self) -> tuple[Target, Target, Target]:
        return (self.direct, self.guide, self.ours)


@contextmanager
def running_bench(workdir: Path | None = None) -> Iterator[Bench]:
    """The lab with lifted limits, plus a second nginx serving the guide's site. Everything is
    stopped on exit, however the block ends."""
    with ExitStack() as stack:
        lab = stack.enter_context(running_edge_lab(workdir, LIFTED_LIMITS))
        # Something to list, so `GET /collections` answers a body like a real cluster's.
        lab.qdrant.store.create(BENCH_COLLECTION)
        guide = _guide_nginx(lab)
        stack.callback(guide.stop)
        guide.start()
        yield Bench(
            lab=lab,
            direct=Target("direct", lab.qdrant.rest_url, lab.qdrant.grpc_port, None),
            guide=_proxy_target("guide", guide),
            ours=_proxy_target("ours", lab.nginx),
        )


def _guide_nginx(lab: EdgeLab) -> Nginx:
    """An nginx of its own (own prefix, ports and logs) in front of the lab's double."""
    tls_options, dhparam = certbot_tls_files()
    ports = Ports(
        http=free_port(),
        https=free_port(),
        grpc_tls=free_port(),
        qdrant_rest=lab.host.ports.qdrant_rest,
        qdrant_grpc=lab.host.ports.qdrant_grpc,
    )
    root = lab.workdir / "guide"
    host = lab_host_settings(root, ports, lab.host.acme_server, lab.host.limits)
    nginx = Nginx(host, root / "nginx")
    nginx.install_site(
        render_guide_site(
            host,
            *certificate_paths(lab.host),
            tls_options=str(tls_options),
            dhparam=str(dhparam),
            listen_address=LOOPBACK,
        )
    )
    return nginx


def _proxy_target(name: str, nginx: Nginx) -> Target:
    ports = nginx.host.ports
    return Target(name, f"https://{LOOPBACK}:{ports.https}", ports.grpc_tls, nginx)
