"""What CloudWatch does with the audit log's metric filters and alarms, modelled for the tests.

Neither moto (5.x stores metric filters but publishes no metric from them, and its FilterLogEvents
matches only plain terms) nor anything else here runs CloudWatch's filter engine, so this module is
the judge, built from AWS's documentation, not from the program's code: it parses the *rendered*
pattern string the program registers, for the subset of the JSON filter syntax the program uses
("Filter pattern syntax for metric filters", CloudWatch Logs User Guide), and refuses any other
syntax, so a pattern drifting outside what was checked fails loudly. The alarm side is
PutMetricAlarm's arithmetic for one period: a Sum per aligned minute compared to the threshold.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

_CONDITION = re.compile(
    r'\(\$\.(?P<field>[A-Za-z_]\w*) (?:= "(?P<value>[^"\\]*)"|(?P<absent>NOT EXISTS))\)'
)


def _conditions(pattern: str) -> list[re.Match[str]]:
    if not (pattern.startswith("{ ") and pattern.endswith(" }")):
        raise ValueError(f"not a JSON filter pattern of the modelled subset: {pattern!r}")
    parts = pattern[2:-2].split(" && ")
    matches = [_CONDITION.fullmatch(part) for part in parts]
    if not all(matches):
        raise ValueError(f"a condition outside the modelled subset: {pattern!r}")
    return [match for match in matches if match]


def _holds(condition: re.Match[str], line: Mapping[str, Any]) -> bool:
    field = condition["field"]
    if condition["absent"]:
        return field not in line
    value = line.get(field)
    if not isinstance(value, str):
        return False
    # In a JSON string comparison `*` is a wildcard: `"*"` matches any string value.
    parts = re.split(r"(\*)", condition["value"])
    wanted = "".join(".*" if part == "*" else re.escape(part) for part in parts)
    return re.fullmatch(wanted, value) is not None


def matches(pattern: str, message: str) -> bool:
    """Whether a log event matches a JSON filter pattern: a message that is not a JSON object
    matches no JSON pattern."""
    conditions = _conditions(pattern)
    try:
        line = json.loads(message)
    except ValueError:
        return False
    return isinstance(line, dict) and all(_holds(condition, line) for condition in conditions)


Metric = tuple[str, str, tuple[tuple[str, str], ...]]
"""Namespace, metric name, sorted dimensions."""


Sums = Counter[tuple[Metric, dt.datetime]]


def published(filters: Iterable[Mapping[str, Any]], messages: Iterable[str]) -> Sums:
    """The metric filters' data points, summed per metric and aligned minute of the event's time:
    each matching event adds the transformation's value under the dimensions its selectors take
    from the event."""
    sums: Sums = Counter()
    for message in messages:
        line = json.loads(message)
        moment = dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        minute = moment.replace(second=0, microsecond=0)
        for metric_filter in filters:
            if not matches(metric_filter["pattern"], message):
                continue
            transformation = metric_filter["metricTransformation"]
            selectors = transformation.get("dimensions") or {}
            fields = {name: selector.removeprefix("$.") for name, selector in selectors.items()}
            dimensions = tuple(sorted((name, line[field]) for name, field in fields.items()))
            metric = (transformation["namespace"], transformation["name"], dimensions)
            sums[(metric, minute)] += float(transformation["value"])
    return sums


_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
}


def fires(alarm: Mapping[str, Any], sums: Sums) -> bool:
    """Whether a one-period, one-minute Sum alarm breaches in any minute of the data; a minute
    without data is missing, and `notBreaching` makes it not breach."""
    assert (alarm["statistic"], alarm["period"], alarm["evaluationPeriods"]) == ("Sum", 60, 1)
    assert alarm["treatMissingData"] == "notBreaching"
    dimensions = tuple(sorted((alarm.get("dimensions") or {}).items()))
    watched = (alarm["namespace"], alarm["metricName"], dimensions)
    compare = _COMPARE[alarm["comparisonOperator"]]
    totals = [total for (metric, _minute), total in sums.items() if metric == watched]
    return any(compare(total, alarm["threshold"]) for total in totals)
