"""Key rotation under mocks: a version bump rotates the keys in SSM and keeps the host, and the
replaced master key stays stored, with the end of its grace window, for the host to keep as
Qdrant's `alt_api_key`."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from tests.program import DEPLOY_TIME, MINIMAL_CONFIG, Deployment, Registered, deploy

PARAMETER = "aws:ssm/parameter:Parameter"
INSTANCE = "aws:ec2/instance:Instance"
COMMAND = "command:local:Command"
PREVIOUS = "/secure-qdrant/test/previous-api-key"
DAY = 24 * 3600
CLOCK = "-keys-rotated-at"


def stored(deployment: Deployment, name: str) -> str:
    [parameter] = [p for p in deployment.of_type(PARAMETER) if p.inputs["name"] == name]
    value = parameter.inputs["value"]
    assert value[rpc._special_sig_key] == rpc._special_secret_sig, f"{name} is not a secret input"
    return str(value["value"])


def previous_key(deployment: Deployment) -> dict[str, object]:
    return dict(json.loads(stored(deployment, PREVIOUS)))


def rotation_clock(deployment: Deployment) -> Registered:
    [clock] = [c for c in deployment.of_type(COMMAND) if c.name.endswith(CLOCK)]
    return clock


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
    assert not [c for c in versions[1].of_type(COMMAND) if c.name.endswith(CLOCK)]


def test_the_grace_window_starts_at_the_rotation_and_lasts_key_grace_hours():
    """The clock runs again only when the version changes: changing keyGraceHours moves the end of
    the current window, it does not restart it."""
    deployment = deploy(dict(MINIMAL_CONFIG, apiKeyVersion=2, keyGraceHours=2))
    assert rotation_clock(deployment).inputs["triggers"] == [2]
    assert previous_key(deployment)["validUntil"] == DEPLOY_TIME + 2 * 3600


def test_zero_grace_hours_drops_the_old_key_as_soon_as_the_host_applies_the_new_one():
    deployment = deploy(dict(MINIMAL_CONFIG, apiKeyVersion=2, keyGraceHours=0))

    assert previous_key(deployment)["validUntil"] == DEPLOY_TIME


def test_the_new_master_key_is_stored_after_the_previous_key(versions):
    """A host reading between the two writes must find the new key only beside the one it
    replaced, or old credentials would stop before their grace window."""
    [master] = [
        p
        for p in versions[2].of_type(PARAMETER)
        if p.inputs["name"] == "/secure-qdrant/test/api-key"
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
    assert f"PREVIOUS_API_KEY_PARAMETER={PREVIOUS}" in versions[1].host_document


# --- the clock, whatever the deploy runs from ---------------------------------------------------
#
# How the grace window's clock (a pulumi-command `local.Command`) is run, as its consumers decide:
# - Pulumi's engine, for an input named in `ignoreChanges`, puts the old value from the state into
#   the goal (pulumi/pulumi#2657: "the engine simply replaces the values of input properties in the
#   goal state with old inputs"; docs, "Resource option: ignoreChanges": "Uses the serialized value
#   from the stack state for any later previews or updates"), and drops it where the state has none
#   (`processIgnoreChanges` in pkg/resource/deploy/step_generator.go calls `PropertyPath.Reset`,
#   sdk/go/common/resource/properties_path.go: "If the path doesn't exist in old then we want to
#   delete it from new").
# - A change of an input in `replaceOnChanges` replaces the resource: the Python SDK registers every
#   Command with `replace_on_changes=["triggers[*]"]` (pulumi_command/local/command.py), from the
#   provider's `Triggers ... provider:"replaceOnChanges"` (provider/pkg/provider/common/inputs.go).
#   The replacement's Create runs `create` from the goal.
# - Any other change is an Update, which runs `update` when set, else `create`
#   (provider/pkg/provider/local/commandController.go, `Update`; the v1.2.1 docs of `create`: "If an
#   `update` command isn't provided, then `create` will also be run when the resource's inputs are
#   modified"), with the previous stdout as PULUMI_COMMAND_STDOUT unless addPreviousOutputInEnv is
#   false (local/commandOutputs.go, `run`).
# - The provider runs the command with `/bin/sh -c` (Linux, macOS) and keeps its stdout less one
#   trailing newline.

REPLACE_ON_CHANGES = "triggers[*]"
# What the release before this fix left in a stack's state after a rotation to version 2, deployed
# from Alice's checkout.
ALICE_PYTHON = "/home/alice/src/secure-qdrant/venv/bin/python"
RECORDED = {
    "inputs": {
        "create": f"{ALICE_PYTHON} -c 'import time; print(int(time.time()))'",
        "triggers": [2],
    },
    "stdout": str(DEPLOY_TIME),
}


def deploy_from(checkout: Path, monkeypatch: pytest.MonkeyPatch, version: int = 2) -> Deployment:
    """The program run as `pulumi up` from another checkout runs it: another directory, venv,
    interpreter and environment."""
    venv = checkout / "venv"
    with monkeypatch.context() as m:
        m.chdir(checkout)
        m.setattr(sys, "executable", str(venv / "bin" / "python"))
        m.setenv("VIRTUAL_ENV", str(venv))
        m.setenv("HOME", str(checkout))
        m.setenv("PATH", f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin")
        return deploy(dict(MINIMAL_CONFIG, apiKeyVersion=version))


def engine_goal(new: dict[str, Any], old: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    goal = dict(new)
    for key in ignored:
        if key in old:
            goal[key] = old[key]
        else:
            goal.pop(key, None)
    return goal


def command_the_provider_runs(clock: Registered, state: dict[str, Any]) -> str | None:
    """The command a deploy of `clock` runs over `state` (None: no diff, nothing runs)."""
    old = state["inputs"]
    goal = engine_goal(clock.inputs, old, list(clock.options.ignoreChanges))
    if goal == old:
        return None
    assert list(clock.options.replaceOnChanges) == [REPLACE_ON_CHANGES]
    if goal.get("triggers") != old.get("triggers"):
        return str(goal["create"])
    return str(goal.get("update") or goal["create"])


def run_as_the_provider(
    command: str, state: dict[str, Any], cwd: Path
) -> subprocess.CompletedProcess[str]:
    previous = {"PULUMI_COMMAND_STDOUT": state["stdout"]} if state["stdout"] else {}
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        env={"PATH": "/usr/bin:/bin", **previous},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    done.stdout = done.stdout.removesuffix("\n")
    return done


def test_the_clock_has_the_same_inputs_from_any_checkout_machine_or_environment(
    tmp_path, monkeypatch
):
    """A deploy from another checkout (another machine, a CI runner, a worktree) must not change
    the clock's inputs: a changed input is an Update, which would stamp a new rotation time and
    move `keyGraceEndsAt` (a host inside the window would drop the old key at once; one replaced
    after it would revive the rotated-away key)."""
    here, there = tmp_path / "alice", tmp_path / "ci-runner"
    here.mkdir()
    there.mkdir()

    from_here = rotation_clock(deploy_from(here, monkeypatch))
    from_there = rotation_clock(deploy_from(there, monkeypatch))

    assert from_here.inputs == from_there.inputs
    assert not any(str(here) in repr(v) or str(there) in repr(v) for v in from_here.inputs.values())


def test_only_the_version_replaces_the_clock(tmp_path, monkeypatch):
    """Between two versions only `triggers` differs, and a triggers change is a replacement: the
    one step that runs `create` and so starts a new window."""
    rotated, again = (rotation_clock(deploy_from(tmp_path, monkeypatch, v)) for v in (2, 3))

    assert {k for k in rotated.inputs if rotated.inputs[k] != again.inputs[k]} == {"triggers"}
    assert list(again.options.replaceOnChanges) == [REPLACE_ON_CHANGES]


def test_no_clock_input_is_ignored(tmp_path, monkeypatch):
    """An ignored input keeps its old value in the state even across a replacement: an ignored
    `create` would run an old checkout's command on the next rotation, and an ignored `update`,
    absent from an older release's state, would be dropped and `create` re-run in its place."""
    clock = rotation_clock(deploy_from(tmp_path, monkeypatch))

    assert list(clock.options.ignoreChanges) == []


