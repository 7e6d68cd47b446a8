"""`python -m lab --booted`: boot the host, run every `verify` check through its published ports,
print the figures."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.booted.host import BootedHost, booted_host
from model.settings import TokenSpec
from verify.checks import endpoint_checks
from verify.client import https_request
from verify.report import failed, table
from verify.result import CheckResult


def create_collection(booted: BootedHost, name: str, vectors: Mapping[str, Any]) -> None:
    """Through the edge with the master key, as an operator would."""
    target = booted.verify_target()
    headers = {"api-key": booted.api_key, "Content-Type": "application/json"}
    body = json.dumps({"vectors": vectors})
    reply = https_request(target, "PUT", f"/collections/{name}", headers, body)
    if reply.status != 200:
        raise RuntimeError(f"creating collection {name} through the edge: HTTP {reply.status}")


def verify_booted(
    booted: BootedHost, tokens: Sequence[TokenSpec], collection: str, vectors: Mapping[str, Any]
) -> list[CheckResult]:
    create_collection(booted, collection, vectors)
    return endpoint_checks(booted.verify_target(tokens), rate_limit=True)


def run_booted(
    workdir: Path, tokens: Sequence[TokenSpec], collection: str, vectors: Mapping[str, Any]
) -> int:
    with booted_host(workdir) as booted:
        print(booted.bootstrap_log(), end="")
        print(f"\nfirst boot to ready: {booted.boot_to_ready_seconds:.1f} s", flush=True)
        results = verify_booted(booted, tokens, collection, vectors)
        print(f"\n{table(results, booted.verify_target(tokens).secrets)}", flush=True)
        return 1 if failed(results) else 0
