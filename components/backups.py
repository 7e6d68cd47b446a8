"""Daily snapshots of the data volume, by AWS Data Lifecycle Manager, with a role of their own.

DLM finds the volume by its stack tag, so a volume restored from a snapshot (a new volume with the
same tag) is backed up from its first day. Snapshots of an encrypted volume are always encrypted,
with the volume's key (Amazon EBS User Guide, "Amazon EBS encryption"): nothing here can turn that
off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

STACK_TAG = "SecureQdrantStack"
# Marks what the schedule made, beside the volume's own tags that DLM copies onto each snapshot.
SNAPSHOT_TAG = {"SecureQdrantBackup": "daily"}
# UTC; DLM starts within the hour after it.
BACKUP_TIME = "03:00"


def stack_tags(name: str) -> dict[str, str]:
    """The tag DLM targets, carried by the data volume and copied onto its snapshots."""
    return {STACK_TAG: name}


def dlm_trust_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "dlm.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def dlm_execution_policy(region: str, target_tags: Mapping[str, str]) -> str:
    """What DLM may do as this stack's role: snapshot the volumes it targets, tag snapshots,
    expire the schedule's snapshots of this stack, and the read-only Describe calls.

    AWS's managed `AWSDataLifecycleManagerServiceRole` (EBS User Guide, "AWS managed policies for
    Amazon Data Lifecycle Manager") grants its actions on every volume and snapshot of the account,
    for every kind of DLM policy. Its read-only Describe actions are all kept (they read no data,
    and one missing could fail a backup no test here can run). Of its other actions this schedule
    needs none of these:
    - CreateSnapshots: multi-volume snapshots of policies that target instances (this one targets
      volumes);
    - CopySnapshot: copy rules (cross-region, cross-account), which this schedule has none of;
    - ModifySnapshotAttribute: sharing snapshots with other accounts;
    - the fast snapshot restore and archive tier actions: rules of their own, not set here;
    - the EventBridge rule actions: cross-account copy event policies.
    No KMS permission either, nor has the managed policy any: the data volume is encrypted under the
    account's default EBS key, AWS's managed `aws/ebs` unless the account made a customer managed
    key its default, whose key policy must then let this role use it (as for any DLM role).
    """

    def carrying(tags: Mapping[str, str]) -> dict[str, str]:
        return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}

    ours = carrying(target_tags)
    # The schedule's snapshots carry the volume's tags (copy_tags: the volume has the target tags,
    # or DLM would not have chosen it) and SNAPSHOT_TAG (tags_to_add).
    backups = carrying({**target_tags, **SNAPSHOT_TAG})
    snapshots = f"arn:aws:ec2:{region}::snapshot/*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SnapshotTheStacksVolumes",
                    "Effect": "Allow",
                    "Action": "ec2:CreateSnapshot",
                    "Resource": f"arn:aws:ec2:{region}:*:volume/*",
                    "Condition": {"StringEquals": ours},
                },
                {
                    # EC2 authorizes CreateSnapshot on the snapshot too, one with no tags yet.
                    "Sid": "TheSnapshotsItCreates",
                    "Effect": "Allow",
                    "Action": "ec2:CreateSnapshot",
                    "Resource": snapshots,
                },
                {
                    # As the managed policy grants it. AWS does not document whether DLM tags in
                    # the CreateSnapshot call or afterwards: an `ec2:CreateAction` condition would
                    # fail every backup in the latter case. The cost: DeleteSnapshot's tag scope
                    # stops mistakes, not this role (which only DLM, running this schedule, assumes).
                    "Sid": "TagTheSnapshots",
                    "Effect": "Allow",
                    "Action": "ec2:CreateTags",
                    "Resource": snapshots,
                },
                {
                    "Sid": "ExpireTheStacksBackups",
                    "Effect": "Allow",
                    "Action": "ec2:DeleteSnapshot",
                    "Resource": snapshots,
                    "Condition": {"StringEquals": backups},
                },
                {
                    # EC2's Describe actions take no resource-level permissions: `*` or nothing.
                    "Sid": "FindVolumesAndSnapshots",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:DescribeVolumes",
                        "ec2:DescribeSnapshots",
                        "ec2:DescribeInstances",
                        "ec2:DescribeAvailabilityZones",
                        "ec2:DescribeSnapshotAttribute",
                        "ec2:DescribeFastSnapshotRestores",
                        "ec2:DescribeSnapshotTierStatus",
                    ],
                    "Resource": "*",
                },
            ],
        }
    )


def daily_snapshot_policy(
    target_tags: Mapping[str, str], retention: int
) -> aws.dlm.LifecyclePolicyPolicyDetailsArgsDict:
    """DLM policy details: one snapshot a day of every volume with `target_tags`, `retention` kept."""
    return {
        "policy_type": "EBS_SNAPSHOT_MANAGEMENT",
        "resource_types": ["VOLUME"],
        "target_tags": dict(target_tags),
        "schedules": [
            {
                "name": f"daily {retention} kept",
                "create_rule": {"interval": 24, "interval_unit": "HOURS", "times": BACKUP_TIME},
                "retain_rule": {"count": retention},
                "copy_tags": True,
                "tags_to_add": SNAPSHOT_TAG,
            }
        ],
    }


@dataclass
class DataVolumeBackupsArgs:
    region: str
    target_tags: Mapping[str, str]
    retention_days: int
    permissions_boundary: pulumi.Input[str] | None = None
    """The role's permissions boundary, if any: the stack's (components/deployer_policy.py)."""


class DataVolumeBackups(pulumi.ComponentResource):
    """The lifecycle policy and the role DLM runs it as."""

    policy_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataVolumeBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:backups:DataVolumeBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The component's own name: with the longest stack name IAM's 64 characters leave no room
        # for a suffix (model/config.py, MAX_STACK_NAME_LENGTH).
        role = aws.iam.Role(
            name,
            assume_role_policy=dlm_trust_policy(),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        permissions = aws.iam.RolePolicy(
            f"{name}-snapshots",
            role=role.id,
            policy=dlm_execution_policy(args.region, args.target_tags),
            opts=child,
        )
        policy = aws.dlm.LifecyclePolicy(
            f"{name}-policy",
            # DLM allows only letters, digits, spaces, '_' and '-' here: no stack name with a dot.
            description="secure-qdrant daily snapshots of the data volume",
            execution_role_arn=role.arn,
            state="ENABLED",
            policy_details=daily_snapshot_policy(args.target_tags, args.retention_days),
            tags=dict(args.target_tags),
            # DLM checks the role when the policy is created: not before the role may act.
            opts=child.merge(pulumi.ResourceOptions(depends_on=[permissions])),
        )
        self.policy_id = policy.id
        self.register_outputs({"policyId": self.policy_id})
