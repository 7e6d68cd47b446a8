"""Backups, restore, recovery and alarms as the program registers them (issue 11), under mocks.

The IAM side (what the DLM role and the host's metrics permission allow) is judged by the IAM
evaluator in tests/consumers/test_iam_evaluation.py; the inputs' AWS limits in test_aws_limits.py.
"""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from components.alarms import AlarmTargets, alarm_specs
from components.backups import STACK_TAG, dlm_execution_policy
from model.settings import HOST_METRICS, METRICS_NAMESPACE, AlarmThresholds
from tests.program import (
    ACCOUNT,
    MINIMAL_CONFIG,
    OTHER_ACCOUNT,
    REGION,
    Deployment,
    Failed,
    deploy,
)

VOLUME = "aws:ebs/volume:Volume"
INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
POLICY = "aws:dlm/lifecyclePolicy:LifecyclePolicy"
ROLE = "aws:iam/role:Role"
ATTACHED = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
GET_SNAPSHOT = "aws:ebs/getSnapshot:getSnapshot"
SNAPSHOT = "snap-0123456789abcdef0"
HOST = "qdrant-test"


@pytest.fixture(scope="module")
def default() -> Deployment:
    return deploy(MINIMAL_CONFIG)


def named(deployment: Deployment, typ: str, name: str):
    [found] = [r for r in deployment.of_type(typ) if r.name == name]
    return found


def alarm(deployment: Deployment, key: str):
    return named(deployment, ALARM, f"{HOST}-alarms-{key}")


# --------------------------------------------------------------------------------------- backups


def test_backup_policy_snapshots_the_data_volume_daily_by_its_stack_tag(default):
    """DLM finds the volume by tag: the tag it targets must be one the data volume carries."""
    policy = default.one(POLICY)
    details = policy.inputs["policyDetails"]
    [schedule] = details["schedules"]

    assert details["resourceTypes"] == ["VOLUME"]
    assert details["targetTags"] == {STACK_TAG: HOST}
    assert default.one(VOLUME).inputs["tags"][STACK_TAG] == HOST
    assert schedule["createRule"] == {"interval": 24, "intervalUnit": "HOURS", "times": "03:00"}
    assert schedule["retainRule"] == {"count": 7}
    assert policy.inputs["state"] == "ENABLED"


def test_snapshots_carry_the_stack_tag_and_are_encrypted_as_the_volume_is(default):
    """Snapshots of an encrypted volume are encrypted with its key; the policy copies the volume's
    tags (the stack's among them) so each snapshot says whose it is, and asks for no copy (a
    cross-region copy could be re-encrypted under another key)."""
    [schedule] = default.one(POLICY).inputs["policyDetails"]["schedules"]

    assert default.one(VOLUME).inputs["encrypted"] is True
    assert schedule["copyTags"] is True
    assert "crossRegionCopyRules" not in schedule and "shareRules" not in schedule


def test_backup_retention_is_the_configured_number_of_daily_snapshots():
    policy = deploy(dict(MINIMAL_CONFIG, backupRetentionDays=30)).one(POLICY)

    assert policy.inputs["policyDetails"]["schedules"][0]["retainRule"] == {"count": 30}


def test_dlm_runs_as_its_own_role_that_only_dlm_assumes(default):
    policy = default.one(POLICY)
    role = named(default, ROLE, f"{HOST}-dlm")
    trust = json.loads(role.inputs["assumeRolePolicy"])

    assert policy.inputs["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role.name}"
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "dlm.amazonaws.com"}]


def test_dlm_role_carries_no_managed_policy(default):
    """AWS's managed DLM policy may snapshot, copy, share and delete every snapshot of the account:
    the role has only its own policy, scoped to the stack (judged in test_iam_evaluation.py)."""
    role = named(default, ROLE, f"{HOST}-dlm")
    names = (role.name, role.resource_id)

    assert [a.name for a in default.of_type(ATTACHED) if a.inputs["role"] in names] == []


