"""Denied requests per application: the metric filters on Qdrant's audit log group
(model/audit_metrics.py) and an alarm per configured token, to the stack's SNS topic.

This is the "401/403 spike" alert, per application: one application's token refused over and over
(a misconfigured client, a token used beyond its scope, a revoked token still in use) alarms under
its own name, and another application's traffic cannot hide it or set it off. Denials without a
subject (keys, forged or unreadable tokens) have an alarm of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.alarms import MINUTE, AlarmSpec, metric_alarm
from model.audit_metrics import (
    AUDIT_METRIC_FILTERS,
    AUDIT_METRICS_NAMESPACE,
    DENIED_METRIC,
    SUBJECT_DIMENSION,
    UNNAMED_DENIED_METRIC,
)


def denied_alarm_specs(subjects: Sequence[str], denied_per_minute: int) -> list[AlarmSpec]:
    """One alarm per application, and one for denials that name none. A minute without a denial
    publishes nothing (a metric filter with dimensions has no default value), so missing data is
    not breaching: silence is the healthy state."""

    def denied(key: str, what: str, metric: str, dimensions: dict[str, str]) -> AlarmSpec:
        return AlarmSpec(
            key,
            f"Over {denied_per_minute} requests a minute denied by Qdrant {what}",
            AUDIT_METRICS_NAMESPACE,
            metric,
            dimensions,
            statistic="Sum",
            period=MINUTE,
            evaluation_periods=1,
            threshold=denied_per_minute,
            comparison="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )

    return [
        *(
            denied(f"denied-{subject}", f"to {subject}", DENIED_METRIC,
                   {SUBJECT_DIMENSION: subject})
            for subject in subjects
        ),
        denied("denied-without-subject", "with no application's token (keys, forged tokens)",
               UNNAMED_DENIED_METRIC, {}),
    ]  # fmt: skip


@dataclass
class AuditAlarmsArgs:
    log_group_name: pulumi.Input[str]
    """The audit log group the host ships Qdrant's lines to."""
    topic_arn: pulumi.Input[str]
    subjects: Sequence[str]
    """The configured tokens' names: each token's `subject`."""
    denied_per_minute: int
    tags: dict[str, str] = field(default_factory=dict)


class AuditAlarms(pulumi.ComponentResource):
    """A LogMetricFilter per `AuditMetricFilter` and a MetricAlarm per `denied_alarm_specs`."""

    alarm_names: pulumi.Output[Sequence[str]]

    def __init__(
        self, name: str, args: AuditAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:alarms:AuditAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        filters = [
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{spec.key}",
                log_group_name=args.log_group_name,
                pattern=spec.pattern(),
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=spec.metric_name,
                    namespace=AUDIT_METRICS_NAMESPACE,
                    value="1",
                    unit="Count",
                    dimensions=spec.dimension_selectors() or None,
                ),
                opts=child,
            )
            for spec in AUDIT_METRIC_FILTERS
        ]
        # The metric exists once its filter does.
        after_filters = pulumi.ResourceOptions(parent=self, depends_on=filters)
        alarms = [
            metric_alarm(
                f"{name}-{spec.key}",
                spec,
                [args.topic_arn],
                args.topic_arn,
                args.tags,
                after_filters,
            )
            for spec in denied_alarm_specs(args.subjects, args.denied_per_minute)
        ]
        self.alarm_names = pulumi.Output.all(*(alarm.name for alarm in alarms))
        self.register_outputs({"alarmNames": self.alarm_names})
