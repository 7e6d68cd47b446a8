"""gRPC unary calls, sent by h2load: the HTTP/2 requests a gRPC client sends, from a client cheap
enough to keep the server side busy.

grpcio clients were tried first: a Python client spends more CPU per call than the double's server,
so on the one client core they left the server side half idle and measured themselves. h2load
sends what a gRPC client sends (POST, `content-type: application/grpc`, `te: trailers`, one
length-prefixed message) but cannot read trailers, where gRPC puts the outcome. Two checks stand in:
a grpcio call before the run proves the call succeeds through that target, and every OK reply
carries its message in DATA while a failure comes back as trailers only, so the DATA bytes received
must be exactly the answered calls times the size of the probe's reply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from qdrant_client import grpc as qdrant_grpc

from bench.cores import CoreLayout
from bench.h2load import StreamLoad, run_h2load
from bench.load import LoadResult
from lab.probes import EMPTY_GRPC_MESSAGE, GRPC_HEADERS
from lab.processes import LOOPBACK

# Lists the collections: authenticated, and its request message is empty.
METHOD = "/qdrant.Collections/List"
# gRPC's framing before each message: a compression flag and a 4-byte length.
_PREFIX_BYTES = len(EMPTY_GRPC_MESSAGE)


@dataclass(frozen=True)
class GrpcTarget:
    port: int
    api_key: str
    ca_file: Path | None
    """TLS trusting only this CA; plaintext without it."""
    domain: str


@dataclass(frozen=True)
class GrpcLoad:
    connections: int
    streams: int
    """Concurrent calls per connection, as one gRPC channel multiplexes them."""
    seconds: float


def run_grpc(target: GrpcTarget, load: GrpcLoad, cores: CoreLayout, scratch: Path) -> LoadResult:
    reply_bytes = _PREFIX_BYTES + _probe(target)
    request = scratch / "list-collections.grpc"
    request.write_bytes(EMPTY_GRPC_MESSAGE)
    scheme = "https" if target.ca_file is not None else "http"
    calls = StreamLoad(
        url=f"{scheme}://{LOOPBACK}:{target.port}{METHOD}",
        api_key=target.api_key,
        host=target.domain,
        connections=load.connections,
        streams=load.streams,
        seconds=load.seconds,
        body=request,
        headers=tuple(f"{name}: {value}" for name, value in GRPC_HEADERS.items()),
    )
    streamed = run_h2load(calls, cores, scratch)
    ok = streamed.data_bytes // reply_bytes
    result = streamed.load
    return replace(result, answered=ok, failed=result.failed + result.answered - ok)


def _probe(target: GrpcTarget) -> int:
    """One real call through `target`; raises unless it succeeds. The size of its reply."""
    address = f"{LOOPBACK}:{target.port}"
    if target.ca_file is None:
        channel = grpc.insecure_channel(address)
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=target.ca_file.read_bytes())
        options = [("grpc.ssl_target_name_override", target.domain)]
        channel = grpc.secure_channel(address, credentials, options=options)
    with channel:
        collections = qdrant_grpc.CollectionsStub(channel)
        reply = collections.List(
            qdrant_grpc.ListCollectionsRequest(),
            metadata=(("api-key", target.api_key),),
            timeout=10,
        )
    return len(reply.SerializeToString())
