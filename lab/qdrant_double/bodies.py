"""Request bodies read as Qdrant's serde models read them, into qdrant-client's models.

qdrant-client's models forbid unknown keys; Qdrant's serde structs ignore them, except `Filter`
(`#[serde(deny_unknown_fields)]` in lib/segment/src/types.rs: "unknown field `must_nto`, expected
one of `should`, `min_should`, `must`, `must_not`"). So a body is first read by a private copy of
qdrant-client's models that ignores unknown keys everywhere but in filters, then by the real ones.
Qdrant also reads `vectors` for `vector` where its structs say `#[serde(alias = "vectors")]`:
PointStruct (lib/api/src/rest/schema.rs), PointVectors and DeleteVectors
(lib/collection/src/operations/vector_ops.rs).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Mapping

from pydantic import TypeAdapter, ValidationError

from lab.qdrant_double.errors import BadRequest

_MODELS = "qdrant_client.http.models.models"
_LENIENT = "lab.qdrant_double._lenient_models"
_STRICT_FILTER = 'class Filter(BaseModel, extra="forbid"):'


@functools.cache
def _lenient_models() -> types.ModuleType:
    """qdrant-client's models module, loaded again under another name with every model but Filter
    ignoring unknown keys. Its classes are its own: qdrant-client's stay as they are."""
    spec = importlib.util.find_spec(_MODELS)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{_MODELS} not found")
    source = Path(spec.origin).read_text()
    if _STRICT_FILTER not in source:
        raise RuntimeError(f"{_MODELS} no longer declares {_STRICT_FILTER!r}")
    lenient = source.replace('extra="forbid"', 'extra="ignore"').replace(
        _STRICT_FILTER.replace("forbid", "ignore"), _STRICT_FILTER
    )
    module = types.ModuleType(_LENIENT)
    sys.modules[_LENIENT] = module  # pydantic resolves forward references through it
    exec(compile(lenient, spec.origin, "exec"), module.__dict__)
    return module


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _format_error(error: ValidationError) -> BadRequest:
    return BadRequest(f"Format error in JSON body: {error}")


def parse(model: Any, body: Any) -> Any:
    """``body`` as an instance of qdrant-client's ``model``; what Qdrant refuses is its 400."""
    lenient_model = getattr(_lenient_models(), getattr(model, "__name__", ""), None)
    if lenient_model is not None:
        try:
            read = _adapter(lenient_model).validate_python(body)
        except ValidationError as error:
            raise _format_error(error) from None
        body = read.model_dump(mode="json", by_alias=True, exclude_unset=True)
    try:
        return _adapter(model).validate_python(body)
    except ValidationError as error:
        raise _format_error(error) from None


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
