"""The rotation benchmark's plumbing: what it counts, and one real round (no timing asserted)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from bench.rotation import interruption, measure
from lab.bootstrap import EDGE_STEPS, edge_bootstrap_lab, moto_ssm, require_root_lab
from lab.edge import UNTHROTTLED
from lab.processes import LabUnavailable


def test_interruption_spans_the_first_to_the_last_failure() -> None:
    entries = [(1.0, "200"), (2.0, "502"), (2.5, "200"), (3.5, "RemoteDisconnected"), (4.0, "200")]

    assert interruption(entries) == 1.5
    assert interruption([(1.0, "200")]) == 0.0


def test_a_round_under_load_refuses_no_credential_only_fails_while_qdrant_restarts() -> None:
    """Clients holding a token signed with the replaced key get answers throughout the switch:
    what fails is the restart (502 from the edge, or a dropped connection), never a 401 or 403."""
    try:
        require_root_lab()
    except LabUnavailable as reason:
        pytest.skip(str(reason))
    workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-test-rotation-bench-"))
    workdir.chmod(0o755)
    try:
        with (
            moto_ssm(workdir / "moto") as ssm,
            edge_bootstrap_lab(workdir, ssm, limits=UNTHROTTLED) as edge,
        ):
            assert edge.lab.run(EDGE_STEPS).returncode == 0
            [result] = measure(edge, rounds=1, clients=1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nrequests {result.requests}, failures {dict(result.failures)}, "
        f"interruption {result.interruption_s:.2f}s"
    )
    assert result.requests > 0
    assert not {"401", "403"} & set(result.failures)
