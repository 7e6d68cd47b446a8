"""`python -m lab`, docs/lab.md's "try it without AWS": one command runs the VM's real bootstrap on
loopback, checks everything, and leaves nothing behind."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.processes import clean_env

REPO = Path(__file__).resolve().parent.parent.parent
LAB_PREFIX = "secure-qdrant-lab-"


def leftovers(workdir: str) -> str:
    """Processes and loop devices that still name this lab's own directory (other labs on the
    machine are none of this test's business)."""
    processes = subprocess.run(["pgrep", "-af", workdir], capture_output=True, text=True).stdout
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return processes + "".join(line for line in loops.splitlines(True) if workdir in line)


def test_lab_command_bootstraps_the_edge_and_prints_every_check_passing():
    run = subprocess.run(
        [sys.executable, "-m", "lab"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if run.returncode == 2 and "lab unavailable" in run.stderr:
        pytest.skip(run.stderr.strip())

    assert run.returncode == 0, run.stdout + run.stderr
    for step in (
        "data_volume",
        "secrets",
        "nginx_http",
        "dns",
        "certificate",
        "nginx_tls",
        "ready",
    ):
        assert f"secure-qdrant: step {step}\n" in run.stdout
    assert run.stdout.rstrip().endswith("verify: passed (16 PASS, 0 FAIL, 0 SKIP)")
    for check in (
        "http-redirect",
        "certificate",
        "tls-1.3",
        "grpc",
        "token:search-api",
        "rate-limit",
    ):
        assert f"PASS  {check} " in run.stdout
    [workdir] = set(re.findall(rf"\S*/{LAB_PREFIX}[A-Za-z0-9_]+", run.stdout))
    assert leftovers(workdir) == "", (
        "every lab process, mount and loop device goes with the command"
    )
