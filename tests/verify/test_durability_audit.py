"""The read-only audit of the stack's backups and alarms (issue 11), against what the program
creates: the alarms are made in moto's CloudWatch from the program's own `alarm_specs`, the volume
carries the program's stack tag. moto has no Data Lifecycle Manager, so its answers come from
botocore's Stubber, which checks each request and response against DLM's API model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from components.alarms import AlarmTargets, alarm_specs
from components.backups import stack_tags
from model.settings import AlarmThresholds
from tests.program import MINIMAL_CONFIG, Deployment, deploy
from verify.aws_audit import ALARMS, BACKUPS, _wanted_alarms, audit_durability
from verify.result import CheckResult, Status
from verify.target import Durability, target_from_outputs

REGION = "eu-west-1"
HOST = "qdrant-test"
POLICY_ID = "policy-0123456789abcdef0"
# moto does not validate image ids.
IMAGE_ID = "ami-12c6146b"
ALARM_INPUTS = (
    "alarmDescription", "namespace", "metricName", "statistic", "threshold",
    "comparisonOperator", "treatMissingData",
)  # fmt: skip


@dataclass
class Stack:
    ec2: Any
    cloudwatch: Any
    instance_id: str
    durability: Durability


@pytest.fixture(scope="module")
def program() -> Deployment:
    """What the program registers: its alarms are made in moto from exactly these inputs."""
    return deploy(MINIMAL_CONFIG)


@pytest.fixture
def stack(program: Deployment) -> Iterator[Stack]:
    with deployed(program) as made:
        yield made


@contextmanager
def deployed(program: Deployment) -> Iterator[Stack]:
    """The instance, its tagged data volume, the topic and every alarm, as `pulumi up` leaves them."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        topic = boto3.client("sns", region_name=REGION).create_topic(Name=f"{HOST}-alerts")
        instance_id = ec2.run_instances(
            ImageId=IMAGE_ID,
            InstanceType=program.one("aws:ec2/instance:Instance").inputs["instanceType"],
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": HOST}]}
            ],
        )["Instances"][0]["InstanceId"]
        volume_id = ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=20,
            Encrypted=True,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": k, "Value": v} for k, v in stack_tags(HOST).items()],
                }
            ],
        )["VolumeId"]
        durability = Durability(volume_id, topic["TopicArn"], POLICY_ID)
        # The program's ids, as the mocks made them, become those of this account.
        ids = {
            program.outputs["instanceId"].value: instance_id,
            program.outputs["alertTopicArn"].value: durability.alert_topic_arn,
            program.outputs["backupPolicyId"].value: POLICY_ID,
        }
        for alarm in program.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            cloudwatch.put_metric_alarm(**put_metric_alarm_request(alarm.name, alarm.inputs, ids))
        yield Stack(ec2, cloudwatch, instance_id, durability)


def put_metric_alarm_request(
    name: str, inputs: dict[str, Any], ids: dict[str, str]
) -> dict[str, Any]:
    """PutMetricAlarm as pulumi-aws sends a registered MetricAlarm's inputs (numbers as integers,
    dimensions as a list), under `ids`' replacements."""
    request = {key[0].upper() + key[1:]: inputs[key] for key in ALARM_INPUTS}
    request.update(
        AlarmName=name,
        Period=int(inputs["period"]),
        EvaluationPeriods=int(inputs["evaluationPeriods"]),
        Dimensions=[
            {"Name": k, "Value": ids.get(v, v)} for k, v in (inputs.get("dimensions") or {}).items()
        ],
        AlarmActions=[ids.get(action, action) for action in inputs["alarmActions"]],
        OKActions=[ids.get(action, action) for action in inputs["okActions"]],
    )
    return request


def dlm_policy(state: str = "ENABLED", tags: dict[str, str] | None = None) -> dict[str, Any]:
    """GetLifecyclePolicy's answer for the program's policy."""
    target = tags or stack_tags(HOST)
    return {
        "Policy": {
            "PolicyId": POLICY_ID,
            "State": state,
            "PolicyDetails": {
                "PolicyType": "EBS_SNAPSHOT_MANAGEMENT",
                "ResourceTypes": ["VOLUME"],
                "TargetTags": [{"Key": k, "Value": v} for k, v in target.items()],
                "Schedules": [{"Name": "daily 7 kept", "RetainRule": {"Count": 7}}],
            },
        }
    }


def audit(stack: Stack, answer: dict[str, Any] | None = None, error: str | None = None):
    dlm = boto3.client("dlm", region_name=REGION)
    with Stubber(dlm) as stubber:
        if error:
            stubber.add_client_error("get_lifecycle_policy", error, http_status_code=404)
        elif stack.durability.backup_policy_id:
            stubber.add_response(
                "get_lifecycle_policy", answer or dlm_policy(), {"PolicyId": POLICY_ID}
            )
        results = audit_durability(
            stack.ec2, dlm, stack.cloudwatch, stack.instance_id, stack.durability
        )
    return {result.name: result for result in results}


def assert_fails(result: CheckResult, *evidence: str) -> None:
    assert result.status is Status.FAIL, result
    for text in evidence:
        assert text in result.detail, result.detail


def test_the_programs_backups_and_alarms_pass(stack):
    results = audit(stack)

    assert list(results) == [BACKUPS, ALARMS]
    assert all(result.status is Status.PASS for result in results.values()), results
    assert "keeps 7" in results[BACKUPS].detail


