"""Tests for lab/qdrant_double/, the Qdrant auth test double.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

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
    rest,
    start_double,
    status,
    token,
)

# qdrant-client warns about credentials over plain http: here that is loopback by design.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    # The double's engine says so for every index it is asked for; the README does too.
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant"),
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


# ----------------------------------------------------------------------------- REST: each route's need


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
def route(name: str, method: str, path: str, body: Any, allowed: str, refused: str,
          answer: int = 200) -> Any:
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
    route("query-batch", "POST", f"{P}/query/batch", {"searches": [{"query": VECTOR}]},
          "alpha:r", "beta:rw"),
    route("search", "POST", f"{P}/search", {"vector": VECTOR, "limit": 1}, "alpha:r", "beta:rw"),
    route("recommend", "POST", f"{P}/recommend", {"positive": [VECTOR], "limit": 1},
          "alpha:r", "beta:rw"),
    route("upsert", "PUT", P, UPSERT, "alpha:prw", "alpha:r"),
    route("delete", "POST", f"{P}/delete", {"points": [7]}, "alpha:prw", "alpha:r"),
    route("update-vectors", "PUT", f"{P}/vectors", {"points": [{"id": 1, "vector": VECTOR}]},
          "alpha:prw", "alpha:r"),
    route("delete-vectors", "POST", f"{P}/vectors/delete", {"points": [1], "vector": [""]},
          "alpha:prw", "alpha:r"),
    route("set-payload", "POST", f"{P}/payload", ON_POINT_1, "alpha:prw", "alpha:r"),
    route("overwrite-payload", "PUT", f"{P}/payload", ON_POINT_1, "alpha:prw", "alpha:r"),
    route("delete-payload", "POST", f"{P}/payload/delete", {"keys": ["k"], "points": [1]},
          "alpha:prw", "alpha:r"),
    route("clear-payload", "POST", f"{P}/payload/clear", {"points": [1]}, "alpha:prw", "alpha:r"),
    route("batch", "POST", f"{P}/batch", {"operations": [{"upsert": UPSERT}]},
          "alpha:prw", "alpha:r"),
    route("list-snapshots", "GET", "/collections/alpha/snapshots", None, "alpha:r", "alpha:prw"),
    route("index", "PUT", "/collections/alpha/index", INDEX, "alpha:rw", "alpha:prw"),
    route("drop-index", "DELETE", "/collections/alpha/index/n", None, "alpha:rw", "alpha:prw"),
    # Authorized, then refused by the engine: local mode has no snapshots.
    route("snapshot", "POST", "/collections/alpha/snapshots", None, "alpha:rw", "alpha:prw", 501),
    # Not even a token made for the name may create the collection.
    route("create-collection", "PUT", "/collections/gamma", {"vectors": VECTORS}, "m", "gamma:rw"),
    route("change-aliases", "POST", "/collections/aliases", ALIAS, "m", "alpha:rw"),
    route("delete-collection", "DELETE", "/collections/alpha", None, "m", "alpha:rw"),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "refused", "answer"), ROUTE_NEEDS)
def test_each_route_needs_the_access_qdrant_assigns_it(
    double: QdrantDouble, method: str, path: str, body: Any, allowed: str, refused: str,
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
    claims = {"access": "r", "value_exists": {"collection": "alpha", "matches": [
        {"key": "token_id", "value": "t-1"}, {"key": "tenant", "value": "acme"}]}}
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
            "PUT", "/collections/alpha/points", body=chunks, headers=api_key(KEY),
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


@pytest.fixture
def channel(double: QdrantDouble) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(double.grpc_target, options=[("grpc.enable_http_proxy", 0)]) as ch:
        yield ch


def grpc_code(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


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


# ----------------------------------------------------------------------------- qdrant-client


@pytest.fixture(params=["grpc", "rest"])
def connect(
    request: pytest.FixtureRequest, double: QdrantDouble
) -> Iterator[Callable[..., QdrantClient]]:
    """Builds qdrant-client instances over one transport and closes them afterwards."""
    clients: list[QdrantClient] = []

    def make(**credentials: Any) -> QdrantClient:
        client = QdrantClient(
            host="127.0.0.1",
            port=double.rest_port,
            grpc_port=double.grpc_port,
            prefer_grpc=request.param == "grpc",
            https=False,
            check_compatibility=False,
            timeout=10,
            grpc_options={"grpc.enable_http_proxy": 0},
            **credentials,
        )
        clients.append(client)
        return client

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
    codes = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}
    return codes[error.code()]


COSINE_4 = models.VectorParams(size=4, distance=models.Distance.COSINE)
POINT = models.PointStruct(id=5, vector=[0.1, 0.2, 0.3, 0.4], payload={"tag": "five"})


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
    }
    config = DoubleConfig.from_env(environ, rest_port=0)
    assert (config.api_key, config.read_only_api_key, config.jwt_rbac) == (KEY, READ_ONLY_KEY, True)
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
        env=environ, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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
