"""Request bodies read as Qdrant's serde models read them, into qdrant-client's models.

qdrant-client's models forbid unknown keys; Qdrant's serde structs ignore them, except `Filter`
(`#[serde(deny_unknown_fields)]` in lib/segment/src/types.rs: "unknown field `must_nto`, expected
one of `should`, `min_should`, `must`, `must_not`"). So a body is validated against a copy of the
model's pydantic-core schema in which every model but Filter ignores unknown keys: the result is an
instance of qdrant-client's own classes, whose schemas stay as they are.
Qdrant also reads `vectors` for `vector` where its structs say `#[serde(alias = "vectors")]`:
PointStruct (lib/api/src/rest/schema.rs), PointVectors and DeleteVectors
(lib/collection/src/operations/vector_ops.rs).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator
from qdrant_client.http import models

from lab.qdrant_double.errors import BadRequest

_IGNORE = "ignore"


def _ignoring_unknown_keys(schema: Any) -> Any:
    """A copy of a core schema in which each model but Filter ignores keys it does not declare."""
    if isinstance(schema, list):
        return [_ignoring_unknown_keys(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: _ignoring_unknown_keys(value) for key, value in schema.items()}
    if copy.get("type") == "model" and copy.get("cls") is not models.Filter:
        copy["config"] = {**copy.get("config", {}), "extra_fields_behavior": _IGNORE}
        if copy["schema"].get("type") == "model-fields":
            copy["schema"] = {**copy["schema"], "extra_behavior": _IGNORE}
    return copy


@functools.cache
def _validator(model: Any) -> SchemaValidator:
    # Not the validators qdrant-client's classes carry (pydantic-core reuses them by default).
    schema = _ignoring_unknown_keys(TypeAdapter(model).core_schema)
    return SchemaValidator(schema, _use_prebuilt=False)


def parse(model: Any, body: Any) -> Any:
    """``body`` as an instance of qdrant-client's ``model``; what Qdrant refuses is its 400."""
    try:
        return _validator(model).validate_python(body)
    except ValidationError as error:
        raise BadRequest(f"Format error in JSON body: {error}") from None


def _renamed(fields: Any) -> Any:
    if isinstance(fields, dict) and "vectors" in fields and "vector" not in fields:
        fields = {("vector" if key == "vectors" else key): value for key, value in fields.items()}
    return fields


def _points_renamed(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("points"), list):
        return {**body, "points": [_renamed(point) for point in body["points"]]}
    return body


_VECTOR_ALIASES = {
    "upsert": _points_renamed,  # PointStruct; a PointsBatch's `batch.vectors` is its own name
    "update_vectors": _points_renamed,  # PointVectors
    "delete_vectors": _renamed,  # DeleteVectors
}


def with_vector_aliases(operation: Any) -> Any:
    """An UpdateOperation body (`{"upsert": {...}}`, ...) with Qdrant's `vectors` aliases read
    as `vector`."""
    if not isinstance(operation, Mapping):
        return operation
    return {
        kind: _VECTOR_ALIASES.get(kind, lambda body: body)(body) for kind, body in operation.items()
    }
