"""Qdrant's REST point writes and vectors (qdrant-client's models) as Qdrant Edge's operations.

One REST operation is one Edge `UpdateOperation`, applied by Edge's update code (the server's
lib/shard), so payload merges, vector checks and missing points behave as on Qdrant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

from lab.qdrant_double.edge_config import HIDDEN_SPARSE
from lab.qdrant_double.edge_filters import to_filter
from lab.qdrant_double.errors import BadRequest


def vector(rest: Any) -> Any:
    """A REST vector (dense, multi-dense, sparse, or named ones) as Edge's."""
    if isinstance(rest, dict):
        return {name: vector(value) for name, value in rest.items()}
    if isinstance(rest, models.SparseVector):
        return edge.SparseVector(list(rest.indices), list(rest.values))
    if isinstance(rest, list):
        return rest
    raise BadRequest(
        f"Bad request: vector input {type(rest).__name__} needs inference, "
        "which the double has none of"
    )


def rest_vector(found: Any) -> Any:
    """Edge's vector as Qdrant answers it in REST, without the one a vectorless collection hides."""
    if isinstance(found, dict):
        return {name: rest_vector(value) for name, value in found.items() if name != HIDDEN_SPARSE}
    if isinstance(found, edge.SparseVector):
        return models.SparseVector(indices=found.indices, values=found.values)
    return found


def rest_id(found: Any) -> models.ExtendedPointId:
    """UUIDs answered in Qdrant's hyphenated form."""
    return str(found) if isinstance(found, uuid.UUID) else found


def _point(rest: models.PointStruct) -> edge.Point:
    return edge.Point(rest.id, vector(rest.vector), rest.payload)


def _batch_points(batch: models.Batch) -> list[edge.Point]:
    payloads: Sequence[Any] = batch.payloads or [None] * len(batch.ids)
    if isinstance(batch.vectors, dict):
        named = [{name: values[index] for name, values in batch.vectors.items()}
                 for index in range(len(batch.ids))]  # fmt: skip
        vectors: Sequence[Any] = named
    else:
        vectors = batch.vectors
    return [edge.Point(pid, vector(vec), payload)
            for pid, vec, payload in zip(batch.ids, vectors, payloads, strict=False)]  # fmt: skip


def _update_mode(rest: models.UpdateMode | None) -> edge.UpdateMode | None:
    modes = {
        models.UpdateMode.UPSERT: edge.UpdateMode.Upsert,
        models.UpdateMode.INSERT_ONLY: edge.UpdateMode.InsertOnly,
        models.UpdateMode.UPDATE_ONLY: edge.UpdateMode.UpdateOnly,
    }
    return None if rest is None else modes[rest]


def _upsert(rest: models.UpsertOperation) -> edge.UpdateOperation:
    request = rest.upsert
    if isinstance(request, models.PointsList):
        points = [_point(point) for point in request.points]
    else:
        points = _batch_points(request.batch)
    condition = to_filter(request.update_filter)
    return edge.UpdateOperation.upsert_points(points, condition, _update_mode(request.update_mode))


def _selected(
    selector: Any,
    by_ids: Callable[[list[Any]], edge.UpdateOperation],
    by_filter: Callable[[edge.Filter], edge.UpdateOperation],
) -> edge.UpdateOperation:
    """Qdrant's points selector: a list of ids (bare or `{"points": [...]}`) or `{"filter": ...}`."""
    if isinstance(selector, list):
        return by_ids(selector)
    if isinstance(selector, models.PointIdsList):
        return by_ids(selector.points)
    converted = to_filter(selector.filter)
    assert converted is not None
    return by_filter(converted)


def _points_or_filter(
    request: Any,
    by_ids: Callable[..., edge.UpdateOperation],
    by_filter: Callable[..., edge.UpdateOperation],
    *arguments: Any,
) -> edge.UpdateOperation:
    """A write on `request.points` or, without them, on the points `request.filter` matches."""
    if request.points is not None:
        return by_ids(request.points, *arguments)
    converted = to_filter(request.filter)
    if converted is None:
        raise BadRequest("Bad request: Either list of point ids or filter must be provided")
    return by_filter(converted, *arguments)


def _update_vectors(request: models.UpdateVectors) -> edge.UpdateOperation:
    points = [edge.PointVectors(point.id, vector(point.vector)) for point in request.points]
    return edge.UpdateOperation.update_vectors(points, to_filter(request.update_filter))


_UPDATES: dict[type, Callable[[Any], edge.UpdateOperation]] = {
    models.UpsertOperation: _upsert,
    models.DeleteOperation: lambda rest: _selected(
        rest.delete,
        edge.UpdateOperation.delete_points,
        edge.UpdateOperation.delete_points_by_filter,
    ),
    models.SetPayloadOperation: lambda rest: _points_or_filter(
        rest.set_payload,
        edge.UpdateOperation.set_payload,
        edge.UpdateOperation.set_payload_by_filter,
        rest.set_payload.payload,
        rest.set_payload.key,
    ),
    models.OverwritePayloadOperation: lambda rest: _points_or_filter(
        rest.overwrite_payload,
        edge.UpdateOperation.overwrite_payload,
        edge.UpdateOperation.overwrite_payload_by_filter,
        rest.overwrite_payload.payload,
        rest.overwrite_payload.key,
    ),
    models.DeletePayloadOperation: lambda rest: _points_or_filter(
        rest.delete_payload,
        edge.UpdateOperation.delete_payload,
        edge.UpdateOperation.delete_payload_by_filter,
        rest.delete_payload.keys,
    ),
    models.ClearPayloadOperation: lambda rest: _selected(
        rest.clear_payload,
        edge.UpdateOperation.clear_payload,
        edge.UpdateOperation.clear_payload_by_filter,
    ),
    models.UpdateVectorsOperation: lambda rest: _update_vectors(rest.update_vectors),
    models.DeleteVectorsOperation: lambda rest: _points_or_filter(
        rest.delete_vectors,
        edge.UpdateOperation.delete_vectors,
        edge.UpdateOperation.delete_vectors_by_filter,
        rest.delete_vectors.vector,
    ),
}


def update(rest: Any) -> edge.UpdateOperation:
    """One REST `UpdateOperation` (as the batch endpoint and each point route carry it)."""
    convert = _UPDATES.get(type(rest))
    if convert is None:
        raise BadRequest(
            f"Bad request: operation {type(rest).__name__} is not served by the double"
        )
    return convert(rest)
