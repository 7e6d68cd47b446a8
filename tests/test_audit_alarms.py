"""Denied requests per application, and an alarm per application (components/audit_alarms.py).

The metric filters and alarms the program registers (Pulumi mocks) are judged against AWS's rules
for metric filters and fed the audit lines the Qdrant double writes for real requests; what
CloudWatch would compute from them is tests/cloudwatch_oracle.py, built from AWS's documented
syntax. What cannot run here: CloudWatch Logs' own filter engine and alarm evaluation (moto
publishes no metric from a metric filter).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.audit_alarms import AuditAlarms, AuditAlarmsArgs
from lab.qdrant_double import QdrantDouble
from lab.qdrant_double.audit import AuditConfig
from model.audit_metrics import MAX_FILTER_DIMENSIONS
from tests.cloudwatch_oracle import fires, matches, published
from tests.double_client import (
    KEY,
    READ_ONLY_KEY,
    UPSERT,
    WRONG_KEY,
    api_key,
    bearer,
    rest,
    start_double,
    token,
)
from tests.program import MINIMAL_CONFIG, Deployment, _run, deploy
from tests.readme import stated

FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "/secure-qdrant/test/audit"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:qdrant-test-alerts"
THRESHOLD = 5
# CloudWatch's StandardUnit values a count may take (PutMetricData, MetricDatum.Unit).
COUNT_UNITS = {"Count", "None"}


def _deploy(subjects: tuple[str, ...], threshold: int = THRESHOLD) -> Deployment:
    def program() -> None:
        AuditAlarms(
            "qdrant-test-audit",
            AuditAlarmsArgs(LOG_GROUP, TOPIC, subjects, threshold, tags={"stack": "test"}),
        )

    return _run("test", {}, [], program)


DEPLOYED = _deploy(("app-a", "app-b"))
FILTERS = [resource.inputs for resource in DEPLOYED.of_type(FILTER)]
ALARMS = {resource.name: resource.inputs for resource in DEPLOYED.of_type(ALARM)}


@pytest.mark.parametrize("metric_filter", FILTERS, ids=lambda f: f["metricTransformation"]["name"])
def test_each_metric_filter_is_one_cloudwatch_logs_accepts(metric_filter: dict[str, Any]) -> None:
    """CloudWatch Logs' rules for a metric filter (PutMetricFilter, MetricTransformation): at most
    three dimensions, each a field of the JSON event the pattern selects, and no default value
    beside dimensions. A filter AWS refuses fails `pulumi up` after the log group exists."""
    transformation = metric_filter["metricTransformation"]
    dimensions = transformation.get("dimensions") or {}
    assert metric_filter["logGroupName"] == LOG_GROUP
    assert len(dimensions) <= MAX_FILTER_DIMENSIONS
    for selector in dimensions.values():
        assert selector.startswith("$."), "dimensions come only from JSON (or delimited) fields"
        assert f"({selector} = " in metric_filter["pattern"], "the pattern selects the field"
    assert not (dimensions and "defaultValue" in transformation)
    assert transformation["unit"] in COUNT_UNITS and transformation["value"] == "1"


def test_one_alarm_per_application_and_one_for_denials_naming_none() -> None:
    """Each configured token's name is its `subject`: its own alarm, to the stack's topic."""
    assert sorted(ALARMS) == [
        "qdrant-test-audit-denied-app-a",
        "qdrant-test-audit-denied-app-b",
        "qdrant-test-audit-denied-without-subject",
    ]
    for alarm in ALARMS.values():
        assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC]
        assert alarm["treatMissingData"] == "notBreaching", "no denial is no data"
        assert alarm["threshold"] == THRESHOLD


def test_the_patterns_are_written_in_the_documented_json_syntax() -> None:
    """The form aws-cdk renders for `FilterPattern.all(stringValue("$.result", "=", "denied"),
    exists("$.subject"))` and its `notExists`: a pattern CloudWatch Logs refuses fails `pulumi up`,
    one it reads differently counts the wrong lines."""
    assert sorted(f["pattern"] for f in FILTERS) == [
        '{ ($.result = "denied") && ($.subject = "*") }',
        '{ ($.result = "denied") && ($.subject NOT EXISTS) }',
    ]


def test_the_patterns_are_parsed_as_written_and_other_syntax_is_refused() -> None:
    """The oracle judges only the syntax it models: anything else is an error, not a guess."""
    with pytest.raises(ValueError):
        matches('{ $.result = "denied" || $.x = 1 }', "{}")
    assert matches('{ ($.result = "denied") }', '{"result":"denied"}')
    assert not matches('{ ($.result = "denied") }', "not json")


def test_a_line_counts_under_its_application_or_under_none_and_never_twice() -> None:
    """A denied line with a subject is its application's; one without is nobody's; an `ok` line
    counts nowhere."""
    lines = [
        '{"timestamp":"2026-12-07T23:00:01Z","result":"denied","subject":"app-a"}',
        '{"timestamp":"2026-12-07T23:00:02Z","result":"denied","auth_type":"none"}',
        '{"timestamp":"2026-12-07T23:00:03Z","result":"ok","subject":"app-a"}',
    ]
    counted = [[matches(f["pattern"], line) for f in FILTERS] for line in lines]
    assert [sum(row) for row in counted] == [1, 1, 0]


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[QdrantDouble]:
    double = start_double(audit=AuditConfig(enabled=True, dir=str(tmp_path)))
    try:
        yield double
    finally:
        double.stop()


def _audit_lines(double: QdrantDouble) -> list[str]:
    return [
        line
        for log in sorted(Path(double.config.audit.dir).glob("audit.*.log"))
        for line in log.read_text().splitlines()
    ]


def _reader(subject: str) -> str:
    return token({"access": [{"collection": "alpha", "access": "r"}], "subject": subject})


def test_a_flood_of_denials_from_one_application_fires_its_alarm_and_not_anothers(audited) -> None:
    """The guide's 401/403 spike, per application: app-a's read token trying to write twice the
    threshold plus two times (so some aligned minute holds more than the threshold, wherever a
    minute boundary falls) fires app-a's alarm; app-b, denied exactly the threshold and reading
    freely, does not fire; forged tokens and a wrong key count under no application."""
    flood, steady = 2 * THRESHOLD + 2, THRESHOLD
    app_a, app_b = bearer(_reader("app-a")), bearer(_reader("app-b"))
    for _ in range(flood):
        assert rest(audited, "PUT", "/collections/alpha/points", UPSERT, app_a)[0] == 403
    for _ in range(steady):
        assert rest(audited, "PUT", "/collections/alpha/points", UPSERT, app_b)[0] == 403
        assert rest(audited, "POST", "/collections/alpha/points/scroll", {}, app_b)[0] == 200
    forged = token({"access": "m", "subject": "app-b"}, key=WRONG_KEY)
    for _ in range(flood):
        rest(audited, "POST", "/collections/alpha/points/scroll", {}, bearer(forged))
    rest(audited, "GET", "/collections", None, api_key(WRONG_KEY))
    # Keys are admitted, and a read-only key's refused write names no application either.
    assert rest(audited, "GET", "/collections", None, api_key(KEY))[0] == 200
    rest(audited, "PUT", "/collections/alpha/points", UPSERT, api_key(READ_ONLY_KEY))

    lines = _audit_lines(audited)
    sums = published(FILTERS, lines)

    assert fires(ALARMS["qdrant-test-audit-denied-app-a"], sums)
    assert not fires(ALARMS["qdrant-test-audit-denied-app-b"], sums)
    assert fires(ALARMS["qdrant-test-audit-denied-without-subject"], sums)
    denied = sum(1 for line in lines if json.loads(line)["result"] == "denied")
    assert sum(sums.values()) == denied, "every denied line counted exactly once"


def test_the_same_flood_under_a_higher_threshold_fires_nothing(audited) -> None:
    """The alarm follows `alarmDeniedPerMinute`, not a constant."""
    for _ in range(2 * THRESHOLD + 2):
        rest(audited, "PUT", "/collections/alpha/points", UPSERT, bearer(_reader("app-a")))
    alarm = {r.name: r.inputs for r in _deploy(("app-a",), threshold=100).of_type(ALARM)}

    sums = published(FILTERS, _audit_lines(audited))
    assert not fires(alarm["qdrant-test-audit-denied-app-a"], sums)


def test_the_readme_counts_the_alarms_the_program_makes() -> None:
    """The resource list is what an operator budgets and audits by: its count of alarms must be
    the program's, with and without backups, for any number of tokens."""
    host_alarms, without_backups = (
        {"ten": 10, "eight": 8}[word]
        for word in stated(r"(\w+) CloudWatch alarms on the host \((\w+) without backups\)")
    )
    tokens = [{"name": f"app-{n}", "access": "r"} for n in range(3)]
    for backups, expected in ((True, host_alarms), (False, without_backups)):
        deployment = deploy({**MINIMAL_CONFIG, "tokens": tokens, "backupSchedule": backups})
        alarms = deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        assert len(alarms) == expected + len(tokens) + 1
