"""Qdrant TEST DOUBLE: Qdrant v1.18's documented auth semantics, not Qdrant.

This module serves REST and gRPC on loopback with the authentication and
authorization rules of Qdrant v1.18 (``src/common/auth/*.rs`` and
``lib/storage/src/rbac`` in the qdrant/qdrant repository), so that integration
tests can put a real Nginx in front of something that answers 401 and 403
exactly where Qdrant would. It is not a vector database: vectors are accepted
and dropped; payloads are kept in memory so that scroll, retrieve and the JWT
``value_exists`` check have something to look at.

Mirrored from Qdrant:

* Credentials: the ``api-key`` header, else ``authorization: Bearer <token>``
  (case-sensitive prefix); the same metadata keys on gRPC. ``api_key`` gives
  global manage, ``read_only_api_key`` global read, then (only with
  ``jwt_rbac``) an HS256 JWT signed with the raw ``api_key`` bytes, 30 s leeway.
* JWT claims: ``access`` ``"r"`` | ``"m"`` | ``[{collection, access: r|rw|prw}]``;
  an absent ``access`` means full manage; duplicate collections or a per-collection
  ``payload`` constraint make the token invalid; ``value_exists`` must match a
  point (401 if none, 403 if the collection does not exist). Other claims are
  ignored, as in Qdrant.
* Status: no credential, unknown key, malformed token 401; bad signature or
  expired token 403; operation outside the token's scope 403. gRPC uses
  UNAUTHENTICATED and PERMISSION_DENIED for the same cases.
* Without credentials: REST ``/`` (banner), ``/healthz``, ``/readyz*``,
  ``/livez*``, ``/dashboard*`` (a placeholder page), matched on the
  percent-decoded, normalized path (the v1.18.2 fix: ``/dashboard%2f..%2fcollections``
  needs a credential). gRPC ``qdrant.Qdrant/HealthCheck`` and
  ``grpc.health.v1.Health/Check``.
* Authorization happens before a request body is read (the v1.18.1 fix); a
  rejected request with an unread body gets ``Connection: close``.

Simplifications: scroll filters only support ``{"must": [{"key", "match": {"value"}}]}``;
``with_payload`` is all or nothing; keys are dotted paths (``a.b``, ``a[].b``);
there is no request size limit (the proxy is the cap). qdrant-client 1.20 has
no stubs for v1.18's ``qdrant.StorageRead`` service, so every method under it
answers an empty message to any authenticated caller: enough for a proxy test
to check that the service is blocked.

Run ``python -m lab.qdrant_double --help``; keys come from the environment
variables real Qdrant reads, never from the command line.
"""

from __future__ import annotations

import argparse
import contextvars
import enum
import functools
import hmac
import json
import os
import posixpath
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

import grpc
import jwt
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError
from qdrant_client import grpc as qgrpc
from qdrant_client.conversions.conversion import (
    GrpcToRest,
    RestToGrpc,
    grpc_to_payload,
    payload_to_grpc,
)
from qdrant_client.grpc import (
    collections_service_pb2_grpc,
    points_service_pb2_grpc,
    qdrant_pb2_grpc,
    snapshots_service_pb2_grpc,
)
from qdrant_client.http import models

TITLE = "qdrant - vector search engine"
JWT_LEEWAY_SECONDS = 30

PointId = Union[int, str]
Scalar = Union[str, int, bool]
Pairs = Sequence[Tuple[str, Scalar]]
Record = Tuple[PointId, dict[str, Any]]


# --------------------------------------------------------------------------- errors


