"""The REST API: every endpoint of Qdrant's OpenAPI spec with its Need (access_table.py, generated
from the release's spec and access_rules.py), and the actions, by operationId, of those the double
serves: they parse bodies as Qdrant's serde models do (bodies.py) and answer with the data plane's
results. An endpoint it does not serve is judged like any other, then answered 501.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Tuple

from pydantic_core import to_jsonable_python
from qdrant_client.http import models

from lab.qdrant_double import bodies, dataplane, legacy
from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.access_table import REST_ENDPOINTS
from lab.qdrant_double.errors import NotFound, Unsupported
from lab.qdrant_double.store import Store


@dataclass(frozen=True)
class _RestCall:
    store: Store
    access: Access
    params: Mapping[str, str]
    body: Any

    @property
    def name(self) -> str:
        return self.params["collection_name"]

    def parse(self, model: Any, body: Any = None) -> Any:
        """The body (or ``body``) as a qdrant-client model, read as Qdrant's serde model reads it
        (bodies.py); a mismatch is Qdrant's 400."""
        return bodies.parse(model, self.body if body is None else body)


Action = Callable[[_RestCall], Any]


def _point_id(raw: str) -> models.ExtendedPointId:
    return int(raw) if raw.isdigit() else raw


def _batch_update(call: _RestCall) -> Any:
    body = call.body
    if isinstance(body, dict) and isinstance(body.get("operations"), list):
        body = {**body, "operations": [bodies.with_vector_aliases(op) for op in body["operations"]]}
    operations = call.parse(models.UpdateOperations, body).operations
    return dataplane.update_points(call.store, call.name, operations)


def _list_collections(call: _RestCall) -> Any:
    return dataplane.list_collections(call.store, call.access)


def _create_collection(call: _RestCall) -> Any:
    return call.store.create_collection(call.name, call.parse(models.CreateCollection))


def _delete_collection(call: _RestCall) -> Any:
    return call.store.delete(call.name)


def _collection_info(call: _RestCall) -> Any:
    return call.store.info(call.name)


def _collection_exists(call: _RestCall) -> Any:
    return dataplane.collection_exists(call.store, call.name)


def _change_aliases(call: _RestCall) -> Any:
    return dataplane.change_aliases(call.store, call.parse(models.ChangeAliasesOperation))


def _aliases(call: _RestCall) -> Any:
    return dataplane.aliases(call.store, call.access)


def _collection_aliases(call: _RestCall) -> Any:
    return dataplane.aliases(call.store, call.access, call.name)


def _retrieve(call: _RestCall) -> Any:
    return dataplane.retrieve(call.store, call.name, call.parse(models.PointRequest))


def _get_point(call: _RestCall) -> Any:
    return dataplane.get_point(call.store, call.name, _point_id(call.params["id"]))


def _scroll(call: _RestCall) -> Any:
    return dataplane.scroll(call.store, call.name, call.parse(models.ScrollRequest))


def _count(call: _RestCall) -> Any:
    return dataplane.count(call.store, call.name, call.parse(models.CountRequest))


def _query(call: _RestCall) -> Any:
    request = call.parse(models.QueryRequest)
    return dataplane.query(call.store, call.access, call.name, [request])[0]


def _query_batch(call: _RestCall) -> Any:
    searches = call.parse(models.QueryRequestBatch).searches
    return dataplane.query(call.store, call.access, call.name, searches)


def _legacy(to_query: Callable[[Any], models.QueryRequest]) -> Action:
    """Search and recommend answer a bare list of scored points, not a QueryResponse."""

    def action(call: _RestCall) -> Any:
        request = to_query(call.body)
        return dataplane.query(call.store, call.access, call.name, [request])[0].points

    return action


def _create_index(call: _RestCall) -> Any:
    return dataplane.create_index(call.store, call.name, call.parse(models.CreateFieldIndex))


def _delete_index(call: _RestCall) -> Any:
    return dataplane.delete_index(call.store, call.name, call.params["field_name"])


def _list_snapshots(call: _RestCall) -> Any:
    return dataplane.list_snapshots(call.store, call.name)


def _create_snapshot(call: _RestCall) -> Any:
    return dataplane.create_snapshot(call.store, call.name)


def _point_write(operation: Any, field: str) -> Action:
    """A point, vector or payload write, whose body is the `field` of an UpdateOperation."""

    def action(call: _RestCall) -> Any:
        update = call.parse(operation, bodies.with_vector_aliases({field: call.body}))
        return dataplane.update_points(call.store, call.name, [update])[0]

    return action


_ACTIONS: Mapping[str, Action] = {
    "get_collections": _list_collections,
    "create_collection": _create_collection,
    "delete_collection": _delete_collection,
    "get_collection": _collection_info,
    "collection_exists": _collection_exists,
    "update_aliases": _change_aliases,
    "get_collections_aliases": _aliases,
    "get_collection_aliases": _collection_aliases,
    "upsert_points": _point_write(models.UpsertOperation, "upsert"),
    "delete_points": _point_write(models.DeleteOperation, "delete"),
    "update_vectors": _point_write(models.UpdateVectorsOperation, "update_vectors"),
    "delete_vectors": _point_write(models.DeleteVectorsOperation, "delete_vectors"),
    "set_payload": _point_write(models.SetPayloadOperation, "set_payload"),
    "overwrite_payload": _point_write(models.OverwritePayloadOperation, "overwrite_payload"),
    "delete_payload": _point_write(models.DeletePayloadOperation, "delete_payload"),
    "clear_payload": _point_write(models.ClearPayloadOperation, "clear_payload"),
    "batch_update": _batch_update,
    "get_points": _retrieve,
    "get_point": _get_point,
    "scroll_points": _scroll,
    "count_points": _count,
    "query_points": _query,
    "query_batch_points": _query_batch,
    "search_points": _legacy(legacy.search_request),
    "recommend_points": _legacy(legacy.recommend_request),
    "create_field_index": _create_index,
    "delete_field_index": _delete_index,
    "list_snapshots": _list_snapshots,
    "create_snapshot": _create_snapshot,
}
"""The endpoints the double serves, by operationId."""


def _not_served(operation: str) -> Action:
    def action(call: _RestCall) -> Any:
        raise Unsupported(f"Not served by the Qdrant test double: {operation}")

    return action


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: "re.Pattern[str]"
    need: Need
    action: Action


def _route(method: str, path: str, operation: str, need: Need) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    action = _ACTIONS.get(operation) or _not_served(operation)
    return _Route(method, re.compile(pattern), need, action)


# Literal segments before parameters, as actix orders its resources: `POST /collections/aliases`
# is not `/collections/{collection_name}`.
_ROUTES = tuple(
    _route(*endpoint)
    for endpoint in sorted(REST_ENDPOINTS, key=lambda endpoint: endpoint[1].count("{"))
)


def _match_route(method: str, path: str) -> Tuple[_Route, dict[str, str]]:
    for route in _ROUTES:
        found = route.pattern.fullmatch(path)
        if route.method == method and found:
            return route, found.groupdict()
    raise NotFound(f"Not found: {method} {path}")


def _jsonable(result: Any) -> Any:
    """A result as Qdrant writes it: unset fields left out, payload values kept as they are."""
    return to_jsonable_python(result, exclude_none=True)
