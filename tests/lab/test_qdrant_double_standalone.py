"""The cluster endpoints answer as Qdrant's server does on one node without distributed mode, the
project's deployment (lab/qdrant_double/standalone.py names the Qdrant source of each answer):
a client or operator script probing the cluster through the edge must see Qdrant's answers, not
the double's "not served"."""

from __future__ import annotations

import grpc
import pytest
from qdrant_client import grpc as qgrpc
from qdrant_client.grpc import collections_service_pb2_grpc

from lab.qdrant_double import QdrantDouble
from tests.double_client import KEY, api_key, bearer, rest, token

MASTER = api_key(KEY)
GLOBAL_READ = bearer(token({"access": "r"}))
ALPHA_RW = bearer(token({"access": [{"collection": "alpha", "access": "rw"}]}))
ALPHA_PRW = bearer(token({"access": [{"collection": "alpha", "access": "prw"}]}))
MOVE_SHARD = {"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}}


def test_cluster_status_is_disabled(double: QdrantDouble) -> None:
    """Qdrant's `ClusterStatus::Disabled` for a global reader: what a health script checks to
    tell a single node from a cluster."""
    for headers in (MASTER, GLOBAL_READ):
        code, body = rest(double, "GET", "/cluster", headers=headers)
        assert (code, body["result"]) == (200, {"status": "disabled"})


def test_recovering_the_peer_is_standalone_modes_service_error(double: QdrantDouble) -> None:
    """A manager asking for a Raft snapshot on a node without consensus gets Qdrant's 500."""
    code, body = rest(double, "POST", "/cluster/recover", headers=MASTER)
    assert (code, body["status"]["error"]) == (
        500,
        "Service internal error: Qdrant is running in standalone mode",
    )
    assert rest(double, "POST", "/cluster/recover", headers=GLOBAL_READ)[0] == 403


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("12345", "Bad request: Distributed mode disabled."),
        ("{self}", "Bad request: Cannot remove peer {self} as there are shards on it"),
        ("{self}?force=true", "Bad request: Distributed mode disabled."),
    ],
    ids=["other peer", "this peer with shards", "this peer forced"],
)
def test_removing_a_peer_is_refused_as_qdrant_refuses_it(
    double: QdrantDouble, target: str, expected: str
) -> None:
    """Qdrant checks the peer's shards first, then finds no consensus to propose the removal to."""
    path = "/cluster/peer/" + target.format(self=double.store.peer_id)
    code, body = rest(double, "DELETE", path, headers=MASTER)
    assert (code, body["status"]["error"]) == (400, expected.format(self=double.store.peer_id))


def test_collection_cluster_info_lists_its_one_active_local_shard(double: QdrantDouble) -> None:
    """A collection reader sees the shard layout Qdrant reports on one node."""
    code, body = rest(double, "GET", "/collections/alpha/cluster", headers=ALPHA_RW)
    assert code == 200
    assert body["result"] == {
        "peer_id": double.store.peer_id,
        "shard_count": 1,
        "local_shards": [{"shard_id": 0, "points_count": 1, "state": "Active"}],
        "remote_shards": [],
        "shard_transfers": [],
    }


def test_collection_cluster_update_is_refused_without_distributed_mode(
    double: QdrantDouble,
) -> None:
    """Moving a shard on one node: Qdrant's 400 for a manager, 403 before it for an rw token."""
    code, body = rest(double, "POST", "/collections/alpha/cluster", MOVE_SHARD, headers=MASTER)
    assert (code, body["status"]["error"]) == (400, "Bad request: Distributed mode disabled")
    assert (
        rest(double, "POST", "/collections/alpha/cluster", MOVE_SHARD, headers=ALPHA_RW)[0] == 403
    )


