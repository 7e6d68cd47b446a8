"""Hostile clients against the lab's edge (real nginx, TLS, the Qdrant double behind it), each case
its own test with the outcome the edge must give. Loopback only; every loop is bounded in count
and in time.

What is refused by nginx (sizes, timeouts, content types) is judged by nginx's own answer and by the
double never being asked (`reached`). What is refused by Qdrant (token shapes) is judged by the
double, whose JWT rules are tied to Qdrant's `src/common/auth/jwt_parser.rs` and the jsonwebtoken
crate it configures (cited per case).

Three labs: one with every rate lifted and the client timeouts shortened, one with small rate
budgets for the per-credential zone, one with a small cap on requests in progress per address.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import multiprocessing
import socket
import ssl
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from qdrant_client import grpc as qdrant_grpc

from lab.edge import UNTHROTTLED, EdgeLab, running_edge_lab
from lab.probes import (
    EMPTY_GRPC_MESSAGE,
    GRPC_HEADERS,
    Reply,
    Request,
    client_tls_context,
    curl,
    curl_statuses,
    fresh_source_address,
    grpc_channel,
    qdrant_client,
)
from lab.processes import LOOPBACK, LabUnavailable, wait_until
from lab.qdrant_double.access import Authenticator
from model.nginx_config import (
    ACCESS_LOG_FLUSH_SECONDS,
    ACCESS_LOG_NAME,
    CREDENTIAL,
    ERROR_LOG_NAME,
    NAME,
)
from model.settings import Limits

COLLECTION = "vault"
# Short enough to watch them cut in within a test; the deployed values are in ClientLimits.
HEADER_TIMEOUT_S = 2
LIMITS = replace(
    UNTHROTTLED,
    max_body_size_mb=1,
    clients=replace(
        UNTHROTTLED.clients,
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=HEADER_TIMEOUT_S,
        send_timeout_s=HEADER_TIMEOUT_S,
    ),
)
CLIENTS = LIMITS.clients
LARGE_HEADER = CLIENTS.large_header_buffer_kb * 1024
# nginx holds an HTTP/2 field to one large buffer as sent, i.e. HPACK-encoded: Huffman codes `a`
# in 5 bits, so twice the buffer in `a`s is still over it on the wire. (Over HTTP/1.1 just over one
# buffer is enough: any more and nginx's answer races curl still sending.)
HTTP2_OVERSIZED = 2 * LARGE_HEADER + 1
REFUSED = (401, 403)
# nginx's answer to an HTTP/2 header field over one large buffer: the whole connection ends, the
# HTTP/2 equivalent of HTTP/1.1's 400/414 (RFC 9113 section 10.5.1 lets a server treat it so).
HTTP2_FIELD_TOO_LARGE = "GOAWAY ENHANCE_YOUR_CALM"


def started_lab(stack: ExitStack, limits: Limits) -> EdgeLab:
    try:
        return stack.enter_context(running_edge_lab(limits=limits))
    except LabUnavailable as missing:
        pytest.skip(f"loopback lab unavailable: {missing}")


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        edge = started_lab(stack, LIMITS)
        edge.qdrant.store.create(COLLECTION, {"size": 4, "distance": "Dot"})
        yield edge


@pytest.fixture
def reached(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request that got as far as Qdrant's authentication (all but its open health paths),
    recorded by the in-process double as it is asked."""
    seen: list[str] = []
    # Every caller, REST and gRPC, is identified before any access check (and its audit line).
    identify = Authenticator.identify

    def recording(self: Authenticator, header: Any) -> Any:
        seen.append("call")
        return identify(self, header)

    monkeypatch.setattr(Authenticator, "identify", recording)
    return seen


def send(lab: EdgeLab, path: str, **request: Any) -> Reply:
    return curl(lab, Request(path, source=fresh_source_address(), **request))


@contextmanager
def h2_connection(
    lab: EdgeLab, port: int
) -> Iterator[tuple[h2.connection.H2Connection, ssl.SSLSocket]]:
    """An HTTP/2 connection driven by hand (h2), so that frames curl would never send can be, and
    the edge's stream resets and GOAWAYs are seen as such (curl says only "connection died")."""
    context = client_tls_context(lab)
    context.set_alpn_protocols(["h2"])
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    connection.initiate_connection()
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=lab.domain) as tls:
            yield connection, tls


def h2_events(connection: h2.connection.H2Connection, tls: ssl.SSLSocket) -> Iterator[Any]:
    """Sends what is pending, then yields what the edge answers, until it closes (bounded)."""
    for _ in range(1000):
        try:
            tls.sendall(connection.data_to_send())
        except (OSError, ssl.SSLError):
            # The edge may end the connection before it has read all that was sent; what it
            # said before closing is still to be read.
            pass
        data = tls.recv(65536)
        if not data:
            return
        yield from connection.receive_data(data)
    raise AssertionError("the edge never stopped talking")


