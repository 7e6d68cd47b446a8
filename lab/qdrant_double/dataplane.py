"""Qdrant's data operations on qdrant-client's own REST models, shared by the REST and gRPC fronts.

Each takes a request model (a gRPC request is converted to it first), converts it to Qdrant Edge's
types, runs it on the collection's shard and returns the REST result model. Where a REST field is
left out, Qdrant's default applies (a scroll returns payloads, a query does not).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

from lab.qdrant_double import edge_points
from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.edge_filters import to_filter
from lab.qdrant_double.edge_queries import order_by, query_request, record, scored, with_payload
from lab.qdrant_double.errors import BadRequest, NotFound
from lab.qdrant_double.store import Collection, Store


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def list_collections(store: Store, access: Access) -> models.CollectionsResponse:
    """Only the collections the caller may see, as Qdrant filters them for collection tokens."""
    visible = [name for name in store.names() if access.can_see(name)]
    return models.CollectionsResponse(
        collections=[models.CollectionDescription(name=name) for name in visible]
    )


def collection_exists(store: Store, name: str) -> models.CollectionExistence:
    return models.CollectionExistence(exists=store.exists(name))


def update_points(
    store: Store, name: str, operations: Sequence[models.UpdateOperation]
) -> list[models.UpdateResult]:
    """Every point, vector and payload write, one after the other, as Qdrant applies a batch."""

    def apply(collection: Collection) -> list[models.UpdateResult]:
        return [collection.apply(edge_points.update(operation)) for operation in operations]

    return store.run(name, apply)


def _records(found: Sequence[Any]) -> list[models.Record]:
    return [record(item) for item in found]


def retrieve(store: Store, name: str, request: models.PointRequest) -> list[models.Record]:
    def read(collection: Collection) -> list[models.Record]:
        return _records(collection.shard.retrieve(
            list(request.ids),
            with_payload(_default(request.with_payload, True)),
            _default(request.with_vector, False),
        ))  # fmt: skip

    return store.run(name, read)


def get_point(store: Store, name: str, point_id: models.ExtendedPointId) -> models.Record:
    found = retrieve(store, name, models.PointRequest(ids=[point_id]))
    if not found:
        raise NotFound(f"Not found: No point with id {point_id} found")
    return found[0]


def scroll(store: Store, name: str, request: models.ScrollRequest) -> models.ScrollResult:
    scrolled = edge.ScrollRequest(
        offset=request.offset,
        limit=_default(request.limit, 10),
        filter=to_filter(request.filter),
        with_payload=with_payload(_default(request.with_payload, True)),
        with_vector=_default(request.with_vector, False),
        order_by=None if request.order_by is None else order_by(request.order_by),
    )
    points, next_offset = store.run(name, lambda collection: collection.shard.scroll(scrolled))
    return models.ScrollResult(
        points=_records(points),
        next_page_offset=None if next_offset is None else edge_points.rest_id(next_offset),
    )


def count(store: Store, name: str, request: models.CountRequest) -> models.CountResult:
    counted = edge.CountRequest(
        exact=_default(request.exact, True), filter=to_filter(request.filter)
    )
    return models.CountResult(
        count=store.run(name, lambda collection: collection.shard.count(counted))
    )


def _looked_up(prefetch: Any) -> Iterator[str]:
    """Collections a query or its prefetches read vectors from (`lookup_from`)."""
    for stage in prefetch if isinstance(prefetch, list) else [prefetch]:
        if stage is None:
            continue
        if stage.lookup_from is not None:
            yield stage.lookup_from.collection
        yield from _looked_up(stage.prefetch)


def query(
    store: Store, access: Access, name: str, requests: Sequence[models.QueryRequest]
) -> list[models.QueryResponse]:
    """Qdrant's universal query (search, recommend and the rest), one answer per request.
    A `lookup_from` reads another collection, which the caller must be allowed to read too."""
    for request in requests:
        for other in _looked_up(request):
            access.require(Need.READ, other)

    def run(collection: Collection) -> list[models.QueryResponse]:
        def lookup(location: models.LookupLocation | None, point_id: Any, using: str) -> Any:
            source = collection if location is None else store.peer(location.collection)
            found = source.shard.retrieve([point_id], False, [using] if using else True)
            if not found:
                raise NotFound(f"Not found: No point with id {point_id} found")
            vectors = found[0].vector
            if isinstance(vectors, dict):
                if using not in vectors:
                    raise BadRequest(f"Wrong input: Not existing vector name error: {using}")
                return vectors[using]
            return vectors

        converted = edge.QueryBatchRequest([query_request(item, lookup) for item in requests])
        answers = collection.shard.query_batch(converted)
        return [models.QueryResponse(points=[scored(point) for point in points])
                for points in answers]  # fmt: skip

    return store.run(name, run)


_SCHEMAS = {
    models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
    models.PayloadSchemaType.FLOAT: edge.PayloadSchemaType.Float,
    models.PayloadSchemaType.GEO: edge.PayloadSchemaType.Geo,
    models.PayloadSchemaType.TEXT: edge.PayloadSchemaType.Text,
    models.PayloadSchemaType.BOOL: edge.PayloadSchemaType.Bool,
    models.PayloadSchemaType.DATETIME: edge.PayloadSchemaType.Datetime,
    models.PayloadSchemaType.UUID: edge.PayloadSchemaType.Uuid,
}


def create_index(store: Store, name: str, request: models.CreateFieldIndex) -> models.UpdateResult:
    """A payload index built by Edge's index code. A schema given with parameters is built as its
    type with Edge's default parameters."""
    schema = request.field_schema
    if schema is None:
        raise BadRequest(
            "Bad request: Can't auto-detect field type, "
            "please specify `field_schema` in the request"
        )
    kind = models.PayloadSchemaType(schema if isinstance(schema, str) else schema.type)
    operation = edge.UpdateOperation.create_field_index(request.field_name, _SCHEMAS[kind])
    return store.run(name, lambda collection: collection.apply(operation))


def delete_index(store: Store, name: str, field_name: str) -> models.UpdateResult:
    operation = edge.UpdateOperation.delete_field_index(field_name)
    return store.run(name, lambda collection: collection.apply(operation))


def change_aliases(store: Store, request: models.ChangeAliasesOperation) -> bool:
    return store.change_aliases(request.actions)


def aliases(
    store: Store, access: Access, collection: str | None = None
) -> models.CollectionsAliasesResponse:
    """All aliases, or one collection's; like collection lists, only those the caller may see."""
    if collection is not None and not store.exists(collection):
        raise NotFound(f"Not found: Collection `{collection}` doesn't exist!")
    listed = [
        models.AliasDescription(alias_name=alias, collection_name=target)
        for alias, target in store.aliases()
        if (collection is None or target == collection) and access.can_see(target)
    ]
    return models.CollectionsAliasesResponse(aliases=listed)
