"""Records what a checkout of this program registers under Pulumi mocks for `MINIMAL_CONFIG`.

Run it against the release being recorded, importing that release's program and mocks:
`PYTHONPATH=<release checkout> venv/bin/python <this file> <release> > tests/releases/<release>.json`
from the release's checkout. It imports nothing of the current tree, so an old release, whose tests
lack this file, can be recorded with it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.program import MINIMAL_CONFIG, deploy

# Pulumi's marker of a secret value in the engine's wire format.
_SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def _redacted(value: Any) -> Any:
    """Secret values (the mocks' stand-ins for keys) are left out of the record: no preview rule
    reads them, and a committed file should carry nothing shaped like a key."""
    if isinstance(value, dict):
        if _SECRET_SIGNATURE in value:
            return {**value, "value": "[redacted]"}
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def main(release: str) -> None:
    deployment = deploy(MINIMAL_CONFIG)
    resources = [
        {"type": r.typ, "name": r.name, "inputs": _redacted(r.inputs), "id": r.resource_id}
        for r in sorted(deployment.resources, key=lambda r: (r.typ, r.name))
    ]
    json.dump({"release": release, "resources": resources}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
