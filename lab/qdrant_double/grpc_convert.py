"""gRPC requests as the REST models the data plane takes, through qdrant-client's own conversions
(`GrpcToRest`); only the assembling of request fields is ours, where qdrant-client has no
converter for a whole request (it only ever sends them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from qdrant_client import grpc as qgrpc
from qdrant_client.conversions.conversion import (
    GrpcToRest,
    grpc_field_type_to_payload_schema,
    grpc_to_payload,
)
from qdrant_client.http import models

from lab.qdrant_double import legacy


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _present(message: Any, field: str, convert: Callable[[Any], Any] = lambda value: value) -> Any:
    """The converted value of an optional field, None when the caller left it out."""
    return convert(getattr(message, field)) if message.HasField(field) else None


def update_operation(kind: str, request: Any) -> models.UpdateOperation:
    """A single-write request (UpsertPoints, SetPayloadPoints, ...) as the `kind` arm of a
    PointsUpdateOperation, whose fields carry the same names, then as qdrant-client's REST model."""
    operation = qgrpc.PointsUpdateOperation()
    arm = getattr(operation, kind)
    arm.SetInParent()
    names = {field.name for field in arm.DESCRIPTOR.fields}
    fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
    json_format.ParseDict({key: value for key, value in fields.items() if key in names}, arm)
    return points_update_operation(operation)


def points_update_operation(operation: Any) -> models.UpdateOperation:
    """A PointsUpdateOperation as qdrant-client's REST model. Its shard key selector is converted
    here: qdrant-client 1.20's `GrpcToRest` reads it as a single key or passes the message through
    unconverted. The double's collections have one shard, so the key is carried, not used."""
    kind = operation.WhichOneof("operation")
    if kind is None or not getattr(operation, kind).HasField("shard_key_selector"):
        return GrpcToRest.convert_points_update_operation(operation)
    shard_key = GrpcToRest.convert_shard_key_selector(getattr(operation, kind).shard_key_selector)
    unkeyed = qgrpc.PointsUpdateOperation()
    unkeyed.CopyFrom(operation)
    getattr(unkeyed, kind).ClearField("shard_key_selector")
    converted = GrpcToRest.convert_points_update_operation(unkeyed)
    [field] = type(converted).model_fields
    body = getattr(converted, field).model_copy(update={"shard_key": shard_key})
    return converted.model_copy(update={field: body})


def create_collection(request: Any) -> models.CreateCollection:
    return models.CreateCollection(
        vectors=_present(request, "vectors_config", GrpcToRest.convert_vectors_config),
        sparse_vectors=_present(
            request, "sparse_vectors_config", GrpcToRest.convert_sparse_vector_config
        ),
        metadata=grpc_to_payload(request.metadata) or None,
    )


def create_field_index(request: Any) -> models.CreateFieldIndex:
    """Index parameters if given, else the bare field type."""
    schema: models.PayloadFieldSchema | None = _present(
        request, "field_index_params", GrpcToRest.convert_payload_schema_params
    ) or _present(
        request,
        "field_type",
        lambda field_type: GrpcToRest.convert_payload_schema_type(
            grpc_field_type_to_payload_schema(field_type)
        ),
    )
    return models.CreateFieldIndex(field_name=request.field_name, field_schema=schema)


def point_request(request: Any) -> models.PointRequest:
    return models.PointRequest(
        ids=[GrpcToRest.convert_point_id(point_id) for point_id in request.ids],
        with_payload=_present(request, "with_payload", GrpcToRest.convert_with_payload_selector),
        with_vector=_present(request, "with_vectors", GrpcToRest.convert_with_vectors_selector),
    )


def scroll_request(request: Any) -> models.ScrollRequest:
    return models.ScrollRequest(
        filter=_present(request, "filter", GrpcToRest.convert_filter),
        offset=_present(request, "offset", GrpcToRest.convert_point_id),
        limit=_present(request, "limit"),
        with_payload=_present(request, "with_payload", GrpcToRest.convert_with_payload_selector),
        with_vector=_present(request, "with_vectors", GrpcToRest.convert_with_vectors_selector),
        order_by=_present(request, "order_by", GrpcToRest.convert_order_by),
    )


def count_request(request: Any) -> models.CountRequest:
    return models.CountRequest(
        filter=_present(request, "filter", GrpcToRest.convert_filter),
        exact=_present(request, "exact"),
    )


def _shared_search_fields(request: Any) -> dict[str, Any]:
    """What SearchPoints and RecommendPoints share with REST's search and recommend bodies."""
    fields = {
        "filter": _present(request, "filter", GrpcToRest.convert_filter),
        "params": _present(request, "params", GrpcToRest.convert_search_params),
        "with_payload": _present(request, "with_payload", GrpcToRest.convert_with_payload_selector),
        "with_vector": _present(request, "with_vectors", GrpcToRest.convert_with_vectors_selector),
        "score_threshold": _present(request, "score_threshold"),
        "offset": _present(request, "offset"),
        "limit": request.limit or None,
    }
    return _given(fields)


def search_request(request: Any) -> models.QueryRequest:
    vector: Any = list(request.vector)
    if request.HasField("sparse_indices"):
        vector = {"indices": list(request.sparse_indices.data), "values": vector}
    if request.HasField("vector_name"):
        vector = {"name": request.vector_name, "vector": vector}
    return legacy.search_request({**_shared_search_fields(request), "vector": vector})


def recommend_request(request: Any) -> models.QueryRequest:
    def examples(ids: Any, vectors: Any) -> list[Any]:
        return [GrpcToRest.convert_point_id(point_id) for point_id in ids] + [
            GrpcToRest.convert_vector(vector) for vector in vectors
        ]

    body = {
        **_shared_search_fields(request),
        "positive": examples(request.positive, request.positive_vectors),
        "negative": examples(request.negative, request.negative_vectors),
        "strategy": _present(request, "strategy", GrpcToRest.convert_recommend_strategy),
        "using": _present(request, "using"),
        "lookup_from": _present(request, "lookup_from", GrpcToRest.convert_lookup_location),
    }
    return legacy.recommend_request(_given(body))


def change_aliases(request: Any) -> models.ChangeAliasesOperation:
    return models.ChangeAliasesOperation(
        actions=[GrpcToRest.convert_alias_operations(action) for action in request.actions]
    )
