"""Qdrant's REST filter model (qdrant-client's) as Qdrant Edge's filter types.

Edge evaluates them with the server's own condition code (lib/segment), so a filter means what it
means on Qdrant; this module only changes their spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

from lab.qdrant_double.errors import BadRequest


def _listed(clause: Any) -> list[Any] | None:
    """A filter clause is one condition or a list of them in Qdrant's REST model."""
    if clause is None:
        return None
    return [condition(item) for item in (clause if isinstance(clause, list) else [clause])]


def to_filter(rest: models.Filter | None) -> edge.Filter | None:
    if rest is None:
        return None
    min_should = None
    if rest.min_should is not None:
        min_should = edge.MinShould(
            [condition(item) for item in rest.min_should.conditions], rest.min_should.min_count
        )
    return edge.Filter(
        must=_listed(rest.must),
        should=_listed(rest.should),
        must_not=_listed(rest.must_not),
        min_should=min_should,
    )


def condition(rest: Any) -> Any:
    if isinstance(rest, models.Filter):
        return to_filter(rest)
    if isinstance(rest, models.FieldCondition):
        return _field_condition(rest)
    if isinstance(rest, models.IsEmptyCondition):
        return edge.IsEmptyCondition(rest.is_empty.key)
    if isinstance(rest, models.IsNullCondition):
        return edge.IsNullCondition(rest.is_null.key)
    if isinstance(rest, models.HasIdCondition):
        return edge.HasIdCondition(set(rest.has_id))
    if isinstance(rest, models.HasVectorCondition):
        return edge.HasVectorCondition(rest.has_vector)
    if isinstance(rest, models.NestedCondition):
        nested = to_filter(rest.nested.filter)
        assert nested is not None
        return edge.NestedCondition(rest.nested.key, nested)
    raise BadRequest(f"Bad request: condition {type(rest).__name__} is not served by the double")


def _field_condition(rest: models.FieldCondition) -> edge.FieldCondition:
    return edge.FieldCondition(
        rest.key,
        match=_match(rest.match),
        range=_range(rest.range),
        geo_bounding_box=_bounding_box(rest.geo_bounding_box),
        geo_radius=_radius(rest.geo_radius),
        geo_polygon=_polygon(rest.geo_polygon),
        values_count=_values_count(rest.values_count),
        is_empty=rest.is_empty,
        is_null=rest.is_null,
    )


_MATCHES: dict[type, Any] = {
    models.MatchValue: lambda match: edge.MatchValue(match.value),
    models.MatchText: lambda match: edge.MatchText(match.text),
    models.MatchTextAny: lambda match: edge.MatchTextAny(match.text_any),
    models.MatchPhrase: lambda match: edge.MatchPhrase(match.phrase),
    models.MatchAny: lambda match: edge.MatchAny(match.any),
    models.MatchExcept: lambda match: edge.MatchExcept(match.except_),
}


def _match(rest: Any) -> Any:
    if rest is None:
        return None
    convert = _MATCHES.get(type(rest))
    if convert is None:
        raise BadRequest(f"Bad request: match {type(rest).__name__} is not served by the double")
    return convert(rest)


def _range(rest: models.Range | models.DatetimeRange | None) -> Any:
    if rest is None:
        return None
    if isinstance(rest, models.Range):
        return edge.RangeFloat(gte=rest.gte, gt=rest.gt, lte=rest.lte, lt=rest.lt)
    bounds = [rest.gte, rest.gt, rest.lte, rest.lt]
    gte, gt, lte, lt = [None if bound is None else _datetime(bound) for bound in bounds]
    return edge.RangeDateTime(gte=gte, gt=gt, lte=lte, lt=lt)


def _datetime(bound: Any) -> str:
    return bound if isinstance(bound, str) else bound.isoformat()


def _point(rest: models.GeoPoint) -> edge.GeoPoint:
    return edge.GeoPoint(lon=rest.lon, lat=rest.lat)


def _points(rest: Sequence[models.GeoPoint]) -> list[edge.GeoPoint]:
    return [_point(point) for point in rest]


def _bounding_box(rest: models.GeoBoundingBox | None) -> edge.GeoBoundingBox | None:
    if rest is None:
        return None
    return edge.GeoBoundingBox(_point(rest.top_left), _point(rest.bottom_right))


def _radius(rest: models.GeoRadius | None) -> edge.GeoRadius | None:
    return None if rest is None else edge.GeoRadius(_point(rest.center), rest.radius)


def _polygon(rest: models.GeoPolygon | None) -> edge.GeoPolygon | None:
    if rest is None:
        return None
    interiors = None
    if rest.interiors is not None:
        interiors = [_points(ring.points) for ring in rest.interiors]
    return edge.GeoPolygon(_points(rest.exterior.points), interiors)


def _values_count(rest: models.ValuesCount | None) -> edge.ValuesCount | None:
    if rest is None:
        return None
    return edge.ValuesCount(lt=rest.lt, gt=rest.gt, lte=rest.lte, gte=rest.gte)
