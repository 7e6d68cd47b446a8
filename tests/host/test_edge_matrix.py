"""The edge passes every call Qdrant would decide: each endpoint of Qdrant v1.18.3's REST API and
each method of its public gRPC services (the double's generated access table), for each kind of
credential, gets the same answer through the lab's edge (real nginx, the rendered site, TLS) as
straight from the double behind it.

This is what catches an edge rule that breaks a legitimate call (a body cap, the gRPC service
allowlist, a path rule) or that lets through what it should answer itself. The only differences
are the ones docs/security-model.md states by design, each asserted here as the edge's own answer,
next to its sentence. Requests are built from the table: its path template with a real
collection, a minimal body the release's spec accepts where the endpoint takes JSON, and for gRPC
the method's request message naming the collection. Statuses are compared (gRPC: status codes),
each request sent straight to the double first, then through the edge (REST over HTTP/1.1 and
HTTP/2, which nginx reads differently), over kept-alive connections: one lab serves the module,
its rate limit lifted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from qdrant_client.grpc import (  # noqa: F401  (registers Qdrant's services in the default pool)
    collections_service_pb2,
    points_service_pb2,
    qdrant_pb2,
    snapshots_service_pb2,
)

from lab.edge import UNTHROTTLED, EdgeLab, running_edge_lab
from lab.probes import client_tls_context, grpc_channel
from lab.processes import LOOPBACK, LabUnavailable
from lab.qdrant_double.access_table import GRPC_METHODS, JSON_BODY_OPERATIONS, REST_ENDPOINTS
from lab.qdrant_double.grpc_storage_read import CollectionScopedRequest
from model.tokens import mint_token
from tests.readme import SECURITY_MODEL, TESTING, stated

# The collection every request names; collection tokens are scoped to it (and to SCRATCH).
MATRIX = "matrix"
# The collection that the calls creating or deleting a collection name, put back as it was before
# each request, so both sides of a comparison see the same state and MATRIX is never deleted.
SCRATCH = "matrix-scratch"
HTTP1, HTTP2 = "HTTP/1.1", "HTTP/2"
HTTP_VERSIONS = (HTTP1, HTTP2)
# The service the security model says the edge refuses to every caller.
[STORAGE_READ_SERVICE] = stated(r"A call to `([\w.]+)` \(raw shard files", SECURITY_MODEL)
VECTOR = [0.1, 0.2, 0.3, 0.4]
SIZE = len(VECTOR)
CREATE_OPERATIONS = frozenset({"create_collection", "/qdrant.Collections/Create"})
DELETE_OPERATIONS = frozenset({"delete_collection", "/qdrant.Collections/Delete"})

PATH_VALUES = {
    "field_name": "city",
    "vector_name": "extra",
    "snapshot_name": "matrix.snapshot",
    "shard_id": "0",
    "peer_id": "1",
    "id": "1",
}

# A minimal body each JSON endpoint's schema in the release's openapi.json accepts (its `required`
# fields), so the call gets past reading its body to the access check, as a real client's would.
_POINT = {"id": 1, "vector": VECTOR, "payload": {"city": "Lyon"}}
_SNAPSHOT = {"location": "file:///nonexistent.snapshot"}
JSON_BODIES: Mapping[str, Any] = {
    "batch_update": {"operations": []},
    "clear_payload": {"points": [1]},
    "count_points": {},
    "create_collection": {"vectors": {"size": SIZE, "distance": "Cosine"}},
    "create_field_index": {"field_name": "city", "field_schema": "keyword"},
    "create_shard_key": {"shard_key": "eu"},
    "create_vector_name": {"dense": {"size": SIZE, "distance": "Cosine"}},
    "delete_payload": {"keys": ["city"], "points": [1]},
    "delete_points": {"points": [99]},
    "delete_shard_key": {"shard_key": "eu"},
    "delete_vectors": {"points": [1], "vector": ["extra"]},
    "discover_batch_points": {"searches": []},
    "discover_points": {"limit": 1},
    "facet": {"key": "city"},
    "get_points": {"ids": [1]},
    "overwrite_payload": {"payload": {"city": "Lyon"}, "points": [1]},
    "query_batch_points": {"searches": []},
    "query_points": {},
    "query_points_groups": {"group_by": "city"},
    "recommend_batch_points": {"searches": []},
    "recommend_point_groups": {"positive": [1], "group_by": "city", "group_size": 1, "limit": 1},
    "recommend_points": {"positive": [1], "limit": 1},
    "recover_from_snapshot": _SNAPSHOT,
    "recover_shard_from_snapshot": _SNAPSHOT,
    "scroll_points": {},
    "search_batch_points": {"searches": []},
    "search_matrix_offsets": {},
    "search_matrix_pairs": {},
    "search_point_groups": {"vector": VECTOR, "group_by": "city", "group_size": 1, "limit": 1},
    "search_points": {"vector": VECTOR, "limit": 1},
    "set_payload": {"payload": {"city": "Lyon"}, "points": [1]},
    "update_aliases": {"actions": []},
    "update_collection": {},
    "update_collection_cluster": {
        "move_shard": {"shard_id": 0, "to_peer_id": 1, "from_peer_id": 2}
    },
    "update_vectors": {"points": [{"id": 1, "vector": VECTOR}]},
    "upsert_points": {"points": [_POINT]},
}

CREDENTIAL_KINDS = (
    "master key",
    "read-only key",
    "global r",
    "global m",
    "collection r",
    "collection rw",
    "collection prw",
    "none",
    "invalid",
)


def credentials(lab: EdgeLab) -> dict[str, str | None]:
    """The `api-key` header each kind of caller sends (None: no header)."""

    def scoped(mode: str) -> str:
        access = [{"collection": name, "access": mode} for name in (MATRIX, SCRATCH)]
        return mint_token({"access": access}, lab.api_key)

    return {
        "master key": lab.api_key,
        "read-only key": lab.read_only_api_key,
        "global r": mint_token({"access": "r"}, lab.api_key),
        "global m": mint_token({"access": "m"}, lab.api_key),
        "collection r": scoped("r"),
        "collection rw": scoped("rw"),
        "collection prw": scoped("prw"),
        "none": None,
        "invalid": "not-a-credential",
    }


@dataclass(frozen=True)
class RestCall:
    operation: str
    method: str
    path: str
    body: Any

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def send(self, client: httpx.Client, credential: str | None) -> int:
        headers = {} if credential is None else {"api-key": credential}
        body = {} if self.body is None else {"json": self.body}
        return client.request(self.method, self.path, headers=headers, **body).status_code


def rest_call(method: str, template: str, operation: str) -> RestCall:
    collection = SCRATCH if operation in CREATE_OPERATIONS | DELETE_OPERATIONS else MATRIX
    path = template.format(collection_name=collection, **PATH_VALUES)
    body = JSON_BODIES[operation] if operation in JSON_BODY_OPERATIONS else None
    return RestCall(operation, method, path, body)


REST_CALLS = [rest_call(*endpoint[:3]) for endpoint in REST_ENDPOINTS]


def grpc_request(method: str) -> bytes:
    """The method's request message naming MATRIX (SCRATCH to create or delete) where it names a
    collection, serialized."""
    service, name = method.strip("/").split("/")
    collection = SCRATCH if method in CREATE_OPERATIONS | DELETE_OPERATIONS else MATRIX
    message: Message
    if service == STORAGE_READ_SERVICE:  # no stubs in qdrant-client; requests begin with the name
        message = CollectionScopedRequest()
    elif service == "grpc.health.v1.Health":  # no stubs either; its request names no collection
        return b""
    else:
        method_type = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(name)
        message = GetMessageClass(method_type.input_type)()
    if "collection_name" in message.DESCRIPTOR.fields_by_name:
        message.collection_name = collection
    return message.SerializeToString()


GRPC_CALLS = [method for method, _need in GRPC_METHODS]


def grpc_status(
    channel: grpc.Channel,
    method: str,
    credential: str | None,
    request: bytes | None = None,
    **options: Any,
) -> str:
    """The status of a call of ``method`` (by default its request naming MATRIX) by the holder of
    ``credential``."""
    call = channel.unary_unary(method)  # bytes in, bytes out
    metadata = () if credential is None else (("api-key", credential),)
    message = grpc_request(method) if request is None else request
    try:
        call(message, metadata=metadata, timeout=10, **options)
    except grpc.RpcError as error:
        return str(error.code().name)
    return grpc.StatusCode.OK.name


@dataclass
class Sides:
    """The same question asked straight of the double and through the edge."""

    lab: EdgeLab
    credential: dict[str, str | None]
    direct_rest: httpx.Client
    edge_rest: Mapping[str, httpx.Client]
    """By HTTP version: qdrant-client speaks HTTP/1.1, browsers and curl HTTP/2, which nginx
    reads on a path of its own."""
    direct_grpc: grpc.Channel
    edge_grpc: grpc.Channel

    def put_scratch_back(self, operation: str) -> None:
        """SCRATCH absent before a create, present before a delete, as the double had it."""
        headers = {"api-key": self.lab.api_key}
        if operation in CREATE_OPERATIONS:
            self.direct_rest.delete(f"/collections/{SCRATCH}", headers=headers)
        if operation in DELETE_OPERATIONS:
            body = JSON_BODIES["create_collection"]
            self.direct_rest.put(f"/collections/{SCRATCH}", json=body, headers=headers)

    def rest(self, call: RestCall, kind: str, version: str = HTTP1) -> tuple[int, int]:
        answers = []
        for client in (self.direct_rest, self.edge_rest[version]):
            self.put_scratch_back(call.operation)
            answers.append(call.send(client, self.credential[kind]))
        direct, edge = answers
        return direct, edge

    def grpc(self, method: str, kind: str) -> tuple[str, str]:
        answers = []
        for channel in (self.direct_grpc, self.edge_grpc):
            self.put_scratch_back(method)
            answers.append(grpc_status(channel, method, self.credential[kind]))
        direct, edge = answers
        return direct, edge


@pytest.fixture(scope="module")
def sides() -> Iterator[Sides]:
    with ExitStack() as stack:
        try:
            lab = stack.enter_context(running_edge_lab(limits=UNTHROTTLED))
        except LabUnavailable as missing:
            pytest.skip(f"loopback lab unavailable: {missing}")
        direct_rest = stack.enter_context(
            httpx.Client(base_url=f"http://{LOOPBACK}:{lab.qdrant.rest_port}", timeout=10)
        )
        edge_rest = {
            version: stack.enter_context(
                httpx.Client(
                    base_url=f"https://{lab.domain}:{lab.host.ports.https}",
                    verify=client_tls_context(lab),
                    http1=version == HTTP1,
                    http2=version == HTTP2,
                    timeout=10,
                )
            )
            for version in HTTP_VERSIONS
        }
        direct_grpc = stack.enter_context(
            grpc.insecure_channel(f"{LOOPBACK}:{lab.qdrant.grpc_port}")
        )
        edge_grpc = stack.enter_context(grpc_channel(lab))
        admin = {"api-key": lab.api_key}
        created = direct_rest.put(
            f"/collections/{MATRIX}", json=JSON_BODIES["create_collection"], headers=admin
        )
        assert created.status_code == 200, created.text
        stored = direct_rest.put(
            f"/collections/{MATRIX}/points", json=JSON_BODIES["upsert_points"], headers=admin
        )
        assert stored.status_code == 200, stored.text
        yield Sides(lab, credentials(lab), direct_rest, edge_rest, direct_grpc, edge_grpc)


# --------------------------------------------------------------------------- by design


# Callers Qdrant refuses: no credential, or one it does not know.
UNKNOWN_CALLERS = ("none", "invalid")
ROOT = ("GET", "/")


def test_root_needs_a_credential_qdrant_accepts_at_the_edge(sides) -> None:
    """Qdrant shows its exact version at `/` to anyone; the edge asks Qdrant about the caller's
    own credential first, so only a caller Qdrant accepts sees it (qdrant-client's version check
    still works)."""
    stated(
        r"The edge passes `/` only once Qdrant has accepted the caller's own credential",
        SECURITY_MODEL,
    )
    call = rest_call(*ROOT, "root")

    answers = {kind: sides.rest(call, kind) for kind in CREDENTIAL_KINDS}

    assert answers == {
        kind: (200, 401) if kind in UNKNOWN_CALLERS else (200, 200) for kind in CREDENTIAL_KINDS
    }


def test_the_dashboard_is_not_found_at_the_edge_whoever_asks(sides) -> None:
    """Qdrant's web UI is refused by the edge too, so turning it on in Qdrant alone does not
    publish it."""
    stated(r"`/dashboard` is a 404", SECURITY_MODEL)
    call = RestCall("dashboard", "GET", "/dashboard", None)

    client = sides.edge_rest[HTTP1]
    edge = {kind: call.send(client, sides.credential[kind]) for kind in CREDENTIAL_KINDS}

    assert edge == dict.fromkeys(CREDENTIAL_KINDS, 404)


STORAGE_READ = [m for m in GRPC_CALLS if m.startswith(f"/{STORAGE_READ_SERVICE}/")]


@pytest.mark.parametrize("method", STORAGE_READ)
def test_storage_read_is_permission_denied_at_the_edge_whoever_asks(sides, method) -> None:
    """Raw shard files, which Qdrant serves to any collection reader, are not part of the API the
    host offers: the edge refuses every call, the master key's too."""
    stated(
        r"`qdrant\.StorageRead` .{0,80} gets PERMISSION_DENIED, whatever the credential",
        SECURITY_MODEL,
    )

    edge = {kind: sides.grpc(method, kind)[1] for kind in CREDENTIAL_KINDS}

    assert edge == dict.fromkeys(CREDENTIAL_KINDS, grpc.StatusCode.PERMISSION_DENIED.name)


