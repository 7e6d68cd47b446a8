"""Tests for lab/qdrant_double/, the Qdrant test double: its auth layer and its data plane.

Every server listens on ephemeral loopback ports and is stopped by its fixture; all
traffic goes to 127.0.0.1. Run from the repo root with PYTHONPATH=.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as qgrpc
from qdrant_client.http.exceptions import UnexpectedResponse

from lab.qdrant_double import DoubleConfig, QdrantDouble
from tests.double_client import (
    KEY,
    READ_ONLY_KEY,
    UPSERT,
    VECTORS,
    WRONG_KEY,
    api_key,
    bearer,
    double_config,
    grpc_code,
    rest,
    start_double,
    status,
    token,
)

# qdrant-client warns about credentials over plain http: here that is loopback by design.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
INDEX = {"field_name": "n", "field_schema": "integer"}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx and gRPC honour proxy variables; keep every request on loopback."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# ----------------------------------------------------------------------------- REST: keys


def test_master_key_lists_collections(double: QdrantDouble) -> None:
    code, body = rest(double, "GET", "/collections", headers=api_key(KEY))
    assert code == 200
    assert body["status"] == "ok"
    assert body["result"]["collections"] == [{"name": "alpha"}, {"name": "beta"}]


# ----------------------------------------------------------------------------- REST: JWT scopes


def test_global_read_token_cannot_write(double: QdrantDouble) -> None:
    headers = bearer(token({"access": "r"}))
    assert status(double, "PUT", "/collections/alpha/points", UPSERT, headers=headers) == 403


def test_collection_rw_token_writes_its_collection(double: QdrantDouble) -> None:
    headers = bearer(token({"access": [{"collection": "alpha", "access": "rw"}]}))
    assert status(double, "PUT", "/collections/alpha/points", UPSERT, headers=headers) == 200
    code, body = rest(double, "POST", "/collections/alpha/points", {"ids": [7]}, api_key(KEY))
    assert (code, body["result"]) == (200, [{"id": 7, "payload": {"n": 7}}])


def test_collection_token_lists_only_its_collections(double: QdrantDouble) -> None:
    """Listing must not reveal other tenants' collection names."""
    headers = bearer(token({"access": [{"collection": "beta", "access": "r"}]}))
    code, body = rest(double, "GET", "/collections", headers=headers)
    assert code == 200
    assert body["result"]["collections"] == [{"name": "beta"}]


# ----------------------------------------------------------------------------- REST: route needs


def scoped(access: str) -> dict[str, str]:
    """Bearer headers for "m" or "r" (global) or "collection:mode" (one collection)."""
    if ":" not in access:
        return bearer(token({"access": access}))
    collection, mode = access.split(":")
    return bearer(token({"access": [{"collection": collection, "access": mode}]}))


VECTOR = [0.1, 0.2, 0.3, 0.4]
ON_POINT_1 = {"payload": {"k": 1}, "points": [1]}
ALIAS = {"actions": [{"create_alias": {"collection_name": "alpha", "alias_name": "a1"}}]}
P = "/collections/alpha/points"


# Each route with the weakest access Qdrant's RBAC lets through and the strongest it refuses
# (lib/storage/src/rbac/ops_checks.rs and the access checks beside each operation): reads need any
# access to the collection, point writes rw or prw, collection extras (snapshot lists) r or rw but
# not prw, payload indexes and snapshots rw, collections and aliases global manage.
def route(
    name: str, method: str, path: str, body: Any, allowed: str, refused: str, answer: int = 200
) -> Any:
    return pytest.param(method, path, body, allowed, refused, answer, id=name)


