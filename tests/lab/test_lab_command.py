"""`python -m lab`, the README's "try it without AWS": one command, every check, nothing left behind."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lab.processes import clean_env

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def workdir():
    # Not pytest's tmp_path: nginx's workers run as nobody and must be able to enter it.
    path = Path(tempfile.mkdtemp(prefix="secure-qdrant-lab-command-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_lab_command_brings_the_edge_up_and_prints_every_check_passing(workdir):
    run = subprocess.run(
        [sys.executable, "-m", "lab", "--workdir", str(workdir)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode == 2 and "lab unavailable" in run.stderr:
        pytest.skip(run.stderr.strip())

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("verify: passed (15 PASS, 0 FAIL, 0 SKIP)")
    for check in ("http-redirect", "certificate", "tls-1.3", "grpc", "token:search-api", "rate-limit"):
        assert f"PASS  {check} " in run.stdout
    pids = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout
    assert pids == "", "every lab process stops with the command"
