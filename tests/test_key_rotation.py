"""Key rotation under mocks: a version bump rotates the keys in SSM and keeps the host, and the
replaced master key stays stored, with the end of its grace window, for the host to keep as
Qdrant's `alt_api_key`."""

import json

import pytest
from pulumi.runtime import rpc

from components.api_keys import rotation_clock_command
from tests.program import DEPLOY_TIME, MINIMAL_CONFIG, Deployment, deploy

PARAMETER = "aws:ssm/parameter:Parameter"
INSTANCE = "aws:ec2/instance:Instance"
COMMAND = "command:local:Command"
PREVIOUS = "/secure-qdrant/test/previous-api-key"
DAY = 24 * 3600


def stored(deployment: Deployment, name: str) -> str:
    [parameter] = [p for p in deployment.of_type(PARAMETER) if p.inputs["name"] == name]
    value = parameter.inputs["value"]
    assert value[rpc._special_sig_key] == rpc._special_secret_sig, f"{name} is not a secret input"
    return str(value["value"])


def previous_key(deployment: Deployment) -> dict[str, object]:
    return dict(json.loads(stored(deployment, PREVIOUS)))


@pytest.fixture(scope="module")
def versions() -> dict[int, Deployment]:
    return {version: deploy(dict(MINIMAL_CONFIG, apiKeyVersion=version)) for version in (1, 2, 3)}


def test_bumping_the_version_leaves_the_instance_and_its_user_data_unchanged(versions):
    """cloud-init runs on first boot only, so new user data would replace the host (downtime,
    every client cut off at once); the running host picks up the new keys itself."""
    before, after = versions[1].one(INSTANCE), versions[2].one(INSTANCE)

    assert after.inputs["userDataBase64"] == before.inputs["userDataBase64"]
    assert after.inputs == before.inputs


def test_bumping_the_version_changes_the_stored_master_and_read_only_keys(versions):
    """What the host's timer notices: new values in the same parameters."""
    for name in ("/secure-qdrant/test/api-key", "/secure-qdrant/test/read-only-api-key"):
        assert stored(versions[2], name) != stored(versions[1], name), name
    assert stored(versions[2], "/secure-qdrant/test/api-key") == versions[2].outputs["apiKey"].value


def test_the_replaced_master_key_is_stored_as_the_previous_key_until_the_grace_end(versions):
    """Tokens signed with the old key and the old key itself keep working for keyGraceHours after
    the deploy that rotated them (default 24)."""
    assert previous_key(versions[2]) == {
        "apiKey": versions[1].outputs["apiKey"].value,
        "validUntil": DEPLOY_TIME + DAY,
    }
    assert versions[2].outputs["keyGraceEndsAt"].value == "2030-03-18T17:46:40Z"


def test_a_second_rotation_keeps_the_key_of_the_first_and_drops_the_original(versions):
    """Each bump by one regenerates only the slot that becomes current."""
    assert previous_key(versions[3])["apiKey"] == versions[2].outputs["apiKey"].value
    assert versions[3].outputs["apiKey"].value not in {
        versions[1].outputs["apiKey"].value,
        versions[2].outputs["apiKey"].value,
    }


def test_before_any_rotation_there_is_no_grace_window(versions):
    """A first deploy has no old key to honour: the host sets no alt key, and no clock runs."""
    assert previous_key(versions[1])["validUntil"] == 0
    assert versions[1].outputs["keyGraceEndsAt"].value == ""
    assert not [c for c in versions[1].of_type(COMMAND) if c.inputs["create"] == rotation_clock_command()]


def test_the_grace_window_starts_at_the_rotation_and_lasts_key_grace_hours():
    """The clock runs again only when the version changes: changing keyGraceHours moves the end of
    the current window, it does not restart it."""
    deployment = deploy(dict(MINIMAL_CONFIG, apiKeyVersion=2, keyGraceHours=2))
    [clock] = [c for c in deployment.of_type(COMMAND) if c.inputs["create"] == rotation_clock_command()]

    assert clock.inputs["triggers"] == [2]
    assert previous_key(deployment)["validUntil"] == DEPLOY_TIME + 2 * 3600


def test_zero_grace_hours_drops_the_old_key_as_soon_as_the_host_applies_the_new_one():
    deployment = deploy(dict(MINIMAL_CONFIG, apiKeyVersion=2, keyGraceHours=0))

    assert previous_key(deployment)["validUntil"] == DEPLOY_TIME


def test_the_new_master_key_is_stored_after_the_previous_key(versions):
    """A host reading between the two writes must find the new key only beside the one it
    replaced, or old credentials would stop before their grace window."""
    [master] = [
        p for p in versions[2].of_type(PARAMETER) if p.inputs["name"] == "/secure-qdrant/test/api-key"
    ]
    [previous] = [p for p in versions[2].of_type(PARAMETER) if p.inputs["name"] == PREVIOUS]

    assert any(urn.endswith(f"::{previous.name}") for urn in master.options.dependencies)


def test_a_stack_at_an_odd_version_keeps_its_master_key_across_this_change(versions):
    """Earlier releases named the one master key `<keys>-api-key` with the version as keeper: the
    odd slot is that resource, so upgrading does not rotate the key by surprise."""
    [slot] = [
        p
        for p in versions[1].of_type("random:index/randomPassword:RandomPassword")
        if p.name == "qdrant-test-keys-api-key"
    ]
    assert slot.inputs["keepers"] == {"version": "1"}


def test_the_host_is_told_where_the_previous_key_is(versions):
    assert f"PREVIOUS_API_KEY_PARAMETER={PREVIOUS}" in versions[1].user_data
