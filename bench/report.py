"""The run as Markdown (what docs/performance.md records) and JSON (what the smoke test reads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.results import DIRECT, GUIDE, METRICS, Results
from bench.scenarios import Scenario, Shape


def render_markdown(
    facts: Mapping[str, str], shape: Shape, scenarios: Sequence[Scenario], results: Results
) -> str:
    lines = ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts.items()]
    lines += [
        "",
        f"## Results ({shape.seconds:g} s per run after {shape.warmup_seconds:g} s of warm-up)",
        "",
        "Every figure is followed by its ratio to `direct` and to `guide`: `value (÷direct, "
        "÷guide)`. CPU is user+system time per answered request: nginx's workers (proxy) and the "
        "Qdrant double's process (backend). Server and client busy: share of those cores' time "
        "in use during the run (anyone's, kernel included): near 100% marks the side that set "
        "the pace.",
    ]
    for scenario in scenarios:
        lines += ["", f"### {scenario.title}", "", scenario.how(shape), ""]
        header = [scenario.unit if name == "per second" else name for name, _ in METRICS]
        lines += ["| target | " + " | ".join(header) + " | server busy | client busy | failed |"]
        lines += ["|---" * (len(header) + 4) + "|"]
        for measurement in (m for m in results.measurements if m.scenario == scenario.key):
            cells = []
            for _, metric in METRICS:
                value = metric(measurement)
                ratios = (results.ratio(measurement, metric, ref) for ref in (DIRECT, GUIDE))
                cells.append(_figure(value, *ratios))
            cells += [f"{measurement.server_busy:.0%}", f"{measurement.client_busy:.0%}"]
            cells += [str(measurement.load.failed)]
            lines += [f"| {measurement.target} | " + " | ".join(cells) + " |"]
    lines += ["", "## Goals", "", "| goal | ours ÷ reference | met |", "|---|---|---|"]
    for goal in results.goals():
        lines += [f"| {goal.goal.text} | {goal.ratio:.2f} | {'yes' if goal.met else 'NO'} |"]
    if results.failed:
        lines += ["", f"**{results.failed} requests failed: these figures are not valid.**"]
    return "\n".join(lines) + "\n"


def to_json(facts: Mapping[str, str], results: Results) -> dict[str, Any]:
    return {
        "facts": dict(facts),
        "measurements": [
            {
                "scenario": m.scenario,
                "target": m.target,
                "answered": m.load.answered,
                "failed": m.load.failed,
                "seconds": m.load.seconds,
                "server_busy": m.server_busy,
                "client_busy": m.client_busy,
                **{name: metric(m) for name, metric in METRICS},
            }
            for m in results.measurements
        ],
        "goals": [
            {"goal": goal.goal.text, "ratio": goal.ratio, "met": goal.met}
            for goal in results.goals()
        ],
    }


def _figure(value: float | None, *ratios: float | None) -> str:
    if value is None:
        return "—"
    shown = ", ".join("—" if ratio is None else f"{ratio:.2f}" for ratio in ratios)
    return f"{_number(value)} ({shown})"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"
