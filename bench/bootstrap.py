"""How long the host takes from an empty machine to ready, step by step (package installs excluded).

`venv/bin/python -m bench.bootstrap` (root): the lab's bootstrap (`lab.bootstrap`) on a blank loop
device, each step run as its own bootstrap invocation so its wall time is its own, in the order the
VM runs them. The steps the lab cannot run (apt, Docker, ufw, systemd) are listed as not measured.
A second pass over a host that is already up measures the idempotent re-run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lab.bootstrap import EDGE_STEPS, BootstrapLab, edge_bootstrap_lab, moto_ssm
from lab.processes import LabUnavailable
from verify.arguments import OneLineParser

ALL_STEPS = (
    "packages", "data_volume", "secrets", "qdrant", "nginx_http", "dns", "certificate", "renewal",
    "nginx_tls", "firewall", "fail2ban", "metrics", "qdrant_health", "ready",
)  # fmt: skip


def time_steps(lab: BootstrapLab, steps: Sequence[str]) -> dict[str, float]:
    durations = {}
    for step in steps:
        started = time.perf_counter()
        result = lab.run((step,))
        durations[step] = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"step {step} failed:\n{result.stderr}")
    return durations


def table(first: dict[str, float], again: dict[str, float]) -> str:
    rows = ["| step | empty host, s | re-run, s | re-run ÷ empty |", "|---|---|---|---|"]
    for step in ALL_STEPS:
        if step in first:
            rows.append(row(step, first[step], again[step]))
        else:
            rows.append(f"| {step} | not measured (needs the VM) | | |")
    rows.append(row("**total measured**", sum(first.values()), sum(again.values())))
    return "\n".join(rows)


def row(name: str, first: float, again: float) -> str:
    return f"| {name} | {first:.2f} | {again:.2f} | {again / first:.2f} |"


def main(argv: Sequence[str] | None = None) -> int:
    # No options: anything given is a mistake worth saying, not ignoring.
    OneLineParser(prog="python -m bench.bootstrap", description=__doc__).parse_args(
        sys.argv[1:] if argv is None else argv
    )
    workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-bench-bootstrap-"))
    # Run as root, nginx's workers are `nobody` and must be able to reach the webroot.
    workdir.chmod(0o755)
    try:
        with moto_ssm(workdir / "moto") as ssm, edge_bootstrap_lab(workdir, ssm) as edge:
            first = time_steps(edge.lab, EDGE_STEPS)
            again = time_steps(edge.lab, EDGE_STEPS)
    except LabUnavailable as missing:
        print(f"bench.bootstrap: lab unavailable: {missing}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("Command: `venv/bin/python -m bench.bootstrap`\n")
    print(table(first, again))
    return 0


if __name__ == "__main__":
    sys.exit(main())
