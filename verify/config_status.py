"""Whether the host serves this deploy's configuration: the version it reports in its status object
(written by its converge timer, cloud-init/converge.py) against the `configVersion` output.

`pulumi up` publishes a new document and the host applies it within about a minute, in place: the
deploy gate waits for the report before its checks, or the checks would judge the version before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.aws_audit import AWS_ERRORS, NOT_CONFIGURED
from verify.result import CheckResult, Status
from verify.target import ExpectedConfig

CONFIG = "config-version"


@dataclass(frozen=True)
class HostStatus:
    version: str | None
    error: str | None = None
    rejected: str | None = None
    """The version the host refused, when it refused one (it keeps serving `version`)."""


def parse_status(body: bytes) -> HostStatus:
    """The host's report, `{"version", "error"}` (and `rejected` after a refusal); anything else is
    reported as what it is rather than trusted."""
    try:
        report: Any = json.loads(body)
    except (ValueError, RecursionError):
        return HostStatus(None, "its status object is not JSON")
    if not isinstance(report, dict):
        return HostStatus(None, "its status object is not a JSON object")

    def text(key: str) -> str | None:
        value = report.get(key)
        return value if isinstance(value, str) and value else None

    return HostStatus(text("version"), text("error"), text("rejected"))


def read_status(s3: Any, expected: ExpectedConfig) -> HostStatus:
    """The host's report now; an object that cannot be read is a status with that error. Raises
    NOT_CONFIGURED: with nothing to sign in with, no later read will do better."""
    try:
        body = s3.get_object(Bucket=expected.bucket, Key=expected.status_key)["Body"].read()
    except NOT_CONFIGURED:
        raise
    except AWS_ERRORS as error:
        return HostStatus(None, f"its status cannot be read: {error}")
    return parse_status(body)


def status_detail(expected: ExpectedConfig, status: HostStatus, seconds: float) -> str:
    """Why the wait ended without the version: both versions, and the host's own error."""
    reported = status.version or "none"
    detail = (
        f"waited {seconds:g} s for configuration version {expected.version}; "
        f"the host reports version {reported}"
    )
    if status.rejected:
        detail += f", having rejected {status.rejected}"
    if status.error:
        detail += f" (error: {status.error})"
    return detail


def wait_for_config(
    s3: Any,
    expected: ExpectedConfig,
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Poll the status object until the host reports `expected.version` or `seconds` pass (one
    read when 0): PASS naming the version, or FAIL naming both and the host's error."""
    deadline = clock() + seconds
    delay = 2.0
    while True:
        status = read_status(s3, expected)
        if status.version == expected.version:
            return CheckResult(CONFIG, Status.PASS, f"the host serves version {expected.version}")
        # Refused: the host keeps serving its last good version, however long one waits.
        if status.rejected == expected.version or clock() >= deadline:
            return CheckResult(CONFIG, Status.FAIL, status_detail(expected, status, seconds))
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(delay * 2, 15.0)
