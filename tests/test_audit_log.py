"""The audit log's group in CloudWatch Logs (components/audit_log.py) as the program registers it:
the host's, kept as long as the host keeps its files, found by the stack's tag, and named where
the host and the operators read it from."""

from __future__ import annotations

import json
import shlex

import pytest

from components.audit_log import AuditLog, AuditLogArgs
from components.backups import STACK_TAG
from model.audit_log import AUDIT_LOG_RETENTION_DAYS, audit_log_group_name
from model.settings import QDRANT_AUDIT
from tests.program import MINIMAL_CONFIG, Deployment, deploy

GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deploy(MINIMAL_CONFIG)


def test_the_group_keeps_the_lines_as_long_as_the_host_keeps_its_files(deployment):
    """An incident is investigated from either copy for the same 30 days: daily files, 30 kept."""
    group = deployment.one(GROUP)

    assert group.inputs["retentionInDays"] == AUDIT_LOG_RETENTION_DAYS == 30
    assert (
        QDRANT_AUDIT.rotation == "daily" and QDRANT_AUDIT.max_log_files == AUDIT_LOG_RETENTION_DAYS
    )


def test_the_group_is_the_one_the_host_ships_to(deployment):
    """Named once (model/audit_log.py): a host shipping elsewhere would be refused by its role
    and its lines kept on the host alone."""
    group = deployment.one(GROUP)
    document = json.loads(deployment.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["content"])
    [settings] = [f["content"] for f in document["files"] if f["path"].endswith("/settings.env")]
    shipped_to = dict(shlex.split(line)[0].split("=", 1) for line in settings.splitlines())

    assert (
        group.inputs["name"] == audit_log_group_name("qdrant-test") == shipped_to["AUDIT_LOG_GROUP"]
    )
    assert deployment.outputs["auditLogGroup"].value == group.inputs["name"]
    assert group.inputs["tags"][STACK_TAG] == "qdrant-test"


def test_a_retention_cloudwatch_does_not_offer_is_refused_before_anything_is_created():
    """PutRetentionPolicy takes only its listed values: 31 days would fail `pulumi up` half-way."""
    with pytest.raises(ValueError, match="retention 31"):
        AuditLog("qdrant-test-audit", AuditLogArgs(host_name="qdrant-test", retention_days=31))
