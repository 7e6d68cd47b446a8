"""The REST API: every endpoint of Qdrant's OpenAPI spec with its Need (access_table.py, generated
from the release's spec and access_rules.py), and the actions, by operationId, of those the double
serves: a reader parses the body as Qdrant's serde model does (bodies.py), then the action answers
with the data plane's results. An endpoint it does not serve is judged like any other, then
answered 501.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python
from qdrant_client.http import models

from lab.qdrant_double import (
    bodies,
    dataplane,
    legacy,
    snapshot_recovery,
    snapshots,
    standalone,
)
from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.access_table import JSON_BODY_OPERATIONS, REST_ENDPOINTS
from lab.qdrant_double.errors import NotFound, Unsupported
from lab.qdrant_double.store import Store


@dataclass(frozen=True)
class _RestCall:
    store: Store
    access: Access
    params: Mapping[str, str]
    request: Any
    """The body as the endpoint's reader made it (None for an endpoint without one)."""
    query: Mapping[str, str] = field(default_factory=dict)
    """The query string's parameters, the first value of each."""
    body: bytes = b""
    """The raw body of an endpoint Qdrant reads no JSON from (a multipart upload)."""
    content_type: str = ""
    url_recovery: bool = True
    """Qdrant's `service.enable_snapshot_url_recovery`."""

    @property
    def name(self) -> str:
        return self.params["collection_name"]


Action = Callable[[_RestCall], Any]
Reader = Callable[[Any], Any]
"""A JSON body to the request an action takes; what Qdrant refuses raises its 400."""


def _model(model: Any) -> Reader:
    return functools.partial(bodies.parse, model)


def _unparsed(body: Any) -> Any:
    return body


def _point_id(raw: str) -> models.ExtendedPointId:
    return int(raw) if raw.isdigit() else raw


def _read_batch(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("operations"), list):
        body = {**body, "operations": [bodies.with_vector_aliases(op) for op in body["operations"]]}
    return bodies.parse(models.UpdateOperations, body)


def _batch_update(call: _RestCall) -> Any:
    return dataplane.update_points(call.store, call.name, call.request.operations)


def _list_collections(call: _RestCall) -> Any:
    return dataplane.list_collections(call.store, call.access)


def _create_collection(call: _RestCall) -> Any:
    return call.store.create_collection(call.name, call.request)


def _delete_collection(call: _RestCall) -> Any:
    return call.store.delete(call.name)


def _collection_info(call: _RestCall) -> Any:
    return call.store.info(call.name)


def _collection_exists(call: _RestCall) -> Any:
    return dataplane.collection_exists(call.store, call.name)


def _change_aliases(call: _RestCall) -> Any:
    return dataplane.change_aliases(call.store, call.request)


def _aliases(call: _RestCall) -> Any:
    return dataplane.aliases(call.store, call.access)


def _collection_aliases(call: _RestCall) -> Any:
    return dataplane.aliases(call.store, call.access, call.name)


def _retrieve(call: _RestCall) -> Any:
    return dataplane.retrieve(call.store, call.name, call.request)


def _get_point(call: _RestCall) -> Any:
    return dataplane.get_point(call.store, call.name, _point_id(call.params["id"]))


def _scroll(call: _RestCall) -> Any:
    return dataplane.scroll(call.store, call.name, call.request)


def _count(call: _RestCall) -> Any:
    return dataplane.count(call.store, call.name, call.request)


def _query(call: _RestCall) -> Any:
    return dataplane.query(call.store, call.access, call.name, [call.request])[0]


def _query_batch(call: _RestCall) -> Any:
    return dataplane.query(call.store, call.access, call.name, call.request.searches)


def _legacy_query(call: _RestCall) -> Any:
    """Search and recommend answer a bare list of scored points, not a QueryResponse."""
    return dataplane.query(call.store, call.access, call.name, [call.request])[0].points


def _create_index(call: _RestCall) -> Any:
    return dataplane.create_index(call.store, call.name, call.request)


def _delete_index(call: _RestCall) -> Any:
    return dataplane.delete_index(call.store, call.name, call.params["field_name"])


def _list_snapshots(call: _RestCall) -> Any:
    return snapshots.listed(call.store, call.name)


def _create_snapshot(call: _RestCall) -> Any:
    return snapshots.taken(call.store, call.name)


def _get_snapshot(call: _RestCall) -> Any:
    return snapshots.downloaded(call.store, call.name, call.params["snapshot_name"])


def _delete_snapshot(call: _RestCall) -> Any:
    return snapshots.deleted(call.store, call.name, call.params["snapshot_name"])


def _list_shard_snapshots(call: _RestCall) -> Any:
    return snapshots.listed_in_shard(call.store, call.name, call.params["shard_id"])