ROUTE_NEEDS = [
    route("info", "GET", "/collections/alpha", None, "alpha:r", "beta:rw"),
    route("exists", "GET", "/collections/alpha/exists", None, "alpha:r", "beta:rw"),
    route("aliases", "GET", "/collections/alpha/aliases", None, "alpha:r", "beta:rw"),
    route("retrieve", "POST", P, {"ids": [1]}, "alpha:r", "beta:rw"),
    route("get-point", "GET", f"{P}/1", None, "alpha:r", "beta:rw"),
    route("scroll", "POST", f"{P}/scroll", {}, "alpha:r", "beta:rw"),
    route("count", "POST", f"{P}/count", {}, "alpha:r", "beta:rw"),
    route("query", "POST", f"{P}/query", {"query": VECTOR}, "alpha:r", "beta:rw"),
    route(
        "query-batch",
        "POST",
        f"{P}/query/batch",
        {"searches": [{"query": VECTOR}]},
        "alpha:r",
        "beta:rw",
    ),
    route("search", "POST", f"{P}/search", {"vector": VECTOR, "limit": 1}, "alpha:r", "beta:rw"),
    route(
        "recommend",
        "POST",
        f"{P}/recommend",
        {"positive": [VECTOR], "limit": 1},
        "alpha:r",
        "beta:rw",
    ),
    route("upsert", "PUT", P, UPSERT, "alpha:prw", "alpha:r"),
    route("delete", "POST", f"{P}/delete", {"points": [7]}, "alpha:prw", "alpha:r"),
    route(
        "update-vectors",
        "PUT",
        f"{P}/vectors",
        {"points": [{"id": 1, "vector": VECTOR}]},
        "alpha:prw",
        "alpha:r",
    ),
    route(
        "delete-vectors",
        "POST",
        f"{P}/vectors/delete",
        {"points": [1], "vector": [""]},
        "alpha:prw",
        "alpha:r",
    ),
    route("set-payload", "POST", f"{P}/payload", ON_POINT_1, "alpha:prw", "alpha:r"),
    route("overwrite-payload", "PUT", f"{P}/payload", ON_POINT_1, "alpha:prw", "alpha:r"),
    route(
        "delete-payload",
        "POST",
        f"{P}/payload/delete",
        {"keys": ["k"], "points": [1]},
        "alpha:prw",
        "alpha:r",
    ),
    route("clear-payload", "POST", f"{P}/payload/clear", {"points": [1]}, "alpha:prw", "alpha:r"),
    route(
        "batch", "POST", f"{P}/batch", {"operations": [{"upsert": UPSERT}]}, "alpha:prw", "alpha:r"
    ),
    route("list-snapshots", "GET", "/collections/alpha/snapshots", None, "alpha:r", "alpha:prw"),
    route("index", "PUT", "/collections/alpha/index", INDEX, "alpha:rw", "alpha:prw"),
    route("drop-index", "DELETE", "/collections/alpha/index/n", None, "alpha:rw", "alpha:prw"),
    route("snapshot", "POST", "/collections/alpha/snapshots", None, "alpha:rw", "alpha:prw"),
    route(
        "shard-snapshot",
        "POST",
        "/collections/alpha/shards/0/snapshots",
        None,
        "alpha:rw",
        "alpha:prw",
    ),
    route("full-snapshot", "POST", "/snapshots", None, "m", "r"),
    # Recovery needs global manage; the allowed call then finds no such snapshot.
    route(
        "recover",
        "PUT",
        "/collections/alpha/snapshots/recover",
        {"location": "file:///nonexistent.snapshot"},
        "m",
        "alpha:rw",
        400,
    ),
    route(
        "recover-shard",
        "PUT",
        "/collections/alpha/shards/0/snapshots/recover",
        {"location": "nonexistent.snapshot"},
        "m",
        "alpha:rw",
        404,
    ),
    # Not even a token made for the name may create the collection.
    route("create-collection", "PUT", "/collections/gamma", {"vectors": VECTORS}, "m", "gamma:rw"),
    route("change-aliases", "POST", "/collections/aliases", ALIAS, "m", "alpha:rw"),
    route("delete-collection", "DELETE", "/collections/alpha", None, "m", "alpha:rw"),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "refused", "answer"), ROUTE_NEEDS)
def test_each_route_needs_the_access_qdrant_assigns_it(
    double: QdrantDouble,
    method: str,
    path: str,
    body: Any,
    allowed: str,
    refused: str,
    answer: int,
) -> None:
    """A token one step short of what an operation needs gets 403; the weakest one that suffices
    reaches the operation."""
    assert status(double, method, path, body, headers=scoped(refused)) == 403
    assert status(double, method, path, body, headers=scoped(allowed)) == answer


# ----------------------------------------------------------------------------- REST: bad tokens


def test_non_integer_exp_is_401(double: QdrantDouble) -> None:
    headers = bearer(token({"access": "r", "exp": str(int(time.time()) + 60)}))
    assert status(double, "GET", "/collections", headers=headers) == 401


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_token_with_other_algorithm_is_401(double: QdrantDouble) -> None:
    """Only HS256 is accepted, so an HS512 token with the right key is still invalid."""
    headers = bearer(token({"access": "m"}, algorithm="HS512"))
    assert status(double, "GET", "/collections", headers=headers) == 401


def test_unsigned_token_is_401(double: QdrantDouble) -> None:
    """alg=none must never be accepted."""
    headers = bearer(jwt.encode({"access": "m"}, "", algorithm="none"))
    assert status(double, "GET", "/collections", headers=headers) == 401


def test_duplicate_collection_in_access_is_401(double: QdrantDouble) -> None:
    access = [{"collection": "alpha", "access": "r"}, {"collection": "alpha", "access": "rw"}]
    headers = bearer(token({"access": access}))
    assert status(double, "GET", "/collections/alpha", headers=headers) == 401