def test_dlm_role_policy_is_the_stacks_scoped_policy(default):
    """The document IAM gets is the one the evaluator judges: the pure function's, for this region
    and the tag the lifecycle policy targets."""
    role = named(default, ROLE, f"{HOST}-dlm")
    permissions = named(default, ROLE_POLICY, f"{HOST}-dlm-snapshots")

    assert permissions.inputs["role"] == role.resource_id
    assert permissions.inputs["policy"] == dlm_execution_policy(REGION, {STACK_TAG: HOST})
    assert permissions.options.parent == role.options.parent
    component = f"secure-qdrant:backups:DataVolumeBackups::{HOST}-dlm"
    assert permissions.options.parent.endswith(component)


def test_every_tag_dlm_may_delete_by_is_on_the_schedules_snapshots(default):
    """DeleteSnapshot is scoped by tags: one the schedule did not put on its snapshots would leave
    DLM unable to expire them, and they would pile up past the retention. The target tags come
    from the volume (copyTags; DLM snapshots only volumes carrying them), the rest from tagsToAdd."""
    details = default.one(POLICY).inputs["policyDetails"]
    [schedule] = details["schedules"]
    document = json.loads(named(default, ROLE_POLICY, f"{HOST}-dlm-snapshots").inputs["policy"])
    [delete] = [s for s in document["Statement"] if s["Action"] == "ec2:DeleteSnapshot"]
    required = {
        key.removeprefix("aws:ResourceTag/"): value
        for key, value in delete["Condition"]["StringEquals"].items()
    }
    copied = details["targetTags"] if schedule["copyTags"] else {}

    assert required.items() <= {**copied, **schedule["tagsToAdd"]}.items()


def test_backups_off_creates_no_backup_resource():
    deployment = deploy(dict(MINIMAL_CONFIG, backupSchedule=False))

    assert deployment.of_type(POLICY) == []
    assert not [r for r in deployment.resources if r.name.startswith(f"{HOST}-dlm")]
    assert not [a for a in deployment.of_type(ALARM) if a.name.endswith(("-failed", "-missing"))]


# --------------------------------------------------------------------------------------- restore


@pytest.fixture(scope="module")
def restored() -> Deployment:
    return deploy(dict(MINIMAL_CONFIG, restoreFromSnapshotId=SNAPSHOT))


def test_the_data_volume_keeps_its_resource_name_through_a_restore(default, restored):
    """One resource, whatever the restore setting: a restore replaces it (which protection
    guards), and unsetting the key later cannot register a second, empty volume and move the host
    onto it, as a restore under a snapshot-named resource did."""
    assert restored.one(VOLUME).name == default.one(VOLUME).name == f"{HOST}-data"
    assert restored.one(VOLUME).inputs["tags"]["Name"] == default.one(VOLUME).inputs["tags"]["Name"]


def test_restore_makes_the_data_volume_from_the_snapshot(restored):
    volume = restored.one(VOLUME)

    assert volume.inputs["snapshotId"] == SNAPSHOT
    assert volume.inputs["encrypted"] is True
    assert volume.inputs["tags"][STACK_TAG] == HOST


@pytest.mark.parametrize("deployment", ["default", "restored"])
def test_the_data_volume_is_protected_and_retained_with_or_without_restore(deployment, request):
    """Protect makes the engine refuse `pulumi destroy` and any replacement (another snapshot)
    until the operator unprotects the volume; retainOnDelete makes a replaced or removed volume
    leave the stack's state only, never the account."""
    volume = request.getfixturevalue(deployment).one(VOLUME)

    assert (volume.options.protect, volume.options.retainOnDelete) == (True, True)


@pytest.mark.parametrize("deployment", ["default", "restored"])
def test_the_data_volume_is_replaced_create_before_delete(deployment, request):
    """Delete-before-replace would drop the current volume from the stack before the restored one
    exists: a failed create (a snapshot still pending, a quota) would leave the stack with none."""
    options = request.getfixturevalue(deployment).one(VOLUME).options

    assert (options.deleteBeforeReplace, options.deleteBeforeReplaceDefined) == (False, False)