def _create_shard_snapshot(call: _RestCall) -> Any:
    return snapshots.taken_of_shard(call.store, call.name, call.params["shard_id"])


def _get_shard_snapshot(call: _RestCall) -> Any:
    shard, snapshot = call.params["shard_id"], call.params["snapshot_name"]
    return snapshots.downloaded_from_shard(call.store, call.name, shard, snapshot)


def _stream_shard_snapshot(call: _RestCall) -> Any:
    return snapshots.streamed_from_shard(call.store, call.name, call.params["shard_id"])


def _delete_shard_snapshot(call: _RestCall) -> Any:
    shard, snapshot = call.params["shard_id"], call.params["snapshot_name"]
    return snapshots.deleted_from_shard(call.store, call.name, shard, snapshot)


def _list_full_snapshots(call: _RestCall) -> Any:
    return snapshots.listed_full(call.store)


def _create_full_snapshot(call: _RestCall) -> Any:
    return snapshots.taken_full(call.store)


def _get_full_snapshot(call: _RestCall) -> Any:
    return snapshots.downloaded_full(call.store, call.params["snapshot_name"])


def _delete_full_snapshot(call: _RestCall) -> Any:
    return snapshots.deleted_full(call.store, call.params["snapshot_name"])


def _recover_shard(call: _RestCall) -> Any:
    shard = call.params["shard_id"]
    return snapshot_recovery.shard_from_location(
        call.store, call.name, shard, call.request, call.url_recovery
    )


def _upload_shard_snapshot(call: _RestCall) -> Any:
    with snapshots.scratch(call.store) as scratch:
        file = snapshot_recovery.uploaded(call.content_type, call.body, scratch / "upload.snapshot")
        return snapshot_recovery.shard_from_upload(
            call.store, call.name, call.params["shard_id"], file, call.query.get("checksum")
        )


def _recover_collection(call: _RestCall) -> Any:
    file = snapshot_recovery.local_file(call.request.location, call.url_recovery)
    with snapshots.scratch(call.store) as scratch:
        return snapshot_recovery.collection_from_file(
            call.store, call.name, file, call.request.checksum, scratch
        )


def _upload_collection_snapshot(call: _RestCall) -> Any:
    with snapshots.scratch(call.store) as scratch:
        file = snapshot_recovery.uploaded(call.content_type, call.body, scratch / "upload.snapshot")
        return snapshot_recovery.collection_from_file(
            call.store, call.name, file, call.query.get("checksum"), scratch
        )


def _cluster_status(call: _RestCall) -> Any:
    return standalone.cluster_status()


def _recover_current_peer(call: _RestCall) -> Any:
    return standalone.recover_current_peer()


def _remove_peer(call: _RestCall) -> Any:
    force = call.query.get("force", "false") == "true"
    return standalone.remove_peer(call.store, call.params["peer_id"], force)


def _collection_cluster_info(call: _RestCall) -> Any:
    return standalone.collection_cluster_info(call.store, call.name)


def _cluster_telemetry(call: _RestCall) -> Any:
    return standalone.cluster_telemetry()


def _list_shard_keys(call: _RestCall) -> Any:
    return standalone.shard_keys(call.store, call.name)


def _update_collection_cluster(call: _RestCall) -> Any:
    return standalone.update_collection_cluster()


def _point_write(call: _RestCall) -> Any:
    return dataplane.update_points(call.store, call.name, [call.request])[0]


def _update_of(operation: Any, field: str) -> Reader:
    """A point, vector or payload write's body read as the `field` of an UpdateOperation."""

    def read(body: Any) -> Any:
        return bodies.parse(operation, bodies.with_vector_aliases({field: body}))

    return read


