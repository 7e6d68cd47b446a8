"""Qdrant's REST universal query (qdrant-client's models) as Qdrant Edge's query types, and Edge's
points back as REST records.

Edge scores, fuses and filters with the server's own code. What the server does before it reaches
the shard, the double does here, as lib/collection does it:
- a point id given as a vector is that point's vector, read from the collection or its
  `lookup_from`, and points the query names by id are left out of its results when they come
  from the queried collection itself
  (lib/collection/src/operations/universal_query/collection_query.rs);
- `recommend` with the `average_vector` strategy is a nearest search on
  `avg(positive) + (avg(positive) - avg(negative))`, of dense vectors here
  (lib/segment/src/vector_storage/query/reco_query.rs, `avg_vector_for_recommendation`);
- MMR's `diversity` is the weight of diversity, Edge's `lambda` that of relevance: one is
  `1 - ` the other (lib/collection/src/collection/mmr/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

from lab.qdrant_double.edge_filters import to_filter
from lab.qdrant_double.edge_points import rest_id, rest_vector, vector
from lab.qdrant_double.errors import BadRequest

Lookup = Callable[[models.LookupLocation | None, models.ExtendedPointId, str], Any]
"""The stored vector (by name) of a point of the queried collection, or of `lookup_from`'s."""

DEFAULT_LIMIT = 10
RRF_K = 2  # Qdrant's default `k` for reciprocal rank fusion (lib/segment/src/common/reciprocal_rank_fusion.rs)
MMR_DIVERSITY = 0.5


@dataclass
class _Stage:
    """One query or prefetch's context: where its ids are looked up, and which it names."""

    lookup: Lookup
    lookup_from: models.LookupLocation | None
    using: str
    mentioned: list[models.ExtendedPointId] = field(default_factory=list)

    def vector(self, rest: Any) -> Any:
        if isinstance(rest, (int, str)):
            if self.lookup_from is None:
                self.mentioned.append(rest)
            name = self.using
            if self.lookup_from is not None and self.lookup_from.vector is not None:
                name = self.lookup_from.vector
            return self.lookup(self.lookup_from, rest, name)
        return vector(rest)

    def vectors(self, rest: Sequence[Any] | None) -> list[Any]:
        return [self.vector(item) for item in rest or []]


def _average(vectors: list[Any]) -> list[float]:
    if not all(isinstance(item, list) and all(isinstance(x, (int, float)) for x in item)
               for item in vectors):  # fmt: skip
        raise BadRequest("Bad request: `average_vector` over sparse or multi vectors "
                         "is not served by the double")  # fmt: skip
    return [sum(values) / len(vectors) for values in zip(*vectors, strict=False)]


def _recommend(stage: _Stage, rest: models.RecommendInput) -> Any:
    positives, negatives = stage.vectors(rest.positive), stage.vectors(rest.negative)
    strategy = rest.strategy or models.RecommendStrategy.AVERAGE_VECTOR
    if strategy == models.RecommendStrategy.AVERAGE_VECTOR:
        if not positives:
            raise BadRequest("Wrong input: At least one positive vector ID required")
        positive = _average(positives)
        if negatives:
            negative = _average(negatives)
            positive = [2 * pos - neg for pos, neg in zip(positive, negative, strict=False)]
        return edge.Query.Nearest(positive, stage.using)
    query = edge.RecommendQuery(positives, negatives)
    if strategy == models.RecommendStrategy.BEST_SCORE:
        return edge.Query.RecommendBestScore(query, stage.using)
    if strategy == models.RecommendStrategy.SUM_SCORES:
        return edge.Query.RecommendSumScores(query, stage.using)
    raise BadRequest(f"Bad request: recommend strategy {strategy} is not served by the double")


def _pairs(stage: _Stage, rest: Any) -> list[edge.ContextPair]:
    pairs = rest if isinstance(rest, list) else [] if rest is None else [rest]
    return [edge.ContextPair(stage.vector(pair.positive), stage.vector(pair.negative))
            for pair in pairs]  # fmt: skip


def order_by(rest: Any) -> edge.OrderBy:
    if isinstance(rest, str):
        return edge.OrderBy(rest)
    direction = None
    if rest.direction is not None:
        direction = (
            edge.Direction.Desc if rest.direction == models.Direction.DESC else edge.Direction.Asc
        )
    start_from = rest.start_from
    if start_from is not None and not isinstance(start_from, (int, float)):
        start_from = start_from if isinstance(start_from, str) else start_from.isoformat()
    return edge.OrderBy(rest.key, direction, start_from)


def _nearest(stage: _Stage, rest: models.NearestQuery, limit: int) -> Any:
    target = stage.vector(rest.nearest)
    if rest.mmr is None:
        return edge.Query.Nearest(target, stage.using)
    diversity = MMR_DIVERSITY if rest.mmr.diversity is None else rest.mmr.diversity
    candidates = rest.mmr.candidates_limit or limit
    return edge.Mmr(target, 1 - diversity, candidates, stage.using)