@pytest.mark.parametrize(
    "method",
    [
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/qdrant.PointsInternal/Upsert",
        "/qdrant.Raft/Send",
    ],
)
def test_reflection_and_cluster_services_are_unimplemented_at_the_edge(sides, method) -> None:
    """Reflection and the cluster-internal services are no public service of the host: tools
    must bring Qdrant's protos, and no peer's call comes in from the internet."""
    stated(
        r"not server reflection or the cluster-internal ones\) gets UNIMPLEMENTED",
        SECURITY_MODEL,
    )

    status = grpc_status(sides.edge_grpc, method, sides.lab.api_key, request=b"")

    assert status == grpc.StatusCode.UNIMPLEMENTED.name


def test_a_compressed_call_is_unimplemented_at_the_edge(sides) -> None:
    """Qdrant inflates gzip'd messages with no size limit: only uncompressed calls pass."""
    stated(
        r"and so does a compressed call \(`grpc-encoding` other than `identity`\)",
        SECURITY_MODEL,
    )
    method, gzip = "/qdrant.Collections/List", grpc.Compression.Gzip

    plain = grpc_status(sides.edge_grpc, method, sides.lab.api_key)
    compressed = grpc_status(sides.edge_grpc, method, sides.lab.api_key, compression=gzip)

    assert (plain, compressed) == (grpc.StatusCode.OK.name, grpc.StatusCode.UNIMPLEMENTED.name)