def h2_outcome(lab: EdgeLab, port: int, headers: list[tuple[str, str]]) -> str:
    """One HTTP/2 request: its `:status`, or how the edge ended the stream or the connection."""
    with h2_connection(lab, port) as (connection, tls):
        connection.send_headers(1, headers, end_stream=True)
        for event in h2_events(connection, tls):
            if isinstance(event, h2.events.ResponseReceived):
                return dict(event.headers)[":status"]
            if isinstance(event, h2.events.StreamReset):
                return f"RST_STREAM {event.error_code.name}"
            if isinstance(event, h2.events.ConnectionTerminated):
                return f"GOAWAY {event.error_code.name}"
    return "closed"


def h2_headers(lab: EdgeLab, path: str, **extra: str) -> list[tuple[str, str]]:
    return [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", lab.domain),
        (":path", path),
        ("api-key", lab.api_key),
        *extra.items(),
    ]


# --------------------------------------------------------------------------- oversized requests


def test_an_oversized_request_line_is_refused_before_qdrant(lab, reached) -> None:
    reply = send(
        lab,
        f"/collections/{COLLECTION}?{'a' * LARGE_HEADER}",
        http_version="1.1",
        headers={"api-key": lab.api_key},
    )

    assert reply.status == 414
    assert reached == []


@pytest.mark.parametrize("field", [":path", "x-padding", "cookie"])
def test_an_oversized_http2_field_is_refused_before_qdrant(lab, reached, field) -> None:
    """Over HTTP/2 the path, a header and a cookie are all header fields under the same limit
    (large_client_header_buffers since nginx 1.19.7)."""
    padding = "a" * HTTP2_OVERSIZED
    path = f"/collections/{COLLECTION}"
    headers = h2_headers(lab, f"{path}?{padding}" if field == ":path" else path)
    if field != ":path":
        headers.append((field, padding))

    outcome = h2_outcome(lab, lab.host.ports.https, headers)

    print(f"\noversized HTTP/2 {field}: {outcome}")
    assert outcome == HTTP2_FIELD_TOO_LARGE
    assert reached == []


@pytest.mark.parametrize("header", ["X-Padding", "Cookie"])
def test_an_oversized_header_or_cookie_is_refused_before_qdrant(lab, reached, header) -> None:
    """nginx's 494 "Request Header Or Cookie Too Large" goes out as a 400."""
    reply = send(
        lab,
        f"/collections/{COLLECTION}",
        http_version="1.1",
        headers={"api-key": lab.api_key, header: "a" * LARGE_HEADER},
    )

    assert reply.status == 400
    assert reached == []


def test_an_oversized_body_is_refused_before_qdrant(lab, reached) -> None:
    """Sent in full, not only declared: nginx answers 413 and Qdrant is never asked."""
    reply = send(
        lab,
        f"/collections/{COLLECTION}/points",
        method="PUT",
        headers={"api-key": lab.api_key, "Content-Type": "application/json"},
        data=b"[" + b"0," * (LIMITS.max_body_size_mb * 1024 * 1024 // 2) + b"0]",
    )

    assert reply.status == 413
    assert reached == []


def upsert_with_payload(size: int) -> qdrant_grpc.UpsertPoints:
    """A valid upsert of one point whose payload is `size` bytes: stored if it got through."""
    return qdrant_grpc.UpsertPoints(
        collection_name=COLLECTION,
        wait=True,
        points=[
            qdrant_grpc.PointStruct(
                id=qdrant_grpc.PointId(num=1),
                vectors=qdrant_grpc.Vectors(vector=qdrant_grpc.Vector(data=[0.5] * 4)),
                payload={"pad": qdrant_grpc.Value(string_value="a" * size)},
            )
        ],
    )


def test_a_grpc_message_over_the_cap_is_refused_and_stores_nothing(lab) -> None:
    """The body cap is the only limit on gRPC uploads (Qdrant sets none). nginx streams a gRPC
    call to Qdrant as it arrives, so the call's metadata reaches Qdrant; once the message passes
    the cap nginx answers 413 and resets the stream: the message is never delivered, and grpcio
    reports the 413 (UNKNOWN, "Received http2 header with status: 413")."""
    channel = grpc_channel(lab)
    try:
        upsert = qdrant_grpc.PointsStub(channel).Upsert
        with pytest.raises(grpc.RpcError) as refused:
            upsert(
                upsert_with_payload(LIMITS.max_body_size_mb * 1024 * 1024),
                metadata=(("api-key", lab.api_key),),
                timeout=10,
            )
    finally:
        channel.close()

    assert refused.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN)
    assert "413" in (refused.value.details() or "")
    assert lab.qdrant.store.info(COLLECTION)["points_count"] == 0


