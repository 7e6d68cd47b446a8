"""The double reads bodies and messages as Qdrant does and answers errors in Qdrant's shapes: a client
written against Qdrant's API must not meet the double's own failures, which in the lab look like
edge failures (a dropped upstream connection is nginx's 502)."""

from __future__ import annotations

import http.client
from typing import Any

import grpc
import pytest
from qdrant_client import grpc as qgrpc
from qdrant_client.grpc import points_service_pb2_grpc

from lab.qdrant_double import QdrantDouble, dataplane
from tests.double_client import KEY, UPSERT, api_key, bearer, rest, token

MASTER = api_key(KEY)
P = "/collections/alpha/points"
VECTOR = [0.5, 0.5, 0.5, 0.5]  # unit length: a Cosine collection stores it as given
GRPC_KEY = [("api-key", KEY)]
SHARD_KEY = qgrpc.ShardKeySelector(shard_keys=[qgrpc.ShardKey(keyword="tenant-a")])


def _points(channel: grpc.Channel) -> Any:
    return points_service_pb2_grpc.PointsStub(channel)


def _ids(*numbers: int) -> Any:
    return qgrpc.PointsSelector(
        points=qgrpc.PointsIdsList(ids=[qgrpc.PointId(num=number) for number in numbers])
    )


# ----------------------------------------------------------------------------- handler failures


def test_deleting_vectors_of_a_missing_point_is_qdrants_404(double: QdrantDouble) -> None:
    """Qdrant answers a write on a missing point with 404 `No point with id ... found`; the double's
    handler died on it, and nginx turned the dropped connection into a 502."""
    delete = {"points": [999], "vector": [""]}
    code, body = rest(double, "POST", f"{P}/vectors/delete", delete, headers=MASTER)
    assert (code, body["status"]["error"]) == (404, "Not found: No point with id 999 found")


