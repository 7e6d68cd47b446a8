"""`python -m lab`: try secure-qdrant without AWS.

Brings the host's edge up on loopback exactly as the VM builds it (pebble stands in for Let's
Encrypt, a Qdrant test double for Qdrant), runs every `verify` check against it, prints the report,
and stops everything. `--serve` keeps it up for your own curl and qdrant-client experiments.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from components.settings import AccessRule, TokenSpec
from lab.edge import EdgeLab, running_edge_lab
from lab.processes import LabUnavailable
from verify.checks import endpoint_checks
from verify.report import failed, table

DEMO_COLLECTION = "products"
DEMO_TOKENS = (
    TokenSpec("search-api", (AccessRule(DEMO_COLLECTION, "r"),)),
    TokenSpec("ingest-worker", (AccessRule(DEMO_COLLECTION, "rw"),)),
    TokenSpec("analytics", "r"),
)


def describe(lab: EdgeLab) -> str:
    ports = lab.host.ports
    return "\n".join(
        [
            f"lab directory: {lab.workdir}",
            f"REST:  https://{lab.domain}:{ports.https}  (connect to 127.0.0.1 or ::1)",
            f"gRPC:  {lab.domain}:{ports.grpc_tls}",
            f"HTTP:  http://{lab.domain}:{ports.http}  (ACME challenges, redirect)",
            f"CA:    {lab.client_ca}",
            f"try:   curl --cacert {lab.client_ca} --resolve {lab.domain}:{ports.https}:127.0.0.1 "
            f"-H \"api-key: $(cat {lab.workdir / 'api-key'})\" https://{lab.domain}:{ports.https}/collections",
        ]
    )


def serve(lab: EdgeLab) -> None:
    # The key goes to an owner-only file, never to the terminal.
    key_file = lab.workdir / "api-key"
    key_file.touch(mode=0o600)
    key_file.write_text(lab.api_key)
    print(f"\n{describe(lab)}\n\nserving; Ctrl-C stops everything", flush=True)
    # Wait for the signal instead of dying of it, so every lab process is stopped on the way out.
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("--workdir", type=Path, help="keep the lab's files here (default: a temp dir)")
    parser.add_argument("--serve", action="store_true", help="keep the lab running until Ctrl-C")
    args = parser.parse_args(argv)
    try:
        with running_edge_lab(args.workdir) as lab:
            lab.qdrant.store.create(DEMO_COLLECTION)
            target = lab.verify_target(DEMO_TOKENS)
            results = endpoint_checks(target, rate_limit=True)
            print(table(results, target.secrets))
            if args.serve:
                serve(lab)
            return 1 if failed(results) else 0
    except LabUnavailable as missing:
        print(f"lab unavailable: {missing} (scripts/test installs every tool it needs)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