def test_a_grpc_message_under_the_cap_is_stored(lab) -> None:
    """The other side: the same call, small, goes through (and is removed again)."""
    channel = grpc_channel(lab)
    try:
        points = qdrant_grpc.PointsStub(channel)
        metadata = (("api-key", lab.api_key),)
        points.Upsert(upsert_with_payload(1024), metadata=metadata, timeout=10)
        stored = lab.qdrant.store.info(COLLECTION)["points_count"]
        points.Delete(
            qdrant_grpc.DeletePoints(
                collection_name=COLLECTION,
                wait=True,
                points=qdrant_grpc.PointsSelector(
                    points=qdrant_grpc.PointsIdsList(ids=[qdrant_grpc.PointId(num=1)])
                ),
            ),
            metadata=metadata,
            timeout=10,
        )
    finally:
        channel.close()

    assert stored == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/json"}, {"content-type": "application/grpc-web"}],
    ids=["plain-get", "json", "grpc-web"],
)
def test_a_request_that_is_not_a_grpc_call_is_refused_on_the_grpc_port(
    lab, reached, headers
) -> None:
    """Before: a plain GET on 6334 reached Qdrant's gRPC listener and came back as a 502."""
    reply = send(lab, "/qdrant.Collections/List", port=lab.host.ports.grpc_tls, headers=headers)

    assert reply.status == 415
    assert reached == []


def test_a_grpc_call_still_passes_on_the_grpc_port(lab, reached) -> None:
    """The other side of the refusal above: a real gRPC call reaches Qdrant."""
    reply = send(
        lab,
        "/qdrant.Collections/List",
        port=lab.host.ports.grpc_tls,
        method="POST",
        headers={**GRPC_HEADERS, "api-key": lab.api_key},
        data=EMPTY_GRPC_MESSAGE,
    )

    assert reply.status == 200 and reply.headers.get("grpc-status", "0") == "0"
    assert reached == ["call"]


@pytest.mark.parametrize(
    "path",
    [
        "/qdrant.Nonexistent/List",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/qdrant.PointsInternal/Upsert",
        "/",
    ],
    ids=["unknown-service", "reflection", "internal-service", "root"],
)
def test_a_call_to_a_service_qdrant_does_not_serve_publicly_is_unimplemented_at_the_edge(
    lab, reached, path
) -> None:
    """Only Qdrant's public services are proxied (nginx_config.GRPC_SERVICES, from Qdrant's
    src/tonic/mod.rs): reflection (which lists even StorageRead) and the cluster-internal services
    of Qdrant's other port are not, nor any name Qdrant does not have."""
    channel = grpc_channel(lab)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(path)(b"", metadata=(("api-key", lab.api_key),), timeout=10)
    finally:
        channel.close()

    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, refused.value.details()
    assert reached == []


def test_qdrant_client_still_works_through_the_service_allowlist(lab) -> None:
    """The other side: the real client, over gRPC, lists, reads and counts."""
    with closing(qdrant_client(lab, lab.api_key)) as client:
        names = [collection.name for collection in client.get_collections().collections]
        count = client.count(COLLECTION).count

    assert COLLECTION in names and count == 0


def test_a_gzip_compressed_call_is_refused_at_the_edge_and_stores_nothing(lab, reached) -> None:
    """Qdrant would inflate a gzip'd message with no size limit (`accept_compressed(Gzip)`,
    `max_decoding_message_size(usize::MAX)` in src/tonic/mod.rs): this one is a few KB on the wire,
    far under the 1 MB body cap, and 4 MB inflated. The edge answers UNIMPLEMENTED, what a gRPC
    server says for an encoding it does not take; without it the message reached Qdrant."""
    inflated = 4 * 1024 * 1024
    channel = grpc_channel(lab)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            qdrant_grpc.PointsStub(channel).Upsert(
                upsert_with_payload(inflated),
                metadata=(("api-key", lab.api_key),),
                compression=grpc.Compression.Gzip,
                timeout=10,
            )
    finally:
        channel.close()

    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, refused.value.details()
    assert reached == []
    assert lab.qdrant.store.info(COLLECTION)["points_count"] == 0


# --------------------------------------------------------------------------- token shapes


def b64(document: dict[str, Any] | bytes) -> str:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(header)}.{b64(claims)}."


def signed(claims: dict[str, Any], key: str | bytes, **header: Any) -> str:
    """HMAC-SHA256 over any header and any key, built by hand: PyJWT refuses an empty key, a PEM
    key and an RS256 header with an HMAC signature, which are exactly the shapes wanted here."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', **header})}.{b64(claims)}".encode()
    raw_key = key.encode() if isinstance(key, str) else key
    signature = hmac.new(raw_key, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


MANAGE = {"access": "m"}


def attack_tokens(lab: EdgeLab) -> dict[str, str]:
    """Each shape and its token. Only the master key signs tokens in Qdrant (jwt_parser.rs:
    HS256 with `service.api_key`); shapes signed with it test Qdrant's claim checks."""
    public_material = lab.client_ca.read_bytes()
    now = int(time.time())
    master = lab.api_key
    return {
        # jsonwebtoken has no `none` algorithm: the header does not parse, Qdrant reads "no JWT".
        "alg-none": unsigned({"alg": "none", "typ": "JWT"}, MANAGE),
        # Validation::new(HS256) accepts HS256 only: an RS256 header is refused whatever signs it.
        "rs256-header-hmac-signed": signed(MANAGE, public_material, alg="RS256"),
        # The other half of the confusion: HS256 keyed with public key material.
        "hs256-with-public-material": signed(MANAGE, public_material),
        # `kid` is ignored by Qdrant (one fixed key): pointing it elsewhere changes nothing.
        "kid-to-empty-key": signed(MANAGE, b"", kid="../../../../dev/null"),
        "signed-with-read-only-key": signed(MANAGE, lab.read_only_api_key),
        # Claims (Qdrant's claims.rs): wrong types fail to deserialize, i.e. "no JWT" -> 401.
        "access-wrong-type": signed({"access": 5}, master),
        "rule-missing-collection": signed({"access": [{"access": "r"}]}, master),
        "exp-as-string": signed({**MANAGE, "exp": str(now + 3600)}, master),
        # 30 s leeway (jwt_parser.rs): an hour past is expired -> 403.
        "expired": signed({**MANAGE, "exp": now - 3600}, master),
    }