def test_a_restore_of_the_previous_release_is_adopted_under_the_stable_name(restored):
    """The previous release registered a restored volume as `<host>-data-<snapshot>`: an alias of
    that name, with the volume's own parent, type, project and stack, is the URN it has in such a
    stack's state, so the engine takes it as this volume instead of creating an empty one."""
    [alias] = restored.one(VOLUME).options.aliases

    assert alias.spec.name == f"{HOST}-data-{SNAPSHOT}"
    assert (alias.spec.type, alias.spec.project, alias.spec.stack) == ("", "", "")
    assert (alias.spec.parentUrn, alias.spec.noParent) == ("", False)


def test_a_volume_without_restore_claims_no_other_name(default):
    assert list(default.one(VOLUME).options.aliases) == []


def test_restore_boots_a_new_host_onto_the_restored_volume(default, restored):
    """The host mounts its volume by id: the restored one's id in the user data replaces the
    instance, and the attachment moves to the restored volume."""
    volume_id = restored.outputs["dataVolumeId"].value

    assert volume_id != default.outputs["dataVolumeId"].value
    assert f"DATA_VOLUME_ID={volume_id}" in restored.user_data
    assert restored.one(ATTACHMENT).inputs["volumeId"] == volume_id


def test_the_restore_reaches_the_host_only_through_the_volumes_id(default, restored):
    """While the volume is not replaced (a refused restore, an unset key the provider ignores),
    its id stays, so nothing downstream moves: no new instance, no detached volume."""
    old_id, new_id = (d.outputs["dataVolumeId"].value for d in (default, restored))

    assert restored.user_data.replace(new_id, old_id) == default.user_data


def test_the_snapshot_is_looked_up_only_for_a_restore(default, restored):
    assert [args for token, args in restored.calls if token == GET_SNAPSHOT] == [
        {"snapshotIds": [SNAPSHOT]}
    ]
    assert not [token for token, _ in default.calls if token == GET_SNAPSHOT]


def test_an_eight_digit_snapshot_id_is_accepted():
    volume = deploy(dict(MINIMAL_CONFIG, restoreFromSnapshotId="snap-01234567")).one(VOLUME)

    assert volume.inputs["snapshotId"] == "snap-01234567"


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        ("snap-0aaaaaaaaaaaaaaa1", f"is not a snapshot this account can see in {REGION}"),
        ("snap-0bbbbbbbbbbbbbbb2", f"belongs to account {OTHER_ACCOUNT}, not to this stack's account {ACCOUNT}"),
        ("snap-0ccccccccccccccc3", "secure-qdrant:dataVolumeSizeGb: 20 GiB is smaller than the 500 GiB volume"),
    ],
    ids=["another-region", "another-account", "larger-than-the-volume"],
)  # fmt: skip
def test_a_snapshot_this_stack_cannot_restore_is_refused_before_any_resource(snapshot, message):
    """A snapshot of another region is invisible here, one of another account is not this stack's
    data, and one larger than the volume cannot be restored into it: all stop `pulumi up` before
    the host is replaced, saying what to do."""
    with pytest.raises(Failed) as failure:
        deploy(dict(MINIMAL_CONFIG, restoreFromSnapshotId=snapshot))

    assert message in str(failure.value)
    assert failure.value.registered == []


# ---------------------------------------------------------------------------------------- alarms


