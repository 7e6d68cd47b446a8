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


def _update(operation: Any, field: str) -> Action:
    """One point, vector or payload write: its body is the `field` of an UpdateOperation."""

    def action(call: _RestCall) -> Any:
        update = call.parse(operation, {field: call.body})
        return dataplane.update_points(call.store, call.name, [update])[0]

    return action


def _batch_update(call: _RestCall) -> Any:
    operations = call.parse(models.UpdateOperations).operations
    return dataplane.update_points(call.store, call.name, operations)


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


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: "re.Pattern[str]"
    need: Need
    action: Action


def _route(method: str, path: str, need: Need, action: Action) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return _Route(method, re.compile(pattern), need, action)


_POINTS = "/collections/{name}/points"

_ROUTES = (
    _route(
        "GET", "/collections", Need.LIST, lambda c: dataplane.list_collections(c.store, c.access)
    ),
    _route(
        "PUT",
        "/collections/{name}",
        Need.MANAGE,
        lambda c: c.store.create_collection(c.name, c.parse(models.CreateCollection)),
    ),
    _route("DELETE", "/collections/{name}", Need.MANAGE, lambda c: c.store.delete(c.name)),
    _route("GET", "/collections/{name}", Need.READ, lambda c: c.store.info(c.name)),
    _route(
        "GET",
        "/collections/{name}/exists",
        Need.READ,
        lambda c: dataplane.collection_exists(c.store, c.name),
    ),
    _route(
        "POST",
        "/collections/aliases",
        Need.MANAGE,
        lambda c: dataplane.change_aliases(c.store, c.parse(models.ChangeAliasesOperation)),
    ),
    _route("GET", "/aliases", Need.LIST, lambda c: dataplane.aliases(c.store, c.access)),
    _route(
        "GET",
        "/collections/{name}/aliases",
        Need.READ,
        lambda c: dataplane.aliases(c.store, c.access, c.name),
    ),
    _route("PUT", _POINTS, Need.WRITE_POINTS, _update(models.UpsertOperation, "upsert")),
    _route(
        "POST", f"{_POINTS}/delete", Need.WRITE_POINTS, _update(models.DeleteOperation, "delete")
    ),
    _route(
        "PUT",
        f"{_POINTS}/vectors",
        Need.WRITE_POINTS,
        _update(models.UpdateVectorsOperation, "update_vectors"),
    ),
    _route(
        "POST",
        f"{_POINTS}/vectors/delete",
        Need.WRITE_POINTS,
        _update(models.DeleteVectorsOperation, "delete_vectors"),
    ),
    _route(
        "POST",
        f"{_POINTS}/payload",
        Need.WRITE_POINTS,
        _update(models.SetPayloadOperation, "set_payload"),
    ),
    _route(
        "PUT",
        f"{_POINTS}/payload",
        Need.WRITE_POINTS,
        _update(models.OverwritePayloadOperation, "overwrite_payload"),
    ),
    _route(
        "POST",
        f"{_POINTS}/payload/delete",
        Need.WRITE_POINTS,
        _update(models.DeletePayloadOperation, "delete_payload"),
    ),
    _route(
        "POST",
        f"{_POINTS}/payload/clear",
        Need.WRITE_POINTS,
        _update(models.ClearPayloadOperation, "clear_payload"),
    ),
    _route("POST", f"{_POINTS}/batch", Need.WRITE_POINTS, _batch_update),
    _route(
        "POST",
        _POINTS,
        Need.READ,
        lambda c: dataplane.retrieve(c.store, c.name, c.parse(models.PointRequest)),
    ),
    _route(
        "GET",
        f"{_POINTS}/{{id}}",
        Need.READ,
        lambda c: dataplane.get_point(c.store, c.name, _point_id(c.params["id"])),
    ),
    _route(
        "POST",
        f"{_POINTS}/scroll",
        Need.READ,
        lambda c: dataplane.scroll(c.store, c.name, c.parse(models.ScrollRequest)),
    ),
    _route(
        "POST",
        f"{_POINTS}/count",
        Need.READ,
        lambda c: dataplane.count(c.store, c.name, c.parse(models.CountRequest)),
    ),
    _route("POST", f"{_POINTS}/query", Need.READ, _query),
    _route("POST", f"{_POINTS}/query/batch", Need.READ, _query_batch),
    _route("POST", f"{_POINTS}/search", Need.READ, _legacy(legacy.search_request)),
    _route("POST", f"{_POINTS}/recommend", Need.READ, _legacy(legacy.recommend_request)),
    _route(
        "PUT",
        "/collections/{name}/index",
        Need.WRITE_COLLECTION,
        lambda c: dataplane.create_index(c.store, c.name, c.parse(models.CreateFieldIndex)),
    ),
    _route(
        "DELETE",
        "/collections/{name}/index/{field}",
        Need.WRITE_COLLECTION,
        lambda c: dataplane.delete_index(c.store, c.name, c.params["field"]),
    ),
    _route(
        "GET",
        "/collections/{name}/snapshots",
        Need.READ_COLLECTION,
        lambda c: dataplane.list_snapshots(c.store, c.name),
    ),
    _route(
        "POST",
        "/collections/{name}/snapshots",
        Need.WRITE_COLLECTION,
        lambda c: dataplane.create_snapshot(c.store, c.name),
    ),
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
