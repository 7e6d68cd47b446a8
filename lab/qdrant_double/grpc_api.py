"""The gRPC servicers (Qdrant, Collections, Points, Snapshots, health, StorageRead) and the
server that hosts them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Tuple

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from qdrant_client import grpc as qgrpc
from qdrant_client.conversions.conversion import (
    GrpcToRest,
    RestToGrpc,
    grpc_to_payload,
    payload_to_grpc,
)
from qdrant_client.grpc import (
    collections_service_pb2_grpc,
    points_service_pb2_grpc,
    qdrant_pb2_grpc,
    snapshots_service_pb2_grpc,
)
from qdrant_client.http import models

from lab.qdrant_double.access import Access, Authenticator, Need
from lab.qdrant_double.config import TITLE, DoubleConfig
from lab.qdrant_double.errors import BadRequest
from lab.qdrant_double.grpc_auth import _AuthInterceptor, _rpc
from lab.qdrant_double.store import Store, filter_pairs, point_id
from lab.qdrant_double.values import PointId, Record


def _grpc_point_id(message: Any) -> PointId:
    kind = message.WhichOneof("point_id_options")
    if kind is None:
        raise BadRequest("point id is required")
    return point_id(getattr(message, kind))


def _to_grpc_id(pid: PointId) -> Any:
    return qgrpc.PointId(uuid=pid) if isinstance(pid, str) else qgrpc.PointId(num=pid)


def _grpc_wants_payload(request: Any) -> bool:
    if not request.HasField("with_payload"):
        return True
    selector = request.with_payload
    return bool(selector.WhichOneof("selector_options") != "enable" or selector.enable)


def _retrieved_point(record: Record, with_payload: bool) -> Any:
    pid, payload = record
    return qgrpc.RetrievedPoint(
        id=_to_grpc_id(pid), payload=payload_to_grpc(payload) if with_payload else {}
    )


def _operation_response(operation_id: int) -> Any:
    return qgrpc.PointsOperationResponse(
        result=qgrpc.UpdateResult(operation_id=operation_id, status=qgrpc.UpdateStatus.Completed)
    )


class _QdrantService(qdrant_pb2_grpc.QdrantServicer):
    def __init__(self, version: str) -> None:
        self._version = version

    def HealthCheck(self, request: Any, context: Any) -> Any:
        return qgrpc.HealthCheckReply(title=TITLE, version=self._version, commit="")


class _CollectionsService(collections_service_pb2_grpc.CollectionsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.LIST)
    def List(self, request: Any, access: Access) -> Any:
        names = [name for name in self._store.names() if access.can_see(name)]
        return qgrpc.ListCollectionsResponse(
            collections=[qgrpc.CollectionDescription(name=name) for name in names]
        )

    @_rpc(Need.READ)
    def Get(self, request: Any, access: Access) -> Any:
        info = models.CollectionInfo.model_validate(self._store.info(request.collection_name))
        return qgrpc.GetCollectionInfoResponse(result=RestToGrpc.convert_collection_info(info))

    @_rpc(Need.READ)
    def CollectionExists(self, request: Any, access: Access) -> Any:
        exists = self._store.exists(request.collection_name)
        return qgrpc.CollectionExistsResponse(result=qgrpc.CollectionExists(exists=exists))

    @_rpc(Need.MANAGE)
    def Create(self, request: Any, access: Access) -> Any:
        vectors = None
        if request.HasField("vectors_config"):
            params = models.CollectionParams(
                vectors=GrpcToRest.convert_vectors_config(request.vectors_config)
            )
            vectors = params.model_dump(mode="json", exclude_none=True).get("vectors")
        self._store.create(request.collection_name, vectors)
        return qgrpc.CollectionOperationResponse(result=True)

    @_rpc(Need.MANAGE)
    def Delete(self, request: Any, access: Access) -> Any:
        deleted = self._store.delete(request.collection_name)
        return qgrpc.CollectionOperationResponse(result=deleted)


class _PointsService(points_service_pb2_grpc.PointsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.WRITE_POINTS)
    def Upsert(self, request: Any, access: Access) -> Any:
        records = [(_grpc_point_id(p.id), grpc_to_payload(p.payload)) for p in request.points]
        return _operation_response(self._store.upsert(request.collection_name, records))

    @_rpc(Need.READ)
    def Get(self, request: Any, access: Access) -> Any:
        ids = [_grpc_point_id(i) for i in request.ids]
        records = self._store.retrieve(request.collection_name, ids)
        with_payload = _grpc_wants_payload(request)
        return qgrpc.GetResponse(result=[_retrieved_point(r, with_payload) for r in records])

    @_rpc(Need.READ)
    def Scroll(self, request: Any, access: Access) -> Any:
        pairs = (
            filter_pairs(GrpcToRest.convert_filter(request.filter).model_dump(mode="json"))
            if request.HasField("filter")
            else []
        )
        offset = _grpc_point_id(request.offset) if request.HasField("offset") else None
        limit = request.limit if request.HasField("limit") else 10
        page, next_offset = self._store.scroll(request.collection_name, offset, limit, pairs)
        with_payload = _grpc_wants_payload(request)
        response = qgrpc.ScrollResponse(result=[_retrieved_point(r, with_payload) for r in page])
        if next_offset is not None:
            response.next_page_offset.CopyFrom(_to_grpc_id(next_offset))
        return response

    @_rpc(Need.WRITE_COLLECTION)
    def CreateFieldIndex(self, request: Any, access: Access) -> Any:
        field_type = (
            request.field_type
            if request.HasField("field_type")
            else qgrpc.FieldType.FieldTypeKeyword  # Qdrant's default for a bare field name
        )
        # FieldTypeKeyword -> "keyword": the gRPC names mirror REST's PayloadSchemaType.
        data_type = qgrpc.FieldType.Name(field_type).removeprefix("FieldType").lower()
        operation = self._store.create_index(request.collection_name, request.field_name, data_type)
        return _operation_response(operation)


class _SnapshotsService(snapshots_service_pb2_grpc.SnapshotsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc(Need.WRITE_COLLECTION)
    def Create(self, request: Any, access: Access) -> Any:
        snapshot = self._store.create_snapshot(request.collection_name)
        created = Timestamp()
        created.FromDatetime(datetime.fromisoformat(snapshot["creation_time"]))
        description = qgrpc.SnapshotDescription(
            name=snapshot["name"], creation_time=created, size=snapshot["size"]
        )
        return qgrpc.CreateSnapshotResponse(snapshot_description=description)


def _standard_health_handler() -> Any:
    # grpc.health.v1.HealthCheckResponse{status: SERVING}, encoded by hand: no stubs installed.
    serving = b"\x08\x01"
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(lambda request, context: serving)},
    )


class _StorageReadHandler(grpc.GenericRpcHandler):
    """Any ``qdrant.StorageRead/*`` method: an empty message for any authenticated caller."""

    def service(self, details: Any) -> Any:
        if not details.method.startswith("/qdrant.StorageRead/"):
            return None
        return grpc.unary_unary_rpc_method_handler(lambda request, context: b"")


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _build_grpc_server(
    config: DoubleConfig, store: Store, auth: Authenticator, executor: ThreadPoolExecutor
) -> Tuple[Any, int]:
    server = grpc.server(
        executor,
        interceptors=[_AuthInterceptor(auth)],
        options=[
            # gRPC's default SO_REUSEPORT would let two doubles share a port silently.
            ("grpc.so_reuseport", 0),
            # Qdrant does not cap gRPC messages; the proxy does.
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
        ],
    )
    qdrant_pb2_grpc.add_QdrantServicer_to_server(_QdrantService(config.version), server)
    collections_service_pb2_grpc.add_CollectionsServicer_to_server(
        _CollectionsService(store), server
    )
    points_service_pb2_grpc.add_PointsServicer_to_server(_PointsService(store), server)
    snapshots_service_pb2_grpc.add_SnapshotsServicer_to_server(_SnapshotsService(store), server)
    server.add_generic_rpc_handlers((_standard_health_handler(), _StorageReadHandler()))
    address = _grpc_address(config.grpc_host, config.grpc_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot bind gRPC to {address}: {error}") from None
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port
