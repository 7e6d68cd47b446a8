"""`audit-logged`: a request verify makes appears in Qdrant's audit log, off the host, naming the
token's application and a real client address.

verify sends one request with a configured token and a tracing id of its own (`x-request-id`, which
the edge passes through and Qdrant records as `tracing_id`), then searches the stack's audit log
group with CloudWatch Logs FilterLogEvents, using the deployer's credentials, for that line within a
bounded wait (the host ships its lines in batches).

The line's address is not compared with verify's own: verify cannot know the public address the
host sees it from (NAT, a proxy, a tunnel). What is checked instead is that the address is not the
host's loopback: a loopback `remote` means Qdrant did not take the address the edge set, and every
line would name the edge instead of the client.

Reading the log takes `logs:FilterLogEvents` on the group; without credentials, without the
`auditLogGroup` output, or with credentials that may not read it, the check is a SKIP saying why.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from verify.aws_audit import AWS_ERRORS, NOT_CONFIGURED
from verify.client import https_request
from verify.result import CheckResult, Status
from verify.target import Target, Token

AUDIT_LOGGED = "audit-logged"
TRACING_HEADER = "x-request-id"
# How long the line may take to reach CloudWatch Logs: the shipper's batch interval with room.
AUDIT_WAIT_SECONDS = 120.0
POLL_SECONDS = 5.0
# The request's time as Qdrant stamps it may differ from verify's clock by this much.
CLOCK_SKEW = dt.timedelta(minutes=2)
# Both the API's name and IAM's for a denied call.
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})

Line = Mapping[str, Any]


def _usable_token(target: Target, now: dt.datetime) -> Token | None:
    return next((t for t in target.tokens if not t.revoked and not t.expired(now)), None)


def audited_request(target: Target, token: Token) -> str:
    """One request Qdrant access-checks, whatever the token's scope (a collection it may not read
    is a `denied` line, still naming the token's subject); returns its tracing id."""
    tracing_id = f"secure-qdrant-verify-{secrets.token_hex(8)}"
    headers = {"api-key": token.jwt, TRACING_HEADER: tracing_id}
    https_request(target, "GET", "/collections/secure-qdrant-verify-audit", headers)
    return tracing_id


def _events(logs: BaseClient, group: str, tracing_id: str, start_ms: int) -> Iterator[Line]:
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, startTime=start_ms, filterPattern=f'"{tracing_id}"'
    )
    for page in pages:
        for event in page["events"]:
            try:
                line = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def find_line(
    logs: BaseClient,
    group: str,
    tracing_id: str,
    since: dt.datetime,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Line | None:
    """The audit line carrying `tracing_id`, polling until `seconds` have passed; None if none
    came. Raises botocore's errors: the caller decides what each one means."""
    start_ms = int((since - CLOCK_SKEW).timestamp() * 1000)
    deadline = clock() + seconds
    while True:
        found = [line for line in _events(logs, group, tracing_id, start_ms)
                 if line.get("tracing_id") == tracing_id]  # fmt: skip
        if found:
            return found[0]
        if clock() >= deadline:
            return None
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))


def judge_line(line: Line, token: Token, since: dt.datetime) -> CheckResult:
    """The line names the token's application, a client address that is not the host's own, and
    the time of verify's request."""
    problems = []
    subject, remote = line.get("subject"), line.get("remote")
    if subject != token.name:
        problems.append(f"subject {subject!r}, not the token's name {token.name!r}")
    if not isinstance(remote, str) or _is_loopback(remote):
        problems.append(
            f"remote {remote!r}: Qdrant recorded the edge, not the client (the edge's "
            "X-Forwarded-For was not trusted)"
        )
    stamped = _timestamp(line.get("timestamp"))
    if stamped is None or not since - CLOCK_SKEW <= stamped <= _now() + CLOCK_SKEW:
        problems.append(f"timestamp {line.get('timestamp')!r} is not the request's time")
    if problems:
        return CheckResult(AUDIT_LOGGED, Status.FAIL, "; ".join(problems))
    return CheckResult(
        AUDIT_LOGGED,
        Status.PASS,
        f"{token.name}'s request logged with its subject, from {remote}, result "
        f"{line.get('result')} (verify's own public address is not known here, so not compared)",
    )


def check_audit_logged(
    target: Target,
    logs_client: Callable[[], BaseClient],
    seconds: float = AUDIT_WAIT_SECONDS,
    request: Callable[[Target, Token], str] = audited_request,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    group = target.audit_log_group
    if group is None:
        return CheckResult(AUDIT_LOGGED, Status.SKIP, "no auditLogGroup output")
    since = _now()
    token = _usable_token(target, since)
    if token is None:
        reason = "no unrevoked, unexpired token to make an audited request with"
        return CheckResult(AUDIT_LOGGED, Status.SKIP, reason)
    try:
        logs = logs_client()
    except AWS_ERRORS as error:
        return _unreadable(group, error)
    try:
        tracing_id = request(target, token)
    except OSError as error:
        return CheckResult(AUDIT_LOGGED, Status.FAIL, f"the audited request failed: {error}")
    try:
        line = find_line(logs, group, tracing_id, since, seconds, sleep)
    except AWS_ERRORS as error:
        return _unreadable(group, error)
    if line is None:
        return CheckResult(
            AUDIT_LOGGED,
            Status.FAIL,
            f"no line for {token.name}'s request ({TRACING_HEADER} {tracing_id}) in {group} "
            f"within {seconds:g}s",
        )
    return judge_line(line, token, since)


def _unreadable(group: str, error: Exception) -> CheckResult:
    """No credentials, or credentials that may not read the group: the log cannot be read here,
    which says nothing about the host. A group that does not exist, or any other error, is a
    finding."""
    if isinstance(error, NOT_CONFIGURED):
        return CheckResult(AUDIT_LOGGED, Status.SKIP, f"not verified: {error}")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in DENIED_CODES:
            reason = f"not verified: these credentials may not read {group} (logs:FilterLogEvents)"
            return CheckResult(AUDIT_LOGGED, Status.SKIP, reason)
        if code == "ResourceNotFoundException":
            return CheckResult(AUDIT_LOGGED, Status.FAIL, f"{group} does not exist")
    return CheckResult(AUDIT_LOGGED, Status.FAIL, f"cannot read {group}: {error}")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