ATTACKS = [
    "alg-none",
    "rs256-header-hmac-signed",
    "hs256-with-public-material",
    "kid-to-empty-key",
    "signed-with-read-only-key",
    "access-wrong-type",
    "rule-missing-collection",
    "exp-as-string",
    "expired",
]


@pytest.mark.parametrize("shape", ATTACKS)
@pytest.mark.parametrize("presented_as", ["bearer", "api-key"])
def test_a_hostile_token_shape_is_refused_and_reads_nothing(lab, shape, presented_as) -> None:
    token = attack_tokens(lab)[shape]
    header = (
        {"Authorization": f"Bearer {token}"} if presented_as == "bearer" else {"api-key": token}
    )

    reply = send(lab, f"/collections/{COLLECTION}", headers=header)

    assert reply.status in REFUSED, (shape, reply.status, reply.body[:200])
    assert COLLECTION.encode() not in reply.body


@pytest.mark.parametrize("shape", ATTACKS)
def test_a_hostile_token_shape_is_refused_over_grpc(lab, shape) -> None:
    token = attack_tokens(lab)[shape]
    channel = grpc_channel(lab)
    try:
        call = channel.unary_unary("/qdrant.Collections/List")
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    finally:
        channel.close()

    assert refused.value.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )


def hundred_kb_token(lab: EdgeLab) -> str:
    """Master-signed, so only the size can refuse it."""
    token = signed({**MANAGE, "pad": "a" * 75_000}, lab.api_key)
    assert 100_000 <= len(token) < 110_000
    return token


def test_a_100_kb_token_is_refused_by_the_edge_before_qdrant(lab, reached) -> None:
    """Larger than one of nginx's large header buffers: nginx answers 400 itself."""
    reply = send(
        lab,
        f"/collections/{COLLECTION}",
        http_version="1.1",
        headers={"Authorization": f"Bearer {hundred_kb_token(lab)}"},
    )

    assert reply.status == 400
    assert reached == []


def test_a_100_kb_token_over_http2_is_refused_by_the_edge_before_qdrant(lab, reached) -> None:
    headers = h2_headers(lab, f"/collections/{COLLECTION}")
    headers.append(("authorization", f"Bearer {hundred_kb_token(lab)}"))

    outcome = h2_outcome(lab, lab.host.ports.https, headers)

    print(f"\n100 KB token over HTTP/2: {outcome}")
    # nginx refuses once it has read one buffer's worth and closes while the client still sends
    # the rest: the reset that unread data causes may overtake its GOAWAY, and on a loaded machine
    # the 2 s header timeout may end the connection first (GOAWAY NO_ERROR). Never an answer.
    assert outcome.startswith("GOAWAY ") or outcome == "closed", outcome
    assert reached == []


def test_streams_beyond_the_concurrency_cap_are_refused_before_qdrant(lab, reached) -> None:
    """One connection may hold http2_max_concurrent_streams requests open; the ones past it are
    reset with REFUSED_STREAM. All are sent before the edge's SETTINGS arrive, as an attacker
    would, and none ever finishes its body, so none reaches Qdrant (nginx buffers bodies)."""
    cap = CLIENTS.http2_max_concurrent_streams
    extra = 3
    with h2_connection(lab, lab.host.ports.https) as (connection, tls):
        for index in range(cap + extra):
            # A body is announced and never sent: the stream stays open on the edge.
            headers = h2_headers(lab, f"/collections/{COLLECTION}", **{"content-length": "9"})
            connection.send_headers(2 * index + 1, headers)
        tls.sendall(connection.data_to_send())
        refused = []
        tls.settimeout(2)
        try:
            for event in h2_events(connection, tls):
                if isinstance(event, h2.events.StreamReset):
                    refused.append((event.stream_id, event.error_code.name))
                if len(refused) == extra:
                    break
        except TimeoutError:
            pass

    assert refused == [(2 * (cap + i) + 1, "REFUSED_STREAM") for i in range(extra)]
    assert reached == []


