"""Automatic recovery and alerts: CloudWatch alarms on the instance, the host's own metrics and the
backups, all reporting to one SNS topic (and an e-mail address, when configured).

The alarms are data first (`alarm_specs`, pure), then resources; the metric names they watch are
the ones the host's publisher sends (components/settings.py `HOST_METRICS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.settings import HOST_METRICS, METRICS_NAMESPACE, AlarmThresholds

MINUTE = 60
HOUR = 3600


@dataclass(frozen=True)
class AlarmSpec:
    key: str
    """Names the alarm resource: `<component>-<key>`."""
    description: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    treat_missing_data: str = "notBreaching"
    ec2_action: str | None = None
    """`recover` or `reboot`: what EC2 does to the instance when the alarm fires."""


@dataclass(frozen=True)
class AlarmTargets:
    """What the alarms watch: known once the host (and the backup policy) exist."""

    region: str
    host_name: str
    instance_id: pulumi.Input[str]
    backup_policy_id: pulumi.Input[str] | None = None


def alarm_specs(targets: AlarmTargets, thresholds: AlarmThresholds) -> list[AlarmSpec]:
    host = {HOST_METRICS.dimension: targets.host_name}
    instance = {"InstanceId": targets.instance_id}
    specs = [
        # As the EC2 User Guide's recover and reboot alarms: a failed system check (AWS's
        # hardware or network) moves the instance to healthy hardware, keeping its id, volumes
        # and address; a failed instance check (kernel, memory, file system) reboots it.
        AlarmSpec("system-check", "EC2 system status check failed: recovering the instance",
                  "AWS/EC2", "StatusCheckFailed_System", instance, "Maximum", MINUTE, 2, 0,
                  "GreaterThanThreshold", "missing", ec2_action="recover"),
        AlarmSpec("instance-check", "EC2 instance status check failed: rebooting the instance",
                  "AWS/EC2", "StatusCheckFailed_Instance", instance, "Maximum", MINUTE, 3, 0,
                  "GreaterThanThreshold", "missing", ec2_action="reboot"),
        AlarmSpec("certificate", f"TLS certificate expires in under "
                  f"{thresholds.certificate_days_left} days: renewal is failing",
                  METRICS_NAMESPACE, HOST_METRICS.certificate_days_left, host, "Minimum",
                  5 * MINUTE, 1, thresholds.certificate_days_left, "LessThanThreshold"),
        # A host that stops publishing is as down as one whose Qdrant is.
        AlarmSpec("qdrant-down", f"Qdrant not ready for {thresholds.qdrant_down_minutes} minutes",
                  METRICS_NAMESPACE, HOST_METRICS.qdrant_up, host, "Minimum", MINUTE,
                  thresholds.qdrant_down_minutes, 1, "LessThanThreshold", "breaching"),
        AlarmSpec("unauthorized", f"More than {thresholds.unauthorized_per_minute} refused "
                  "credentials (401) in a minute", METRICS_NAMESPACE, HOST_METRICS.unauthorized,
                  host, "Sum", MINUTE, 1, thresholds.unauthorized_per_minute,
                  "GreaterThanThreshold"),
        AlarmSpec("data-volume", f"Data volume over {thresholds.data_volume_used_percent}% "
                  "full", METRICS_NAMESPACE, HOST_METRICS.data_volume_used_percent, host,
                  "Maximum", 5 * MINUTE, 1, thresholds.data_volume_used_percent,
                  "GreaterThanThreshold"),
    ]
    if targets.backup_policy_id:
        # DLM's own metric (EBS User Guide, "Monitor your policies using Amazon CloudWatch"),
        # counted after the retries of the hour following the scheduled time.
        specs.append(
            AlarmSpec("backup-failed", "A scheduled snapshot of the data volume failed",
                      "AWS/EBS", "SnapshotsCreateFailed",
                      {"DLMPolicyId": targets.backup_policy_id}, "Sum", HOUR, 1, 0,
                      "GreaterThanThreshold")
        )
    return specs


def ec2_action_arn(region: str, action: str) -> str:
    return f"arn:aws:automate:{region}:ec2:{action}"


def topic_name_prefix(name: str) -> str:
    # SNS topic names allow letters, digits, '-' and '_' only; a stack name may carry '.'.
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-alerts-")


@dataclass
class HostAlarmsArgs:
    region: str
    host_name: str
    instance_id: pulumi.Input[str]
    thresholds: AlarmThresholds
    alert_email: str | None = None
    backup_policy_id: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


class HostAlarms(pulumi.ComponentResource):
    """The SNS topic, its optional e-mail subscription and one MetricAlarm per `AlarmSpec`."""

    topic_arn: pulumi.Output[str]
    alarm_names: pulumi.Output[Sequence[str]]

    def __init__(
        self, name: str, args: HostAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:alarms:HostAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic", name_prefix=topic_name_prefix(name), tags=args.tags, opts=child
        )
        if args.alert_email:
            # Email subscriptions stay pending until the address confirms them (SNS sends a link).
            aws.sns.TopicSubscription(
                f"{name}-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alert_email,
                opts=child,
            )
        specs = alarm_specs(
            AlarmTargets(args.region, args.host_name, args.instance_id, args.backup_policy_id),
            args.thresholds,
        )
        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=spec.dimensions,
                statistic=spec.statistic,
                period=spec.period,
                evaluation_periods=spec.evaluation_periods,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=[
                    topic.arn,
                    *([ec2_action_arn(args.region, spec.ec2_action)] if spec.ec2_action else []),
                ],
                ok_actions=[topic.arn],
                tags=args.tags,
                opts=child,
            )
            for spec in specs
        ]
        self.topic_arn = topic.arn
        self.alarm_names = pulumi.Output.all(*(alarm.name for alarm in alarms))
        self.register_outputs({"topicArn": self.topic_arn, "alarmNames": self.alarm_names})

