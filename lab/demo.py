"""The loopback lab `python -m lab` runs: the real bootstrap from the real user data, a Qdrant
double started as the unit starts the container, every `verify` check against the edge, and, with
`--serve`, the guide to it until a stop signal. Its demo collection and tokens are the ones the
booted host and the README's examples use too.
"""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

from lab.bootstrap import EDGE_STEPS, EdgeBootstrap, edge_bootstrap_lab, moto_ssm
from lab.credentials import lab_credentials, write_owner_only
from lab.edge import audit_environment, lab_target
from lab.qdrant_double import DoubleConfig, QdrantDouble, unit_environment
from lab.serve_guide import Examples, render_guide
from model.settings import AccessRule, TokenSpec
from model.user_data import CLOUD_INIT_DIR, QDRANT_UNIT
from verify.checks import endpoint_checks
from verify.report import failed, table
from verify.target import Target

DEMO_COLLECTION = "products"
# Small enough to type by hand in a query.
DEMO_VECTORS = {"size": 4, "distance": "Cosine"}
DEMO_TOKENS = (
    TokenSpec("search-api", (AccessRule(DEMO_COLLECTION, "r"),)),
    TokenSpec("ingest-worker", (AccessRule(DEMO_COLLECTION, "rw"),)),
    TokenSpec("analytics", "r"),
)
# The token the printed examples use: it reads DEMO_COLLECTION, like the README's search-api.
EXAMPLE_TOKEN = "search-api"
# A closed terminal (SIGHUP) or a service manager (SIGTERM) stops the lab like Ctrl-C does.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def start_qdrant(edge: EdgeBootstrap, stack: ExitStack) -> QdrantDouble:
    """The double, configured the way the Qdrant unit configures the container."""
    ports = edge.lab.host.ports
    # The unit's own --env settings, and the keys from the env file the bootstrap wrote.
    unit = (CLOUD_INIT_DIR / QDRANT_UNIT).read_text()
    environment = {
        **unit_environment(unit),
        **read_env_file(Path(edge.lab.secrets_file)),
        # On the lab's data volume, as on the VM's.
        **audit_environment(Path(edge.lab.host.paths.qdrant_storage) / "audit"),
    }
    config = DoubleConfig.from_env(
        environment,
        rest_port=ports.qdrant_rest,
        grpc_port=ports.qdrant_grpc,
    )
    return stack.enter_context(QdrantDouble(config))


def serve(edge: EdgeBootstrap, target: Target, workdir: Path) -> None:
    credentials = lab_credentials(edge.lab.api_key, edge.lab.read_only_api_key, target.tokens)
    credentials_dir = workdir / "credentials"
    write_owner_only(credentials_dir, credentials.all)
    examples = Examples(credentials.master, credentials.tokens[EXAMPLE_TOKEN], DEMO_COLLECTION)
    guide = render_guide(edge.lab.host, edge.client_ca, credentials_dir, credentials.all, examples)
    print(f"\n{guide}", flush=True)
    # Wait for the signal instead of dying of it, and keep it blocked: a second Ctrl-C must not
    # cut short the stopping of every lab process on the way out.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    signal.sigwait(STOP_SIGNALS)


def run_lab(workdir: Path, serve_after: bool) -> int:
    with ExitStack() as stack:
        ssm = stack.enter_context(moto_ssm(workdir / "moto"))
        edge = stack.enter_context(edge_bootstrap_lab(workdir, ssm))
        bootstrap = edge.lab.run(EDGE_STEPS)
        print(bootstrap.stderr, end="")
        if bootstrap.returncode != 0:
            return 1
        qdrant = start_qdrant(edge, stack)
        qdrant.store.create(DEMO_COLLECTION, DEMO_VECTORS)
        target: Target = lab_target(
            edge.lab.host, edge.lab.api_key, edge.lab.read_only_api_key, edge.client_ca, DEMO_TOKENS
        )
        results = endpoint_checks(target, rate_limit=True)
        print(f"\n{table(results, target.secrets)}", flush=True)
        if serve_after:
            serve(edge, target, workdir)
        return 1 if failed(results) else 0
