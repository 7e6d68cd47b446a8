"""Qdrant's audit log off the host: the CloudWatch Logs group the host ships its audit lines to.

The host's copy lives on its data volume (model/settings.py `QDRANT_AUDIT`) and goes with it; this
one outlives the host, the volume and whoever holds root on the host, who can add lines (the
instance role's grant, components/host.py) but neither delete nor expire them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from model.audit_log import AUDIT_LOG_RETENTION_DAYS, RETENTION_DAYS, audit_log_group_name


@dataclass
class AuditLogArgs:
    host_name: str
    """The host whose lines the group receives: its name names the group."""
    retention_days: int = AUDIT_LOG_RETENTION_DAYS
    """One of CloudWatch Logs' retention values (model/audit_log.py `RETENTION_DAYS`)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class AuditLog(pulumi.ComponentResource):
    """One log group, named for its host, whose events expire after the retention."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditLogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:audit_log:AuditLog", name, None, opts)
        if args.retention_days not in RETENTION_DAYS:
            raise ValueError(
                f"audit log retention {args.retention_days} is not one of {RETENTION_DAYS}"
            )
        group = aws.cloudwatch.LogGroup(
            f"{name}-group",
            # Explicit, not auto-named: the host and both IAM grants derive the same name.
            name=audit_log_group_name(args.host_name),
            retention_in_days=args.retention_days,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.group_name = group.name
        self.group_arn = group.arn
        self.register_outputs({"groupName": self.group_name, "groupArn": self.group_arn})
