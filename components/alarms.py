"""Automatic recovery and alerts: CloudWatch alarms on the instance, the host's own metrics and the
backups, all reporting to one SNS topic (and an e-mail address, when configured).

The alarms are data first (`alarm_specs`, pure), then resources; the metric names they watch are
the ones the host's publisher sends (model/settings.py `HOST_METRICS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from model.instance_types import supports_recovery, system_check_action
from model.settings import HOST_METRICS, METRICS_NAMESPACE, AlarmThresholds

MINUTE = 60
HOUR = 3600
# Two hours beyond the longest gap between two daily snapshots (26 hours, see alarm_specs).
BACKUP_SILENCE_HOURS = 28


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
    instance_type: str
    """Decides whether EC2 can recover the instance (`instance_types.supports_recovery`)."""
    backup_policy_id: pulumi.Input[str] | None = None


def alarm_specs(targets: AlarmTargets, thresholds: AlarmThresholds) -> list[AlarmSpec]:
    def status_check(key: str, what: str, periods: int, action: str, note: str = "") -> AlarmSpec:
        return AlarmSpec(
            key,
            f"EC2 {what} status check failed: {action} the instance{note}",
            "AWS/EC2",
            f"StatusCheckFailed_{what.capitalize()}",
            {"InstanceId": targets.instance_id},
            statistic="Maximum",
            period=MINUTE,
            evaluation_periods=periods,
            threshold=0,
            comparison="GreaterThanThreshold",
            treat_missing_data="missing",
            ec2_action=action,
        )

    def on_host(key: str, description: str, metric: str, *rule: Any) -> AlarmSpec:
        host = {HOST_METRICS.dimension: targets.host_name}
        return AlarmSpec(key, description, METRICS_NAMESPACE, metric, host, *rule)

    limits = thresholds
    specs = [
        # As the EC2 User Guide's recover and reboot alarms: a failed system check (AWS's
        # hardware or network) moves the instance to healthy hardware, keeping its id, volumes
        # and address; a failed instance check (kernel, memory, file system) reboots it. A type
        # with instance store cannot be recovered: it reboots, which clears a fault of the host's
        # software, and the notification asks for a stop and start (new hardware) otherwise.
        status_check(
            "system-check", "system", periods=2,
            action=system_check_action(targets.instance_type),
            note="" if supports_recovery(targets.instance_type) else
            f" ({targets.instance_type} has instance store, which EC2 cannot recover: stop and "
            "start it if the check keeps failing)",
        ),
        status_check("instance-check", "instance", periods=3, action="reboot"),
        # key, description, metric; statistic, period, periods, threshold, comparison, missing data
        on_host("certificate",
                f"Certificate expires in under {limits.certificate_days_left} days: renewal fails",
                HOST_METRICS.certificate_days_left,
                "Minimum", 5 * MINUTE, 1, limits.certificate_days_left, "LessThanThreshold"),
        # A host that stops publishing is as down as one whose Qdrant is.
        on_host("qdrant-down", f"Qdrant not ready for {limits.qdrant_down_minutes} minutes",
                HOST_METRICS.qdrant_up,
                "Minimum", MINUTE, limits.qdrant_down_minutes, 1, "LessThanThreshold", "breaching"),
        # QdrantUp probes loopback: nginx down, or the certificate it would start with unreadable,
        # takes the public endpoint down with Qdrant up.
        on_host("edge-down",
                f"The TLS edge not serving the domain for {limits.qdrant_down_minutes} minutes",
                HOST_METRICS.edge_serves,
                "Minimum", MINUTE, limits.qdrant_down_minutes, 1, "LessThanThreshold", "breaching"),
        on_host("unauthorized",
                f"Over {limits.unauthorized_per_minute} refused credentials (401) in a minute",
                HOST_METRICS.unauthorized,
                "Sum", MINUTE, 1, limits.unauthorized_per_minute, "GreaterThanThreshold"),
        on_host("data-volume", f"Data volume over {limits.data_volume_used_percent}% full",
                HOST_METRICS.data_volume_used_percent,
                "Maximum", 5 * MINUTE, 1, limits.data_volume_used_percent, "GreaterThanThreshold"),
        # A rejected configuration leaves the host serving its last good one, so nothing else
        # fires: two converge runs refusing it say the published change will not take effect.
        on_host("config-rejected",
                "The host refuses its published configuration and serves the last good one",
                HOST_METRICS.config_rejected,
                "Maximum", MINUTE, 2, 1, "GreaterThanOrEqualToThreshold"),
    ]  # fmt: skip
    if targets.backup_policy_id:
        # DLM's own metrics (EBS User Guide, "Monitor your policies using Amazon CloudWatch":
        # namespace AWS/EBS, dimension DLMPolicyId), each counted after the retries of the hour
        # following the scheduled time.
        policy = {"DLMPolicyId": targets.backup_policy_id}
        specs += [
            AlarmSpec("backup-failed", "A scheduled snapshot of the data volume failed",
                      "AWS/EBS", "SnapshotsCreateFailed", policy,
                      statistic="Sum", period=HOUR, evaluation_periods=1, threshold=0,
                      comparison="GreaterThanThreshold"),
            # A policy in error (its role, a snapshot quota) may count no failure at all: what
            # must be seen is a completed snapshot. Every hour without one breaches, and with no
            # DatapointsToAlarm it fires only when all BACKUP_SILENCE_HOURS do; the daily run
            # starts within the hour after BACKUP_TIME and retries for an hour, so consecutive
            # ones are at most 26 hours apart. A new stack's alarm fires until its first snapshot.
            AlarmSpec("backup-missing",
                      f"No snapshot of the data volume completed in {BACKUP_SILENCE_HOURS} hours",
                      "AWS/EBS", "SnapshotsCreateCompleted", policy,
                      statistic="Sum", period=HOUR, evaluation_periods=BACKUP_SILENCE_HOURS,
                      threshold=1, comparison="LessThanThreshold", treat_missing_data="breaching"),
        ]  # fmt: skip
    return specs


def ec2_action_arn(region: str, action: str) -> str:
    return f"arn:aws:automate:{region}:ec2:{action}"


def metric_alarm(
    name: str,
    spec: AlarmSpec,
    alarm_actions: Sequence[pulumi.Input[str]],
    topic_arn: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    """The MetricAlarm an `AlarmSpec` describes, telling the topic when it clears too."""
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=spec.description,
        namespace=spec.namespace,
        metric_name=spec.metric_name,
        # An empty map would be sent as one: a metric without dimensions has none.
        dimensions=spec.dimensions or None,
        statistic=spec.statistic,
        period=spec.period,
        evaluation_periods=spec.evaluation_periods,
        threshold=spec.threshold,
        comparison_operator=spec.comparison,
        treat_missing_data=spec.treat_missing_data,
        alarm_actions=alarm_actions,
        ok_actions=[topic_arn],
        tags=tags,
        opts=opts,
    )


def topic_name_prefix(name: str) -> str:
    # SNS topic names allow letters, digits, '-' and '_' only; a stack name may carry '.'.
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-alerts-")


@dataclass
class HostAlarmsArgs:
    region: str
    host_name: str
    instance_id: pulumi.Input[str]
    instance_type: str
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
            AlarmTargets(
                region=args.region,
                host_name=args.host_name,
                instance_id=args.instance_id,
                instance_type=args.instance_type,
                backup_policy_id=args.backup_policy_id,
            ),
            args.thresholds,
        )
        alarms = [
            metric_alarm(
                f"{name}-{spec.key}",
                spec,
                [
                    topic.arn,
                    *([ec2_action_arn(args.region, spec.ec2_action)] if spec.ec2_action else []),
                ],
                topic.arn,
                args.tags,
                child,
            )
            for spec in specs
        ]
        self.topic_arn = topic.arn
        self.alarm_names = pulumi.Output.all(*(alarm.name for alarm in alarms))
        self.register_outputs({"topicArn": self.topic_arn, "alarmNames": self.alarm_names})
