"""The snapshot endpoints answer as Qdrant's server does with an empty snapshots directory, the
double's (lab/qdrant_double/snapshots.py says why and where each answer comes from): a backup
script or client listing, downloading or deleting snapshots through the edge sees Qdrant's
answers; only taking or recovering one is the double's plain "not served"."""

from __future__ import annotations

import grpc
import pytest
from qdrant_client import grpc as qgrpc
from qdrant_client.grpc import snapshots_service_pb2_grpc

from lab.qdrant_double import QdrantDouble
from tests.double_client import KEY, api_key, bearer, rest, token

MASTER = api_key(KEY)
ALPHA_R = bearer(token({"access": [{"collection": "alpha", "access": "r"}]}))
ALPHA_RW = bearer(token({"access": [{"collection": "alpha", "access": "rw"}]}))
GRPC_KEY = [("api-key", KEY)]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/collections/alpha/snapshots", ALPHA_R),
        ("/snapshots", MASTER),
        ("/collections/alpha/shards/0/snapshots", ALPHA_R),
    ],
    ids=["collection", "full", "shard"],
)
def test_snapshot_listings_are_empty(double: QdrantDouble, path: str, headers: dict[str, str]) -> None:
    code, body = rest(double, "GET", path, headers=headers)
    assert (code, body["result"]) == (200, [])


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/collections/alpha/snapshots/s.snapshot", ALPHA_R),
        ("DELETE", "/collections/alpha/snapshots/s.snapshot", ALPHA_RW),
        ("GET", "/snapshots/s.snapshot", MASTER),
        ("DELETE", "/snapshots/s.snapshot", MASTER),
        ("GET", "/collections/alpha/shards/0/snapshots/s.snapshot", ALPHA_R),
        ("DELETE", "/collections/alpha/shards/0/snapshots/s.snapshot", ALPHA_RW),
    ],
)
def test_a_snapshot_not_taken_is_qdrants_404(
    double: QdrantDouble, method: str, path: str, headers: dict[str, str]
) -> None:
    code, body = rest(double, method, path, headers=headers)
    assert (code, body["status"]["error"]) == (404, "Not found: Snapshot s.snapshot not found")


def test_a_missing_collection_is_found_missing_before_its_snapshot(double: QdrantDouble) -> None:
    code, body = rest(double, "GET", "/collections/gamma/snapshots/s.snapshot", headers=MASTER)
    assert (code, body["status"]["error"]) == (404, "Not found: Collection `gamma` doesn't exist!")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/collections/alpha/shards/1/snapshots"),
        ("DELETE", "/collections/alpha/shards/1/snapshots/s.snapshot"),
    ],
)
def test_a_shard_the_collection_lacks_is_qdrants_404(
    double: QdrantDouble, method: str, path: str
) -> None:
    """One node, one shard: shard 1 is not there, before any snapshot of it is looked for."""
    code, body = rest(double, method, path, headers=MASTER)
    assert (code, body["status"]["error"]) == (404, "Not found: shard 1 not found")


def test_grpc_snapshot_listings_are_empty_and_deletions_not_found(channel: grpc.Channel) -> None:
    stub = snapshots_service_pb2_grpc.SnapshotsStub(channel)
    listed = stub.List(qgrpc.ListSnapshotsRequest(collection_name="alpha"), metadata=GRPC_KEY)
    assert list(listed.snapshot_descriptions) == []
    assert list(stub.ListFull(qgrpc.ListFullSnapshotsRequest(), metadata=GRPC_KEY).snapshot_descriptions) == []
    deletions = [
        lambda: stub.Delete(
            qgrpc.DeleteSnapshotRequest(collection_name="alpha", snapshot_name="s.snapshot"),
            metadata=GRPC_KEY,
        ),
        lambda: stub.DeleteFull(
            qgrpc.DeleteFullSnapshotRequest(snapshot_name="s.snapshot"), metadata=GRPC_KEY
        ),
    ]
    for delete in deletions:
        with pytest.raises(grpc.RpcError) as refused:
            delete()
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.NOT_FOUND, "Not found: Snapshot s.snapshot not found"
        )
