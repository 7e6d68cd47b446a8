"""Which snapshot a restored data volume is made from, looked up before any resource is registered.

Snapshots are regional: DescribeSnapshots in the stack's region does not find one of another
region. A snapshot another account shares is data this stack does not own. Both stop `pulumi up`
here, with a message, instead of half-way through a replacement of the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class RestoreSnapshot:
    """A snapshot checked to be this stack's to restore: its account's, in its region."""

    snapshot_id: str


class RestoreError(pulumi.RunError):
    """The snapshot cannot be restored by this stack; the message says why and what to do."""


KEY = "secure-qdrant:restoreFromSnapshotId"


def resolve_restore(snapshot_id: str, region: str, volume_size_gb: int) -> RestoreSnapshot:
    try:
        snapshot = aws.ebs.get_snapshot(snapshot_ids=[snapshot_id])
    except Exception as error:  # the engine reports a failed invoke as a bare Exception
        raise RestoreError(
            f"{KEY}: {snapshot_id} is not a snapshot this account can see in {region} ({error}); "
            "a snapshot of another region must first be copied here (aws ec2 copy-snapshot "
            f"--region {region} --source-region <its region> --source-snapshot-id {snapshot_id}); "
            "if this restore is done, remove the key (pulumi config rm restoreFromSnapshotId)"
        ) from None
    account = aws.get_caller_identity().account_id
    if snapshot.owner_id != account:
        raise RestoreError(
            f"{KEY}: {snapshot_id} belongs to account {snapshot.owner_id}, not to this stack's "
            f"account {account}; copy it into this account first if its data is really yours"
        )
    if snapshot.volume_size > volume_size_gb:
        raise RestoreError(
            f"secure-qdrant:dataVolumeSizeGb: {volume_size_gb} GiB is smaller than the "
            f"{snapshot.volume_size} GiB volume {snapshot_id} was taken from; set it to at least that"
        )
    return RestoreSnapshot(snapshot_id=snapshot_id)
