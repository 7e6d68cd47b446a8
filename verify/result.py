"""The outcome of one security check, shared by every audit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    WARN = "WARN"
    """Works today, needs action soon; never changes the exit status."""


@dataclass(frozen=True)
class CheckResult:
    """`detail` is the evidence for a FAIL, the reason for a SKIP, what was seen for a PASS and
    what to do for a WARN."""

    name: str
    status: Status
    detail: str