def test_a_host_with_instance_store_passes_with_a_system_check_that_reboots():
    """EC2 cannot recover an instance with instance store: the audit must not want it to."""
    with deployed(deploy(dict(MINIMAL_CONFIG, instanceType="m5d.large"))) as stack:
        results = audit(stack)

    assert results[ALARMS].status is Status.PASS, results[ALARMS]


def test_a_disabled_backup_policy_fails(stack):
    assert_fails(audit(stack, dlm_policy(state="DISABLED"))[BACKUPS], "is DISABLED")


def test_a_policy_that_targets_another_volume_fails(stack):
    """A tag changed on either side silently stops the backups: DLM just finds nothing to do."""
    answer = dlm_policy(tags={"SecureQdrantStack": "qdrant-other"})

    assert_fails(audit(stack, answer)[BACKUPS], "does not target", stack.durability.data_volume_id)


def test_a_deleted_backup_policy_fails(stack):
    assert_fails(audit(stack, error="ResourceNotFoundException")[BACKUPS], "does not exist")


def test_a_denied_policy_read_skips_only_the_backup_check(stack):
    results = audit(stack, error="AccessDeniedException")

    assert results[BACKUPS].status is Status.SKIP
    assert results[ALARMS].status is Status.PASS


def test_without_scheduled_backups_the_backup_check_is_skipped_and_no_backup_alarm_wanted(stack):
    stack.cloudwatch.delete_alarms(
        AlarmNames=[f"{HOST}-alarms-backup-failed", f"{HOST}-alarms-backup-missing"]
    )
    stack.durability = Durability(
        stack.durability.data_volume_id, stack.durability.alert_topic_arn, None
    )

    results = audit(stack)

    assert results[BACKUPS].status is Status.SKIP
    assert results[ALARMS].status is Status.PASS, results[ALARMS]


@pytest.mark.parametrize(
    ("key", "evidence"),
    [
        ("system-check", "StatusCheckFailed_System"),
        ("instance-check", "StatusCheckFailed_Instance"),
        ("qdrant-down", f"SecureQdrant QdrantUp (Host={HOST})"),
        ("edge-down", f"SecureQdrant EdgeServes (Host={HOST})"),
        ("config-rejected", f"SecureQdrant ConfigRejected (Host={HOST})"),
        ("backup-failed", f"SnapshotsCreateFailed (DLMPolicyId={POLICY_ID})"),
        ("backup-missing", f"SnapshotsCreateCompleted (DLMPolicyId={POLICY_ID})"),
    ],
)
def test_a_missing_alarm_fails_naming_what_it_watched(stack, key, evidence):
    stack.cloudwatch.delete_alarms(AlarmNames=[f"{HOST}-alarms-{key}"])

    assert_fails(audit(stack)[ALARMS], evidence)


def test_a_status_check_alarm_that_no_longer_recovers_fails(stack):
    """Without its EC2 action the alarm only notifies: the instance stays on failed hardware."""
    [alarm] = stack.cloudwatch.describe_alarms(AlarmNames=[f"{HOST}-alarms-system-check"])[
        "MetricAlarms"
    ]
    stack.cloudwatch.put_metric_alarm(
        **{k: alarm[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions")},
        **{k: alarm[k] for k in ("Statistic", "Period", "EvaluationPeriods", "Threshold")},
        ComparisonOperator=alarm["ComparisonOperator"],
        AlarmActions=[stack.durability.alert_topic_arn],
    )

    assert_fails(audit(stack)[ALARMS], "StatusCheckFailed_System", "with recover")


def test_an_alarm_with_its_actions_disabled_fails(stack):
    """An alarm that cannot act is as good as none, and DisableAlarmActions leaves it listed."""
    stack.cloudwatch.disable_alarm_actions(AlarmNames=[f"{HOST}-alarms-certificate"])

    assert_fails(audit(stack)[ALARMS], "CertificateDaysLeft")


def test_the_audit_reads_what_it_needs_from_the_stack_outputs():
    outputs = {
        "restUrl": "https://qdrant.example.com",
        "publicIp": "198.51.100.7",
        "apiKey": "unused",
        "dataVolumeId": "vol-0123456789abcdef0",
        "alertTopicArn": "arn:aws:sns:eu-west-1:123456789012:qdrant-test-alerts",
    }

    without_backups = target_from_outputs(outputs).durability
    with_backups = target_from_outputs({**outputs, "backupPolicyId": POLICY_ID}).durability
    older_stack = target_from_outputs({k: v for k, v in outputs.items() if k != "alertTopicArn"})

    assert without_backups == Durability("vol-0123456789abcdef0", outputs["alertTopicArn"], None)
    assert with_backups and with_backups.backup_policy_id == POLICY_ID
    assert older_stack.durability is None


@pytest.mark.parametrize("instance_type", ["t3.medium", "m5d.large"])
def test_the_audit_looks_for_exactly_the_alarms_the_program_creates(instance_type):
    """An alarm the program adds must not go unaudited, nor the audit wait for one it dropped (or
    for a recover action the program leaves out on a type EC2 cannot recover)."""
    targets = AlarmTargets(
        region=REGION,
        host_name=HOST,
        instance_id="i-0123",
        instance_type=instance_type,
        backup_policy_id=POLICY_ID,
    )
    created = {
        (spec.namespace, spec.metric_name, tuple(sorted(spec.dimensions.items())), spec.ec2_action)
        for spec in alarm_specs(targets, AlarmThresholds())
    }
    durability = Durability("vol-0123", "arn:aws:sns:eu-west-1:123456789012:t", POLICY_ID)

    wanted = {
        (*watched, action)
        for watched, action in _wanted_alarms(HOST, "i-0123", instance_type, durability).items()
    }

    assert wanted == created
