"""Where the bootstrap's log lines go: under its units, stderr is the journal already, so each line
must be written there once, not once more through `logger` (the booted host's journal showed every
line of the bootstrap and of the keys timer's runs twice)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from model.user_data import CLOUD_INIT_DIR

LOGGER = """#!/bin/sh
printf '%s\\n' "$*" >>"{log}"
"""


def run_without_settings(tmp_path: Path, journal_stream: bool) -> list[str]:
    """The bootstrap with no argument (it logs its usage error and exits 1), stderr to a file that
    JOURNAL_STREAM names as systemd names the journal's stream; returns what reached `logger`."""
    shims, logged = tmp_path / "bin", tmp_path / "logger.log"
    shims.mkdir()
    (shims / "logger").write_text(LOGGER.format(log=logged))
    (shims / "logger").chmod(0o755)
    environment = {"PATH": f"{shims}:{os.defpath}"}
    with (tmp_path / "stderr").open("w") as stderr:
        if journal_stream:
            info = os.fstat(stderr.fileno())
            environment["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
        done = subprocess.run(
            ["bash", str(CLOUD_INIT_DIR / "bootstrap.sh")],
            env=environment,
            stderr=stderr,
            check=False,
        )
    assert done.returncode == 1
    assert "usage" in (tmp_path / "stderr").read_text()
    return logged.read_text().splitlines() if logged.exists() else []


def test_under_a_unit_each_line_goes_to_the_journal_once(tmp_path: Path) -> None:
    """And reads there as it did through `logger`: the unit's tag names it, no prefix repeats it."""
    assert run_without_settings(tmp_path, journal_stream=True) == []
    assert (tmp_path / "stderr").read_text().startswith("error: usage: ")


def test_run_by_hand_each_line_also_goes_to_the_journal_through_logger(tmp_path: Path) -> None:
    """A run from a shell or from cloud-init's runcmd still leaves its lines in the journal."""
    lines = run_without_settings(tmp_path, journal_stream=False)
    assert any("usage" in line for line in lines), lines