def test_deprecated_payload_constraint_is_401(double: QdrantDouble) -> None:
    """Payload-restricted tokens are no longer enforced by Qdrant, so they are refused."""
    access = [{"collection": "alpha", "access": "r", "payload": {"tenant": "acme"}}]
    headers = bearer(token({"access": access}))
    assert status(double, "GET", "/collections/alpha", headers=headers) == 401


def test_unknown_access_mode_is_401(double: QdrantDouble) -> None:
    headers = bearer(token({"access": "rw"}))
    assert status(double, "GET", "/collections", headers=headers) == 401


def test_value_exists_with_matching_point_is_accepted(double: QdrantDouble) -> None:
    claims = {
        "access": "r",
        "value_exists": {
            "collection": "alpha",
            "matches": [{"key": "token_id", "value": "t-1"}, {"key": "tenant", "value": "acme"}],
        },
    }
    assert status(double, "GET", "/collections", headers=bearer(token(claims))) == 200


def test_jwt_is_rejected_when_rbac_is_disabled() -> None:
    """Without jwt_rbac a signed token is just a wrong key."""
    double = start_double(jwt_rbac=False)
    try:
        assert status(double, "GET", "/collections", headers=bearer(token({"access": "m"}))) == 401
        assert status(double, "GET", "/collections", headers=api_key(KEY)) == 200
    finally:
        double.stop()


# ----------------------------------------------------------------------------- REST: paths


def test_dashboard_traversal_routes_where_it_points(double: QdrantDouble) -> None:
    """Whitelist and router see the same path, so a credential reaches /collections."""
    code, body = rest(double, "GET", "/dashboard%2f..%2fcollections", headers=api_key(KEY))
    assert code == 200
    assert "collections" in body["result"]


# ----------------------------------------------------------------------------- REST: transport


def test_body_larger_than_qdrant_default_limit_is_accepted(double: QdrantDouble) -> None:
    """The double has no size cap, so a proxy's client_max_body_size is what a test measures."""
    blob = "x" * (33 * 1024 * 1024)
    body = {"points": [{"id": 2, "vector": VECTOR, "payload": {"blob": blob}}]}
    assert status(double, "PUT", "/collections/alpha/points", body, headers=api_key(KEY)) == 200


