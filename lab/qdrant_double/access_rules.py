"""Which Need each family of Qdrant endpoints has, read in Qdrant's handlers (qdrant/qdrant v1.18):
the input of lab/gen_qdrant_access.py, which joins it with the release's API surface (its OpenAPI
spec and gRPC method list) into access_table.py.

A family is a set of operations whose handlers make the same access check; each names the file
that makes it. REST operations are named by the spec's operationId, gRPC methods by
``package.Service/Method``. Requirements map onto Needs as in access.py: `check_global_access`
with no requirement is GLOBAL_READ, with `manage()` MANAGE; `check_collection_access` with none is
READ, `write()` WRITE_POINTS, `extras()` READ_COLLECTION, `write().extras()` WRITE_COLLECTION.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.qdrant_double.access import Need


@dataclass(frozen=True)
class Family:
    need: Need
    source: str
    """The file(s) in qdrant/qdrant whose check decides it."""
    rest: tuple[str, ...] = ()
    grpc: tuple[str, ...] = ()


_OPS_CHECKS = "lib/storage/src/rbac/ops_checks.rs"
_SNAPSHOTS = (
    "src/actix/api/snapshot_api.rs, src/common/snapshots.rs, src/tonic/api/snapshots_api.rs"
)

FAMILIES: dict[str, Family] = {
    "public": Family(
        Need.PUBLIC,
        "src/actix/mod.rs (auth whitelist), src/tonic/auth.rs (public methods)",
        rest=("root", "healthz", "livez", "readyz"),
        grpc=("qdrant.Qdrant/HealthCheck", "grpc.health.v1.Health/Check"),
    ),
    "filtered listings": Family(
        Need.LIST,
        "src/actix/api/service_api.rs (telemetry by access), src/actix/api/issues_api.rs, "
        "src/common/collections.rs (do_list_collections, do_list_aliases filter by access), "
        "src/actix/api/cluster_api.rs (get_cluster_telemetry: no check, the token's collections)",
        rest=(
            "telemetry",
            "cluster_telemetry",
            "get_issues",
            "get_collections",
            "get_collections_aliases",
        ),
        grpc=("qdrant.Collections/List", "qdrant.Collections/ListAliases"),
    ),
    # Full snapshots: v1.18's do_list_full_snapshots (lib/storage/src/content_manager/snapshots/
    # mod.rs, reached from src/actix/api/snapshot_api.rs and src/tonic/api/snapshots_api.rs) checks
    # `check_global_access(AccessRequirements::new(), "list_full_snapshots")`, and Qdrant's own
    # tests/auth_tests/test_jwt_access.py lets a global reader list and download them; the
    # `check_manage_rights()` of commit 004b3cbf is the RBAC draft before AccessRequirements.
    "global reads": Family(
        Need.GLOBAL_READ,
        "src/actix/api/service_api.rs (metrics), src/actix/api/cluster_api.rs, "
        "lib/storage/src/content_manager/snapshots/mod.rs (do_list_full_snapshots), " + _SNAPSHOTS,
        rest=(
            "metrics",
            "cluster_status",
            "list_full_snapshots",
            "get_full_snapshot",
        ),
        grpc=("qdrant.Snapshots/ListFull",),
    ),
    "global management": Family(
        Need.MANAGE,
        f"{_OPS_CHECKS} (check_collection_meta_operation), src/actix/api/issues_api.rs, "
        "src/actix/api/cluster_api.rs, " + _SNAPSHOTS,
        rest=(
            "clear_issues",
            "recover_current_peer",
            "remove_peer",
            "create_collection",
            "update_collection",
            "delete_collection",
            "update_aliases",
            "update_collection_cluster",
            "create_shard_key",
            "delete_shard_key",
            "recover_from_uploaded_snapshot",
            "recover_from_snapshot",
            "recover_shard_from_uploaded_snapshot",
            "recover_shard_from_snapshot",
            "create_full_snapshot",
            "delete_full_snapshot",
        ),
        grpc=(
            "qdrant.Collections/Create",
            "qdrant.Collections/Update",
            "qdrant.Collections/Delete",
            "qdrant.Collections/UpdateAliases",
            "qdrant.Collections/UpdateCollectionClusterSetup",
            "qdrant.Collections/CreateShardKey",
            "qdrant.Collections/DeleteShardKey",
            "qdrant.Snapshots/CreateFull",
            "qdrant.Snapshots/DeleteFull",
        ),
    ),
    "collection reads": Family(
        Need.READ,
        "src/actix/api/collections_api.rs, src/tonic/api/collections_api.rs, "
        "src/actix/api/shards_api.rs and src/common/collections.rs (do_get_collection_shard_keys: "
        "`AccessRequirements::new()`, no extras)",
        rest=(
            "get_collection",
            "collection_exists",
            "get_collection_aliases",
            "get_optimizations",
            "list_shard_keys",
        ),
        grpc=(
            "qdrant.Collections/Get",
            "qdrant.Collections/CollectionExists",
            "qdrant.Collections/ListCollectionAliases",
            "qdrant.Collections/ListShardKeys",
        ),
    ),
    "collection extras": Family(
        Need.READ_COLLECTION,
        "src/actix/api/collections_api.rs (cluster info), " + _SNAPSHOTS,
        rest=(
            "collection_cluster_info",
            "list_snapshots",
            "get_snapshot",
            "list_shard_snapshots",
            "get_shard_snapshot",
        ),
        grpc=(
            "qdrant.Collections/CollectionClusterInfo",
            "qdrant.Snapshots/List",
        ),
    ),
    # Payload indexes: do_create_index / do_delete_index (src/common/update.rs) submit
    # CollectionMetaOperations::CreatePayloadIndex / DropPayloadIndex under the caller's auth,
    # which check_collection_meta_operation checks with `write().extras()` (`write().whole()`
    # before extras was named so). The FieldIndexOperation they then apply, whose requirements
    # are write + manage, runs under Qdrant's internal full access, not the caller's.
    # Named vectors (v1.18.0, qdrant/qdrant#8605, "crud named vectors": src/actix/api/
    # vector_name_api.rs hands the caller's auth to do_create_vector_name / do_delete_vector_name):
    # "Both operations require write + extras permissions", its RBAC section and the JWT access
    # tests it updated say; the search tool's index holds no v1.18 ops_checks.rs to read the arm in.
    "collection extras writes": Family(
        Need.WRITE_COLLECTION,
        f"src/common/update.rs, {_OPS_CHECKS} (check_collection_meta_operation; the "
        "VectorNameOperation arm, qdrant/qdrant#8605), src/actix/api/vector_name_api.rs, "
        + _SNAPSHOTS,
        rest=(
            "create_field_index",
            "delete_field_index",
            "create_vector_name",
            "delete_vector_name",
            "create_snapshot",
            "delete_snapshot",
            "create_shard_snapshot",
            "delete_shard_snapshot",
            # src/common/snapshots.rs, stream_shard_snapshot: `write().extras()`, as a snapshot
            # taken and kept.
            "stream_shard_snapshot",
        ),
        grpc=(
            "qdrant.Points/CreateFieldIndex",
            "qdrant.Points/DeleteFieldIndex",
            "qdrant.Points/CreateVectorName",
            "qdrant.Points/DeleteVectorName",
            "qdrant.Snapshots/Create",
            "qdrant.Snapshots/Delete",
        ),
    ),
    "point reads": Family(
        Need.READ,
        f"{_OPS_CHECKS} (read requests); src/actix/api/retrieve_api.rs, search_api.rs, "
        "recommend_api.rs, discovery_api.rs, query_api.rs, count_api.rs, facet_api.rs; "
        "src/tonic/api/points_api.rs",
        rest=(
            "get_point",
            "get_points",
            "scroll_points",
            "count_points",
            "facet",
            "search_points",
            "search_batch_points",
            "search_point_groups",
            "recommend_points",
            "recommend_batch_points",
            "recommend_point_groups",
            "discover_points",
            "discover_batch_points",
            "query_points",
            "query_batch_points",
            "query_points_groups",
            "search_matrix_pairs",
            "search_matrix_offsets",
        ),
        grpc=tuple(
            f"qdrant.Points/{method}"
            for method in (
                "Get",
                "Scroll",
                "Count",
                "Facet",
                "Search",
                "SearchBatch",
                "SearchGroups",
                "Recommend",
                "RecommendBatch",
                "RecommendGroups",
                "Discover",
                "DiscoverBatch",
                "Query",
                "QueryBatch",
                "QueryGroups",
                "SearchMatrixPairs",
                "SearchMatrixOffsets",
            )
        ),
    ),
    "point writes": Family(
        Need.WRITE_POINTS,
        f"{_OPS_CHECKS} (CollectionUpdateOperations), src/actix/api/update_api.rs, "
        "src/tonic/api/points_api.rs",
        rest=(
            "upsert_points",
            "delete_points",
            "update_vectors",
            "delete_vectors",
            "set_payload",
            "overwrite_payload",
            "delete_payload",
            "clear_payload",
            "batch_update",
        ),
        grpc=tuple(
            f"qdrant.Points/{method}"
            for method in (
                "Upsert",
                "Delete",
                "UpdateVectors",
                "DeleteVectors",
                "SetPayload",
                "OverwritePayload",
                "DeletePayload",
                "ClearPayload",
                "UpdateBatch",
            )
        ),
    ),
    "raw shard reads": Family(
        Need.READ,
        "src/tonic/api/storage_read_api/mod.rs (collection read access)",
        grpc=tuple(
            f"qdrant.StorageRead/{method}"
            for method in (
                "ListFiles",
                "FileExists",
                "FileLength",
                "ReadBytes",
                "ReadBytesStream",
                "ReadWhole",
                "ReadBatch",
                "ReadMulti",
            )
        ),
    ),
}

INTERNAL_SERVICES = frozenset({"qdrant.Raft", "qdrant.ShardSnapshots"})
"""Served only on the internal (p2p) port, as are the `*Internal` services: src/tonic/mod.rs."""


def is_public_service(service: str) -> bool:
    """Whether Qdrant serves ``service`` on its public gRPC port."""
    return not service.endswith("Internal") and service not in INTERNAL_SERVICES