@pytest.mark.parametrize(
    ("key", "metric", "action"),
    [("system-check", "StatusCheckFailed_System", "recover"),
     ("instance-check", "StatusCheckFailed_Instance", "reboot")],
)  # fmt: skip
def test_failed_status_checks_recover_or_reboot_the_instance(default, key, metric, action):
    """A failed system check (AWS's hardware) moves the instance to healthy hardware; a failed
    instance check (its kernel) reboots it; both say so on the topic."""
    found = alarm(default, key)

    assert (found.inputs["namespace"], found.inputs["metricName"]) == ("AWS/EC2", metric)
    assert found.inputs["dimensions"] == {"InstanceId": default.outputs["instanceId"].value}
    assert f"arn:aws:automate:{REGION}:ec2:{action}" in found.inputs["alarmActions"]
    assert (found.inputs["threshold"], found.inputs["comparisonOperator"]) == (
        0,
        "GreaterThanThreshold",
    )


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [("m5d.large", "x86_64"), ("c6id.large", "x86_64"), ("r6gd.large", "arm64"),
     ("i4i.large", "x86_64"), ("d3.xlarge", "x86_64"), ("z1d.large", "x86_64"),
     ("x2idn.16xlarge", "x86_64"), ("im4gn.large", "arm64")],
)  # fmt: skip
def test_a_type_with_instance_store_reboots_on_a_failed_system_check_and_is_never_recovered(
    instance_type, architecture
):
    """EC2 recovers only instances with EBS volumes only (EC2 User Guide, "Recover your instance"):
    a recover action there cannot act. Such a host still says so on the topic, reboots, and its
    alarm says to stop and start it (which moves it to other hardware)."""
    deployment = deploy(dict(MINIMAL_CONFIG, instanceType=instance_type, architecture=architecture))
    found = alarm(deployment, "system-check")

    actions = [a for spec in deployment.of_type(ALARM) for a in spec.inputs["alarmActions"]]
    assert not [a for a in actions if a.endswith(":ec2:recover")]
    assert f"arn:aws:automate:{REGION}:ec2:reboot" in found.inputs["alarmActions"]
    assert deployment.outputs["alertTopicArn"].value in found.inputs["alarmActions"]
    assert "stop and start" in found.inputs["alarmDescription"]


def test_a_metal_size_of_an_ebs_only_family_is_recovered():
    """EBS-only is the rule, not the size: EC2 recovers metal instances of such families too
    (DescribeInstanceTypes, tests/consumers/test_ec2_instance_types.py)."""
    deployment = deploy(dict(MINIMAL_CONFIG, instanceType="m7g.metal", architecture="arm64"))

    assert (
        f"arn:aws:automate:{REGION}:ec2:recover"
        in alarm(deployment, "system-check").inputs["alarmActions"]
    )


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(default):
    topic = default.outputs["alertTopicArn"].value

    for found in default.of_type(ALARM):
        assert topic in found.inputs["alarmActions"], found.name
        assert found.inputs["okActions"] == [topic], found.name


@pytest.mark.parametrize(
    ("key", "metric", "statistic", "threshold", "comparison"),
    [
        ("certificate", HOST_METRICS.certificate_days_left, "Minimum", 14, "LessThanThreshold"),
        ("qdrant-down", HOST_METRICS.qdrant_up, "Minimum", 1, "LessThanThreshold"),
        ("edge-down", HOST_METRICS.edge_serves, "Minimum", 1, "LessThanThreshold"),
        ("unauthorized", HOST_METRICS.unauthorized, "Sum", 60, "GreaterThanThreshold"),
        ("data-volume", HOST_METRICS.data_volume_used_percent, "Maximum", 80, "GreaterThanThreshold"),
    ],
)  # fmt: skip
def test_host_metric_alarms_watch_the_hosts_own_metrics(
    default, key, metric, statistic, threshold, comparison
):
    """Under the host's name, not the instance id: a replaced instance keeps its alarms."""
    found = alarm(default, key)

    assert (found.inputs["namespace"], found.inputs["metricName"]) == (METRICS_NAMESPACE, metric)
    assert found.inputs["dimensions"] == {HOST_METRICS.dimension: HOST}
    assert found.inputs["statistic"] == statistic
    assert (found.inputs["threshold"], found.inputs["comparisonOperator"]) == (
        threshold,
        comparison,
    )


def test_a_host_that_stops_reporting_counts_as_down(default):
    """No QdrantUp data means the host or its publisher is gone: as alarming as Qdrant down."""
    found = alarm(default, "qdrant-down")

    assert found.inputs["treatMissingData"] == "breaching"
    assert (found.inputs["period"], found.inputs["evaluationPeriods"]) == (60, 5)