def test_chunked_request_body_is_read(double: QdrantDouble) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        chunks = iter([json.dumps(UPSERT).encode()])
        connection.request(
            "PUT",
            "/collections/alpha/points",
            body=chunks,
            headers=api_key(KEY),
            encode_chunked=True,
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    code, body = rest(double, "GET", "/collections/alpha/points/7", headers=api_key(KEY))
    assert (code, body["result"]["payload"]) == (200, {"n": 7})


def test_refused_request_with_unread_body_closes_connection(double: QdrantDouble) -> None:
    """Refusing before reading the body (as Qdrant 1.18.1+ does) leaves the stream unusable."""
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        connection.request("PUT", "/collections/alpha/points", body=json.dumps(UPSERT))
        response = connection.getresponse()
        response.read()
        assert response.status == 401
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


def test_keep_alive_connection_is_reused_without_delayed_ack_stalls(double: QdrantDouble) -> None:
    """Nagle plus delayed ACK would cost ~40 ms per response; 20 requests stay far below that."""
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        started = time.perf_counter()
        for _ in range(20):
            connection.request("GET", "/collections", headers=api_key(KEY))
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        elapsed = time.perf_counter() - started
        assert connection.sock is first_socket
    finally:
        connection.close()
    assert elapsed < 0.5


# ----------------------------------------------------------------------------- gRPC (raw)


def test_grpc_list_with_key_works(channel: grpc.Channel) -> None:
    stub = qgrpc.CollectionsStub(channel)
    reply = stub.List(qgrpc.ListCollectionsRequest(), metadata=[("api-key", KEY)], timeout=5)
    assert [c.name for c in reply.collections] == ["alpha", "beta"]


def test_grpc_unknown_method_without_credentials_is_unauthenticated(channel: grpc.Channel) -> None:
    """As in Qdrant, authentication comes before routing on gRPC too."""
    method = channel.unary_unary("/qdrant.Nope/Nothing")
    assert grpc_code(lambda: method(b"", timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    unimplemented = grpc_code(lambda: method(b"", metadata=[("api-key", KEY)], timeout=5))
    assert unimplemented == grpc.StatusCode.UNIMPLEMENTED


STORAGE_READ_METHODS = (
    "ListFiles",
    "FileExists",
    "FileLength",
    "ReadBytes",
    "ReadBytesStream",
    "ReadWhole",
    "ReadBatch",
    "ReadMulti",
)
# `collection_name = 1` ("alpha"), then `shard_id = 2` and `path = 3` as the protos number them.
READ_ALPHA_SEGMENTS = b"\n\x05alpha\x10\x00\x1a\x08segments"


@pytest.mark.parametrize("method", STORAGE_READ_METHODS)
def test_grpc_storage_read_is_judged_on_the_collection_it_names(
    channel: grpc.Channel, method: str
) -> None:
    """Raw shard files are a collection's data: Qdrant checks read access to the named collection
    (src/tonic/api/storage_read_api/), so a token for another collection must not get through."""
    call = channel.unary_unary(f"/qdrant.StorageRead/{method}")

    def as_(access: str) -> Callable[[], Any]:
        credential = [("authorization", scoped(access)["Authorization"])]
        return lambda: call(READ_ALPHA_SEGMENTS, metadata=credential, timeout=5)

    unauthenticated = grpc_code(lambda: call(READ_ALPHA_SEGMENTS, timeout=5))
    assert unauthenticated == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(as_("beta:r")) == grpc.StatusCode.PERMISSION_DENIED
    assert as_("alpha:r")() == b""


def ids(*numbers: int) -> Any:
    return [qgrpc.PointId(num=n) for n in numbers]


GRPC_VECTOR = qgrpc.Vectors(vector=qgrpc.Vector(data=VECTOR))
ON_ALPHA_1 = {
    "collection_name": "alpha",
    "points_selector": qgrpc.PointsSelector(points=qgrpc.PointsIdsList(ids=ids(1))),
}


def rpc(
    service: str,
    method: str,
    request: Any,
    allowed: str,
    refused: str,
    answer: grpc.StatusCode = grpc.StatusCode.OK,
) -> Any:
    name = f"{service}.{method}"
    return pytest.param(service, method, request, allowed, refused, answer, id=name)


# The gRPC methods with the same needs as their REST routes in ROUTE_NEEDS.
RPC_NEEDS = [
    rpc(
        "Collections",
        "Get",
        qgrpc.GetCollectionInfoRequest(collection_name="alpha"),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Collections",
        "CollectionExists",
        qgrpc.CollectionExistsRequest(collection_name="alpha"),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Collections",
        "ListCollectionAliases",
        qgrpc.ListCollectionAliasesRequest(collection_name="alpha"),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Points", "Get", qgrpc.GetPoints(collection_name="alpha", ids=ids(1)), "alpha:r", "beta:rw"
    ),
    rpc("Points", "Scroll", qgrpc.ScrollPoints(collection_name="alpha"), "alpha:r", "beta:rw"),
    rpc("Points", "Count", qgrpc.CountPoints(collection_name="alpha"), "alpha:r", "beta:rw"),
    rpc(
        "Points",
        "Query",
        qgrpc.QueryPoints(
            collection_name="alpha",
            query=qgrpc.Query(nearest=qgrpc.VectorInput(dense=qgrpc.DenseVector(data=VECTOR))),
        ),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Points",
        "QueryBatch",
        qgrpc.QueryBatchPoints(
            collection_name="alpha", query_points=[qgrpc.QueryPoints(collection_name="alpha")]
        ),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Points",
        "Search",
        qgrpc.SearchPoints(collection_name="alpha", vector=VECTOR, limit=1),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Points",
        "Recommend",
        qgrpc.RecommendPoints(
            collection_name="alpha", positive_vectors=[qgrpc.Vector(data=VECTOR)], limit=1
        ),
        "alpha:r",
        "beta:rw",
    ),
    rpc(
        "Points",
        "Upsert",
        qgrpc.UpsertPoints(
            collection_name="alpha",
            points=[qgrpc.PointStruct(id=qgrpc.PointId(num=7), vectors=GRPC_VECTOR)],
        ),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "Delete",
        qgrpc.DeletePoints(
            collection_name="alpha",
            points=qgrpc.PointsSelector(points=qgrpc.PointsIdsList(ids=ids(7))),
        ),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "UpdateVectors",
        qgrpc.UpdatePointVectors(
            collection_name="alpha",
            points=[qgrpc.PointVectors(id=qgrpc.PointId(num=1), vectors=GRPC_VECTOR)],
        ),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "DeleteVectors",
        qgrpc.DeletePointVectors(**ON_ALPHA_1, vectors=qgrpc.VectorsSelector(names=[""])),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "SetPayload",
        qgrpc.SetPayloadPoints(**ON_ALPHA_1, payload={"k": qgrpc.Value(integer_value=1)}),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "OverwritePayload",
        qgrpc.SetPayloadPoints(**ON_ALPHA_1, payload={"k": qgrpc.Value(integer_value=1)}),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "DeletePayload",
        qgrpc.DeletePayloadPoints(**ON_ALPHA_1, keys=["k"]),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "ClearPayload",
        qgrpc.ClearPayloadPoints(collection_name="alpha", points=ON_ALPHA_1["points_selector"]),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Points",
        "UpdateBatch",
        qgrpc.UpdateBatchPoints(
            collection_name="alpha",
            operations=[
                qgrpc.PointsUpdateOperation(
                    clear_payload=qgrpc.PointsUpdateOperation.ClearPayload(
                        points=ON_ALPHA_1["points_selector"]
                    )
                )
            ],
        ),
        "alpha:prw",
        "alpha:r",
    ),
    rpc(
        "Snapshots",
        "List",
        qgrpc.ListSnapshotsRequest(collection_name="alpha"),
        "alpha:r",
        "alpha:prw",
    ),
    rpc(
        "Points",
        "CreateFieldIndex",
        qgrpc.CreateFieldIndexCollection(
            collection_name="alpha", field_name="n", field_type=qgrpc.FieldType.FieldTypeInteger
        ),
        "alpha:rw",
        "alpha:prw",
    ),
    rpc(
        "Points",
        "DeleteFieldIndex",
        qgrpc.DeleteFieldIndexCollection(collection_name="alpha", field_name="n"),
        "alpha:rw",
        "alpha:prw",
    ),
    rpc(
        "Snapshots",
        "Create",
        qgrpc.CreateSnapshotRequest(collection_name="alpha"),
        "alpha:rw",
        "alpha:prw",
    ),
    rpc("Snapshots", "CreateFull", qgrpc.CreateFullSnapshotRequest(), "m", "r"),
    rpc("Collections", "Create", qgrpc.CreateCollection(collection_name="gamma"), "m", "gamma:rw"),
    rpc(
        "Collections",
        "UpdateAliases",
        qgrpc.ChangeAliases(
            actions=[
                qgrpc.AliasOperations(
                    create_alias=qgrpc.CreateAlias(collection_name="alpha", alias_name="a1")
                )
            ]
        ),
        "m",
        "alpha:rw",
    ),
    rpc("Collections", "Delete", qgrpc.DeleteCollection(collection_name="alpha"), "m", "alpha:rw"),
]


def grpc_status(
    channel: grpc.Channel, service: str, method: str, request: Any, access: str
) -> grpc.StatusCode:
    stub = getattr(qgrpc, f"{service}Stub")(channel)
    credential = scoped(access)["Authorization"]
    try:
        getattr(stub, method)(request, metadata=[("authorization", credential)], timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("service", "method", "request_", "allowed", "refused", "answer"), RPC_NEEDS
)
def test_each_grpc_method_needs_the_access_qdrant_assigns_it(
    channel: grpc.Channel,
    service: str,
    method: str,
    request_: Any,
    allowed: str,
    refused: str,
    answer: grpc.StatusCode,
) -> None:
    """gRPC authorizes each method on its own: the same edges as the REST routes."""
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert grpc_status(channel, service, method, request_, refused) == denied
    assert grpc_status(channel, service, method, request_, allowed) == answer


# ----------------------------------------------------------------------------- qdrant-client


def make_client(double: QdrantDouble, transport: str, **credentials: Any) -> QdrantClient:
    return QdrantClient(
        host="127.0.0.1",
        port=double.rest_port,
        grpc_port=double.grpc_port,
        prefer_grpc=transport == "grpc",
        https=False,
        check_compatibility=False,
        timeout=10,
        grpc_options={"grpc.enable_http_proxy": 0},
        **credentials,
    )


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(double: QdrantDouble, transport: str) -> Iterator[Callable[..., QdrantClient]]:
    """Builds qdrant-client instances over one transport and closes them afterwards."""
    clients: list[QdrantClient] = []

    def make(**credentials: Any) -> QdrantClient:
        clients.append(make_client(double, transport, **credentials))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def denied(call: Callable[[], Any]) -> int:
    """The HTTP-equivalent status of a refused qdrant-client call, on either transport."""
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as info:
        call()
    error = info.value
    if isinstance(error, UnexpectedResponse):
        assert error.status_code is not None
        return error.status_code
    codes = {
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.UNIMPLEMENTED: 501,
    }
    return codes[error.code()]


COSINE_4 = models.VectorParams(size=4, distance=models.Distance.COSINE)
DOT_4 = models.VectorParams(size=4, distance=models.Distance.DOT)  # keeps vectors as given
POINT = models.PointStruct(id=5, vector=VECTOR, payload={"tag": "five"})


def test_client_master_key_round_trip(connect: Callable[..., QdrantClient]) -> None:
    client = connect(api_key=KEY)
    assert client.create_collection("gamma", COSINE_4)
    client.upsert("gamma", [POINT])
    assert client.retrieve("gamma", [5])[0].payload == {"tag": "five"}
    points, next_offset = client.scroll(
        "gamma",
        scroll_filter=models.Filter(
            must=[models.FieldCondition(key="tag", match=models.MatchValue(value="five"))]
        ),
    )
    assert [p.id for p in points] == [5] and next_offset is None
    assert client.get_collection("gamma").points_count == 1
    assert client.collection_exists("gamma")
    assert "gamma" in [c.name for c in client.get_collections().collections]


def test_client_without_credentials_is_401(connect: Callable[..., QdrantClient]) -> None:
    client = connect()
    assert denied(client.get_collections) == 401


def test_client_read_only_key_reads_but_cannot_write(connect: Callable[..., QdrantClient]) -> None:
    client = connect(api_key=READ_ONLY_KEY)
    assert client.retrieve("alpha", [1])[0].payload == {"tenant": "acme", "token_id": "t-1"}
    assert denied(lambda: client.upsert("alpha", [POINT])) == 403


def test_client_rw_token_is_denied_on_another_collection(
    connect: Callable[..., QdrantClient],
) -> None:
    client = connect(api_key=token({"access": [{"collection": "alpha", "access": "rw"}]}))
    client.upsert("alpha", [POINT])
    assert denied(lambda: client.upsert("beta", [POINT])) == 403
    assert denied(lambda: client.create_collection("beta2", COSINE_4)) == 403


def test_client_prw_token_upserts_but_cannot_index(connect: Callable[..., QdrantClient]) -> None:
    client = connect(api_key=token({"access": [{"collection": "alpha", "access": "prw"}]}))
    client.upsert("alpha", [POINT])
    keyword = models.PayloadSchemaType.KEYWORD
    assert denied(lambda: client.create_payload_index("alpha", "tag", keyword)) == 403


def test_client_forged_token_is_403(connect: Callable[..., QdrantClient]) -> None:
    client = connect(api_key=token({"access": "m"}, key=WRONG_KEY))
    assert denied(client.get_collections) == 403


def test_client_bearer_token_provider_works(connect: Callable[..., QdrantClient]) -> None:
    client = connect(auth_token_provider=lambda: token({"access": "r"}))
    assert [c.name for c in client.get_collections().collections] == ["alpha", "beta"]


def test_client_read_token_counts_and_queries_but_cannot_change_points(
    connect: Callable[..., QdrantClient],
) -> None:
    """A search service's token must not be able to alter or remove what it searches."""
    client = connect(api_key=token({"access": [{"collection": "alpha", "access": "r"}]}))
    assert client.count("alpha").count == 1
    assert client.query_points("alpha", query=VECTOR).points == []
    assert denied(lambda: client.upsert("alpha", [POINT])) == 403
    assert denied(lambda: client.delete("alpha", [1])) == 403
    assert denied(lambda: client.set_payload("alpha", {"tenant": "other"}, points=[1])) == 403


def test_client_prw_token_cannot_snapshot_where_rw_can(
    connect: Callable[..., QdrantClient],
) -> None:
    """prw is refused a copy of the whole collection; rw takes one, as on Qdrant."""
    prw = connect(api_key=token({"access": [{"collection": "alpha", "access": "prw"}]}))
    rw = connect(api_key=token({"access": [{"collection": "alpha", "access": "rw"}]}))
    assert denied(lambda: prw.create_snapshot("alpha")) == 403
    taken = rw.create_snapshot("alpha")
    assert taken is not None and taken.name.startswith("alpha-")


# ----------------------------------------------------------------------------- the data plane

RED, NEAR_RED, BLUE = [1.0, 0.0, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]
SHOP = [
    {"id": 1, "vector": RED, "payload": {"colour": "red", "n": 1}},
    {"id": 2, "vector": NEAR_RED, "payload": {"colour": "red", "n": 2}},
    {"id": 3, "vector": BLUE, "payload": {"colour": "blue", "n": 3}},
]
IS_RED = models.Filter(
    must=[models.FieldCondition(key="colour", match=models.MatchValue(value="red"))]
)


@pytest.fixture
def shop(double: QdrantDouble) -> str:
    """A collection `shop` of three points: red, near red and blue (cosine, size 4)."""
    headers = api_key(KEY)
    assert status(double, "PUT", "/collections/shop", {"vectors": VECTORS}, headers=headers) == 200
    upsert = status(double, "PUT", "/collections/shop/points", {"points": SHOP}, headers=headers)
    assert upsert == 200
    return "shop"


def test_client_keeps_the_vectors_it_upserts(connect: Callable[..., QdrantClient]) -> None:
    client = connect(api_key=KEY)
    assert client.create_collection("gamma", DOT_4)
    client.upsert("gamma", [POINT])
    assert client.retrieve("gamma", [5], with_vectors=True)[0].vector == pytest.approx(VECTOR)


def test_client_counts_the_points_a_filter_matches(
    connect: Callable[..., QdrantClient], shop: str
) -> None:
    client = connect(api_key=KEY)
    assert (client.count(shop).count, client.count(shop, count_filter=IS_RED).count) == (3, 2)


def test_client_query_answers_the_nearest_point_first(
    connect: Callable[..., QdrantClient], shop: str
) -> None:
    found = connect(api_key=KEY).query_points(shop, query=[1.0, 0.05, 0.0, 0.0], limit=2).points
    assert [point.id for point in found] == [1, 2]
    assert found[0].score > found[1].score


def test_client_scroll_with_a_filter_returns_only_matching_points(
    connect: Callable[..., QdrantClient], shop: str
) -> None:
    points, next_offset = connect(api_key=KEY).scroll(shop, scroll_filter=IS_RED)
    assert [(point.id, point.payload) for point in points] == [
        (1, {"colour": "red", "n": 1}),
        (2, {"colour": "red", "n": 2}),
    ]
    assert next_offset is None


def test_client_recommend_answers_points_like_the_example_and_not_the_example(
    connect: Callable[..., QdrantClient], shop: str
) -> None:
    query = models.RecommendQuery(recommend=models.RecommendInput(positive=[1]))
    found = connect(api_key=KEY).query_points(shop, query=query, limit=2).points
    assert [point.id for point in found] == [2, 3]


@pytest.mark.parametrize(
    ("write", "payload"),
    [
        pytest.param(
            lambda c: c.set_payload("shop", {"stock": 5}, points=[1]),
            {"colour": "red", "n": 1, "stock": 5},
            id="set",
        ),
        pytest.param(
            lambda c: c.overwrite_payload("shop", {"stock": 5}, points=[1]),
            {"stock": 5},
            id="overwrite",
        ),
        pytest.param(
            lambda c: c.delete_payload("shop", ["n"], points=[1]), {"colour": "red"}, id="delete"
        ),
        pytest.param(lambda c: c.clear_payload("shop", [1]), {}, id="clear"),
    ],
)
def test_client_payload_writes_change_the_payload(
    connect: Callable[..., QdrantClient],
    shop: str,
    write: Callable[[QdrantClient], Any],
    payload: dict[str, Any],
) -> None:
    client = connect(api_key=KEY)
    write(client)
    assert client.retrieve(shop, [1])[0].payload == payload


def test_client_deleted_points_are_gone(connect: Callable[..., QdrantClient], shop: str) -> None:
    client = connect(api_key=KEY)
    client.delete(shop, models.FilterSelector(filter=IS_RED))
    assert [point.id for point in client.scroll(shop)[0]] == [3]


def test_client_alias_names_the_collection(connect: Callable[..., QdrantClient], shop: str) -> None:
    client = connect(api_key=KEY)
    alias = models.CreateAlias(collection_name=shop, alias_name="store")
    client.update_collection_aliases([models.CreateAliasOperation(create_alias=alias)])
    assert [a.alias_name for a in client.get_aliases().aliases] == ["store"]
    assert client.count("store").count == 3


def test_query_that_looks_up_another_collection_needs_read_access_there(
    connect: Callable[..., QdrantClient], shop: str
) -> None:
    """`lookup_from` reads vectors out of a second collection, which the token must cover."""
    query = dict(query=1, lookup_from=models.LookupLocation(collection=shop), limit=1)
    grants = [{"collection": "alpha", "access": "r"}]
    alpha_only = connect(api_key=token({"access": grants}))
    both = connect(api_key=token({"access": [*grants, {"collection": shop, "access": "r"}]}))
    assert denied(lambda: alpha_only.query_points("alpha", **query)) == 403
    assert both.query_points("alpha", **query).points == []  # alpha's point has no vector


def search_ids(double: QdrantDouble, transport: str, legacy: str, example: Any) -> list[Any]:
    """Qdrant's search and recommend calls that qdrant-client 1.20 no longer makes, sent by hand."""
    if transport == "rest":
        body = {"vector": example} if legacy == "search" else {"positive": [example]}
        code, answer = rest(
            double,
            "POST",
            f"/collections/shop/points/{legacy}",
            {**body, "limit": 2},
            headers=api_key(KEY),
        )
        assert code == 200, answer
        return [point["id"] for point in answer["result"]]
    with grpc.insecure_channel(double.grpc_target, options=[("grpc.enable_http_proxy", 0)]) as ch:
        stub = qgrpc.PointsStub(ch)
        if legacy == "search":
            reply = stub.Search(
                qgrpc.SearchPoints(collection_name="shop", vector=example, limit=2),
                metadata=[("api-key", KEY)],
                timeout=5,
            )
        else:
            reply = stub.Recommend(
                qgrpc.RecommendPoints(
                    collection_name="shop", positive=[qgrpc.PointId(num=example)], limit=2
                ),
                metadata=[("api-key", KEY)],
                timeout=5,
            )
    return [point.id.num for point in reply.result]


def test_search_answers_the_nearest_point_first(
    double: QdrantDouble, shop: str, transport: str
) -> None:
    assert search_ids(double, transport, "search", [1.0, 0.05, 0.0, 0.0]) == [1, 2]


def test_recommend_answers_points_like_the_example(
    double: QdrantDouble, shop: str, transport: str
) -> None:
    assert search_ids(double, transport, "recommend", 1) == [2, 3]


def test_value_exists_token_is_refused_once_its_point_is_deleted(
    connect: Callable[..., QdrantClient], double: QdrantDouble
) -> None:
    """Qdrant's way to revoke one token: delete the point its `value_exists` claim names."""
    claim = {"collection": "alpha", "matches": [{"key": "token_id", "value": "t-1"}]}
    headers = bearer(token({"access": "r", "value_exists": claim}))
    assert status(double, "GET", "/collections", headers=headers) == 200
    connect(api_key=KEY).delete("alpha", [1])
    assert status(double, "GET", "/collections", headers=headers) == 401


def test_restart_on_the_same_storage_keeps_collections_and_points(
    tmp_path: Path, transport: str
) -> None:
    """What a replaced host relies on: the next Qdrant on the data volume serves the same data."""
    config = double_config(storage_path=str(tmp_path))
    with QdrantDouble(config) as first:
        client = make_client(first, transport, api_key=KEY)
        client.create_collection("kept", DOT_4)
        client.upsert("kept", [POINT])
        client.close()
    with QdrantDouble(config) as second:
        client = make_client(second, transport, api_key=KEY)
        [point] = client.query_points("kept", query=VECTOR, with_payload=True).points
        client.close()
    assert (point.id, point.payload) == (5, {"tag": "five"})


def test_second_double_on_the_same_storage_refuses_to_start(tmp_path: Path) -> None:
    """Two engines writing one directory would corrupt it; the storage lock stops the second."""
    with QdrantDouble(double_config(storage_path=str(tmp_path))):
        with pytest.raises(RuntimeError, match="already accessed"):
            QdrantDouble(double_config(storage_path=str(tmp_path))).start()


# ----------------------------------------------------------------------------- config & lifecycle


def test_config_rejects_empty_api_key() -> None:
    """An empty key would make the double accept an empty credential or none at all."""
    with pytest.raises(ValueError):
        DoubleConfig(api_key="")


def test_config_from_env_reads_qdrant_variables() -> None:
    environ = {
        "QDRANT__SERVICE__API_KEY": KEY,
        "QDRANT__SERVICE__READ_ONLY_API_KEY": READ_ONLY_KEY,
        "QDRANT__SERVICE__JWT_RBAC": "true",
        "QDRANT__STORAGE__STORAGE_PATH": "/qdrant/storage",
    }
    config = DoubleConfig.from_env(environ, rest_port=0)
    assert (config.api_key, config.read_only_api_key, config.jwt_rbac) == (KEY, READ_ONLY_KEY, True)
    assert config.storage_path == "/qdrant/storage"
    assert config.rest_host == config.grpc_host == "127.0.0.1"


def test_stop_frees_both_ports() -> None:
    double = start_double()
    ports = (double.rest_port, double.grpc_port)
    keep_alive = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=5)
    keep_alive.request("GET", "/healthz")
    keep_alive.getresponse().read()
    double.stop()
    keep_alive.close()
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))


