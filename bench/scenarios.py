"""The loads each target is measured under, and the tool that produces each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.cores import CoreLayout
from bench.grpc_calls import METHOD, GrpcLoad, GrpcTarget, run_grpc
from bench.h2load import StreamLoad, run_h2load
from bench.load import LoadResult
from bench.resumption import ResumptionLoad, run_s_time
from bench.targets import Bench, Target
from bench.wrk import HttpLoad, run_wrk

# An authenticated read every Qdrant client makes; it reaches the double's auth and router.
REST_PATH = "/collections"


@dataclass(frozen=True)
class Shape:
    """How long and how wide every load is. Each load keeps about the same number of requests in
    flight (`concurrency`), so the scenarios differ in protocol, not in pressure."""

    seconds: float = 10.0
    warmup_seconds: float = 2.0
    concurrency: int = 32
    h2_connections: int = 4
    resumption_processes: int = 4

    @property
    def h2_streams(self) -> int:
        return max(1, self.concurrency // self.h2_connections)


@dataclass(frozen=True)
class Context:
    bench: Bench
    cores: CoreLayout
    shape: Shape
    scratch: Path


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str
    how: Callable[[Shape], str]
    """The tool and its shape, for the report."""
    run: Callable[[Context, Target, float], LoadResult]
    """One run of so many seconds; what it returns counts every request the run made."""


def _http(context: Context, target: Target, seconds: float, per_request: bool) -> LoadResult:
    lab = context.bench.lab
    load = HttpLoad(
        url=target.rest_url + REST_PATH,
        api_key=lab.api_key,
        host=lab.domain,
        connections=context.shape.concurrency,
        seconds=seconds,
        connection_per_request=per_request,
    )
    return run_wrk(load, context.cores)


def _keep_alive(context: Context, target: Target, seconds: float) -> LoadResult:
    return _http(context, target, seconds, per_request=False)


def _new_connections(context: Context, target: Target, seconds: float) -> LoadResult:
    return _http(context, target, seconds, per_request=True)


def _http2(context: Context, target: Target, seconds: float) -> LoadResult:
    shape, lab = context.shape, context.bench.lab
    load = StreamLoad(
        url=target.rest_url + REST_PATH,
        api_key=lab.api_key,
        host=lab.domain,
        connections=shape.h2_connections,
        streams=shape.h2_streams,
        seconds=seconds,
        http1=not target.tls,
    )
    return run_h2load(load, context.cores, context.scratch).load


def _resumed(context: Context, target: Target, seconds: float) -> LoadResult:
    if not target.tls:
        # Nothing to resume without TLS: the limit is a new plain connection per request.
        return _new_connections(context, target, seconds)
    lab = context.bench.lab
    load = ResumptionLoad(
        port=target.rest_port,
        api_key=lab.api_key,
        host=lab.domain,
        ca_file=lab.client_ca,
        processes=context.shape.resumption_processes,
        seconds=max(1, round(seconds)),
    )
    return run_s_time(load, context.cores, context.scratch)


def _grpc(context: Context, target: Target, seconds: float) -> LoadResult:
    shape, lab = context.shape, context.bench.lab
    grpc_target = GrpcTarget(
        port=target.grpc_port,
        api_key=lab.api_key,
        ca_file=lab.client_ca if target.tls else None,
        domain=lab.domain,
    )
    load = GrpcLoad(connections=shape.h2_connections, streams=shape.h2_streams, seconds=seconds)
    return run_grpc(grpc_target, load, context.cores, context.scratch)


SCENARIOS = (
    Scenario(
        "keep-alive",
        "HTTP/1.1 keep-alive",
        "req/s",
        lambda s: f"wrk, 1 thread, {s.concurrency} connections, GET {REST_PATH}",
        _keep_alive,
    ),
    Scenario(
        "http2",
        "HTTP/2",
        "req/s",
        lambda s: (
            f"h2load, {s.h2_connections} connections x {s.h2_streams} streams, GET {REST_PATH}; "
            f"direct: HTTP/1.1, {s.h2_connections * s.h2_streams} connections (the double speaks "
            "no HTTP/2)"
        ),
        _http2,
    ),
    Scenario(
        "new-connection",
        "New TLS connection per request (full handshake)",
        "conn/s",
        lambda s: (
            f"wrk, 1 thread, {s.concurrency} connections, `Connection: close`: every request "
            "on a new TCP connection and a full TLS handshake (wrk never resumes a session)"
        ),
        _new_connections,
    ),
    Scenario(
        "resumed",
        "New TLS connection per request (resumed session)",
        "conn/s",
        lambda s: (
            f"openssl s_time -reuse, {s.resumption_processes} processes, TLS 1.3, one "
            f"GET {REST_PATH} per connection; direct: wrk as in the row above (no TLS)"
        ),
        _resumed,
    ),
    Scenario(
        "grpc",
        "gRPC unary",
        "calls/s",
        lambda s: (
            f"h2load, {s.h2_connections} connections x {s.h2_streams} concurrent calls, "
            f"{METHOD} with the API key; a grpcio call checks each target first, and every "
            "reply is checked to carry a message (see bench/grpc_calls.py)"
        ),
        _grpc,
    ),
)
