"""Qdrant's search and recommend requests, which Qdrant v1.18 still serves but qdrant-client 1.20
neither sends nor models, restated as the universal query that replaced them.

The bodies keep their REST shape (gRPC's SearchPoints and RecommendPoints are converted to it
first); everything but the search vector or the examples is already a QueryRequest field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qdrant_client.http import models

from lab.qdrant_double import bodies
from lab.qdrant_double.errors import BadRequest


def _query_request(fields: Mapping[str, Any]) -> models.QueryRequest:
    result: models.QueryRequest = bodies.parse(models.QueryRequest, fields)
    return result


def _fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("Format error in JSON body: expected an object")
    return dict(body)


def search_request(body: Any) -> models.QueryRequest:
    """A SearchRequest: `vector` is a list, or `{name, vector}` for a named dense or sparse one."""
    fields = _fields(body)
    vector = fields.pop("vector", None)
    if isinstance(vector, dict):
        fields["using"], vector = vector.get("name"), vector.get("vector")
    return _query_request({**fields, "query": vector})


_EXAMPLES = ("positive", "negative", "strategy")


def recommend_request(body: Any) -> models.QueryRequest:
    """A RecommendRequest: point ids or vectors as `positive` / `negative` examples."""
    fields = _fields(body)
    examples = {key: fields.pop(key) for key in _EXAMPLES if key in fields}
    return _query_request({**fields, "query": {"recommend": examples}})
