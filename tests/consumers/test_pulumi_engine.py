"""The Pulumi engine is the consumer of the data volume's resource options: whether a restore,
another snapshot or an unset `restoreFromSnapshotId` replaces the volume, and whether AWS ever
deletes one, is the engine's decision and the AWS provider's, from the request the program sends.

No engine runs here (the CLI and the AWS provider plugin are not installable from the registries
this project reaches), so each rule is stated as its source has it and applied to the volume's
RegisterResourceRequest as the engine receives it:

- pulumi/pulumi `pkg/resource/deploy/step_generator.go`, `continueStepsFromDiff`: a replacement
  with `new.Protect && old.Protect` is refused ("unable to replace resource ... as it is currently
  marked for protection"); in an update it bails there, before the create of a create-before-delete
  replacement and before any step of a resource that depends on the volume. Otherwise the order is
  the provider's unless the goal sets `deleteBeforeReplace`; the old resource's delete comes after
  every create and update. pulumi/pulumi-aws `provider/resources.go` maps `aws_ebs_volume` to its
  token alone (no DeleteBeforeReplace, no auto-named field), so the provider asks for no order.
- the same file's `generateSteps` and `collapseAliasToUrn`: the URN is looked up first, then each
  alias; an alias with only a name keeps the resource's type, parent, project and stack.
- pulumi/pulumi `pkg/resource/deploy/step.go`, `DeleteStep.Apply`: a resource whose state says
  `RetainOnDelete` is dropped from the state without the provider's Delete, replaced or removed.
- hashicorp/terraform-provider-aws `internal/service/ec2/ebs_volume.go`: `snapshot_id` is Optional,
  Computed and ForceNew; terraform-plugin-sdk `helper/schema/schema.go`, `diffString`: an attribute
  absent from the config that is Computed is no diff (`if removed && schema.Computed { return nil
  }`), which pulumi-terraform-bridge issue 2152 confirms for Pulumi's bridged providers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.program import MINIMAL_CONFIG, deploy

VOLUME = "aws:ebs/volume:Volume"
SNAPSHOT = "snap-0123456789abcdef0"
OTHER_SNAPSHOT = "snap-01234567"


def volume_request(**config: Any) -> Any:
    """The data volume's RegisterResourceRequest for a program run with this config."""
    return deploy(dict(MINIMAL_CONFIG, **config)).one(VOLUME).options


def replacement(goal: Any, old_protect: bool, provider_delete_first: bool = False) -> str:
    """What `continueStepsFromDiff` does with a replacement the provider's diff asked for."""
    if goal.protect and old_protect:
        return "refused"
    delete_first = (
        goal.deleteBeforeReplace if goal.deleteBeforeReplaceDefined else provider_delete_first
    )
    return "delete-before-create" if delete_first else "create-before-delete"


@pytest.fixture(scope="module")
def current() -> Any:
    """The volume as any `pulumi up` of this release recorded it in the stack's state."""
    return volume_request()


def test_a_restore_over_the_protected_volume_is_refused(current):
    """Setting the key without unprotecting: another snapshot_id is ForceNew, and the engine
    refuses the replacement before any step, so the host keeps its volume."""
    goal = volume_request(restoreFromSnapshotId=SNAPSHOT)

    assert goal.object["snapshotId"] == SNAPSHOT
    assert "snapshotId" not in goal.ignoreChanges
    assert replacement(goal, old_protect=current.protect) == "refused"


def test_another_snapshot_over_a_restored_volume_is_refused():
    restored = volume_request(restoreFromSnapshotId=SNAPSHOT)
    goal = volume_request(restoreFromSnapshotId=OTHER_SNAPSHOT)

    assert replacement(goal, old_protect=restored.protect) == "refused"


def test_a_restore_over_the_unprotected_volume_creates_first_and_deletes_nothing_in_aws(current):
    """After `pulumi state unprotect`: the restored volume is created before the current one
    leaves the state, and the current one's RetainOnDelete (in the state since any earlier up)
    keeps DeleteVolume from being called on it."""
    goal = volume_request(restoreFromSnapshotId=SNAPSHOT)

    assert replacement(goal, old_protect=False) == "create-before-delete"
    assert current.retainOnDelete is True


def test_a_restored_volume_stays_protected_after_its_replacement():
    """The new state takes protect from the goal: the next restore needs unprotecting again."""
    assert volume_request(restoreFromSnapshotId=SNAPSHOT).protect is True


def test_unsetting_the_key_sends_no_snapshot_for_the_provider_to_diff():
    """An absent Computed attribute is no diff: the restored volume keeps its snapshot_id in the
    state and is not replaced. An empty string instead would be a change, so a replacement."""
    assert "snapshotId" not in volume_request().object