def _scoring(stage: _Stage, rest: Any, limit: int) -> Any:
    if rest is None:
        return None
    if isinstance(rest, models.NearestQuery):
        return _nearest(stage, rest, limit)
    if isinstance(rest, models.RecommendQuery):
        return _recommend(stage, rest.recommend)
    if isinstance(rest, models.DiscoverQuery):
        target = stage.vector(rest.discover.target)
        discover = edge.DiscoverQuery(target, _pairs(stage, rest.discover.context))
        return edge.Query.Discover(discover, stage.using)
    if isinstance(rest, models.ContextQuery):
        return edge.Query.Context(edge.ContextQuery(_pairs(stage, rest.context)), stage.using)
    if isinstance(rest, models.OrderByQuery):
        return order_by(rest.order_by)
    if isinstance(rest, models.FusionQuery):
        return edge.Fusion.Dbsf() if rest.fusion == models.Fusion.DBSF else edge.Fusion.Rrf(RRF_K)
    if isinstance(rest, models.RrfQuery):
        return edge.Fusion.Rrf(rest.rrf.k or RRF_K, rest.rrf.weights)
    if isinstance(rest, models.SampleQuery):
        return edge.Sample.Random
    if isinstance(rest, (list, models.SparseVector, int, str)):
        return edge.Query.Nearest(stage.vector(rest), stage.using)
    raise BadRequest(f"Bad request: query {type(rest).__name__} is not served by the double")


def _params(rest: models.SearchParams | None) -> edge.SearchParams | None:
    if rest is None:
        return None
    quantization = None
    if rest.quantization is not None:
        q = rest.quantization
        quantization = edge.QuantizationSearchParams(bool(q.ignore), q.rescore, q.oversampling)
    return edge.SearchParams(
        hnsw_ef=rest.hnsw_ef,
        exact=bool(rest.exact),
        quantization=quantization,
        indexed_only=bool(rest.indexed_only),
    )


def _excluding(found: edge.Filter | None, mentioned: list[Any]) -> edge.Filter | None:
    if not mentioned:
        return found
    return edge.Filter(must=[found] if found is not None else None,
                       must_not=[edge.HasIdCondition(set(mentioned))])  # fmt: skip


def _prefetch(rest: models.Prefetch, lookup: Lookup) -> edge.Prefetch:
    stage = _Stage(lookup, rest.lookup_from, rest.using or "")
    limit = rest.limit or DEFAULT_LIMIT
    query = _scoring(stage, rest.query, limit)
    return edge.Prefetch(
        limit,
        query=query,
        prefetches=_prefetches(rest.prefetch, lookup),
        params=_params(rest.params),
        filter=_excluding(to_filter(rest.filter), stage.mentioned),
        score_threshold=rest.score_threshold,
    )


def _prefetches(rest: Any, lookup: Lookup) -> list[edge.Prefetch] | None:
    if rest is None:
        return None
    return [_prefetch(item, lookup) for item in (rest if isinstance(rest, list) else [rest])]


def with_payload(rest: Any) -> Any:
    if isinstance(rest, models.PayloadSelectorInclude):
        return edge.PayloadSelector.Include(list(rest.include))
    if isinstance(rest, models.PayloadSelectorExclude):
        return edge.PayloadSelector.Exclude(list(rest.exclude))
    return rest


def query_request(rest: models.QueryRequest, lookup: Lookup) -> edge.QueryRequest:
    """A query with Qdrant's REST defaults: no payload and no vector unless asked for."""
    stage = _Stage(lookup, rest.lookup_from, rest.using or "")
    limit = DEFAULT_LIMIT if rest.limit is None else rest.limit
    query = _scoring(stage, rest.query, limit)
    return edge.QueryRequest(
        limit,
        offset=rest.offset,
        query=query,
        prefetches=_prefetches(rest.prefetch, lookup),
        with_vector=False if rest.with_vector is None else rest.with_vector,
        with_payload=False if rest.with_payload is None else with_payload(rest.with_payload),
        filter=_excluding(to_filter(rest.filter), stage.mentioned),
        score_threshold=rest.score_threshold,
        params=_params(rest.params),
    )


def scored(found: Any) -> models.ScoredPoint:
    return models.ScoredPoint(
        id=rest_id(found.id),
        version=found.version,
        score=found.score,
        payload=found.payload,
        vector=rest_vector(found.vector),
        order_value=found.order_value,
    )


def record(found: Any) -> models.Record:
    return models.Record(
        id=rest_id(found.id),
        payload=found.payload,
        vector=rest_vector(found.vector),
        order_value=found.order_value,
    )
