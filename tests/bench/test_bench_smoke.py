"""The benchmark's plumbing, run for real with tiny durations: every figure is produced and every
process it started is gone afterwards. Timings and ratios are not checked: on a shared machine
they are noise, and the benchmark is a script, not a test.

The run happens in a child Python that makes itself a subreaper (prctl PR_SET_CHILD_SUBREAPER), so
anything the benchmark left running is re-parented to that child instead of vanishing into init,
and the child can list it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from bench.results import GOALS, METRICS
from bench.scenarios import SCENARIOS
from lab.processes import wait_until

REPO = Path(__file__).resolve().parents[2]
# Debian packages: wrk, and nghttp2-client for h2load.
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client"}
UNAVAILABLE_EXIT = 77
# What a measurement runs (taskset execs them, so the child's name is theirs).
LOAD_GENERATORS = {"wrk", "h2load"}

RUNNER = f"""
import ctypes, json, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
# Ctrl-C as in a terminal's foreground. A shell starts its background jobs (a script's `&`, a CI
# runner's) with SIGINT ignored, which Python then keeps: the test's Ctrl-C would do nothing.
signal.signal(signal.SIGINT, signal.default_int_handler)
from lab.processes import LabUnavailable
from bench.edge import main
try:
    code = main(sys.argv[1:])
except LabUnavailable as missing:
    print(f"lab unavailable: {{missing}}", file=sys.stderr)
    sys.exit({UNAVAILABLE_EXIT})
except KeyboardInterrupt:
    code = 130
while True:  # reap whatever already ended
    try:
        if os.waitpid(-1, os.WNOHANG) == (0, 0):
            break
    except ChildProcessError:
        break
left = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{{pid}}/stat").read()
    except OSError:
        continue
    if int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid():
        left.append(stat[: stat.rindex(")") + 1])
print("LEFT " + json.dumps(left))
sys.exit(code)
"""

# One second per run, and little concurrency: this proves the plumbing, it measures nothing.
TINY = ["--seconds", "1", "--warmup", "0", "--concurrency", "4"]


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the benchmark needs Debian packages: {' '.join(missing)}")


def start_bench(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *arguments],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(pid: int) -> set[str]:
    """The command names of `pid`'s child processes."""
    names = set()
    for child in filter(str.isdigit, os.listdir("/proc")):
        with suppress(OSError):
            stat = Path(f"/proc/{child}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                names.add(stat[stat.index("(") + 1 : stat.rindex(")")])
    return names


def finish(bench: subprocess.Popen[str], timeout: float) -> tuple[int, str, list[str]]:
    """Exit status, standard output and the processes still alive when the benchmark returned."""
    try:
        out, err = bench.communicate(timeout=timeout)
    finally:
        if bench.poll() is None:
            # SIGTERM unwinds the benchmark, lab included; SIGKILL alone would orphan the lab.
            bench.terminate()
            with suppress(subprocess.TimeoutExpired):
                bench.communicate(timeout=timeout)
        bench.kill()
    if bench.returncode == UNAVAILABLE_EXIT:
        pytest.skip(err.strip().splitlines()[-1])
    left = [line for line in out.splitlines() if line.startswith("LEFT ")]
    assert left, f"the benchmark did not finish:\n{out[-3000:]}\n{err[-3000:]}"
    return bench.returncode, out, json.loads(left[-1].removeprefix("LEFT "))


def test_a_run_produces_every_figure_and_stops_every_process(tmp_path: Path) -> None:
    """Each scenario against each target, all figures present, nothing left running."""
    figures = tmp_path / "figures.json"
    status, out, left = finish(start_bench(*TINY, "--json", str(figures)), timeout=300)
    assert left == [], f"still running after the benchmark: {left}"
    assert status == 0, out[-3000:]
    report: dict[str, Any] = json.loads(figures.read_text())
    measured = {(m["scenario"], m["target"]): m for m in report["measurements"]}
    assert set(measured) == {
        (scenario.key, target) for scenario in SCENARIOS for target in ("direct", "guide", "ours")
    }
    for (scenario, target), figures_of_run in measured.items():
        assert figures_of_run["answered"] > 0 and figures_of_run["failed"] == 0
        for name, _ in METRICS:
            # Only a proxy has proxy CPU, and s_time times no single request.
            absent = (name == "proxy CPU µs/req" and target == "direct") or (
                name in ("p50 ms", "p99 ms") and scenario == "resumed" and target != "direct"
            )
            assert (figures_of_run[name] is None) == absent, (scenario, target, name)
    assert [goal["goal"] for goal in report["goals"]] == [goal.text for goal in GOALS]
    for section in ("## Machine", "## Results", "## Goals"):
        assert section in out


def test_interrupting_a_run_stops_every_process() -> None:
    """Ctrl-C in the middle of a measurement still takes the lab and the load generators down."""
    bench = start_bench("--seconds", "30", "--warmup", "0", "--concurrency", "4")
    assert bench.stderr is not None
    # The first progress line comes once the lab is up and the first load is starting.
    for line in bench.stderr:
        if "measuring" in line:
            break
    else:
        finish(bench, timeout=60)  # skips when the lab cannot run here
        pytest.fail("the benchmark ended before measuring")
    wait_until(
        lambda: bool(LOAD_GENERATORS & children(bench.pid)) or bench.poll() is not None,
        "the first load generator",
        timeout=60,
    )
    bench.send_signal(signal.SIGINT)
    status, _, left = finish(bench, timeout=60)
    assert left == [], f"still running after Ctrl-C: {left}"
    assert status != 0
