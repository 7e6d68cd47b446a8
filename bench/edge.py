"""Benchmark the TLS edge: `venv/bin/python -m bench.edge` (about 3.5 minutes; `--help`).

Brings up the loopback lab (pebble, certbot, nginx with this project's site, the Qdrant double)
with the rate limits lifted, plus a second nginx with the hardening guide's site, then measures
every scenario against the double directly, through the guide's config and through ours, and
prints a Markdown report. Every process it starts is stopped when it ends, also on Ctrl-C or
SIGTERM. Run it as root or not; it needs wrk, h2load, openssl, taskset and the lab's tools.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench.cores import CoreLayout, server_side, split_cores
from bench.cpu import CoreMeter, CpuMeter
from bench.machine import machine_facts
from bench.report import render_markdown, to_json
from bench.results import Measurement, Results
from bench.scenarios import SCENARIOS, Context, Scenario, Shape
from bench.targets import Target, running_bench
from lab.processes import require_tools
from verify.arguments import (
    OneLineParser,
    directory,
    new_file,
    non_negative_number,
    positive_integer,
    positive_number,
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m bench.edge", description=__doc__)
    parser.add_argument(
        "--seconds", type=positive_number, default=Shape.seconds, help="per measured run"
    )
    parser.add_argument("--warmup", type=non_negative_number, default=Shape.warmup_seconds)
    parser.add_argument("--concurrency", type=positive_integer, default=Shape.concurrency)
    parser.add_argument(
        "--workdir", type=directory, help="keep the lab's files here (default: temp)"
    )
    parser.add_argument("--json", type=new_file, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    shape = Shape(seconds=args.seconds, warmup_seconds=args.warmup, concurrency=args.concurrency)

    require_tools("wrk", "h2load", "openssl", "taskset")
    # SIGTERM would otherwise end Python without unwinding: the lab's processes would outlive it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    cores = split_cores()
    facts = machine_facts(cores)
    with tempfile.TemporaryDirectory(prefix="secure-qdrant-bench-") as scratch:
        results = run(shape, cores, args.workdir, Path(scratch))
    print(f"Command: `{shlex.join(['venv/bin/python', '-m', 'bench.edge', *arguments])}`\n")
    print(render_markdown(facts, shape, SCENARIOS, results))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(facts, results), indent=2))
    return 1 if results.failed else 0


def run(shape: Shape, cores: CoreLayout, workdir: Path | None, scratch: Path) -> Results:
    """Every scenario against every target, in that order, so that slow drift (page cache, CPU
    frequency) spreads over all targets alike."""
    measurements = []
    with server_side(cores), running_bench(workdir) as bench:
        context = Context(bench, cores, shape, scratch)
        for scenario in SCENARIOS:
            for target in bench.targets:
                print(f"measuring {scenario.key} / {target.name}", file=sys.stderr, flush=True)
                measurements.append(measure(context, scenario, target))
    return Results(measurements)


def measure(context: Context, scenario: Scenario, target: Target) -> Measurement:
    if context.shape.warmup_seconds > 0:
        scenario.run(context, target, context.shape.warmup_seconds)
    # The double runs inside this process: its CPU time is this process's.
    proxy, backend = CpuMeter(target.proxy_pids), CpuMeter(lambda: (os.getpid(),))
    server, client = CoreMeter(context.cores.server), CoreMeter(context.cores.client)
    meters = (proxy, backend, server, client)
    for meter in meters:
        meter.start()
    load = scenario.run(context, target, context.shape.seconds)
    proxy_seconds, backend_seconds, server_busy, client_busy = (m.stop() for m in meters)
    return Measurement(
        scenario=scenario.key,
        target=target.name,
        load=load,
        proxy_cpu_seconds=proxy_seconds if target.tls else None,
        backend_cpu_seconds=backend_seconds,
        server_busy=server_busy,
        client_busy=client_busy,
    )


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
