"""The REST API: one action per route, and the route table with the Need of each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Tuple

from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.errors import BadRequest, NotFound
from lab.qdrant_double.store import Store, filter_pairs, point_id
from lab.qdrant_double.values import Record, _is_int


@dataclass(frozen=True)
class _RestCall:
    store: Store
    access: Access
    params: Mapping[str, str]
    body: Any

    @property
    def name(self) -> str:
        return self.params["name"]

    def body_object(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise BadRequest("Json deserialize error: expected an object")
        return self.body


def _rest_record(record: Record, with_payload: bool) -> dict[str, Any]:
    pid, payload = record
    return {"id": pid, "payload": payload if with_payload else None, "vector": None}


def _update_result(operation_id: int) -> dict[str, Any]:
    return {"operation_id": operation_id, "status": "completed"}


def _payload(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("payload must be an object")
    return raw


def _rest_records(body: Mapping[str, Any]) -> list[Record]:
    if isinstance(body.get("points"), list):
        entries = body["points"]
        if not all(isinstance(e, dict) for e in entries):
            raise BadRequest("points must be objects")
        return [(point_id(e.get("id")), _payload(e.get("payload"))) for e in entries]
    batch = body.get("batch")
    if isinstance(batch, dict) and isinstance(batch.get("ids"), list):
        payloads = batch.get("payloads") or [None] * len(batch["ids"])
        if not isinstance(payloads, list) or len(payloads) != len(batch["ids"]):
            raise BadRequest("batch ids and payloads differ in length")
        return [(point_id(i), _payload(p)) for i, p in zip(batch["ids"], payloads)]
    raise BadRequest("expected `points` or `batch`")


def _list_collections(call: _RestCall) -> Any:
    visible = [name for name in call.store.names() if call.access.can_see(name)]
    return {"collections": [{"name": name} for name in visible]}


def _create_collection(call: _RestCall) -> Any:
    call.store.create(call.name, call.body_object().get("vectors"))
    return True


def _delete_collection(call: _RestCall) -> Any:
    return call.store.delete(call.name)


def _get_collection(call: _RestCall) -> Any:
    return call.store.info(call.name)


def _collection_exists(call: _RestCall) -> Any:
    return {"exists": call.store.exists(call.name)}


def _upsert_points(call: _RestCall) -> Any:
    return _update_result(call.store.upsert(call.name, _rest_records(call.body_object())))


def _retrieve_points(call: _RestCall) -> Any:
    body = call.body_object()
    if not isinstance(body.get("ids"), list):
        raise BadRequest("ids must be a list")
    records = call.store.retrieve(call.name, [point_id(i) for i in body["ids"]])
    with_payload = body.get("with_payload", True) is not False
    return [_rest_record(record, with_payload) for record in records]


def _scroll_points(call: _RestCall) -> Any:
    body = call.body_object()
    limit = body.get("limit") or 10
    if not _is_int(limit):
        raise BadRequest("limit must be an integer")
    offset = None if body.get("offset") is None else point_id(body["offset"])
    pairs = filter_pairs(body.get("filter"))
    page, next_offset = call.store.scroll(call.name, offset, limit, pairs)
    with_payload = body.get("with_payload", True) is not False
    return {
        "points": [_rest_record(record, with_payload) for record in page],
        "next_page_offset": next_offset,
    }


def _get_point(call: _RestCall) -> Any:
    raw = call.params["id"]
    pid = point_id(int(raw) if raw.isdigit() else raw)
    records = call.store.retrieve(call.name, [pid])
    if not records:
        raise NotFound(f"Not found: No point with id {pid} found")
    return _rest_record(records[0], with_payload=True)


def _create_index(call: _RestCall) -> Any:
    body = call.body_object()
    schema = body.get("field_schema")
    data_type = schema.get("type") if isinstance(schema, dict) else schema
    if not isinstance(body.get("field_name"), str) or not isinstance(data_type, str):
        raise BadRequest("field_name and field_schema are required")
    return _update_result(call.store.create_index(call.name, body["field_name"], data_type))


def _create_snapshot(call: _RestCall) -> Any:
    return call.store.create_snapshot(call.name)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: "re.Pattern[str]"
    need: Need
    action: Callable[[_RestCall], Any]


def _route(method: str, path: str, need: Need, action: Callable[[_RestCall], Any]) -> _Route:
    pattern = path.replace("{name}", "(?P<name>[^/]+)").replace("{id}", "(?P<id>[^/]+)")
    return _Route(method, re.compile(pattern), need, action)


_ROUTES = (
    _route("GET", "/collections", Need.LIST, _list_collections),
    _route("PUT", "/collections/{name}", Need.MANAGE, _create_collection),
    _route("DELETE", "/collections/{name}", Need.MANAGE, _delete_collection),
    _route("GET", "/collections/{name}", Need.READ, _get_collection),
    _route("GET", "/collections/{name}/exists", Need.READ, _collection_exists),
    _route("PUT", "/collections/{name}/points", Need.WRITE_POINTS, _upsert_points),
    _route("POST", "/collections/{name}/points", Need.READ, _retrieve_points),
    _route("POST", "/collections/{name}/points/scroll", Need.READ, _scroll_points),
    _route("GET", "/collections/{name}/points/{id}", Need.READ, _get_point),
    _route("PUT", "/collections/{name}/index", Need.WRITE_COLLECTION, _create_index),
    _route("POST", "/collections/{name}/snapshots", Need.WRITE_COLLECTION, _create_snapshot),
)


def _match_route(method: str, path: str) -> Tuple[_Route, dict[str, str]]:
    for route in _ROUTES:
        found = route.pattern.fullmatch(path)
        if route.method == method and found:
            return route, found.groupdict()
    raise NotFound(f"Not found: {method} {path}")
