"""What Qdrant's server answers for its cluster endpoints on a single node without distributed mode
(`cluster.enabled: false`, the project's deployment), once the caller's access is allowed.

Without consensus, the server's Dispatcher has no consensus state, so:
- `GET /cluster` is `ClusterStatus::Disabled`, `{"status": "disabled"}` (lib/storage/src/dispatcher.rs,
  `cluster_status`; src/actix/api/cluster_api.rs);
- `POST /cluster/recover` fails in `TableOfContent::request_snapshot`, which has no consensus proposal
  sender: "Qdrant is running in standalone mode", a service error (lib/storage/src/content_manager/
  toc/mod.rs, `get_consensus_proposal_sender`);
- `DELETE /cluster/peer/{peer_id}` refuses a peer that holds shards unless forced, then answers
  "Distributed mode disabled." (src/actix/api/cluster_api.rs, `remove_peer`);
- a collection's cluster info lists its one local shard, Active, with its approximate point count
  (lib/collection/src/collection/mod.rs, `cluster_info`; src/common/collections.rs,
  `do_get_collection_cluster`);
- `GET /cluster/telemetry` asks each peer the channel service knows for its telemetry; without
  distributed mode it knows none, not even this one, so it answers "Could not get telemetry from
  cluster", a service error, to any credential (src/actix/api/cluster_api.rs,
  `get_cluster_telemetry`; src/common/telemetry_ops/distributed_telemetry.rs,
  `resolve_telemetries`; src/main.rs fills the channel service's peers only in distributed mode);
- a collection's shard keys are `None` unless it is custom-sharded, which a collection cannot be
  without distributed mode (src/common/collections.rs, `do_get_collection_shard_keys`): REST's
  `ShardKeysResponse` without keys, gRPC's empty list;
- a collection cluster update (move, replicate, abort transfer, drop replica, ...), and creating
  or deleting a shard key, which Qdrant submits as one (src/actix/api/shards_api.rs), answer
  "Distributed mode disabled", without a period (src/common/collections.rs,
  `do_update_collection_cluster`), on REST and gRPC alike (src/tonic/api/collections_api.rs,
  where a shard key call without its request is first "empty request").
"""

from __future__ import annotations

from qdrant_client.http import models

from lab.qdrant_double.errors import BadRequest, ServiceError
from lab.qdrant_double.store import SHARD_ID, Collection, Store


def cluster_status() -> models.ClusterStatusOneOf:
    return models.ClusterStatusOneOf(status="disabled")


def recover_current_peer() -> bool:
    raise ServiceError("Qdrant is running in standalone mode")


def remove_peer(store: Store, peer_id: str, force: bool) -> bool:
    """Qdrant checks the shards before the consensus: this peer, holding any collection, is
    refused first unless ``force``."""
    if not force and peer_id == str(store.peer_id) and store.names():
        raise BadRequest(f"Bad request: Cannot remove peer {peer_id} as there are shards on it")
    raise BadRequest("Bad request: Distributed mode disabled.")


def collection_cluster_info(store: Store, name: str) -> models.CollectionClusterInfo:
    def local_shard(collection: Collection) -> models.LocalShardInfo:
        return models.LocalShardInfo(
            shard_id=SHARD_ID,
            points_count=collection.shard.info().points_count,
            state=models.ReplicaState.ACTIVE,
        )

    return models.CollectionClusterInfo(
        peer_id=store.peer_id,
        shard_count=1,
        local_shards=[store.run(name, local_shard)],
        remote_shards=[],
        shard_transfers=[],
    )


def cluster_telemetry() -> None:
    raise ServiceError("Could not get telemetry from cluster")


def shard_keys(store: Store, name: str) -> models.ShardKeysResponse:
    store.run(name, lambda found: found.name)  # a missing collection's 404, as `toc.get_collection`
    return models.ShardKeysResponse(shard_keys=None)


def update_collection_cluster() -> bool:
    raise BadRequest("Bad request: Distributed mode disabled")
