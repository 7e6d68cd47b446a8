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

# AWS's managed policy for DLM's default role (DLM User Guide, "AWS managed policies for Amazon
# Data Lifecycle Manager"): kept current by AWS as DLM's needs grow.
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
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
    target_tags: Mapping[str, str]
    retention_days: int


class DataVolumeBackups(pulumi.ComponentResource):
    """The lifecycle policy and the role DLM runs it as."""

    policy_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataVolumeBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:backups:DataVolumeBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The component's own name: with the longest stack name IAM's 64 characters leave no room
        # for a suffix (components/config.py, MAX_STACK_NAME_LENGTH).
        role = aws.iam.Role(name, assume_role_policy=dlm_trust_policy(), opts=child)
        service = aws.iam.RolePolicyAttachment(
            f"{name}-service", role=role.name, policy_arn=DLM_SERVICE_POLICY, opts=child
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
            opts=child.merge(pulumi.ResourceOptions(depends_on=[service])),
        )
        self.policy_id = policy.id
        self.register_outputs({"policyId": self.policy_id})
