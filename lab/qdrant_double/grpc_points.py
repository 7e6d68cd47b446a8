"""The gRPC Points service: each method converts its request to qdrant-client's REST model, runs
the data plane, and converts the result back with qdrant-client's `RestToGrpc`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qdrant_client import grpc as qgrpc
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc
from qdrant_client.grpc import points_service_pb2_grpc
from qdrant_client.http import models

from lab.qdrant_double import dataplane, grpc_convert
from lab.qdrant_double.access import Access
from lab.qdrant_double.errors import BadRequest
from lab.qdrant_double.grpc_auth import _rpc
from lab.qdrant_double.store import Store


def _operation_response(result: models.UpdateResult) -> Any:
    return qgrpc.PointsOperationResponse(result=RestToGrpc.convert_update_result(result))


def _retrieved(record: models.Record) -> Any:
    # A payload not asked for is None in REST and an empty map in gRPC; RestToGrpc's record
    # conversion needs the map.
    return RestToGrpc.convert_record(record.model_copy(update={"payload": record.payload or {}}))


def _scored(response: models.QueryResponse) -> list[Any]:
    return [RestToGrpc.convert_scored_point(point) for point in response.points]


_SELECTORS = {
    "delete_points": ("points", "PointSelector is missing"),
    "clear_payload": ("points", "PointSelector is missing"),
    "set_payload": ("points_selector", "points_selector is expected"),
    "overwrite_payload": ("points_selector", "points_selector is expected"),
    "delete_payload": ("points_selector", "points_selector is expected"),
}
"""The points selector a write needs, by its arm, and Qdrant's INVALID_ARGUMENT text when it is
left out (src/tonic/api/update_common.rs: `delete`, `clear_payload`, `extract_points_selector`)."""


def _require_selector(kind: str, request: Any) -> None:
    if kind in _SELECTORS:
        field, message = _SELECTORS[kind]
        if not request.HasField(field):
            raise BadRequest(message)


def _write(kind: str) -> Callable[..., Any]:
    """A single point, vector or payload write, named by its arm of PointsUpdateOperation."""

    @_rpc
    def write(self: _PointsService, request: Any, access: Access) -> Any:
        _require_selector(kind, request)
        operation = grpc_convert.update_operation(kind, request)
        [result] = dataplane.update_points(self._store, request.collection_name, [operation])
        return _operation_response(result)

    return write


def _legacy_query(
    to_query: Callable[[Any], models.QueryRequest], response: Callable[..., Any]
) -> Callable[..., Any]:
    @_rpc
    def legacy(self: _PointsService, request: Any, access: Access) -> Any:
        name = request.collection_name
        [found] = dataplane.query(self._store, access, name, [to_query(request)])
        return response(result=_scored(found))

    return legacy


class _PointsService(points_service_pb2_grpc.PointsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    Upsert = _write("upsert")
    Delete = _write("delete_points")
    UpdateVectors = _write("update_vectors")
    DeleteVectors = _write("delete_vectors")
    SetPayload = _write("set_payload")
    OverwritePayload = _write("overwrite_payload")
    DeletePayload = _write("delete_payload")
    ClearPayload = _write("clear_payload")

    @_rpc
    def UpdateBatch(self, request: Any, access: Access) -> Any:
        operations = [
            grpc_convert.points_update_operation(operation) for operation in request.operations
        ]
        results = dataplane.update_points(self._store, request.collection_name, operations)
        return qgrpc.UpdateBatchResponse(
            result=[RestToGrpc.convert_update_result(result) for result in results]
        )

    @_rpc
    def Get(self, request: Any, access: Access) -> Any:
        records = dataplane.retrieve(
            self._store, request.collection_name, grpc_convert.point_request(request)
        )
        return qgrpc.GetResponse(result=[_retrieved(record) for record in records])

    @_rpc
    def Scroll(self, request: Any, access: Access) -> Any:
        page = dataplane.scroll(
            self._store, request.collection_name, grpc_convert.scroll_request(request)
        )
        response = qgrpc.ScrollResponse(result=[_retrieved(record) for record in page.points])
        if page.next_page_offset is not None:
            response.next_page_offset.CopyFrom(
                RestToGrpc.convert_extended_point_id(page.next_page_offset)
            )
        return response

    @_rpc
    def Count(self, request: Any, access: Access) -> Any:
        found = dataplane.count(
            self._store, request.collection_name, grpc_convert.count_request(request)
        )
        return qgrpc.CountResponse(result=RestToGrpc.convert_count_result(found))

    @_rpc
    def Query(self, request: Any, access: Access) -> Any:
        query = GrpcToRest.convert_query_points(request)
        [found] = dataplane.query(self._store, access, request.collection_name, [query])
        return qgrpc.QueryResponse(result=_scored(found))

    @_rpc
    def QueryBatch(self, request: Any, access: Access) -> Any:
        queries = [GrpcToRest.convert_query_points(q) for q in request.query_points]
        found = dataplane.query(self._store, access, request.collection_name, queries)
        return qgrpc.QueryBatchResponse(
            result=[qgrpc.BatchResult(result=_scored(response)) for response in found]
        )

    Search = _legacy_query(grpc_convert.search_request, qgrpc.SearchResponse)
    Recommend = _legacy_query(grpc_convert.recommend_request, qgrpc.RecommendResponse)

    @_rpc
    def CreateFieldIndex(self, request: Any, access: Access) -> Any:
        index = grpc_convert.create_field_index(request)
        return _operation_response(
            dataplane.create_index(self._store, request.collection_name, index)
        )

    @_rpc
    def DeleteFieldIndex(self, request: Any, access: Access) -> Any:
        return _operation_response(
            dataplane.delete_index(self._store, request.collection_name, request.field_name)
        )
