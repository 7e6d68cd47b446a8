"""The in-memory store shared by REST, gRPC and the JWT value_exists check, and payload
matching and filter helpers."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence, Tuple

from pydantic import ValidationError
from qdrant_client.http import models

from lab.qdrant_double.errors import BadRequest, Conflict, NotFound
from lab.qdrant_double.values import Pairs, PointId, Record, Scalar, _is_int, _is_scalar


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
