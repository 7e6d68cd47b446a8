"""What earlier releases of this program registered under Pulumi mocks, recorded by
`record.py`, so that moving a stack from one to the current release can be previewed
(tests/test_migration.py) as the engine would plan it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.program import Deployment, Registered

RELEASES = Path(__file__).resolve().parent


def load(release: str) -> Deployment:
    """The resources (type, name, inputs, id) the release registered for `MINIMAL_CONFIG`."""
    recorded = json.loads((RELEASES / f"{release}.json").read_text())
    return Deployment(
        [Registered(r["type"], r["name"], r["inputs"], r["id"]) for r in recorded["resources"]],
        {},
    )
