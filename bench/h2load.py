"""HTTP/2 load with h2load (nghttp2-client): a few connections, many concurrent streams each.

nginx ends a connection after `keepalive_requests` requests (GOAWAY) and h2load never reconnects:
a long h2load run would go quiet once its connections are used up. So the load runs in rounds,
each on fresh connections that stay under that count, until the time is up.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench.cores import CoreLayout
from bench.load import LoadResult, percentile_ms
from lab.processes import clean_env, require_tools, run

# Below nginx's default `keepalive_requests` (1000), which the guide's config keeps.
REQUESTS_PER_CONNECTION = 990


@dataclass(frozen=True)
class StreamLoad:
    url: str
    api_key: str
    host: str
    connections: int
    streams: int
    """Concurrent streams per connection."""
    seconds: float
    http1: bool = False
    """The double speaks HTTP/1.1 only: its direct run opens connections x streams connections."""
    body: Path | None = None
    """Sent as the body of a POST (h2load's --data); a GET without it."""
    headers: tuple[str, ...] = ()
    """More `name: value` request headers."""

    @property
    def shape(self) -> list[str]:
        if self.http1:
            clients, streams = self.connections * self.streams, 1
        else:
            clients, streams = self.connections, self.streams
        return [
            *(["--h1"] if self.http1 else []),
            "--clients", str(clients),
            "--max-concurrent-streams", str(streams),
            "--requests", str(clients * REQUESTS_PER_CONNECTION),
        ]  # fmt: skip


@dataclass(frozen=True)
class StreamResult:
    load: LoadResult
    data_bytes: int
    """Response DATA received, headers and trailers excluded."""


@dataclass(frozen=True)
class _Round:
    answered: int
    failed: int
    seconds: float
    data_bytes: int
    durations_us: list[float]


def run_h2load(load: StreamLoad, cores: CoreLayout, scratch: Path) -> StreamResult:
    require_tools("h2load", "taskset")
    rounds: list[_Round] = []
    deadline = time.monotonic() + load.seconds
    while not rounds or time.monotonic() < deadline:
        rounds.append(_run_round(load, cores, scratch / "h2load-requests.tsv"))
    durations = sorted(us for round_ in rounds for us in round_.durations_us)
    result = LoadResult(
        answered=sum(round_.answered for round_ in rounds),
        failed=sum(round_.failed for round_ in rounds),
        seconds=sum(round_.seconds for round_ in rounds),
        p50_ms=percentile_ms(durations, 50),
        p99_ms=percentile_ms(durations, 99),
    )
    return StreamResult(result, sum(round_.data_bytes for round_ in rounds))


def _run_round(load: StreamLoad, cores: CoreLayout, log: Path) -> _Round:
    log.unlink(missing_ok=True)
    # h2load reads headers from its command line only. The lab's key is random per run and
    # never leaves loopback.
    output = run(
        cores.client_command(
            [
                "h2load", *load.shape,
                "--header", f"api-key: {load.api_key}", "--header", f":authority: {load.host}",
                *(option for header in load.headers for option in ("--header", header)),
                *(["--data", str(load.body)] if load.body is not None else []),
                "--log-file", str(log), load.url,
            ]
        ),
        env=clean_env(),
        timeout=120,
    )  # fmt: skip
    finished = re.search(r"^finished in ([\d.]+)(m?s),", output, re.M)
    requests = re.search(r"^requests: .* (\d+) errored, (\d+) timeout$", output, re.M)
    statuses = re.search(r"^status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", output, re.M)
    traffic = re.search(r"^traffic: .* \((\d+)\) data$", output, re.M)
    if not (finished and requests and statuses and traffic):
        raise ValueError(f"unexpected h2load output:\n{output[-2000:]}")
    # Per-request log: start time, HTTP status, duration in microseconds.
    return _Round(
        answered=int(statuses[1]),
        failed=sum(int(count) for count in (*requests.groups(), *statuses.groups()[1:])),
        seconds=float(finished[1]) / (1000 if finished[2] == "ms" else 1),
        data_bytes=int(traffic[1]),
        durations_us=[float(line.split("\t")[2]) for line in log.read_text().splitlines()],
    )
