"""The checked-in examples (docs/examples/) are what the code renders today: a change to the edge
is reviewed as a diff of the nginx site the hosts will run, not only as a diff of the Python that
builds it."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.examples import REGENERATE, ROOT, render_examples

RENDERED = render_examples()


@pytest.mark.parametrize("path", sorted(RENDERED), ids=lambda path: path.name)
def test_the_checked_in_example_site_is_what_the_code_renders(path: Path) -> None:
    """A stale example would show reviewers an edge the hosts no longer run (or not yet)."""
    checked_in = path.read_text() if path.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            checked_in.splitlines(keepends=True),
            RENDERED[path].splitlines(keepends=True),
            f"{path.relative_to(ROOT)} (checked in)",
            "rendered now",
        )
    )
    assert not diff, (
        f"{path.relative_to(ROOT)} is stale; regenerate it with `{REGENERATE}`:\n{diff}"
    )