def test_rest_handler_failure_is_a_500_with_qdrants_error_shape(
    double: QdrantDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any failure inside a handler is Qdrant's `Service internal error` 500, never a dropped
    connection that a proxy reports as its own failure."""

    def fail(*args: Any) -> Any:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(dataplane, "count", fail)
    code, body = rest(double, "POST", f"{P}/count", {}, headers=MASTER)
    assert (code, body["status"]["error"]) == (500, "Service internal error: engine exploded")


def test_grpc_handler_failure_is_internal(
    double: QdrantDouble, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On gRPC, Qdrant's service error is INTERNAL, not the UNKNOWN of an uncaught exception."""

    def fail(*args: Any) -> Any:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(dataplane, "count", fail)
    request = qgrpc.CountPoints(collection_name="alpha")
    with pytest.raises(grpc.RpcError) as failed:
        _points(channel).Count(request, metadata=GRPC_KEY)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert failed.value.details() == "Service internal error: engine exploded"


# ----------------------------------------------------------------------------- gRPC shard keys

SHARD_KEYED_WRITES = {
    "Upsert": qgrpc.UpsertPoints(
        collection_name="alpha",
        points=[
            qgrpc.PointStruct(
                id=qgrpc.PointId(num=5), vectors=qgrpc.Vectors(vector=qgrpc.Vector(data=VECTOR))
            )
        ],
        shard_key_selector=SHARD_KEY,
    ),
    "Delete": qgrpc.DeletePoints(
        collection_name="alpha", points=_ids(1), shard_key_selector=SHARD_KEY
    ),
    "SetPayload": qgrpc.SetPayloadPoints(
        collection_name="alpha",
        payload={"k": qgrpc.Value(integer_value=1)},
        points_selector=_ids(1),
        shard_key_selector=SHARD_KEY,
    ),
    "ClearPayload": qgrpc.ClearPayloadPoints(
        collection_name="alpha", points=_ids(1), shard_key_selector=SHARD_KEY
    ),
    "UpdateBatch": qgrpc.UpdateBatchPoints(
        collection_name="alpha",
        operations=[
            qgrpc.PointsUpdateOperation(
                delete_points=qgrpc.PointsUpdateOperation.DeletePoints(
                    points=_ids(1), shard_key_selector=SHARD_KEY
                )
            )
        ],
    ),
}


@pytest.mark.parametrize("method", SHARD_KEYED_WRITES)
def test_grpc_write_with_a_shard_key_selector_succeeds(
    double: QdrantDouble, channel: grpc.Channel, method: str
) -> None:
    """Clients of custom-sharded collections send a shard key selector with every write; the double
    failed each such write with UNKNOWN (its one shard takes the write whatever the key)."""
    response = getattr(_points(channel), method)(SHARD_KEYED_WRITES[method], metadata=GRPC_KEY)
    results = response.result if method == "UpdateBatch" else [response.result]
    assert [result.status for result in results] == [qgrpc.UpdateStatus.Completed] * len(results)


# ----------------------------------------------------------------------------- serde's reading


def _vector_of(double: QdrantDouble, point_id: int) -> Any:
    request = {"ids": [point_id], "with_vector": True}
    code, body = rest(double, "POST", P, request, headers=MASTER)
    assert code == 200
    return body["result"][0].get("vector")


def test_upsert_reads_the_vectors_alias_of_vector(double: QdrantDouble) -> None:
    """Qdrant's PointStruct takes `vectors` for `vector` (`#[serde(alias = "vectors")]`)."""
    body = {"points": [{"id": 3, "vectors": VECTOR}]}
    assert rest(double, "PUT", f"{P}?wait=true", body, headers=MASTER)[0] == 200
    assert _vector_of(double, 3) == pytest.approx(VECTOR)


def test_vector_updates_and_deletes_read_the_vectors_alias(double: QdrantDouble) -> None:
    """So do PointVectors (update) and DeleteVectors (delete), alone and inside a batch."""
    upsert = {"points": [{"id": 3, "vector": VECTOR}]}
    assert rest(double, "PUT", P, upsert, headers=MASTER)[0] == 200
    update = {"points": [{"id": 3, "vectors": [0.5, -0.5, 0.5, -0.5]}]}
    assert rest(double, "PUT", f"{P}/vectors", update, headers=MASTER)[0] == 200
    assert _vector_of(double, 3) == pytest.approx([0.5, -0.5, 0.5, -0.5])
    delete = {"delete_vectors": {"points": [3], "vectors": [""]}}
    code, _ = rest(double, "POST", f"{P}/batch", {"operations": [delete]}, headers=MASTER)
    assert code == 200
    assert _vector_of(double, 3) in (None, {}, [])


def test_unknown_keys_are_ignored_as_qdrant_ignores_them(double: QdrantDouble) -> None:
    """Qdrant's request structs do not deny unknown fields: a client's extra key (a newer field, a
    client-side option) must not turn a valid request into a 400."""
    upsert = {"points": [{"id": 8, "vector": VECTOR, "note": "x"}], "client_hint": True}
    assert rest(double, "PUT", P, upsert, headers=MASTER)[0] == 200
    query = {"query": VECTOR, "limit": 1, "client_hint": True}
    assert rest(double, "POST", f"{P}/query", query, headers=MASTER)[0] == 200


def test_unknown_filter_keys_are_refused_as_qdrant_refuses_them(double: QdrantDouble) -> None:
    """Qdrant's Filter does deny unknown fields: a misspelled clause is a 400, not a filter that
    silently matches everything."""
    code, body = rest(double, "POST", f"{P}/scroll", {"filter": {"must_nto": []}}, headers=MASTER)
    assert code == 400
    assert body["status"]["error"].startswith("Format error in JSON body: ")


def test_forbidden_lookup_from_is_403_even_beside_an_ignored_key(double: QdrantDouble) -> None:
    """A query reading another collection's vectors the token cannot read is Qdrant's 403; an
    ignored key beside it made the double answer 400, hiding the refusal."""
    reader = bearer(token({"access": [{"collection": "alpha", "access": "r"}]}))
    query = {"query": 1, "lookup_from": {"collection": "beta"}, "client_hint": True}
    code, body = rest(double, "POST", f"{P}/query", query, headers=reader)
    assert (code, body["status"]["error"]) == (
        403,
        "Forbidden: Access to collection beta is required",
    )


# ----------------------------------------------------------------------------- body, then access

BETA_READER = bearer(token({"access": [{"collection": "beta", "access": "r"}]}))


def _status_of_raw(double: QdrantDouble, method: str, path: str, data: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        headers = {**BETA_READER, "Content-Type": "application/json"}
        connection.request(method, path, body=data, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_body_qdrant_cannot_read_is_400_even_for_a_refused_token(double: QdrantDouble) -> None:
    """actix extracts a handler's JSON body before the handler checks access, so Qdrant answers a
    body its model refuses with 400 whatever the token: the double answered 403, and a client
    (or `verify`) reading the status learnt something else than Qdrant would tell it."""
    code, body = rest(double, "POST", f"{P}/scroll", {"limit": "many"}, headers=BETA_READER)
    assert code == 400
    assert body["status"]["error"].startswith("Format error in JSON body: ")


def test_a_missing_credential_is_401_before_the_body_is_read(double: QdrantDouble) -> None:
    """Authentication is middleware in Qdrant, before any extractor: no credential, no parsing."""
    assert rest(double, "POST", f"{P}/scroll", {"limit": "many"})[0] == 401


def test_malformed_json_is_400_before_access_on_an_unserved_endpoint(double: QdrantDouble) -> None:
    """The same order where the double serves nothing: discover takes a JSON body in Qdrant."""
    assert _status_of_raw(double, "POST", f"{P}/discover", b"{not json") == 400


def test_the_body_of_an_endpoint_without_one_is_ignored(double: QdrantDouble) -> None:
    """Qdrant does not read the body of an endpoint that takes none: the refusal stands."""
    assert _status_of_raw(double, "GET", "/collections/alpha", b"{not json") == 403


# ----------------------------------------------------------------------------- 403 wording


def test_rest_access_refusal_carries_qdrants_forbidden_prefix(double: QdrantDouble) -> None:
    """Qdrant's RBAC refusals are `StorageError::Forbidden`, written `Forbidden: <description>`."""
    reader = bearer(token({"access": "r"}))
    code, body = rest(double, "PUT", P, UPSERT, headers=reader)
    assert (code, body["status"]["error"]) == (403, "Forbidden: Global manage access is required")


def test_grpc_access_refusal_carries_qdrants_forbidden_prefix(channel: grpc.Channel) -> None:
    """The same text on gRPC's PERMISSION_DENIED."""
    alpha_reader = token({"access": [{"collection": "alpha", "access": "r"}]})
    reader = [("authorization", f"Bearer {alpha_reader}")]
    with pytest.raises(grpc.RpcError) as refused:
        _points(channel).Delete(SHARD_KEYED_WRITES["Delete"], metadata=reader)
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "Forbidden: Write access to collection alpha is required",
    )


# ----------------------------------------------------------------------------- gRPC selectors

MISSING_SELECTOR = {
    "Delete": (qgrpc.DeletePoints(collection_name="alpha"), "PointSelector is missing"),
    "ClearPayload": (qgrpc.ClearPayloadPoints(collection_name="alpha"), "PointSelector is missing"),
    "SetPayload": (
        qgrpc.SetPayloadPoints(
            collection_name="alpha", payload={"k": qgrpc.Value(integer_value=1)}
        ),
        "points_selector is expected",
    ),
    "OverwritePayload": (
        qgrpc.SetPayloadPoints(
            collection_name="alpha", payload={"k": qgrpc.Value(integer_value=1)}
        ),
        "points_selector is expected",
    ),
    "DeletePayload": (
        qgrpc.DeletePayloadPoints(collection_name="alpha", keys=["k"]),
        "points_selector is expected",
    ),
}


@pytest.mark.parametrize("method", MISSING_SELECTOR)
def test_grpc_write_without_a_points_selector_is_invalid_argument(
    channel: grpc.Channel, method: str
) -> None:
    """Qdrant refuses such a call as the caller's mistake (src/tonic/api/update_common.rs:
    `Status::invalid_argument`); the double's converter failed on it and answered INTERNAL, which
    a client retries and an operator reads as a server fault."""
    request, message = MISSING_SELECTOR[method]
    with pytest.raises(grpc.RpcError) as refused:
        getattr(_points(channel), method)(request, metadata=GRPC_KEY, timeout=10)
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )
