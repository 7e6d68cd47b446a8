"""Figures per (scenario, target), the ratios between targets, and the issue's goals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.load import LoadResult

DIRECT, GUIDE, OURS = "direct", "guide", "ours"


@dataclass(frozen=True)
class Measurement:
    scenario: str
    target: str
    load: LoadResult
    proxy_cpu_seconds: float | None
    """nginx workers' user+system time over the run; None when nothing proxies."""
    backend_cpu_seconds: float
    """The Qdrant double's process over the same run."""
    server_busy: float
    """How busy the server cores were (0 to 1): near 1, the run was bound by their CPU."""
    client_busy: float
    """The same for the load generators' cores: near 1 there, the client was the limit."""

    @property
    def per_second(self) -> float:
        return self.load.per_second

    @property
    def proxy_cpu_us(self) -> float | None:
        if self.proxy_cpu_seconds is None:
            return None
        return self.proxy_cpu_seconds / self.load.answered * 1e6

    @property
    def backend_cpu_us(self) -> float:
        return self.backend_cpu_seconds / self.load.answered * 1e6


Metric = Callable[[Measurement], "float | None"]

METRICS: tuple[tuple[str, Metric], ...] = (
    ("per second", lambda m: m.per_second),
    ("p50 ms", lambda m: m.load.p50_ms),
    ("p99 ms", lambda m: m.load.p99_ms),
    ("proxy CPU µs/req", lambda m: m.proxy_cpu_us),
    ("backend CPU µs/req", lambda m: m.backend_cpu_us),
)


@dataclass(frozen=True)
class Goal:
    text: str
    scenario: str
    metric: Metric
    versus: str
    bound: float
    at_most: bool = False
    """The ratio must stay at or under `bound` (costs) rather than reach it (rates)."""


def _rate(m: Measurement) -> float:
    return m.per_second


def _proxy_cpu(m: Measurement) -> float | None:
    return m.proxy_cpu_us


GOALS = (
    Goal("keep-alive HTTP/1.1 req/s ≥ 75% of direct", "keep-alive", _rate, DIRECT, 0.75),
    Goal("keep-alive HTTP/1.1 req/s ≥ 2.5× the guide", "keep-alive", _rate, GUIDE, 2.5),
    *(
        Goal(
            f"proxy CPU per request ≤ ½ the guide's ({scenario})",
            scenario,
            _proxy_cpu,
            GUIDE,
            0.5,
            at_most=True,
        )
        for scenario in ("keep-alive", "http2", "new-connection", "resumed", "grpc")
    ),
    Goal(
        "new TLS connections/s ≥ 2× the guide (full handshake)", "new-connection", _rate, GUIDE, 2.0
    ),
    Goal("new TLS connections/s ≥ 2× the guide (resumed)", "resumed", _rate, GUIDE, 2.0),
    Goal("gRPC unary calls/s ≥ 75% of direct", "grpc", _rate, DIRECT, 0.75),
)


@dataclass(frozen=True)
class GoalResult:
    goal: Goal
    ratio: float

    @property
    def met(self) -> bool:
        if self.goal.at_most:
            return self.ratio <= self.goal.bound
        return self.ratio >= self.goal.bound


class Results:
    def __init__(self, measurements: Sequence[Measurement]) -> None:
        self.measurements = tuple(measurements)
        self._by_key = {(m.scenario, m.target): m for m in measurements}

    def get(self, scenario: str, target: str) -> Measurement:
        return self._by_key[(scenario, target)]

    def ratio(self, measurement: Measurement, metric: Metric, versus: str) -> float | None:
        value = metric(measurement)
        reference = metric(self.get(measurement.scenario, versus))
        if value is None or reference is None or reference == 0:
            return None
        return value / reference

    def goals(self) -> tuple[GoalResult, ...]:
        results = []
        for goal in GOALS:
            ratio = self.ratio(self.get(goal.scenario, OURS), goal.metric, goal.versus)
            assert ratio is not None, f"no figure for {goal.text}"
            results.append(GoalResult(goal, ratio))
        return tuple(results)

    @property
    def failed(self) -> int:
        return sum(m.load.failed for m in self.measurements)
