"""Resumed TLS connections with `openssl s_time -reuse`, one authenticated request on each.

wrk and h2load never resume a session, so they measure full handshakes only; s_time resumes the
session of its first connection on every later one (TLS 1.3: the ticket nginx sends, which with
`ssl_session_tickets off` only names a session kept in nginx's cache). Several s_time processes run
at once, since each waits for its own connection to finish before starting the next.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.cores import CoreLayout
from bench.load import LoadResult
from lab.processes import LOOPBACK, Service, clean_env, require_tools, wait_until


@dataclass(frozen=True)
class ResumptionLoad:
    port: int
    api_key: str
    host: str
    ca_file: Path
    processes: int
    seconds: int


def run_s_time(load: ResumptionLoad, cores: CoreLayout, scratch: Path) -> LoadResult:
    require_tools("openssl", "taskset")
    # s_time sends `GET <page> HTTP/1.0` and nothing else: the page argument carries the request's
    # headers, and the trailing ` HTTP/1.0` becomes the value of a header nobody reads.
    page = (
        f"/collections HTTP/1.1\r\nHost: {load.host}\r\napi-key: {load.api_key}\r\n"
        "Connection: close\r\nX-Bench-Padding:"
    )
    command = cores.client_command(
        [
            "openssl", "s_time", "-connect", f"{LOOPBACK}:{load.port}", "-reuse",
            "-CAfile", str(load.ca_file), "-time", str(load.seconds), "-www", page,
        ]
    )  # fmt: skip
    logs = [scratch / f"s_time-{n}.log" for n in range(load.processes)]
    with ExitStack() as stack:
        started = time.monotonic()
        clients = []
        for log in logs:
            log.unlink(missing_ok=True)
            clients.append(stack.enter_context(Service("s_time", command, log, clean_env())))
        wait_until(
            lambda: not any(client.running() for client in clients),
            "s_time to finish",
            timeout=load.seconds + 30,
        )
        seconds = time.monotonic() - started
    # One character per timed connection: `r` when the session was resumed, `*` when it was not.
    marks = "".join(_progress_line(log.read_text()) for log in logs)
    resumed = marks.count("r")
    return LoadResult(answered=resumed, failed=len(marks) - resumed, seconds=seconds)


def _progress_line(output: str) -> str:
    lines = output.splitlines()
    if "starting" not in lines or not any("connections in" in line for line in lines):
        raise ValueError(f"unexpected s_time output:\n{output[-2000:]}")
    return lines[lines.index("starting") + 1]