_ACTIONS: Mapping[str, Action] = {
    "get_collections": _list_collections,
    "create_collection": _create_collection,
    "delete_collection": _delete_collection,
    "get_collection": _collection_info,
    "collection_exists": _collection_exists,
    "update_aliases": _change_aliases,
    "get_collections_aliases": _aliases,
    "get_collection_aliases": _collection_aliases,
    "upsert_points": _point_write,
    "delete_points": _point_write,
    "update_vectors": _point_write,
    "delete_vectors": _point_write,
    "set_payload": _point_write,
    "overwrite_payload": _point_write,
    "delete_payload": _point_write,
    "clear_payload": _point_write,
    "batch_update": _batch_update,
    "get_points": _retrieve,
    "get_point": _get_point,
    "scroll_points": _scroll,
    "count_points": _count,
    "query_points": _query,
    "query_batch_points": _query_batch,
    "search_points": _legacy_query,
    "recommend_points": _legacy_query,
    "create_field_index": _create_index,
    "delete_field_index": _delete_index,
    "cluster_status": _cluster_status,
    "cluster_telemetry": _cluster_telemetry,
    "list_shard_keys": _list_shard_keys,
    "recover_current_peer": _recover_current_peer,
    "remove_peer": _remove_peer,
    "collection_cluster_info": _collection_cluster_info,
    "update_collection_cluster": _update_collection_cluster,
    "create_shard_key": _update_collection_cluster,
    "delete_shard_key": _update_collection_cluster,
    "list_snapshots": _list_snapshots,
    "create_snapshot": _create_snapshot,
    "get_snapshot": _get_snapshot,
    "delete_snapshot": _delete_snapshot,
    "list_shard_snapshots": _list_shard_snapshots,
    "create_shard_snapshot": _create_shard_snapshot,
    "get_shard_snapshot": _get_shard_snapshot,
    "delete_shard_snapshot": _delete_shard_snapshot,
    "stream_shard_snapshot": _stream_shard_snapshot,
    "list_full_snapshots": _list_full_snapshots,
    "create_full_snapshot": _create_full_snapshot,
    "get_full_snapshot": _get_full_snapshot,
    "delete_full_snapshot": _delete_full_snapshot,
    "recover_shard_from_snapshot": _recover_shard,
    "recover_shard_from_uploaded_snapshot": _upload_shard_snapshot,
    "recover_from_snapshot": _recover_collection,
    "recover_from_uploaded_snapshot": _upload_collection_snapshot,
}
"""The endpoints the double serves, by operationId."""

_READERS: Mapping[str, Reader] = {
    "create_collection": _model(models.CreateCollection),
    "update_aliases": _model(models.ChangeAliasesOperation),
    "upsert_points": _update_of(models.UpsertOperation, "upsert"),
    "delete_points": _update_of(models.DeleteOperation, "delete"),
    "update_vectors": _update_of(models.UpdateVectorsOperation, "update_vectors"),
    "delete_vectors": _update_of(models.DeleteVectorsOperation, "delete_vectors"),
    "set_payload": _update_of(models.SetPayloadOperation, "set_payload"),
    "overwrite_payload": _update_of(models.OverwritePayloadOperation, "overwrite_payload"),
    "delete_payload": _update_of(models.DeletePayloadOperation, "delete_payload"),
    "clear_payload": _update_of(models.ClearPayloadOperation, "clear_payload"),
    "batch_update": _read_batch,
    "get_points": _model(models.PointRequest),
    "scroll_points": _model(models.ScrollRequest),
    "count_points": _model(models.CountRequest),
    "query_points": _model(models.QueryRequest),
    "query_batch_points": _model(models.QueryRequestBatch),
    "search_points": legacy.search_request,
    "recommend_points": legacy.recommend_request,
    "create_field_index": _model(models.CreateFieldIndex),
    "update_collection_cluster": _model(models.ClusterOperations),
    "create_shard_key": _model(models.CreateShardingKey),
    "delete_shard_key": _model(models.DropShardingKey),
    "recover_shard_from_snapshot": _model(models.ShardSnapshotRecover),
    "recover_from_snapshot": _model(models.SnapshotRecover),
}
"""How the endpoints the double serves read their JSON bodies, by operationId; any other endpoint
whose body is JSON (JSON_BODY_OPERATIONS) has it checked as JSON only."""


def _not_served(operation: str) -> Action:
    def action(call: _RestCall) -> Any:
        raise Unsupported(f"Not served by the Qdrant test double: {operation}")

    return action


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    """The OpenAPI operation id: the audit line's `method`."""
    need: Need
    action: Action
    read: Reader | None
    """None for an endpoint whose body Qdrant does not read."""


def _route(method: str, path: str, operation: str, need: Need) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    action = _ACTIONS.get(operation) or _not_served(operation)
    read = _READERS.get(operation, _unparsed) if operation in JSON_BODY_OPERATIONS else None
    return _Route(method, re.compile(pattern), operation, need, action, read)


# Literal segments before parameters, as actix orders its resources: `POST /collections/aliases`
# is not `/collections/{collection_name}`.
_ROUTES = tuple(
    _route(*endpoint)
    for endpoint in sorted(REST_ENDPOINTS, key=lambda endpoint: endpoint[1].count("{"))
)


def _match_route(method: str, path: str) -> tuple[_Route, dict[str, str]]:
    for route in _ROUTES:
        found = route.pattern.fullmatch(path)
        if route.method == method and found:
            return route, found.groupdict()
    raise NotFound(f"Not found: {method} {path}")


def _jsonable(result: Any) -> Any:
    """A result as Qdrant writes it: unset fields left out, payload values kept as they are."""
    return to_jsonable_python(result, exclude_none=True)
