"""The gRPC servicers (Qdrant, Collections, Snapshots, health, StorageRead; Points in grpc_points)
and the server that hosts them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from qdrant_client import grpc as qgrpc
from qdrant_client.conversions.conversion import RestToGrpc
from qdrant_client.grpc import (
    collections_service_pb2_grpc,
    points_service_pb2_grpc,
    qdrant_pb2_grpc,
    snapshots_service_pb2_grpc,
)
from qdrant_client.http import models

from lab.qdrant_double import dataplane, grpc_convert, grpc_storage_read, snapshots, standalone
from lab.qdrant_double.access import Access, Authenticator
from lab.qdrant_double.audit import AuditLog
from lab.qdrant_double.config import TITLE, DoubleConfig
from lab.qdrant_double.errors import BadRequest
from lab.qdrant_double.grpc_auth import _AuthInterceptor, _rpc
from lab.qdrant_double.grpc_points import _PointsService
from lab.qdrant_double.store import Store


class _QdrantService(qdrant_pb2_grpc.QdrantServicer):
    def __init__(self, version: str) -> None:
        self._version = version

    def HealthCheck(self, request: Any, context: Any) -> Any:
        return qgrpc.HealthCheckReply(title=TITLE, version=self._version, commit="")


def _aliases_response(response: models.CollectionsAliasesResponse) -> Any:
    return qgrpc.ListAliasesResponse(
        aliases=[RestToGrpc.convert_alias_description(alias) for alias in response.aliases]
    )


def _shard_key_update(request: Any) -> bool:
    if not request.HasField("request"):
        raise BadRequest("empty request")
    return standalone.update_collection_cluster()


class _CollectionsService(collections_service_pb2_grpc.CollectionsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc
    def List(self, request: Any, access: Access) -> Any:
        response = dataplane.list_collections(self._store, access)
        return qgrpc.ListCollectionsResponse(
            collections=[
                RestToGrpc.convert_collection_description(collection)
                for collection in response.collections
            ]
        )

    @_rpc
    def Get(self, request: Any, access: Access) -> Any:
        info = models.CollectionInfo.model_validate(self._store.info(request.collection_name))
        return qgrpc.GetCollectionInfoResponse(result=RestToGrpc.convert_collection_info(info))

    @_rpc
    def CollectionExists(self, request: Any, access: Access) -> Any:
        exists = self._store.exists(request.collection_name)
        return qgrpc.CollectionExistsResponse(result=qgrpc.CollectionExists(exists=exists))

    @_rpc
    def Create(self, request: Any, access: Access) -> Any:
        config = grpc_convert.create_collection(request)
        created = self._store.create_collection(request.collection_name, config)
        return qgrpc.CollectionOperationResponse(result=created)

    @_rpc
    def Delete(self, request: Any, access: Access) -> Any:
        deleted = self._store.delete(request.collection_name)
        return qgrpc.CollectionOperationResponse(result=deleted)

    @_rpc
    def UpdateAliases(self, request: Any, access: Access) -> Any:
        changed = dataplane.change_aliases(self._store, grpc_convert.change_aliases(request))
        return qgrpc.CollectionOperationResponse(result=changed)

    @_rpc
    def ListAliases(self, request: Any, access: Access) -> Any:
        return _aliases_response(dataplane.aliases(self._store, access))

    @_rpc
    def ListCollectionAliases(self, request: Any, access: Access) -> Any:
        return _aliases_response(dataplane.aliases(self._store, access, request.collection_name))

    @_rpc
    def CollectionClusterInfo(self, request: Any, access: Access) -> Any:
        info = standalone.collection_cluster_info(self._store, request.collection_name)
        return RestToGrpc.convert_collection_cluster_info(info)

    @_rpc
    def UpdateCollectionClusterSetup(self, request: Any, access: Access) -> Any:
        return qgrpc.UpdateCollectionClusterSetupResponse(
            result=standalone.update_collection_cluster()
        )

    @_rpc
    def ListShardKeys(self, request: Any, access: Access) -> Any:
        standalone.shard_keys(self._store, request.collection_name)
        return qgrpc.ListShardKeysResponse()

    @_rpc
    def CreateShardKey(self, request: Any, access: Access) -> Any:
        return qgrpc.CreateShardKeyResponse(result=_shard_key_update(request))

    @_rpc
    def DeleteShardKey(self, request: Any, access: Access) -> Any:
        return qgrpc.DeleteShardKeyResponse(result=_shard_key_update(request))


def _snapshot_list(descriptions: list[models.SnapshotDescription]) -> Any:
    return qgrpc.ListSnapshotsResponse(
        snapshot_descriptions=[RestToGrpc.convert_snapshot_description(s) for s in descriptions]
    )


def _snapshot_created(description: models.SnapshotDescription) -> Any:
    return qgrpc.CreateSnapshotResponse(
        snapshot_description=RestToGrpc.convert_snapshot_description(description)
    )


class _SnapshotsService(snapshots_service_pb2_grpc.SnapshotsServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    @_rpc
    def List(self, request: Any, access: Access) -> Any:
        return _snapshot_list(snapshots.listed(self._store, request.collection_name))

    @_rpc
    def Create(self, request: Any, access: Access) -> Any:
        return _snapshot_created(snapshots.taken(self._store, request.collection_name))

    @_rpc
    def Delete(self, request: Any, access: Access) -> Any:
        snapshots.deleted(self._store, request.collection_name, request.snapshot_name)
        return qgrpc.DeleteSnapshotResponse()

    @_rpc
    def CreateFull(self, request: Any, access: Access) -> Any:
        return _snapshot_created(snapshots.taken_full(self._store))

    @_rpc
    def ListFull(self, request: Any, access: Access) -> Any:
        return _snapshot_list(snapshots.listed_full(self._store))

    @_rpc
    def DeleteFull(self, request: Any, access: Access) -> Any:
        snapshots.deleted_full(self._store, request.snapshot_name)
        return qgrpc.DeleteSnapshotResponse()


def _standard_health_handler() -> Any:
    # grpc.health.v1.HealthCheckResponse{status: SERVING}, encoded by hand: no stubs installed.
    serving = b"\x08\x01"
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(lambda request, context: serving)},
    )


class _StorageReadHandler(grpc.GenericRpcHandler):
    """Any ``qdrant.StorageRead/*`` method: its request read for the collection it names, so that
    the interceptor judges it, then an empty message (the double has no shard files to serve)."""

    def service(self, details: Any) -> Any:
        if not details.method.startswith("/qdrant.StorageRead/"):
            return None
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: b"",
            request_deserializer=grpc_storage_read.CollectionScopedRequest.FromString,
        )


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _build_grpc_server(
    config: DoubleConfig,
    store: Store,
    auth: Authenticator,
    audit: AuditLog,
    executor: ThreadPoolExecutor,
) -> tuple[Any, int]:
    server = grpc.server(
        executor,
        interceptors=[_AuthInterceptor(auth, audit)],
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
