"""Qdrant's audit log off the host: the CloudWatch Logs group it is shipped to, its stream, and how
long CloudWatch keeps it.

Pure: the program names the group from the host's name (components/audit_log.py), the host ships
to the same name (cloud-init/audit_shipper.py, through settings.env), the instance role may write
only there (components/host.py) and the deployer may manage only it (components/deployer_policy.py).
"""

from __future__ import annotations

import json
import re

from model.settings import AUDIT_LOG_RETENTION_DAYS as AUDIT_LOG_RETENTION_DAYS

RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip
"""PutRetentionPolicy's `retentionInDays`: the only values CloudWatch Logs accepts (CloudWatch Logs
API Reference, PutRetentionPolicy)."""

# CloudWatch Logs API Reference, CreateLogGroup and CreateLogStream (botocore's model carries both).
LOG_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")
LOG_STREAM_NAME = re.compile(r"[^:*]{1,512}")


def audit_log_group_name(host_name: str) -> str:
    """The host's log group: named for the host (`qdrant-<stack>`), so that the deployer's and the
    instance role's grants can name it exactly, and a host replaced on the same data volume keeps
    shipping into the same group."""
    name = f"/secure-qdrant/{host_name}/audit"
    if not LOG_GROUP_NAME.fullmatch(name):
        raise ValueError(f"not a CloudWatch Logs group name: {name!r}")
    return name


def audit_log_stream_name(host_name: str) -> str:
    """The one stream the host writes: its name, which its data volume (and its shipping position)
    keeps across instance replacements."""
    if not LOG_STREAM_NAME.fullmatch(host_name):
        raise ValueError(f"not a CloudWatch Logs stream name: {host_name!r}")
    return host_name


def log_group_arn(region: str, account: str, group: str) -> str:
    """The group's ARN as IAM matches it (Service Authorization Reference, `log-group`)."""
    return f"arn:aws:logs:{region}:{account}:log-group:{group}"


def ship_audit_log_policy(group_arn: str) -> str:
    """What the instance role may do in CloudWatch Logs: create its stream and put events into the
    streams of its own group, nothing else. No read (the host has no business reading what it
    shipped: a compromised host could learn nothing from it, but it needs no DescribeLogStreams
    either, CreateLogStream's "already exists" says enough), no delete, no retention change: a
    compromised host can add lines, never remove or expire the ones it shipped."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ShipTheAuditLog",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{group_arn}:log-stream:*",
                }
            ],
        }
    )