class DoubleError(Exception):
    """An error answered as Qdrant would: an HTTP status and a gRPC code."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


class Unauthorized(DoubleError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(DoubleError):
    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class BadRequest(DoubleError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DoubleError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Conflict(DoubleError):
    http_status = 409
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DoubleConfig:
    """Keys and listeners of one double. Hosts default to loopback only."""

    api_key: str
    read_only_api_key: Optional[str] = None
    jwt_rbac: bool = False
    rest_host: str = "127.0.0.1"
    rest_port: int = 6333
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 16334
    version: str = "1.18.3"
    log_requests: bool = False
    read_only_writes: bool = False
    """A deliberate bug, for fault injection: global read access may also write."""

    def __post_init__(self) -> None:
        # Qdrant versions disagree on whether "" is a key or "no auth"; either way a
        # double configured like that would hide a broken deployment.
        if not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        if self.read_only_api_key == "":
            raise ValueError("read_only_api_key must be non-empty when set")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "DoubleConfig":
        """Read the keys from the variables real Qdrant uses; ``overrides`` set the rest."""
        api_key = environ.get("QDRANT__SERVICE__API_KEY")
        if api_key is None:
            raise ValueError("QDRANT__SERVICE__API_KEY is not set")
        return cls(
            api_key=api_key,
            read_only_api_key=environ.get("QDRANT__SERVICE__READ_ONLY_API_KEY"),
            jwt_rbac=_env_bool(environ.get("QDRANT__SERVICE__JWT_RBAC", "false")),
            **overrides,
        )


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


# --------------------------------------------------------------------------- access model


class Need(enum.Enum):
    """What an operation requires, in Qdrant's RBAC terms."""

    LIST = "list"  # any valid credential; results are filtered to visible collections
    READ = "read"
    WRITE_POINTS = "point write"  # rw or prw
    WRITE_COLLECTION = "collection write"  # rw only: payload indexes, snapshots
    MANAGE = "manage"  # global m only


_GLOBAL_GRANTS = {
    "r": frozenset({Need.LIST, Need.READ}),
    "m": frozenset(Need),
}
_COLLECTION_GRANTS = {
    "r": frozenset({Need.LIST, Need.READ}),
    "prw": frozenset({Need.LIST, Need.READ, Need.WRITE_POINTS}),
    "rw": frozenset({Need.LIST, Need.READ, Need.WRITE_POINTS, Need.WRITE_COLLECTION}),
}


@dataclass(frozen=True)
class Access:
    """Either a global mode ("r" or "m") or per-collection modes (r, rw, prw)."""

    global_mode: Optional[str] = None
    collections: Mapping[str, str] = field(default_factory=dict)

    def can_see(self, collection: str) -> bool:
        return self.global_mode is not None or collection in self.collections

    def require(self, need: Need, collection: Optional[str] = None) -> None:
        """Raise Forbidden unless this access allows ``need`` (on ``collection``)."""
        if self.global_mode is not None:
            granted = _GLOBAL_GRANTS[self.global_mode]
        elif collection is None:
            granted = frozenset({Need.LIST})
        elif collection in self.collections:
            granted = _COLLECTION_GRANTS[self.collections[collection]]
        else:
            raise Forbidden(f"Access to collection {collection} is required")
        if need not in granted:
            target = f" on collection {collection}" if collection else ""
            raise Forbidden(f"{need.value.capitalize()} access{target} is required")


FULL_ACCESS = Access(global_mode="m")
READ_ACCESS = Access(global_mode="r")


class Authenticator:
    """Turns request headers (or gRPC metadata) into an Access, as Qdrant's AuthKeys does."""

    def __init__(self, config: DoubleConfig, store: "Store") -> None:
        self._api_key = config.api_key.encode()
        self._read_only_key = (
            config.read_only_api_key.encode() if config.read_only_api_key else None
        )
        self._jwt_rbac = config.jwt_rbac
        self._read_only_writes = config.read_only_writes
        self._store = store
        self._jws = jwt.PyJWS(algorithms=["HS256"])

    def authenticate(self, header: Callable[[str], Optional[str]]) -> Access:
        """``header(name)`` returns the first value of a lower-case header name, or None."""
        access = self._authenticate(header)
        if self._read_only_writes and access.global_mode == "r":
            return FULL_ACCESS
        return access

    def _authenticate(self, header: Callable[[str], Optional[str]]) -> Access:
        credential = header("api-key")
        if credential is None:
            authorization = header("authorization")
            if authorization is not None and authorization.startswith("Bearer "):
                credential = authorization[len("Bearer ") :]
        if credential is None:
            raise Unauthorized("Must provide an API key or an Authorization bearer token")
        presented = credential.encode()
        if hmac.compare_digest(presented, self._api_key):
            return FULL_ACCESS
        if self._read_only_key is not None and hmac.compare_digest(
            presented, self._read_only_key
        ):
            return READ_ACCESS
        if not self._jwt_rbac:
            raise Unauthorized("Invalid API key or JWT")
        return self._access_from_jwt(credential)

    def _access_from_jwt(self, token: str) -> Access:
        # Same order as jsonwebtoken: signature, exp format, expiry, then claim shapes.
        try:
            raw = self._jws.decode(token, self._api_key, algorithms=["HS256"])
        except jwt.InvalidSignatureError as error:
            raise Forbidden(f"Invalid JWT: {error}") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("Invalid API key or JWT") from None
        claims = _json_object(raw)
        _check_expiry(claims.get("exp"))
        for informational in ("sub", "subject"):
            if claims.get(informational) is not None and not isinstance(
                claims[informational], str
            ):
                raise Unauthorized("Invalid API key or JWT")
        access = _access_from_claim(claims)
        if claims.get("value_exists") is not None:
            self._check_value_exists(claims["value_exists"])
        return access

    def _check_value_exists(self, claim: Any) -> None:
        collection, pairs = _parse_value_exists(claim)
        try:
            found = self._store.has_matching_point(collection, pairs)
        except NotFound:
            raise Forbidden("Invalid JWT, stateful validation failed") from None
        if not found:
            raise Unauthorized("Invalid JWT, stateful validation failed")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(raw)
    except ValueError:
        raise Unauthorized("Invalid API key or JWT") from None
    if not isinstance(claims, dict):
        raise Unauthorized("Invalid API key or JWT")
    return claims


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_expiry(exp: Any) -> None:
    if exp is None:
        return
    if not _is_int(exp) or exp < 0:
        raise Unauthorized("Invalid API key or JWT")
    if exp < int(time.time()) - JWT_LEEWAY_SECONDS:
        raise Forbidden("Invalid JWT: ExpiredSignature")