def test_an_edge_that_stops_serving_or_reporting_counts_as_down(default):
    """QdrantUp probes Qdrant on loopback: nginx down, or its certificate unreadable, takes the
    public endpoint down with Qdrant up. No EdgeServes data is as alarming as a 0, as for QdrantUp,
    over the same minutes."""
    found = alarm(default, "edge-down")

    assert found.inputs["treatMissingData"] == "breaching"
    assert (found.inputs["period"], found.inputs["evaluationPeriods"]) == (60, 5)


def test_a_host_refusing_its_published_configuration_raises_an_alarm(default):
    """A rejected document leaves the host on its last good configuration: still serving, so no
    other alarm fires, while the change the operator published never takes effect. Two minutes of
    ConfigRejected at 1 (two runs of the converge timer) notify the topic; a host that publishes
    nothing is the qdrant-down alarm's business, not this one's."""
    found = alarm(default, "config-rejected")

    assert (found.inputs["namespace"], found.inputs["metricName"]) == (
        METRICS_NAMESPACE,
        HOST_METRICS.config_rejected,
    )
    assert found.inputs["dimensions"] == {HOST_METRICS.dimension: HOST}
    assert (found.inputs["statistic"], found.inputs["period"]) == ("Maximum", 60)
    assert found.inputs["evaluationPeriods"] == 2
    assert (found.inputs["threshold"], found.inputs["comparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert found.inputs["treatMissingData"] == "notBreaching"


def test_thresholds_come_from_the_config():
    deployment = deploy(
        dict(
            MINIMAL_CONFIG,
            alarmCertificateDaysLeft=21,
            alarmQdrantDownMinutes=10,
            alarmUnauthorizedPerMinute=500,
            alarmDataVolumeUsedPercent=90,
        )
    )

    assert alarm(deployment, "certificate").inputs["threshold"] == 21
    assert alarm(deployment, "qdrant-down").inputs["evaluationPeriods"] == 10
    assert alarm(deployment, "edge-down").inputs["evaluationPeriods"] == 10
    assert alarm(deployment, "unauthorized").inputs["threshold"] == 500
    assert alarm(deployment, "data-volume").inputs["threshold"] == 90


def test_failed_scheduled_snapshots_raise_an_alarm(default):
    """DLM's own metric for its policy: a backup that silently stopped is found out within a day."""
    found = alarm(default, "backup-failed")

    assert (found.inputs["namespace"], found.inputs["metricName"]) == (
        "AWS/EBS",
        "SnapshotsCreateFailed",
    )
    assert found.inputs["dimensions"] == {"DLMPolicyId": default.one(POLICY).resource_id}
    assert (found.inputs["statistic"], found.inputs["threshold"]) == ("Sum", 0)


# DLM's metric as the EBS User Guide documents it ("Monitor your policies using Amazon CloudWatch"):
# namespace AWS/EBS, dimension DLMPolicyId, unit Count; SnapshotsCreateCompleted counts the
# snapshots created, "successful retries within 60 minutes of the scheduled time" included. The
# daily run starts within the hour after 03:00 UTC: each completes between 03:00 and 05:00.
COMPLETIONS = [(3, 5), (4, 59), (3, 0), (4, 58), (3, 30)]


def backup_missing_fires(found, policy_id: str, cloudwatch, at: datetime) -> bool:
    """The alarm's state at `at`, as CloudWatch evaluates it: its statistic over its periods and
    dimensions, each period without data treated as `treatMissingData` says, and ALARM only when
    every one of its `evaluationPeriods` breaches (no DatapointsToAlarm: M = N)."""
    inputs = found.inputs
    assert inputs["treatMissingData"] == "breaching"
    assert (inputs["threshold"], inputs["comparisonOperator"]) == (1, "LessThanThreshold")
    period = int(inputs["period"])
    answer = cloudwatch.get_metric_statistics(
        Namespace=inputs["namespace"],
        MetricName=inputs["metricName"],
        Dimensions=[{"Name": k, "Value": policy_id} for k in inputs["dimensions"]],
        StartTime=at - timedelta(seconds=period * int(inputs["evaluationPeriods"])),
        EndTime=at,
        Period=period,
        Statistics=[inputs["statistic"]],
    )
    return all(point[inputs["statistic"]] < 1 for point in answer["Datapoints"])


def test_a_day_without_a_completed_snapshot_raises_an_alarm_and_daily_snapshots_do_not(default):
    """A policy DLM puts into error (its role, a snapshot quota) may count no failed snapshot at
    all: the backups stop in silence unless the absence of completed ones alarms. Daily runs that
    complete anywhere in their two hours never fire it; the first day without one does."""
    found = alarm(default, "backup-missing")
    policy_id = default.one(POLICY).resource_id
    assert found.inputs["dimensions"] == {"DLMPolicyId": policy_id}
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day -= timedelta(days=len(COMPLETIONS) + 3)
    completed = [
        first_day + timedelta(days=day, hours=hour, minutes=minute)
        for day, (hour, minute) in enumerate(COMPLETIONS)
    ]
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for at in completed:
            cloudwatch.put_metric_data(
                Namespace="AWS/EBS",
                MetricData=[{
                    "MetricName": "SnapshotsCreateCompleted",
                    "Dimensions": [{"Name": "DLMPolicyId", "Value": policy_id}],
                    "Timestamp": at,
                    "Value": 1,
                    "Unit": "Count",
                }],
            )  # fmt: skip
        # Every 7 minutes from just after the first completion to the last.
        while_daily = [
            completed[0] + timedelta(minutes=m)
            for m in range(1, int((completed[-1] - completed[0]).total_seconds() // 60) + 1, 7)
        ]
        fired_while_daily = [
            at for at in while_daily
            if backup_missing_fires(found, policy_id, cloudwatch, at)
        ]  # fmt: skip
        day_after_the_last = completed[-1] + timedelta(hours=26)
        after_a_missed_day = completed[-1] + timedelta(hours=28, minutes=1)

        assert fired_while_daily == []
        assert not backup_missing_fires(found, policy_id, cloudwatch, day_after_the_last)
        assert backup_missing_fires(found, policy_id, cloudwatch, after_a_missed_day)


def test_a_policy_that_reports_nothing_at_all_raises_the_backup_alarm(default):
    """No datapoint whatsoever (a policy in error from the start): missing data breaches."""
    found = alarm(default, "backup-missing")
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)

        assert backup_missing_fires(
            found, default.one(POLICY).resource_id, cloudwatch, datetime.now(UTC)
        )


def test_alert_email_is_subscribed_to_the_topic():
    deployment = deploy(dict(MINIMAL_CONFIG, alertEmail="oncall@example.com"))

    subscription = deployment.one(SUBSCRIPTION)
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "oncall@example.com"
    assert subscription.inputs["topic"] == deployment.outputs["alertTopicArn"].value


def test_no_subscription_without_an_alert_email(default):
    assert default.of_type(SUBSCRIPTION) == []
    assert default.one(TOPIC).inputs["namePrefix"] == f"{HOST}-alarms-alerts-"


def test_topic_name_keeps_to_snss_characters_for_a_stack_name_with_a_dot():
    """SNS topic names allow letters, digits, '-' and '_'; Pulumi stack names may carry '.'."""
    topic = deploy(MINIMAL_CONFIG, stack="eu.prod").one(TOPIC)

    assert topic.inputs["namePrefix"] == "qdrant-eu-prod-alarms-alerts-"


def test_the_alarms_must_be_told_the_instance_type_they_watch():
    """Whether the system-check alarm may recover the instance depends on its type: a default type
    would give an instance-store host the recover action, which EC2 cannot carry out."""
    with pytest.raises(TypeError, match="instance_type"):
        AlarmTargets(region=REGION, host_name=HOST, instance_id="i-0123")  # type: ignore[call-arg]


def test_the_alarms_of_a_stack_without_backups_are_the_eight_others():
    targets = AlarmTargets(
        region=REGION, host_name=HOST, instance_id="i-0123", instance_type="t3.medium"
    )
    specs = alarm_specs(targets, AlarmThresholds())

    assert [spec.key for spec in specs] == [
        "system-check", "instance-check", "certificate", "qdrant-down", "edge-down", "unauthorized",
        "data-volume", "config-rejected",
    ]  # fmt: skip
