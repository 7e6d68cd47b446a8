"""The unit tier (`scripts/test --unit`, tests/conftest.py): it runs only what needs Python alone,
and a test that skips there, for want of root or a tool, fails instead of passing by unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """
import pytest

def test_needs_a_tool():
    pytest.skip("nginx is not installed")

@pytest.mark.skipif(True, reason="declared condition")
def test_declared():
    pass

@pytest.mark.root
def test_needs_root():
    raise AssertionError("must not run in the unit tier")

def test_pure():
    pass
"""


def _run(tmp_path: Path, *options: str) -> tuple[set[str], str]:
    """(each test's outcome as `OUTCOME name`, the whole output)."""
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(ROOT / "pytest.ini"),
            "-rA",
            *options,
            str(sample),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    outcomes = {
        f"{line.split()[0]} {line.split('::')[1].split()[0]}"
        for line in ran.stdout.splitlines()
        if line.startswith(("PASSED", "FAILED")) and "::" in line
    }
    return outcomes, ran.stdout


def test_a_test_that_skips_in_the_unit_tier_fails_naming_its_reason(tmp_path: Path) -> None:
    """A laptop run would otherwise report green over a test that never ran: its tier marker is
    missing, and the failure says so."""
    outcomes, out = _run(tmp_path, "--unit")
    assert "FAILED test_needs_a_tool" in outcomes
    assert "skipped in the unit tier (nginx is not installed): mark what it needs" in out


def test_the_unit_tier_keeps_declared_skips_and_leaves_out_marked_tests(tmp_path: Path) -> None:
    """A `skipif` is a reviewed condition; a marked test belongs to another tier."""
    outcomes, out = _run(tmp_path, "--unit")
    assert outcomes == {"FAILED test_needs_a_tool", "PASSED test_pure"}
    assert "1 failed, 1 passed, 1 skipped, 1 deselected" in out
    assert "declared condition" in out


def test_outside_the_unit_tier_a_skip_is_a_skip(tmp_path: Path) -> None:
    """The full run (root, every tool) skips as the test says and deselects nothing."""
    outcomes, out = _run(tmp_path)
    assert outcomes == {"FAILED test_needs_root", "PASSED test_pure"}
    assert "1 failed, 1 passed, 2 skipped" in out