def _access_from_claim(claims: Mapping[str, Any]) -> Access:
    if "access" not in claims:
        return FULL_ACCESS  # Qdrant's default: a token without `access` can do everything
    access = claims["access"]
    if isinstance(access, str) and access in _GLOBAL_GRANTS:
        return Access(global_mode=access)
    if not isinstance(access, list):
        raise Unauthorized("Invalid API key or JWT")
    grants: dict[str, str] = {}
    for entry in access:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("collection"), str)
            and isinstance(entry.get("access"), str)
            and entry["access"] in _COLLECTION_GRANTS
        ):
            raise Unauthorized("Invalid API key or JWT")
        if entry.get("payload") is not None:
            raise Unauthorized("Invalid JWT: payload restrictions are not supported")
        if entry["collection"] in grants:
            raise Unauthorized("Invalid JWT: collection name should be unique")
        grants[entry["collection"]] = entry["access"]
    return Access(collections=grants)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int))  # bool is an int


def _parse_value_exists(claim: Any) -> Tuple[str, Pairs]:
    if not (
        isinstance(claim, dict)
        and isinstance(claim.get("collection"), str)
        and isinstance(claim.get("matches"), list)
    ):
        raise Unauthorized("Invalid API key or JWT")
    pairs = []
    for match in claim["matches"]:
        if not (
            isinstance(match, dict)
            and isinstance(match.get("key"), str)
            and _is_scalar(match.get("value"))
        ):
            raise Unauthorized("Invalid API key or JWT")
        pairs.append((match["key"], match["value"]))
    return claim["collection"], pairs


# --------------------------------------------------------------------------- in-memory store


def point_id(raw: Any) -> PointId:
    """A Qdrant point id: an unsigned integer or a UUID (normalized to its canonical form)."""
    if _is_int(raw) and raw >= 0:
        return int(raw)
    if isinstance(raw, str):
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            pass
    raise BadRequest(f"Invalid point id: {raw!r}")


def _id_order(pid: PointId) -> Tuple[bool, Any]:
    return (isinstance(pid, str), pid)  # Qdrant orders integer ids before UUIDs


def _values_at(payload: Any, key: str) -> list[Any]:
    values = [payload]
    for part in key.split("."):
        name = part[:-2] if part.endswith("[]") else part
        found: list[Any] = []
        for value in values:
            if isinstance(value, dict) and name in value:
                child = value[name]
                found.extend(child if isinstance(child, list) else [child])
        values = found
    return values


def payload_matches(payload: Mapping[str, Any], pairs: Pairs) -> bool:
    """Qdrant's `match: {value}`: an array matches if any element does; ints never match bools."""
    return all(
        any(type(value) is type(wanted) and value == wanted for value in _values_at(payload, key))
        for key, wanted in pairs
    )