def test_a_malformed_http2_frame_ends_the_connection(lab, reached) -> None:
    """An empty HEADERS frame on stream 0 (two connection errors in one, RFC 9113 6.2): nginx
    checks the length first and ends the connection with GOAWAY FRAME_SIZE_ERROR; nothing reaches
    Qdrant."""
    with h2_connection(lab, lab.host.ports.grpc_tls) as (connection, tls):
        tls.sendall(connection.data_to_send())
        # length 0, type HEADERS (1), flags END_HEADERS (4), stream 0
        tls.sendall(b"\x00\x00\x00\x01\x04\x00\x00\x00\x00")
        ends = [
            event.error_code.name
            for event in h2_events(connection, tls)
            if isinstance(event, h2.events.ConnectionTerminated)
        ]

    assert ends == ["FRAME_SIZE_ERROR"]
    assert reached == []


def test_qdrant_does_not_check_nbf_so_a_not_yet_valid_token_is_not_refused(lab) -> None:
    """Qdrant's JwtParser builds jsonwebtoken's `Validation::new(HS256)`, whose `validate_nbf`
    is false (jsonwebtoken src/validation.rs), and does not turn it on: a master-signed token with
    `nbf` in the future is accepted. Not a hole an attacker can use (only the master key signs),
    but not a way to schedule a token either: the program never mints `nbf`."""
    token = signed({"access": "r", "nbf": int(time.time()) + 86_400}, lab.api_key)

    reply = send(lab, f"/collections/{COLLECTION}", headers={"Authorization": f"Bearer {token}"})

    assert reply.status == 200


# --------------------------------------------------------------------------- slow clients


def test_a_stalled_body_is_cut_before_qdrant(lab, reached) -> None:
    """A client that announces a body, sends part of it and stops: cut once client_body_timeout
    (2 s here) passes without a byte. nginx buffers the body first, so Qdrant never hears of it.
    (The timeout is between two reads: a body trickling faster than that is bounded by the count
    of requests one address may have in progress, tested below.)"""
    with socket.create_connection((LOOPBACK, lab.host.ports.https), timeout=5) as raw:
        with client_tls_context(lab).wrap_socket(raw, server_hostname=lab.domain) as tls:
            tls.sendall(
                f"PUT /collections/{COLLECTION}/points HTTP/1.1\r\nHost: {lab.domain}\r\n"
                f"api-key: {lab.api_key}\r\nContent-Length: 1000\r\n\r\n{{".encode()
            )
            started = time.monotonic()
            tls.settimeout(CLIENTS.body_timeout_s + 5)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            held = time.monotonic() - started

    # nginx logs a 408 and closes without a response.
    assert answer == b""
    assert held < CLIENTS.body_timeout_s + 3
    assert reached == []


