"""Qdrant's data operations on qdrant-client's own REST models, shared by the REST and gRPC fronts.

Each takes a request model (a gRPC request is converted to it first), runs it on the store's engine
and returns the result model. Where a REST field is left out, Qdrant's default applies (a scroll
returns payloads, a query does not), not the client library's.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

from qdrant_client.http import models

from lab.qdrant_double.access import Access, Need
from lab.qdrant_double.errors import BadRequest, NotFound
from lab.qdrant_double.store import Store

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
    """Every point, vector and payload write: upserts, deletes, payload and vector changes."""
    return store.run(lambda client: client.batch_update_points(name, operations), name)


def retrieve(store: Store, name: str, request: models.PointRequest) -> list[models.Record]:
    return store.run(
        lambda client: client.retrieve(
            name,
            request.ids,
            with_payload=_default(request.with_payload, True),
            with_vectors=_default(request.with_vector, False),
        ),
        name,
    )


def get_point(store: Store, name: str, point_id: models.ExtendedPointId) -> models.Record:
    found = retrieve(store, name, models.PointRequest(ids=[point_id]))
    if not found:
        raise NotFound(f"Not found: No point with id {point_id} found")
    return found[0]


def scroll(store: Store, name: str, request: models.ScrollRequest) -> models.ScrollResult:
    points, next_offset = store.run(
        lambda client: client.scroll(
            name,
            scroll_filter=request.filter,
            limit=_default(request.limit, 10),
            order_by=request.order_by,
            offset=request.offset,
            with_payload=_default(request.with_payload, True),
            with_vectors=_default(request.with_vector, False),
        ),
        name,
    )
    return models.ScrollResult(points=points, next_page_offset=next_offset)


def count(store: Store, name: str, request: models.CountRequest) -> models.CountResult:
    return store.run(
        lambda client: client.count(
            name, count_filter=request.filter, exact=_default(request.exact, True)
        ),
        name,
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
    return store.run(lambda client: client.query_batch_points(name, requests), name)


def create_index(store: Store, name: str, request: models.CreateFieldIndex) -> models.UpdateResult:
    """Validated and accepted; local mode searches exhaustively, so the index changes nothing."""
    schema = request.field_schema
    if schema is None:
        raise BadRequest(
            "Bad request: Can't auto-detect field type, "
            "please specify `field_schema` in the request"
        )
    return store.run(
        lambda client: client.create_payload_index(name, request.field_name, schema), name
    )


def delete_index(store: Store, name: str, field_name: str) -> models.UpdateResult:
    return store.run(lambda client: client.delete_payload_index(name, field_name), name)


def change_aliases(store: Store, request: models.ChangeAliasesOperation) -> bool:
    return store.run(lambda client: client.update_collection_aliases(request.actions))


def aliases(
    store: Store, access: Access, collection: Optional[str] = None
) -> models.CollectionsAliasesResponse:
    """All aliases, or one collection's; like collection lists, only those the caller may see."""
    def listed(client: Any) -> models.CollectionsAliasesResponse:
        if collection is None:
            return client.get_aliases()
        return client.get_collection_aliases(collection)

    response = store.run(listed, collection)
    return models.CollectionsAliasesResponse(
        aliases=[alias for alias in response.aliases if access.can_see(alias.collection_name)]
    )


def list_snapshots(store: Store, name: str) -> list[models.SnapshotDescription]:
    return store.run(lambda client: client.list_snapshots(name), name)


def create_snapshot(store: Store, name: str) -> Optional[models.SnapshotDescription]:
    """Local mode has no snapshots: a 501 (UNIMPLEMENTED) that says so."""
    return store.run(lambda client: client.create_snapshot(name), name)
