"""The deploy gate waits for this deploy's configuration (issue 19): it polls the host's status
object in S3 (moto's) until the host reports the version the outputs name, bounded; on timeout
the failure names both versions and the host's own error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from verify.cli import config_checks
from verify.config_status import CONFIG, wait_for_config
from verify.result import Status
from verify.target import ExpectedConfig, TargetError, target_from_outputs

REGION = "eu-west-1"
BUCKET = "qdrant-test-1a2b3c4d-20261207161201000000000002"
STATUS_KEY = "hosts/qdrant-test/status.json"
DEPLOYED = "9f" * 32
PREVIOUS = "3c" * 32
EXPECTED = ExpectedConfig(DEPLOYED, BUCKET, STATUS_KEY)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 with the stack's bucket, and nothing else reachable."""
    for variable, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(variable, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


def report(s3: Any, **status: Any) -> None:
    """What the host's converge timer writes."""
    s3.put_object(Bucket=BUCKET, Key=STATUS_KEY, Body=json.dumps(status).encode())


class Clock:
    """Time that passes only when the wait sleeps: a 900-second bound costs no real time."""

    def __init__(self, on_sleep: Callable[[float], None] = lambda now: None) -> None:
        self.now = 0.0
        self.slept = 0
        self._on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += 1
        self._on_sleep(self.now)


def wait(s3: Any, seconds: float, clock: Clock | None = None):
    clock = clock or Clock()
    return wait_for_config(s3, EXPECTED, seconds, clock=clock, sleep=clock.sleep)


def test_a_host_on_another_version_fails_the_wait_naming_both(s3):
    """A host still on the previous document when the bound is up: the operator must see what was
    expected and what runs, not a bare timeout."""
    report(s3, version=PREVIOUS, error=None)

    result = wait(s3, 900)

    assert result.status is Status.FAIL
    assert DEPLOYED in result.detail and PREVIOUS in result.detail
    assert "900 s" in result.detail


def test_the_hosts_error_is_in_the_failure(s3):
    """Unreachable S3, a failed apply: the host says why it is behind."""
    report(s3, version=PREVIOUS, error="nginx reload failed")

    assert "nginx reload failed" in wait(s3, 60).detail


def test_a_host_serving_the_deployed_version_passes_at_once(s3):
    report(s3, version=DEPLOYED, error=None)
    clock = Clock()

    result = wait(s3, 900, clock)

    assert (result.name, result.status) == (CONFIG, Status.PASS)
    assert DEPLOYED in result.detail
    assert clock.slept == 0


def test_the_wait_ends_when_the_host_reports_the_version(s3):
    """The converge timer runs every minute: the gate waits for its next report, not the bound."""
    report(s3, version=PREVIOUS, error=None)
    clock = Clock(on_sleep=lambda now: now >= 60 and report(s3, version=DEPLOYED, error=None))

    result = wait(s3, 900, clock)

    assert result.status is Status.PASS
    assert 60 <= clock.now < 120


def test_a_rejected_version_fails_at_once_with_the_reason(s3):
    """The host keeps serving its last good version after refusing this one: waiting out the
    bound would change nothing."""
    report(s3, version=PREVIOUS, rejected=DEPLOYED, error="nginx -t: unknown directive")
    clock = Clock()

    result = wait(s3, 900, clock)

    assert result.status is Status.FAIL
    assert clock.slept == 0
    assert all(part in result.detail for part in (DEPLOYED, PREVIOUS, "unknown directive"))


def test_a_host_that_never_reported_fails_naming_no_version(s3):
    """A first boot that never got as far as its first report."""
    result = wait(s3, 30)

    assert result.status is Status.FAIL
    assert "reports version none" in result.detail
    assert "NoSuchKey" in result.detail


def test_a_status_that_is_not_json_is_not_trusted(s3):
    s3.put_object(Bucket=BUCKET, Key=STATUS_KEY, Body=DEPLOYED.encode())

    assert wait(s3, 0).status is Status.FAIL


OUTPUTS = {"restUrl": "https://qdrant.example.com", "publicIp": "198.51.100.7", "apiKey": "k" * 32}


def test_the_gate_reads_what_to_wait_for_from_the_stack_outputs():
    outputs = {**OUTPUTS, "configVersion": DEPLOYED, "configBucket": BUCKET,
               "configStatusKey": STATUS_KEY}  # fmt: skip

    assert target_from_outputs(outputs).config == EXPECTED


def test_a_stack_from_before_published_configuration_waits_for_none(s3):
    """Its outputs have no configVersion: the gate checks it as before."""
    target = target_from_outputs(OUTPUTS)

    assert target.config is None
    assert config_checks(target, REGION, {}, 900) == []


def test_a_version_without_its_status_key_is_refused_by_name():
    with pytest.raises(TargetError, match="configStatusKey"):
        target_from_outputs({**OUTPUTS, "configVersion": DEPLOYED, "configBucket": BUCKET})


def test_the_gate_asks_s3_as_the_stack_signs_in(s3):
    """Through the session the AWS audit uses: the same credentials and assumed roles."""
    report(s3, version=PREVIOUS, error=None)
    outputs = {**OUTPUTS, "configVersion": DEPLOYED, "configBucket": BUCKET,
               "configStatusKey": STATUS_KEY}  # fmt: skip

    [result] = config_checks(target_from_outputs(outputs), REGION, {}, 0)

    assert result.status is Status.FAIL and PREVIOUS in result.detail


def test_without_credentials_the_check_is_skipped_at_once(tmp_path, monkeypatch):
    """As every AWS check: no credentials says nothing about the host, and the gate must not spend
    its whole wait asking again."""
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outputs = {**OUTPUTS, "configVersion": DEPLOYED, "configBucket": BUCKET,
               "configStatusKey": STATUS_KEY}  # fmt: skip
    slept = []
    monkeypatch.setattr("verify.config_status.time.sleep", slept.append)

    [result] = config_checks(target_from_outputs(outputs), REGION, {}, 900)

    assert result.status is Status.SKIP
    assert "Unable to locate credentials" in result.detail
    assert slept == []