def well_behaved_latencies(lab: EdgeLab, seconds: float) -> list[float]:
    """A new TLS connection and one authenticated GET after another, for `seconds`."""
    context = client_tls_context(lab)
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        with socket.create_connection((LOOPBACK, lab.host.ports.https), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=lab.domain) as tls:
                tls.sendall(
                    f"GET /collections HTTP/1.1\r\nHost: {lab.domain}\r\napi-key: {lab.api_key}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = b""
                while chunk := tls.recv(65536):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        latencies.append(time.monotonic() - started)
    return latencies


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000


SLOW_CLIENTS = 300
# Seconds between two header bytes of a slow client: the header never completes in time.
SLOW_BYTE_INTERVAL = 0.25
MEASURE_SECONDS = 4.0


@dataclass(frozen=True)
class SlowTarget:
    """What the slow clients need of the lab, small enough to hand to another process."""

    port: int
    domain: str
    client_ca: str
    api_key: str


def slow_target(lab: EdgeLab) -> SlowTarget:
    return SlowTarget(lab.host.ports.https, lab.domain, str(lab.client_ca), lab.api_key)


def slow_request(edge: SlowTarget, kind: str) -> tuple[bytes, float]:
    """(what a slow client sends, seconds between two bytes). A slow head sends its header a byte
    at a time; a slow body sends a complete head, then its body a byte at a time, each byte after
    a silence longer than client_body_timeout (one trickling faster is no timeout's to cut: see
    test_bodies_trickling_in_are_bounded_per_address_not_in_time)."""
    head = f"PUT /collections/{COLLECTION}/points HTTP/1.1\r\nHost: {edge.domain}\r\n"
    if kind == "head":
        return f"{head}X-Slow: {'a' * 1000}".encode(), SLOW_BYTE_INTERVAL
    body_head = f"{head}api-key: {edge.api_key}\r\nContent-Length: 1000\r\n\r\n".encode()
    return body_head + b"{" * 1000, CLIENTS.body_timeout_s + 1.0


async def slow_client(edge: SlowTarget, kind: str, deadline: float) -> float | None:
    """Connects, completes TLS, then sends `slow_request` until the edge ends the connection:
    returns the seconds it held on from connecting (nginx's header timer starts at accept and
    covers the TLS handshake), or None if the deadline passed first."""
    loop = asyncio.get_running_loop()
    data, interval = slow_request(edge, kind)
    first = data.index(b"\r\n\r\n") + 4 if kind == "body" else 1
    context = ssl.create_default_context(cafile=edge.client_ca)
    started = loop.time()
    try:
        reader, writer = await asyncio.open_connection(
            LOOPBACK, edge.port, ssl=context, server_hostname=edge.domain
        )
    except (OSError, ssl.SSLError):
        # client_header_timeout covers the TLS handshake too (nginx before 1.25.3 has no
        # ssl_handshake_timeout): a handshake this loop was too busy to finish in time is cut.
        return loop.time() - started
    ended = asyncio.ensure_future(reader.read())
    cut = False
    try:
        for chunk in [data[:first], *(data[i : i + 1] for i in range(first, len(data)))]:
            if ended.done() or loop.time() > deadline:
                break
            writer.write(chunk)
            await writer.drain()
            await asyncio.wait([ended], timeout=min(interval, max(0.0, deadline - loop.time())))
    except (OSError, ssl.SSLError):
        # The edge closed the connection under a write rather than a read.
        cut = True
    finally:
        writer.transport.abort()
    held = loop.time() - started
    cut = cut or ended.done()
    ended.cancel()
    return held if cut and loop.time() <= deadline else None


def slow_clients(edge: SlowTarget, deadline_s: float) -> list[float | None]:
    """SLOW_CLIENTS at once, half with slow heads and half with slow bodies, on one event loop."""

    async def attack() -> list[float | None]:
        deadline = asyncio.get_running_loop().time() + deadline_s
        kinds = ["head", "body"] * (SLOW_CLIENTS // 2)
        return list(await asyncio.gather(*(slow_client(edge, kind, deadline) for kind in kinds)))

    return asyncio.run(attack())


def test_slow_clients_are_cut_and_a_well_behaved_client_keeps_being_served(lab) -> None:
    """300 slow clients on one event loop (one process): slow heads are cut by client_header_timeout, slow
    bodies by client_body_timeout (both 2 s here), while a well-behaved client keeps getting 200s.
    nginx holds them all: the lab's 2 workers have 1024 connections each, the VM's distro default
    768 each. Its p99 is printed with and without the slow clients; no timing is asserted (2
    shared cores)."""
    quiet = well_behaved_latencies(lab, MEASURE_SECONDS)
    bound = max(CLIENTS.header_timeout_s, CLIENTS.body_timeout_s) + MEASURE_SECONDS + 10
    edge = slow_target(lab)
    # In a process of its own, so that the well-behaved client does not wait for the attack's
    # share of this interpreter's lock instead of for the edge.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as attacker:
        attack = attacker.submit(slow_clients, edge, bound)
        attacked = well_behaved_latencies(lab, MEASURE_SECONDS)
        cut_after = attack.result(timeout=bound + 30)

    heads, bodies = cut_after[0::2], cut_after[1::2]
    print(
        f"\nwell-behaved client, new TLS connection per request: p99 {p99(quiet):.1f} ms alone "
        f"({len(quiet)} requests), {p99(attacked):.1f} ms beside {SLOW_CLIENTS} slow clients "
        f"({len(attacked)} requests); slow heads cut after {held_range(heads)} s, slow bodies after "
        f"{held_range(bodies)} s"
    )
    assert None not in cut_after, "a slow client outlived the bound"
    # Bounded, not timed: sending a whole head or body would take minutes at these paces. A slow
    # body's head (and handshake) got in within the header timeout, then waits the body timeout.
    assert all(held < CLIENTS.header_timeout_s + 5 for held in heads), heads
    assert all(held < CLIENTS.header_timeout_s + CLIENTS.body_timeout_s + 5 for held in bodies)
    assert attacked, "the well-behaved client was never served"


def held_range(values: list[float | None]) -> str:
    held = [value for value in values if value is not None]
    return f"{min(held, default=0):.1f}-{max(held, default=0):.1f}"


LARGE = "large"
# Points of a megabyte each: a scroll over them is an answer far larger than what the kernel's
# socket buffers and nginx's proxy buffers hold, so a client that does not read it stalls nginx.
LARGE_POINTS = 16
LARGE_PAYLOAD = 1024 * 1024


def test_a_client_that_stops_reading_is_cut_and_others_keep_being_served(lab) -> None:
    """Slow read: a client asks for a large answer and never reads it. nginx buffers Qdrant's
    answer (Qdrant is free at once) and drops the client once send_timeout (2 s here) passes
    without a write; the worker, event-driven, serves everyone else meanwhile."""
    with large_collection(lab):
        received, served = unread_large_answer(lab)

    print(
        f"\nslow reader: {received} of over {LARGE_POINTS * LARGE_PAYLOAD} bytes before the cut; "
        f"{len(served)} requests of a well-behaved client served meanwhile, p99 {p99(served):.1f} ms"
    )
    assert received < LARGE_POINTS * LARGE_PAYLOAD
    assert served


@contextmanager
def large_collection(lab: EdgeLab) -> Iterator[None]:
    lab.qdrant.store.create(LARGE)
    try:
        lab.qdrant.store.upsert(
            LARGE, [(n, {"pad": "a" * LARGE_PAYLOAD}) for n in range(1, LARGE_POINTS + 1)]
        )
        yield
    finally:
        lab.qdrant.store.delete(LARGE)


def unread_large_answer(lab: EdgeLab) -> tuple[int, list[float]]:
    """Asks for the large answer and reads none of it for longer than send_timeout, while a
    well-behaved client is served; then reads what the edge still sends: (bytes received, the
    well-behaved client's latencies)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the kernel holds little of the answer on the client's behalf.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(5)
    raw.connect((LOOPBACK, lab.host.ports.https))
    with client_tls_context(lab).wrap_socket(raw, server_hostname=lab.domain) as tls:
        body = json.dumps({"limit": LARGE_POINTS, "with_payload": True}).encode()
        tls.sendall(
            f"POST /collections/{LARGE}/points/scroll HTTP/1.1\r\nHost: {lab.domain}\r\n"
            f"api-key: {lab.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        # Not reading, while a well-behaved client is served, well past send_timeout.
        served = well_behaved_latencies(lab, CLIENTS.send_timeout_s + 3.0)
        received = 0
        try:
            while chunk := tls.recv(65536):
                received += len(chunk)
        except (ConnectionResetError, ssl.SSLError):
            pass
    return received, served


# --------------------------------------------------------------------------- per-credential limit


THROTTLED = Limits(
    rate_limit_rps=1, rest_burst=5, grpc_burst=5, credential_rate_limit_rps=1, credential_burst=10
)
# Fewer requests from each address than its own budget (rest_burst + 1), more from all of them
# together than the credential's (credential_burst + 1).
ADDRESSES = 6
PER_ADDRESS = 3
_fresh = itertools.count()


@pytest.fixture(scope="module")
def throttled() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        yield started_lab(stack, THROTTLED)


def fresh_credential(lab: EdgeLab) -> dict[str, str]:
    """A valid read token no other request has used: a budget of its own in the credential zone."""
    token = signed({"access": "r", "exp": int(time.time()) + 86_400 + next(_fresh)}, lab.api_key)
    return {"Authorization": f"Bearer {token}"}


def spread(
    lab: EdgeLab, credential: dict[str, str], addresses: list[str], path: str = "/collections"
) -> list[int]:
    """PER_ADDRESS requests from each address in turn, all with `credential`."""
    return [
        status
        for source in addresses
        for status in curl_statuses(
            lab, Request(path, headers=credential, source=source), PER_ADDRESS
        )
    ]


def refused_by_zone(lab: EdgeLab, zone: str, addresses: list[str]) -> int:
    """How many of these addresses' requests nginx's error log says `zone` refused."""
    log = (Path(lab.host.paths.nginx_log_dir) / ERROR_LOG_NAME).read_text()
    return sum(
        f'by zone "{zone}", client: {address},' in line
        for line in log.splitlines()
        for address in addresses
    )


def test_one_credential_spread_over_many_addresses_hits_its_own_limit(throttled) -> None:
    """A leaked credential used from many addresses: each address stays under its own limit, the
    credential's limit cuts in after its burst, and nginx's log names the credential zone."""
    addresses = [fresh_source_address() for _ in range(ADDRESSES)]
    started = time.monotonic()

    statuses = spread(throttled, fresh_credential(throttled), addresses)

    refilled = math.ceil((time.monotonic() - started) * THROTTLED.credential_rate_limit_rps)
    burst = THROTTLED.credential_burst + 1
    assert PER_ADDRESS <= THROTTLED.rest_burst and len(statuses) > burst + refilled
    assert statuses[:burst] == [200] * burst, statuses
    assert set(statuses) == {200, 429} and statuses.count(200) <= burst + refilled, statuses
    assert refused_by_zone(throttled, CREDENTIAL, addresses) == statuses.count(429)
    assert refused_by_zone(throttled, NAME, addresses) == 0


def test_another_credential_from_the_same_addresses_is_unaffected(throttled) -> None:
    addresses = [fresh_source_address() for _ in range(ADDRESSES)]
    assert 429 in spread(throttled, fresh_credential(throttled), addresses)
    other = fresh_credential(throttled)

    statuses = [
        curl(throttled, Request("/collections", headers=other, source=source)).status
        for source in addresses
    ]

    assert statuses == [200] * ADDRESSES


def test_rest_and_grpc_draw_on_one_credential_budget(throttled) -> None:
    """Switching protocol must not buy a credential a second budget."""
    credential = fresh_credential(throttled)
    assert 429 in spread(throttled, credential, [fresh_source_address() for _ in range(ADDRESSES)])
    call = Request(
        "/qdrant.Collections/List",
        port=throttled.host.ports.grpc_tls,
        method="POST",
        headers={**GRPC_HEADERS, **credential},
        data=EMPTY_GRPC_MESSAGE,
        source=fresh_source_address(),
    )

    assert curl(throttled, call).status == 429


def test_the_per_address_limit_still_holds_for_each_credential(throttled) -> None:
    """A fresh credential from one address: that address's burst, then 429 from its zone."""
    address = fresh_source_address()
    request = Request("/collections", headers=fresh_credential(throttled), source=address)
    started = time.monotonic()

    statuses = curl_statuses(throttled, request, THROTTLED.rest_burst + 5)

    refilled = math.ceil((time.monotonic() - started) * THROTTLED.rate_limit_rps)
    burst = THROTTLED.rest_burst + 1
    assert statuses[:burst] == [200] * burst, statuses
    assert statuses.count(200) <= burst + refilled and 429 in statuses, statuses
    assert refused_by_zone(throttled, NAME, [address]) == statuses.count(429)


def test_requests_without_a_credential_share_no_budget(throttled) -> None:
    """No credential is an empty key, which nginx does not count: unauthenticated health checks
    from many addresses are limited per address only, not as one anonymous credential."""
    statuses = spread(throttled, {}, [fresh_source_address() for _ in range(ADDRESSES)], "/healthz")

    assert len(statuses) > THROTTLED.credential_burst + 1
    assert statuses == [200] * len(statuses)


def test_no_credential_is_written_to_the_logs(throttled) -> None:
    """The credential zone keys on the credential itself (nginx core has no hash): it must stay in
    the workers' shared memory. After a spread that hits the limit, neither log holds it."""
    credential = fresh_credential(throttled)
    addresses = [fresh_source_address() for _ in range(ADDRESSES)]
    assert 429 in spread(throttled, credential, addresses)
    logs = Path(throttled.host.paths.nginx_log_dir)
    wait_until(
        lambda: addresses[-1] in (logs / ACCESS_LOG_NAME).read_text(),
        "nginx to write out its access log",
        ACCESS_LOG_FLUSH_SECONDS + 4,
    )

    token = credential["Authorization"].removeprefix("Bearer ")
    signature = token.rsplit(".", 1)[1]
    for log in logs.iterdir():
        text = log.read_text(errors="replace")
        assert signature not in text and throttled.api_key not in text, log.name


# --------------------------------------------------------------------------- bodies trickling in


CROWDED = replace(LIMITS, clients=replace(LIMITS.clients, requests_per_address=10))
TRICKLERS = CROWDED.clients.requests_per_address + 5
# Longer than the body timeout, with a byte every SLOW_BYTE_INTERVAL: never silent long enough.
TRICKLE_SECONDS = CROWDED.clients.body_timeout_s + 2.0


@pytest.fixture(scope="module")
def crowded() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        yield started_lab(stack, CROWDED)


async def trickle(edge: SlowTarget, source: str) -> str:
    """A complete head, then a body a byte every SLOW_BYTE_INTERVAL for TRICKLE_SECONDS: "open" if
    the edge still holds the request then, else how its answer starts (or "closed")."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(
        LOOPBACK,
        edge.port,
        ssl=ssl.create_default_context(cafile=edge.client_ca),
        server_hostname=edge.domain,
        local_addr=(source, 0),
    )
    data, _ = slow_request(edge, "body")
    first = data.index(b"\r\n\r\n") + 4
    answer = asyncio.ensure_future(reader.read(12))
    end = loop.time() + TRICKLE_SECONDS
    try:
        writer.write(data[:first])
        for byte in range(first, len(data)):
            if answer.done() or loop.time() > end:
                break
            writer.write(data[byte : byte + 1])
            await writer.drain()
            await asyncio.wait([answer], timeout=SLOW_BYTE_INTERVAL)
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()
    if not answer.done():
        answer.cancel()
        return "open"
    return answer.result().decode(errors="replace") or "closed"


def test_bodies_trickling_in_are_bounded_per_address_not_in_time(crowded) -> None:
    """A body sent a byte at a time, each sooner than client_body_timeout, is never cut by a
    timeout (nginx times the gap between reads, as it documents): what bounds it is how many
    requests one address may have in progress. The ones past that get 429 at once, the ones
    within it are held (and are still open after longer than the body timeout), and another
    address is served meanwhile."""
    edge = slow_target(crowded)
    source = fresh_source_address()

    async def attack() -> list[str]:
        return list(await asyncio.gather(*(trickle(edge, source) for _ in range(TRICKLERS))))

    with ThreadPoolExecutor(1) as attacker:
        running = attacker.submit(asyncio.run, attack())
        time.sleep(CROWDED.clients.body_timeout_s)
        other = send(crowded, "/collections", headers={"api-key": crowded.api_key})
        outcomes = running.result(timeout=TRICKLE_SECONDS + 30)

    print(f"\ntrickling bodies from one address: {sorted(outcomes)}")
    assert (
        sorted(outcomes) == ["HTTP/1.1 429"] * 5 + ["open"] * CROWDED.clients.requests_per_address
    )
    assert other.status == 200
