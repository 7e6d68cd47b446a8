"""The command line: ``python -m lab.qdrant_double``; keys come from the environment."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from lab.qdrant_double.config import QDRANT_SNAPSHOTS_PATH, QDRANT_STORAGE_PATH, DoubleConfig
from lab.qdrant_double.server import QdrantDouble


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.qdrant_double",
        description="Qdrant test double (not Qdrant). Keys are read from "
        "QDRANT__SERVICE__API_KEY, QDRANT__SERVICE__READ_ONLY_API_KEY, "
        "QDRANT__SERVICE__JWT_RBAC and QDRANT__SERVICE__ENABLE_STATIC_CONTENT; the data is kept "
        f"in QDRANT__STORAGE__STORAGE_PATH, like Qdrant {QDRANT_STORAGE_PATH} by default, and "
        f"snapshots in QDRANT__STORAGE__SNAPSHOTS_PATH ({QDRANT_SNAPSHOTS_PATH}).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address for REST and gRPC")
    parser.add_argument("--rest-port", type=int, default=DoubleConfig.rest_port)
    parser.add_argument("--grpc-port", type=int, default=DoubleConfig.grpc_port)
    parser.add_argument(
        "--version", default=DoubleConfig.version, help="version the banner reports"
    )
    parser.add_argument("--log-requests", action="store_true")
    parser.add_argument(
        "--loading-while",
        metavar="PATH",
        help="serve nothing while PATH exists: Qdrant loading a large storage before it listens",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; runs until SIGTERM or SIGINT."""
    args = argument_parser().parse_args(argv)
    try:
        config = DoubleConfig.from_env(
            {
                "QDRANT__STORAGE__STORAGE_PATH": QDRANT_STORAGE_PATH,
                "QDRANT__STORAGE__SNAPSHOTS_PATH": QDRANT_SNAPSHOTS_PATH,
                **os.environ,
            },
            rest_host=args.host,
            rest_port=args.rest_port,
            grpc_host=args.host,
            grpc_port=args.grpc_port,
            version=args.version,
            log_requests=args.log_requests,
        )
    except ValueError as error:
        print(f"qdrant-double: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while args.loading_while and os.path.exists(args.loading_while):
        if stopping.wait(0.5):
            return 0
    with QdrantDouble(config) as double:
        print(f"qdrant-double ready rest={double.rest_url} grpc={double.grpc_target}", flush=True)
        stopping.wait()
    return 0