def test_a_deploy_over_the_previous_releases_state_keeps_the_recorded_time(tmp_path, monkeypatch):
    """The first deploy of this release, from another checkout than the one that rotated: its
    changed command is an Update, which must print the rotation time already recorded."""
    clock = rotation_clock(deploy_from(tmp_path, monkeypatch))
    command = command_the_provider_runs(clock, RECORDED)
    assert command is not None

    done = run_as_the_provider(command, RECORDED, tmp_path)

    assert (done.returncode, done.stdout) == (0, str(DEPLOY_TIME)), done.stderr


def test_a_rotation_over_the_previous_releases_state_stamps_the_time_without_its_checkout(
    tmp_path, monkeypatch
):
    """The next version bump replaces the clock; its create must not need the old checkout's
    interpreter, which a deploy from anywhere else does not have."""
    clock = rotation_clock(deploy_from(tmp_path, monkeypatch, version=3))
    command = command_the_provider_runs(clock, RECORDED)
    assert command is not None and ALICE_PYTHON not in command
    before = int(time.time())

    done = run_as_the_provider(command, {"stdout": ""}, tmp_path)

    assert done.returncode == 0, done.stderr
    assert before <= int(done.stdout) <= int(time.time())


def test_an_update_without_a_recorded_time_fails_instead_of_restarting_the_window(
    tmp_path, monkeypatch
):
    """A state that lost the clock's stdout (or addPreviousOutputInEnv off) must stop the deploy,
    not print a new time."""
    clock = rotation_clock(deploy_from(tmp_path, monkeypatch))
    lost = {"inputs": RECORDED["inputs"], "stdout": ""}
    command = command_the_provider_runs(clock, lost)
    assert command is not None

    done = run_as_the_provider(command, lost, tmp_path)

    assert done.returncode != 0
    assert done.stdout == ""
