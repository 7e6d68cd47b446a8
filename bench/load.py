"""What one load run produced, whichever tool ran it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    answered: int
    """Requests (or connections, or calls) that succeeded: HTTP 2xx, gRPC OK."""
    failed: int
    """Anything else: a status the lifted limits should never produce, or a socket error."""
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    """None where the tool measures no per-request latency."""

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds


def percentile_ms(sorted_us: Sequence[float], percentile: float) -> float:
    """Nearest-rank percentile of latencies in microseconds, in milliseconds."""
    if not sorted_us:
        raise ValueError("no latencies recorded")
    rank = max(1, round(percentile / 100 * len(sorted_us)))
    return sorted_us[rank - 1] / 1000


def last_json_line(output: str) -> Any:
    """The JSON report a tool or worker printed last, after whatever else it wrote."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON report in:\n{output[-2000:]}")