# --------------------------------------------------------------------------- everything else

MATRIX_REST = [call for call in REST_CALLS if (call.method, call.path) != ROOT]
MATRIX_GRPC = [method for method in GRPC_CALLS if method not in STORAGE_READ]


def _mismatches(
    ask: Callable[[Any, str], tuple[Any, Any]], calls: list[Any]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    answers = {(str(call), kind): ask(call, kind) for call in calls for kind in CREDENTIAL_KINDS}
    return {key: pair for key, pair in answers.items() if pair[0] != pair[1]}


@pytest.mark.parametrize("version", HTTP_VERSIONS)
def test_every_rest_endpoint_gets_the_doubles_answer_through_the_edge(sides, version) -> None:
    """Every REST endpoint of the release but `/`, for every kind of caller, over either HTTP
    version: an edge rule that refused a call Qdrant allows, or passed one it answers itself,
    shows up as a (direct, edge) pair that differs."""

    def ask(call: RestCall, kind: str) -> tuple[int, int]:
        return sides.rest(call, kind, version)

    assert _mismatches(ask, MATRIX_REST) == {}


def test_every_public_grpc_method_gets_the_doubles_answer_through_the_edge(sides) -> None:
    """Every public gRPC method of the release but StorageRead's, for every kind of caller."""
    assert _mismatches(sides.grpc, MATRIX_GRPC) == {}


def test_the_testing_doc_states_the_matrix_size() -> None:
    """docs/testing.md's figure is the number of (direct, edge) pairs these tests compare."""
    [stated_size] = stated(r"all ([\d,]+) pairs get the same status", TESTING)
    compared = len(CREDENTIAL_KINDS) * (len(MATRIX_REST) * len(HTTP_VERSIONS) + len(MATRIX_GRPC))

    assert int(stated_size.replace(",", "")) == compared
