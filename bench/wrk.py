"""HTTP/1.1 load with wrk: keep-alive connections, or one new connection per request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.cores import CoreLayout
from bench.load import LoadResult, last_json_line
from lab.processes import clean_env, require_tools, run

_SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class HttpLoad:
    url: str
    api_key: str
    host: str
    """The Host header: the lab's domain."""
    connections: int
    seconds: float
    connection_per_request: bool = False


def run_wrk(load: HttpLoad, cores: CoreLayout) -> LoadResult:
    require_tools("wrk", "taskset")
    # One thread for the one client core. With keep-alive it sends far more than the server side
    # answers; with a handshake per request it may not, and the report's "client busy" says so.
    command = cores.client_command(
        [
            "wrk", "--threads", "1", "--connections", str(load.connections),
            "--duration", f"{max(1, round(load.seconds))}s", "--timeout", "5s",
            "--script", str(_SCRIPT), load.url,
        ]
    )  # fmt: skip
    env = clean_env(
        BENCH_API_KEY=load.api_key,
        BENCH_HOST=load.host,
        BENCH_CONNECTION_CLOSE="1" if load.connection_per_request else "0",
    )
    report = last_json_line(run(command, env=env, timeout=load.seconds + 60))
    return LoadResult(
        answered=report["requests"] - report["non_2xx"],
        failed=report["non_2xx"] + report["socket_errors"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
    )
