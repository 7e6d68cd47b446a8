"""`audit-logged`: verify's own request must reach the audit log group, naming the token's
application and a client address that is not the host's loopback (verify/audit_log.py).

CloudWatch Logs is moto's: the request is replaced by one that writes the line the host would ship
(the double's `audit_line`, the fields Qdrant writes), so each test decides what reached the log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from moto import mock_aws

from lab.qdrant_double.audit import AUTH_JWT, Caller, audit_line
from verify.audit_log import AUDIT_LOGGED, check_audit_logged
from verify.result import CheckResult, Status
from verify.target import Target, Token

REGION = "eu-west-1"
GROUP = "/secure-qdrant/test/audit"
STREAM = "qdrant-test"
CLIENT = "198.51.100.23"
APP = Token("search-app", "header.claims.signature", {"access": "r"})
TARGET = Target(
    domain="qdrant.example.com",
    address="192.0.2.10",
    api_key="master",
    tokens=(APP,),
    audit_log_group=GROUP,
)


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        yield client


def shipping(logs: Any, **overrides: Any) -> Callable[[Target, Token], str]:
    """A request whose audit line (with `overrides`) the host ships: what the check must find."""

    def request(target: Target, token: Token) -> str:
        tracing_id = "secure-qdrant-verify-0123456789abcdef"
        now = dt.datetime.now(dt.UTC)
        fields = {"remote": CLIENT, "subject": token.name, **overrides}
        caller = Caller(fields["remote"], "/collections/x", tracing_id, AUTH_JWT, fields["subject"])
        line = audit_line(
            overrides.get("moment", now), caller, method="get_collection",
            api="/collections/secure-qdrant-verify-audit", collection="x", error=None,
        )  # fmt: skip
        events = [{"timestamp": int(now.timestamp() * 1000), "message": line}]
        logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)
        return tracing_id

    return request


Request = Callable[[Target, Token], str]


def check(logs: Any, request: Request, target: Target = TARGET) -> CheckResult:
    return check_audit_logged(
        target, lambda: logs, seconds=0, request=request, sleep=lambda _: None
    )


def test_a_request_logged_with_its_subject_and_a_client_address_passes(logs):
    """Who did it and from where: the line verify's request left names the token's application and
    the client's address."""
    result = check(logs, shipping(logs))

    assert result.status == Status.PASS, result.detail
    assert "search-app" in result.detail and CLIENT in result.detail
    assert "not compared" in result.detail, "says why verify's own address is not compared"


def test_a_line_naming_another_application_fails(logs):
    """A subject that is not the token's name leaves the log unable to say which credential."""
    result = check(logs, shipping(logs, subject="other-app"))

    assert result.status == Status.FAIL and "'other-app'" in result.detail


def test_a_line_naming_the_hosts_loopback_fails(logs):
    """127.0.0.1 means Qdrant recorded the edge, not the client: the address is lost."""
    result = check(logs, shipping(logs, remote="127.0.0.1"))

    assert result.status == Status.FAIL and "X-Forwarded-For" in result.detail


def test_a_line_from_long_before_the_request_fails(logs):
    """An old line with the same id is not evidence of this request."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    result = check(logs, shipping(logs, moment=old))

    assert result.status == Status.FAIL and "timestamp" in result.detail


def test_a_request_that_never_reaches_the_log_fails_after_the_wait(logs):
    """Lines lost between Qdrant and CloudWatch Logs are the failure this check exists for."""
    result = check(logs, lambda target, token: "secure-qdrant-verify-never-shipped")

    assert result.status == Status.FAIL and "within 0s" in result.detail


def test_the_wait_is_bounded_and_polls(logs):
    """A line shipped late is found on a later poll; the wait never exceeds its bound."""
    slept: list[float] = []
    late = shipping(logs)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            late(TARGET, APP)

    def request(target: Target, token: Token) -> str:
        return "secure-qdrant-verify-0123456789abcdef"

    result = check_audit_logged(TARGET, lambda: logs, seconds=60, request=request, sleep=sleep)
    assert result.status == Status.PASS, result.detail
    assert len(slept) == 2 and all(0 < s <= 5 for s in slept)


def test_without_the_log_group_output_it_is_skipped_without_a_request():
    """A stack from before the audit log group: nothing to read, nothing to send."""

    def request(target: Target, token: Token) -> str:
        raise AssertionError("no request without a log group to find it in")

    result = check_audit_logged(dataclasses.replace(TARGET, audit_log_group=None), lambda: None,
                                request=request)  # fmt: skip
    assert (result.name, result.status) == (AUDIT_LOGGED, Status.SKIP)
    assert "auditLogGroup" in result.detail


def test_without_credentials_it_is_skipped_with_the_reason(logs):
    def no_credentials() -> Any:
        raise NoCredentialsError()

    result = check_audit_logged(TARGET, no_credentials, seconds=0, request=shipping(logs))

    assert result.status == Status.SKIP and "credentials" in result.detail


@pytest.mark.parametrize("code", ["AccessDeniedException", "AccessDenied"])
def test_credentials_that_may_not_read_the_log_skip_naming_the_permission(logs, code):
    """verify uses the deployer's credentials, which need not read logs: that is no finding about
    the host, and the reason names the permission to grant."""
    denied = ClientError({"Error": {"Code": code, "Message": "no"}}, "FilterLogEvents")

    class Denying:
        def get_paginator(self, name: str) -> Any:
            raise denied

    result = check_audit_logged(TARGET, Denying, seconds=0, request=shipping(logs))

    assert result.status == Status.SKIP and "logs:FilterLogEvents" in result.detail


def test_a_log_group_that_does_not_exist_fails(logs):
    """The outputs say where the lines go: a missing group means they go nowhere."""
    target = dataclasses.replace(TARGET, audit_log_group="/secure-qdrant/test/gone")
    result = check(logs, shipping(logs), target)

    assert result.status == Status.FAIL and "does not exist" in result.detail
