"""Moving a stack from the last release before the host converged in place (whose user data
carried every host file) to this one, previewed as the engine would plan it from what that release
registered (tests/releases/).

docs/upgrading.md promises at most one replacement, keeping data, address and certificate (which
lives on the data volume): a release that renamed a stateful resource, or forced its replacement,
would delete the database or move its address instead.
"""

from __future__ import annotations

from tests.preview import EIP, INSTANCE, VOLUME, Preview
from tests.program import MINIMAL_CONFIG, deploy
from tests.releases import load

PREVIOUS = load("24cd9ac")
CURRENT = deploy(MINIMAL_CONFIG)


def _keys(types: set[str], deployment_resources) -> set[tuple[str, str]]:
    return {(r.typ, r.name) for r in deployment_resources if r.typ in types}


def test_moving_from_the_previous_release_replaces_the_host_once():
    """The previous release's user data carried the host's files; this one's is the loader, so the
    instance is replaced (once: its first boot fetches the document)."""
    assert Preview(PREVIOUS, CURRENT).replaced_stateful() == {"host"}


def test_the_data_volume_and_the_address_are_the_previous_releases_own():
    """Same type and name: the engine keeps them, with the data, the certificate on the volume and
    the address clients resolve. Another name would delete the old ones (the volume is retained on
    delete, but the stack would no longer hold it)."""
    stateful = {VOLUME, EIP, INSTANCE}
    assert _keys(stateful, PREVIOUS.resources) == _keys(stateful, CURRENT.resources)


def test_no_resource_of_the_previous_release_is_deleted():
    """Every resource the previous release made is still declared: nothing it set up (keys,
    alarms, backups, the role) disappears in the move."""
    previous = {(r.typ, r.name) for r in PREVIOUS.resources}
    current = {(r.typ, r.name) for r in CURRENT.resources}
    assert sorted(previous - current) == []
