"""The outcome of one security check, shared by every audit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """`detail` is the evidence for a FAIL, the reason for a SKIP, and what was seen for a PASS."""

    name: str
    status: Status
    detail: str