def test_grpc_collection_cluster_info_and_update(
    double: QdrantDouble, channel: grpc.Channel
) -> None:
    """The same answers on gRPC: the local shard, and INVALID_ARGUMENT for an update."""
    stub = collections_service_pb2_grpc.CollectionsStub(channel)
    metadata = [("api-key", KEY)]
    info = stub.CollectionClusterInfo(
        qgrpc.CollectionClusterInfoRequest(collection_name="alpha"), metadata=metadata, timeout=10
    )
    assert (info.peer_id, info.shard_count) == (double.store.peer_id, 1)
    assert [(shard.shard_id, shard.points_count, shard.state) for shard in info.local_shards] == [
        (0, 1, qgrpc.ReplicaState.Active)
    ]
    update = qgrpc.UpdateCollectionClusterSetupRequest(
        collection_name="alpha",
        move_shard=qgrpc.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2),
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateCollectionClusterSetup(update, metadata=metadata, timeout=10)
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Bad request: Distributed mode disabled",
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/collections/alpha/shards", {"shard_key": "tenant-a"}),
        ("POST", "/collections/alpha/shards/delete", {"shard_key": "tenant-a"}),
    ],
    ids=["create", "delete"],
)
def test_shard_keys_are_cluster_updates_refused_without_distributed_mode(
    double: QdrantDouble, method: str, path: str, body: dict[str, str]
) -> None:
    """Qdrant submits a shard key change as a collection cluster update: the same 400."""
    code, answer = rest(double, method, path, body, headers=MASTER)
    assert (code, answer["status"]["error"]) == (400, "Bad request: Distributed mode disabled")


def test_grpc_shard_key_calls_are_refused_without_distributed_mode(channel: grpc.Channel) -> None:
    stub = collections_service_pb2_grpc.CollectionsStub(channel)
    metadata = [("api-key", KEY)]
    key = qgrpc.ShardKey(keyword="tenant-a")
    calls = {
        "empty request": lambda: stub.CreateShardKey(
            qgrpc.CreateShardKeyRequest(collection_name="alpha"), metadata=metadata, timeout=10
        ),
        "Bad request: Distributed mode disabled": lambda: stub.DeleteShardKey(
            qgrpc.DeleteShardKeyRequest(
                collection_name="alpha", request=qgrpc.DeleteShardKey(shard_key=key)
            ),
            metadata=metadata,
            timeout=10,
        ),
    }
    for message, call in calls.items():
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            message,
        )


def test_cluster_telemetry_is_qdrants_service_error_without_peers(double: QdrantDouble) -> None:
    """Without distributed mode Qdrant's channel service knows no peer, not even itself, so the
    cluster telemetry it gathers from its peers is empty: "Could not get telemetry from cluster",
    for any credential, as `get_cluster_telemetry` checks none (src/actix/api/cluster_api.rs;
    src/common/telemetry_ops/distributed_telemetry.rs, `resolve_telemetries`)."""
    for headers in (MASTER, ALPHA_RW):
        code, body = rest(double, "GET", "/cluster/telemetry", headers=headers)
        assert (code, body["status"]["error"]) == (
            500,
            "Service internal error: Could not get telemetry from cluster",
        )


def test_shard_keys_of_an_auto_sharded_collection_are_none(double: QdrantDouble) -> None:
    """Shard keys exist only with custom sharding: Qdrant lists none for the project's
    collections, to any reader of the collection, points-only tokens included
    (src/common/collections.rs, `do_get_collection_shard_keys`: no extras required)."""
    for headers in (MASTER, ALPHA_PRW):
        code, body = rest(double, "GET", "/collections/alpha/shards", headers=headers)
        assert (code, body["result"]) == (200, {})


def test_grpc_shard_keys_of_an_auto_sharded_collection_are_none(channel: grpc.Channel) -> None:
    stub = collections_service_pb2_grpc.CollectionsStub(channel)
    prw = [("authorization", ALPHA_PRW["Authorization"])]
    listed = stub.ListShardKeys(
        qgrpc.ListShardKeysRequest(collection_name="alpha"), metadata=prw, timeout=10
    )
    assert list(listed.shard_keys) == []
