"""The REST API: the route table, with the Need of each route as Qdrant's RBAC assigns it, and the
actions that parse bodies into qdrant-client's models and answer with the data plane's results.

Paths and bodies are those of qdrant-client's `qdrant_client/http/api/*_api.py` (Qdrant's OpenAPI);
Needs follow `lib/storage/src/rbac/ops_checks.rs` and the `check_*_access` calls beside each
operation in qdrant/qdrant v1.18.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Tuple

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from qdrant_client.http import models

from lab.qdrant_double import dataplane, legacy
from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.errors import BadRequest, NotFound
from lab.qdrant_double.store import Store


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


@dataclass(frozen=True)
class _RestCall:
    store: Store
    access: Access
    params: Mapping[str, str]
    body: Any

    @property
    def name(self) -> str:
        return self.params["name"]

    def parse(self, model: Any, body: Any = None) -> Any:
        """The body (or ``body``) as a qdrant-client model; a mismatch is Qdrant's 400."""
        try:
            return _adapter(model).validate_python(self.body if body is None else body)
        except ValidationError as error:
            raise BadRequest(f"Json deserialize error: {error}") from None


Action = Callable[[_RestCall], Any]


def _point_id(raw: str) -> models.ExtendedPointId:
    return int(raw) if raw.isdigit() else raw


def _batch_update(call: _RestCall) -> Any:
    operations = call.parse(models.UpdateOperations).operations
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
    return dataplane.delete_index(call.store, call.name, call.params["field"])


def _list_snapshots(call: _RestCall) -> Any:
    return dataplane.list_snapshots(call.store, call.name)


def _create_snapshot(call: _RestCall) -> Any:
    return dataplane.create_snapshot(call.store, call.name)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: "re.Pattern[str]"
    need: Need
    action: Action


def _route(method: str, path: str, need: Need, action: Action) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return _Route(method, re.compile(pattern), need, action)


def _point_write(method: str, path: str, operation: Any, field: str) -> _Route:
    """A point, vector or payload write, whose body is the `field` of an UpdateOperation."""

    def action(call: _RestCall) -> Any:
        update = call.parse(operation, {field: call.body})
        return dataplane.update_points(call.store, call.name, [update])[0]

    return _route(method, path, Need.WRITE_POINTS, action)


_C = "/collections/{name}"
_P = f"{_C}/points"

_ROUTES = (
    _route("GET", "/collections", Need.LIST, _list_collections),
    _route("PUT", _C, Need.MANAGE, _create_collection),
    _route("DELETE", _C, Need.MANAGE, _delete_collection),
    _route("GET", _C, Need.READ, _collection_info),
    _route("GET", f"{_C}/exists", Need.READ, _collection_exists),
    _route("POST", "/collections/aliases", Need.MANAGE, _change_aliases),
    _route("GET", "/aliases", Need.LIST, _aliases),
    _route("GET", f"{_C}/aliases", Need.READ, _collection_aliases),
    _point_write("PUT", _P, models.UpsertOperation, "upsert"),
    _point_write("POST", f"{_P}/delete", models.DeleteOperation, "delete"),
    _point_write("PUT", f"{_P}/vectors", models.UpdateVectorsOperation, "update_vectors"),
    _point_write("POST", f"{_P}/vectors/delete", models.DeleteVectorsOperation, "delete_vectors"),
    _point_write("POST", f"{_P}/payload", models.SetPayloadOperation, "set_payload"),
    _point_write("PUT", f"{_P}/payload", models.OverwritePayloadOperation, "overwrite_payload"),
    _point_write("POST", f"{_P}/payload/delete", models.DeletePayloadOperation, "delete_payload"),
    _point_write("POST", f"{_P}/payload/clear", models.ClearPayloadOperation, "clear_payload"),
    _route("POST", f"{_P}/batch", Need.WRITE_POINTS, _batch_update),
    _route("POST", _P, Need.READ, _retrieve),
    _route("GET", f"{_P}/{{id}}", Need.READ, _get_point),
    _route("POST", f"{_P}/scroll", Need.READ, _scroll),
    _route("POST", f"{_P}/count", Need.READ, _count),
    _route("POST", f"{_P}/query", Need.READ, _query),
    _route("POST", f"{_P}/query/batch", Need.READ, _query_batch),
    _route("POST", f"{_P}/search", Need.READ, _legacy(legacy.search_request)),
    _route("POST", f"{_P}/recommend", Need.READ, _legacy(legacy.recommend_request)),
    _route("PUT", f"{_C}/index", Need.WRITE_COLLECTION, _create_index),
    _route("DELETE", f"{_C}/index/{{field}}", Need.WRITE_COLLECTION, _delete_index),
    _route("GET", f"{_C}/snapshots", Need.READ_COLLECTION, _list_snapshots),
    _route("POST", f"{_C}/snapshots", Need.WRITE_COLLECTION, _create_snapshot),
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
