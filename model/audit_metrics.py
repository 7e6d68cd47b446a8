"""Denied requests in Qdrant's audit log, as CloudWatch metrics: the metric filters on the audit
log group, as data (pure, no Pulumi import).

Every denied line counts exactly once: under its application (the JWT's `subject`, which each
minted token sets to its name) or, when the line has no subject, under no application. A line
without a subject is a request whose credential named no application: a wrong or missing key, a
forged or expired token (Qdrant's `log_denied_auth` records none), or a key's own refusal. Counted
under a dimension of its own it would need a default dimension value, which CloudWatch Logs does not
allow on a filter with dimensions; counted in the per-subject metric it would vanish. So a second
filter, without dimensions, counts them: the per-application alarms stay one application's, and
credential guessing has its own alarm.

The patterns are CloudWatch Logs' JSON filter syntax ("Filter pattern syntax for metric filters",
CloudWatch Logs User Guide): `{ SELECTOR = "value" }`, `{ SELECTOR NOT EXISTS }`, and
`= "*"` for a field that is present, each in parentheses and joined with `&&`: the form aws-cdk's
`FilterPattern.all(stringValue(...), exists(...), notExists(...))` renders
(aws-cdk-lib/aws-logs/lib/pattern.ts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Published by CloudWatch Logs, not by the host: the instance role may put metric data only in
# METRICS_NAMESPACE, so a compromised host cannot write into (or mask) these counts.
AUDIT_METRICS_NAMESPACE = "SecureQdrant/Audit"
DENIED_METRIC = "DeniedRequests"
UNNAMED_DENIED_METRIC = "DeniedRequestsWithoutSubject"
SUBJECT_DIMENSION = "Subject"
# CloudWatch Logs: at most three dimensions per metric filter (MetricTransformation, Dimensions).
MAX_FILTER_DIMENSIONS = 3

Operator = Literal["=", "present", "absent"]


@dataclass(frozen=True)
class Condition:
    """One test of one top-level field of an audit line."""

    field: str
    operator: Operator
    value: str = ""

    def pattern(self) -> str:
        selector = f"$.{self.field}"
        if self.operator == "absent":
            return f"({selector} NOT EXISTS)"
        # A wildcard alone matches any string value: the field is there.
        value = "*" if self.operator == "present" else self.value
        return f'({selector} = "{value}")'


@dataclass(frozen=True)
class AuditMetricFilter:
    """A metric filter on the audit log group: lines meeting every condition count 1, under the
    dimensions taken from their fields."""

    key: str
    """Names the filter resource: `<component>-<key>`."""
    conditions: tuple[Condition, ...]
    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    """(dimension name, the line's field it takes its value from)."""

    def pattern(self) -> str:
        return "{ " + " && ".join(condition.pattern() for condition in self.conditions) + " }"

    def dimension_selectors(self) -> dict[str, str]:
        return {name: f"$.{field}" for name, field in self.dimensions}


DENIED = Condition("result", "=", "denied")
DENIED_BY_SUBJECT = AuditMetricFilter(
    "denied-by-subject",
    # The dimension's field must be in the pattern: a line without it would have no value to
    # publish under.
    (DENIED, Condition("subject", "present")),
    DENIED_METRIC,
    ((SUBJECT_DIMENSION, "subject"),),
)
DENIED_WITHOUT_SUBJECT = AuditMetricFilter(
    "denied-without-subject", (DENIED, Condition("subject", "absent")), UNNAMED_DENIED_METRIC
)
AUDIT_METRIC_FILTERS = (DENIED_BY_SUBJECT, DENIED_WITHOUT_SUBJECT)