@contextmanager
def running_cli(workdir: Path) -> Iterator[str]:
    """`python -m lab.qdrant_double` in ``workdir`` with only the API key set; yields its REST
    address and checks that SIGTERM stops it cleanly."""
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QDRANT__SERVICE__API_KEY": KEY}
    environ.pop("QDRANT__STORAGE__STORAGE_PATH", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.qdrant_double", "--rest-port", "0", "--grpc-port", "0"],
        env=environ,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the double did not report readiness"
        rest_url = process.stdout.readline().split("rest=")[1].split()[0]
        yield rest_url.removeprefix("http://")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def cli_request(address: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers=api_key(KEY))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_cli_reads_keys_from_environment_and_stops_on_sigterm(tmp_path: Path) -> None:
    with running_cli(tmp_path) as address:
        assert address.startswith("127.0.0.1:")
        assert cli_request(address, "GET", "/collections")[0] == 200


def test_cli_keeps_data_where_qdrant_does_across_a_restart(tmp_path: Path) -> None:
    """Without QDRANT__STORAGE__STORAGE_PATH, Qdrant keeps its data in ./storage (/qdrant/storage
    in its image): the same directory serves the next start, as a replaced host's Qdrant finds
    the data volume's."""
    with running_cli(tmp_path) as address:
        assert cli_request(address, "PUT", "/collections/kept", {"vectors": VECTORS})[0] == 200
        assert cli_request(address, "PUT", "/collections/kept/points", UPSERT)[0] == 200
    assert (tmp_path / "storage").is_dir()
    with running_cli(tmp_path) as address:
        code, body = cli_request(address, "POST", "/collections/kept/points/count", {})
    assert (code, body["result"]) == (200, {"count": 1})