@dataclass
class _Collection:
    vectors: Any
    points: dict[PointId, dict[str, Any]] = field(default_factory=dict)
    payload_schema: dict[str, str] = field(default_factory=dict)
    snapshots: int = 0


class Store:
    """Collections shared by REST, gRPC and the JWT value_exists check. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collections: dict[str, _Collection] = {}
        self._operations = 0

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._collections

    def create(self, name: str, vectors: Any = None) -> None:
        if not name or len(name) > 255 or any(c in name for c in "/\\\0"):
            raise BadRequest(f"Invalid collection name: {name!r}")
        try:
            models.CollectionParams.model_validate({"vectors": vectors})
        except ValidationError as error:
            raise BadRequest(f"Invalid vectors config: {error}") from None
        with self._lock:
            if name in self._collections:
                raise Conflict(f"Collection `{name}` already exists!")
            self._collections[name] = _Collection(vectors=vectors)

    def delete(self, name: str) -> bool:
        with self._lock:
            return self._collections.pop(name, None) is not None

    def info(self, name: str) -> dict[str, Any]:
        """A REST CollectionInfo that qdrant-client's models accept."""
        with self._lock:
            collection = self._get(name)
            points = len(collection.points)
            schema = {
                key: {"data_type": data_type, "points": points}
                for key, data_type in collection.payload_schema.items()
            }
            vectors = collection.vectors
        return {
            "status": "green",
            "optimizer_status": "ok",
            "points_count": points,
            "indexed_vectors_count": 0,
            "segments_count": 1,
            "config": {
                "params": {
                    "vectors": vectors,
                    "shard_number": 1,
                    "replication_factor": 1,
                    "write_consistency_factor": 1,
                    "on_disk_payload": True,
                },
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
                "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            },
            "payload_schema": schema,
        }

    def upsert(self, name: str, records: Sequence[Record]) -> int:
        with self._lock:
            collection = self._get(name)
            for pid, payload in records:
                collection.points[pid] = dict(payload)
            return self._next_operation()

    def retrieve(self, name: str, ids: Sequence[PointId]) -> list[Record]:
        with self._lock:
            points = self._get(name).points
            return [(pid, dict(points[pid])) for pid in ids if pid in points]

    def scroll(
        self, name: str, offset: Optional[PointId], limit: int, pairs: Pairs
    ) -> Tuple[list[Record], Optional[PointId]]:
        """One page of matching points from ``offset`` (inclusive) and the next page's offset."""
        if limit < 1:
            raise BadRequest("limit must be positive")
        with self._lock:
            points = self._get(name).points
            matching = sorted(
                (pid for pid, payload in points.items() if payload_matches(payload, pairs)),
                key=_id_order,
            )
            if offset is not None:
                matching = [pid for pid in matching if _id_order(pid) >= _id_order(offset)]
            page = [(pid, dict(points[pid])) for pid in matching[:limit]]
        return page, (matching[limit] if len(matching) > limit else None)

    def create_index(self, name: str, field_name: str, data_type: str) -> int:
        if not field_name:
            raise BadRequest("field_name is required")
        if data_type not in {t.value for t in models.PayloadSchemaType}:
            raise BadRequest(f"Unknown field schema: {data_type!r}")
        with self._lock:
            self._get(name).payload_schema[field_name] = data_type
            return self._next_operation()

    def create_snapshot(self, name: str) -> dict[str, Any]:
        """A SnapshotDescription; no file is written."""
        with self._lock:
            collection = self._get(name)
            collection.snapshots += 1
            number = collection.snapshots
        created = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
        return {
            "name": f"{name}-double-{number}.snapshot",
            "creation_time": created.isoformat(),
            "size": 0,
            "checksum": None,
        }

    def has_matching_point(self, name: str, pairs: Pairs) -> bool:
        with self._lock:
            return any(payload_matches(p, pairs) for p in self._get(name).points.values())

    def _get(self, name: str) -> _Collection:
        try:
            return self._collections[name]
        except KeyError:
            raise NotFound(f"Not found: Collection `{name}` doesn't exist!") from None

    def _next_operation(self) -> int:
        self._operations += 1
        return self._operations


def filter_pairs(raw: Any) -> list[Tuple[str, Scalar]]:
    """The (key, value) pairs of a REST filter; only `must` + `match.value` is supported."""
    if raw is None:
        return []
    unsupported = BadRequest(
        "the test double only supports filters like "
        '{"must": [{"key": "k", "match": {"value": "v"}}]}'
    )
    if not isinstance(raw, dict) or {k for k, v in raw.items() if v} - {"must"}:
        raise unsupported
    pairs = []
    for condition in raw.get("must") or []:
        match = condition.get("match") if isinstance(condition, dict) else None
        if not (
            isinstance(match, dict)
            and isinstance(condition.get("key"), str)
            and _is_scalar(match.get("value"))
        ):
            raise unsupported
        pairs.append((condition["key"], match["value"]))
    return pairs


# --------------------------------------------------------------------------- REST


def canonical_path(target: str) -> str:
    """The path Qdrant >= 1.18.2 authorizes: percent-decoded, slashes collapsed, dot segments
    resolved. The whitelist and the router both use it, so they cannot disagree."""
    if not target.startswith("/"):
        target = urlsplit(target).path  # absolute-form request target
    path = target.split("?", 1)[0].split("#", 1)[0]
    return posixpath.normpath(re.sub(r"/+", "/", "/" + unquote(path)))


def is_public_path(path: str) -> bool:
    """Qdrant's unauthenticated REST paths (applied to a canonical path)."""
    return path in ("/", "/healthz") or path.startswith(("/readyz", "/livez", "/dashboard"))


def _public_page(path: str, version: str) -> Optional[Tuple[str, bytes]]:
    if path == "/":
        return "application/json", json.dumps({"title": TITLE, "version": version}).encode()
    texts = {
        "/healthz": "healthz check passed",
        "/livez": "livez check passed",
        "/readyz": "all shards are ready",
    }
    if path in texts:
        return "text/plain; charset=utf-8", texts[path].encode()
    if path == "/dashboard" or path.startswith("/dashboard/"):
        return "text/html; charset=utf-8", b"<!doctype html><title>qdrant double</title>"
    return None


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


class _RestServer(ThreadingHTTPServer):
    """Tracks open connections so that stop() can end keep-alive sessions and free ports."""

    daemon_threads = False  # server_close() joins the handler threads
    # socketserver's default listen backlog is 5: a proxy opening a few dozen upstream
    # connections at once overflows it, and every dropped SYN costs its request a 1 s retry.
    request_queue_size = 128

    def __init__(self, config: DoubleConfig, store: Store, auth: Authenticator) -> None:
        self.address_family = socket.AF_INET6 if ":" in config.rest_host else socket.AF_INET
        self.config = config
        self.store = store
        self.auth = auth
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.rest_host, config.rest_port), _RestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients and proxies reset idle keep-alive connections; that is not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, each keep-alive response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    # Buffered, so that headers and body leave in one write (flushed after each request): written
    # apart, without Nagle they are two segments and the proxy wakes up twice per response.
    wbufsize = 64 * 1024
    server: _RestServer

    def _handle(self) -> None:
        started = time.perf_counter()
        self._body_read = False
        path = canonical_path(self.path)
        try:
            if is_public_path(path):
                self._serve_public(path)
                return
            access = self.server.auth.authenticate(self.headers.get)
            route, params = _match_route(self.command, path)
            access.require(route.need, params.get("name"))
            body = self._read_json()
            result = route.action(_RestCall(self.server.store, access, params, body))
        except DoubleError as error:
            self._send_json(error.http_status, {"status": {"error": str(error)}, "time": 0.0})
            return
        elapsed = time.perf_counter() - started
        self._send_json(200, {"result": result, "status": "ok", "time": elapsed})

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    def _serve_public(self, path: str) -> None:
        page = _public_page(path, self.server.config.version) if self.command == "GET" else None
        if page is None:
            raise NotFound(f"Not found: {self.command} {path}")
        self._send(200, page[0], page[1])

    def _read_json(self) -> Any:
        raw = self._read_body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise BadRequest(f"Json deserialize error: {error}") from None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            length = self.headers.get("Content-Length", "0").strip()
            if not length.isdigit():
                raise BadRequest("Invalid Content-Length")
            body = self.rfile.read(int(length))
        self._body_read = True
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline()
            try:
                size = int(size_line.split(b";", 1)[0], 16)
            except ValueError:
                raise BadRequest("Invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _has_unread_body(self) -> bool:
        if self._body_read:
            return False
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return chunked or self.headers.get("Content-Length", "0").strip() != "0"

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # A server about to close says so (RFC 9112, 9.6): the client asked for it, or the request
        # was refused before its body was read and the stream is unusable.
        if self.close_connection or self._has_unread_body():
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.config.log_requests:
            super().log_message(format, *args)


# --------------------------------------------------------------------------- gRPC

_GRPC_PUBLIC_METHODS = frozenset({"/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"})
_CURRENT_ACCESS: contextvars.ContextVar[Access] = contextvars.ContextVar("qdrant_double_access")


def _metadata_value(metadata: Sequence[Tuple[str, Any]], key: str) -> Optional[str]:
    for name, value in metadata:
        if name == key and isinstance(value, str):
            return value
    return None


def _rejecting_handler(error: DoubleError) -> Any:
    def reject(request: bytes, context: Any) -> bytes:
        context.abort(error.grpc_code, str(error))
        raise AssertionError("context.abort returned")

    return grpc.unary_unary_rpc_method_handler(reject)


def _bind_access(behavior: Callable[[Any, Any], Any], access: Access) -> Callable[[Any, Any], Any]:
    def bound(request: Any, context: Any) -> Any:
        token = _CURRENT_ACCESS.set(access)
        try:
            return behavior(request, context)
        finally:
            _CURRENT_ACCESS.reset(token)

    return bound


class _AuthInterceptor(grpc.ServerInterceptor):
    """Authenticates every call before routing, as Qdrant's tonic layer does: an unknown
    method without credentials is UNAUTHENTICATED, not UNIMPLEMENTED."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method in _GRPC_PUBLIC_METHODS:
            return continuation(details)
        metadata = details.invocation_metadata or ()
        try:
            access = self._auth.authenticate(functools.partial(_metadata_value, metadata))
        except DoubleError as error:
            return _rejecting_handler(error)
        handler = continuation(details)
        # Every handler here is unary-unary; any other kind would find no Access and fail.
        if handler is None or handler.unary_unary is None:
            return handler
        return handler._replace(unary_unary=_bind_access(handler.unary_unary, access))


def _rpc(need: Need) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authorize a servicer method against the caller's Access and map errors to statuses.
    The method receives ``(self, request, access)``."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: Any) -> Any:
            try:
                access = _CURRENT_ACCESS.get()
                access.require(need, getattr(request, "collection_name", None) or None)
                return method(self, request, access)
            except DoubleError as error:
                context.abort(error.grpc_code, str(error))

        return wrapper

    return decorate


def _grpc_point_id(message: Any) -> PointId:
    kind = message.WhichOneof("point_id_options")
    if kind is None:
        raise BadRequest("point id is required")
    return point_id(getattr(message, kind))


def _to_grpc_id(pid: PointId) -> Any:
    return qgrpc.PointId(uuid=pid) if isinstance(pid, str) else qgrpc.PointId(num=pid)


def _grpc_wants_payload(request: Any) -> bool:
    if not request.HasField("with_payload"):
        return True
    selector = request.with_payload
    return bool(selector.WhichOneof("selector_options") != "enable" or selector.enable)


def _retrieved_point(record: Record, with_payload: bool) -> Any:
    pid, payload = record
    return qgrpc.RetrievedPoint(
        id=_to_grpc_id(pid), payload=payload_to_grpc(payload) if with_payload else {}
    )


def _operation_response(operation_id: int) -> Any:
    return qgrpc.PointsOperationResponse(
        result=qgrpc.UpdateResult(operation_id=operation_id, status=qgrpc.UpdateStatus.Completed)
    )


class _QdrantService(qdrant_pb2_grpc.QdrantServicer):
    def __init__(self, version: str) -> None:
        self._version = version

    def HealthCheck(self, request: Any, context: Any) -> Any:
        return qgrpc.HealthCheckReply(title=TITLE, version=self._version, commit="")


class _CollectionsService(collections_service_pb2_grpc.CollectionsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.LIST)
    def List(self, request: Any, access: Access) -> Any:
        names = [name for name in self._store.names() if access.can_see(name)]
        return qgrpc.ListCollectionsResponse(
            collections=[qgrpc.CollectionDescription(name=name) for name in names]
        )

    @_rpc(Need.READ)
    def Get(self, request: Any, access: Access) -> Any:
        info = models.CollectionInfo.model_validate(self._store.info(request.collection_name))
        return qgrpc.GetCollectionInfoResponse(result=RestToGrpc.convert_collection_info(info))

    @_rpc(Need.READ)
    def CollectionExists(self, request: Any, access: Access) -> Any:
        exists = self._store.exists(request.collection_name)
        return qgrpc.CollectionExistsResponse(result=qgrpc.CollectionExists(exists=exists))

    @_rpc(Need.MANAGE)
    def Create(self, request: Any, access: Access) -> Any:
        vectors = None
        if request.HasField("vectors_config"):
            params = models.CollectionParams(
                vectors=GrpcToRest.convert_vectors_config(request.vectors_config)
            )
            vectors = params.model_dump(mode="json", exclude_none=True).get("vectors")
        self._store.create(request.collection_name, vectors)
        return qgrpc.CollectionOperationResponse(result=True)

    @_rpc(Need.MANAGE)
    def Delete(self, request: Any, access: Access) -> Any:
        deleted = self._store.delete(request.collection_name)
        return qgrpc.CollectionOperationResponse(result=deleted)


class _PointsService(points_service_pb2_grpc.PointsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.WRITE_POINTS)
    def Upsert(self, request: Any, access: Access) -> Any:
        records = [(_grpc_point_id(p.id), grpc_to_payload(p.payload)) for p in request.points]
        return _operation_response(self._store.upsert(request.collection_name, records))

    @_rpc(Need.READ)
    def Get(self, request: Any, access: Access) -> Any:
        ids = [_grpc_point_id(i) for i in request.ids]
        records = self._store.retrieve(request.collection_name, ids)
        with_payload = _grpc_wants_payload(request)
        return qgrpc.GetResponse(result=[_retrieved_point(r, with_payload) for r in records])

    @_rpc(Need.READ)
    def Scroll(self, request: Any, access: Access) -> Any:
        pairs = (
            filter_pairs(GrpcToRest.convert_filter(request.filter).model_dump(mode="json"))
            if request.HasField("filter")
            else []
        )
        offset = _grpc_point_id(request.offset) if request.HasField("offset") else None
        limit = request.limit if request.HasField("limit") else 10
        page, next_offset = self._store.scroll(request.collection_name, offset, limit, pairs)
        with_payload = _grpc_wants_payload(request)
        response = qgrpc.ScrollResponse(result=[_retrieved_point(r, with_payload) for r in page])
        if next_offset is not None:
            response.next_page_offset.CopyFrom(_to_grpc_id(next_offset))
        return response

    @_rpc(Need.WRITE_COLLECTION)
    def CreateFieldIndex(self, request: Any, access: Access) -> Any:
        field_type = (
            request.field_type
            if request.HasField("field_type")
            else qgrpc.FieldType.FieldTypeKeyword  # Qdrant's default for a bare field name
        )
        # FieldTypeKeyword -> "keyword": the gRPC names mirror REST's PayloadSchemaType.
        data_type = qgrpc.FieldType.Name(field_type).removeprefix("FieldType").lower()
        operation = self._store.create_index(request.collection_name, request.field_name, data_type)
        return _operation_response(operation)


class _SnapshotsService(snapshots_service_pb2_grpc.SnapshotsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.WRITE_COLLECTION)
    def Create(self, request: Any, access: Access) -> Any:
        snapshot = self._store.create_snapshot(request.collection_name)
        created = Timestamp()
        created.FromDatetime(datetime.fromisoformat(snapshot["creation_time"]))
        description = qgrpc.SnapshotDescription(
            name=snapshot["name"], creation_time=created, size=snapshot["size"]
        )
        return qgrpc.CreateSnapshotResponse(snapshot_description=description)


def _standard_health_handler() -> Any:
    # grpc.health.v1.HealthCheckResponse{status: SERVING}, encoded by hand: no stubs installed.
    serving = b"\x08\x01"
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(lambda request, context: serving)},
    )


class _StorageReadHandler(grpc.GenericRpcHandler):
    """Any ``qdrant.StorageRead/*`` method: an empty message for any authenticated caller."""

    def service(self, details: Any) -> Any:
        if not details.method.startswith("/qdrant.StorageRead/"):
            return None
        return grpc.unary_unary_rpc_method_handler(lambda request, context: b"")


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _build_grpc_server(
    config: DoubleConfig, store: Store, auth: Authenticator, executor: ThreadPoolExecutor
) -> Tuple[Any, int]:
    server = grpc.server(
        executor,
        interceptors=[_AuthInterceptor(auth)],
        options=[
            # gRPC's default SO_REUSEPORT would let two doubles share a port silently.
            ("grpc.so_reuseport", 0),
            # Qdrant does not cap gRPC messages; the proxy does.
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
        ],
    )
    qdrant_pb2_grpc.add_QdrantServicer_to_server(_QdrantService(config.version), server)
    collections_service_pb2_grpc.add_CollectionsServicer_to_server(
        _CollectionsService(store), server
    )
    points_service_pb2_grpc.add_PointsServicer_to_server(_PointsService(store), server)
    snapshots_service_pb2_grpc.add_SnapshotsServicer_to_server(_SnapshotsService(store), server)
    server.add_generic_rpc_handlers((_standard_health_handler(), _StorageReadHandler()))
    address = _grpc_address(config.grpc_host, config.grpc_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot bind gRPC to {address}: {error}") from None
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port


# --------------------------------------------------------------------------- lifecycle


class QdrantDouble:
    """A running double: ``with QdrantDouble(config) as double: ...``.

    Ports 0 pick free ephemeral ports; read the real ones from ``rest_port`` and
    ``grpc_port`` after start(). ``store`` can be used to seed or inspect state.
    """

    def __init__(self, config: DoubleConfig) -> None:
        self.config = config
        self.store = Store()
        self._auth = Authenticator(config, self.store)
        self._rest: Optional[_RestServer] = None
        self._rest_thread: Optional[threading.Thread] = None
        self._grpc: Any = None
        self._grpc_executor: Optional[ThreadPoolExecutor] = None
        self.rest_port = 0
        self.grpc_port = 0

    @property
    def rest_url(self) -> str:
        return f"http://{_grpc_address(self.config.rest_host, self.rest_port)}"

    @property
    def grpc_target(self) -> str:
        return _grpc_address(self.config.grpc_host, self.grpc_port)

    def start(self) -> "QdrantDouble":
        if self._rest is not None:
            raise RuntimeError("already started")
        rest = _RestServer(self.config, self.store, self._auth)
        executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="qdrant-double-grpc")
        try:
            server, grpc_port = _build_grpc_server(self.config, self.store, self._auth, executor)
        except BaseException:
            rest.server_close()
            executor.shutdown()
            raise
        server.start()
        # A short poll interval keeps stop() fast; shutdown() waits up to one interval.
        thread = threading.Thread(
            target=rest.serve_forever, kwargs={"poll_interval": 0.02}, name="qdrant-double-rest"
        )
        thread.start()
        self._rest, self._rest_thread = rest, thread
        self._grpc, self._grpc_executor = server, executor
        self.rest_port, self.grpc_port = rest.server_port, grpc_port
        return self

    def stop(self) -> None:
        """Stop both listeners, end open connections and join all threads. Idempotent."""
        if self._rest is None:
            return
        self._grpc.stop(grace=None).wait()
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True)
        self._rest.shutdown()
        self._rest.close_connections()
        self._rest.server_close()  # joins the handler threads
        if self._rest_thread is not None:
            self._rest_thread.join()
        self._rest = self._rest_thread = self._grpc = self._grpc_executor = None

    def __enter__(self) -> "QdrantDouble":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; runs until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.qdrant_double",
        description="Qdrant auth test double (not Qdrant). Keys are read from "
        "QDRANT__SERVICE__API_KEY, QDRANT__SERVICE__READ_ONLY_API_KEY and "
        "QDRANT__SERVICE__JWT_RBAC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address for REST and gRPC")
    parser.add_argument("--rest-port", type=int, default=6333)
    parser.add_argument("--grpc-port", type=int, default=16334)
    parser.add_argument("--version", default="1.18.3", help="version the banner reports")
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = DoubleConfig.from_env(
            os.environ,
            rest_host=args.host,
            rest_port=args.rest_port,
            grpc_host=args.host,
            grpc_port=args.grpc_port,
            version=args.version,
            log_requests=args.log_requests,
        )
    except ValueError as error:
        print(f"qdrant-double: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with QdrantDouble(config) as double:
        print(
            f"qdrant-double ready rest={double.rest_url} grpc={double.grpc_target}", flush=True
        )
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
