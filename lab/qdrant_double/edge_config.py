"""A REST collection config (qdrant-client's `CreateCollection`) as Qdrant Edge's `EdgeConfig`,
and the collection's REST `CollectionInfo` from that config and Edge's `ShardInfo`.

Edge takes the parts that shape the data (vectors, sparse vectors, payload storage); the server's
tuning of its own indexes and optimizers is kept in the config and answered back, as the server
answers it, with its defaults where the request left them out (lib/collection/src/config.rs).
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

HIDDEN_SPARSE = "secure-qdrant-vectorless"
"""The sparse vector a collection without vectors gets, since Edge wants at least one."""

_DISTANCES = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}
_DATATYPES = {
    models.Datatype.FLOAT32: edge.VectorStorageDatatype.Float32,
    models.Datatype.FLOAT16: edge.VectorStorageDatatype.Float16,
    models.Datatype.UINT8: edge.VectorStorageDatatype.Uint8,
}


def _datatype(rest: Any) -> edge.VectorStorageDatatype | None:
    return None if rest is None else _DATATYPES[rest]


def _dense(rest: models.VectorParams) -> edge.EdgeVectorParams:
    multivector = None
    if rest.multivector_config is not None:
        multivector = edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim)
    return edge.EdgeVectorParams(
        rest.size,
        _DISTANCES[rest.distance],
        on_disk=rest.on_disk,
        multivector_config=multivector,
        datatype=_datatype(rest.datatype),
    )


def _sparse(rest: models.SparseVectorParams) -> edge.EdgeSparseVectorParams:
    modifier = None
    if rest.modifier is not None:
        modifier = edge.Modifier.Idf
        if rest.modifier != models.Modifier.IDF:
            modifier = getattr(edge.Modifier, "None")  # a Python keyword as an attribute
    return edge.EdgeSparseVectorParams(modifier=modifier)


def edge_config(rest: models.CreateCollection) -> edge.EdgeConfig:
    vectors: dict[str, edge.EdgeVectorParams] = {}
    if isinstance(rest.vectors, models.VectorParams):
        vectors[""] = _dense(rest.vectors)
    elif rest.vectors:
        vectors = {name: _dense(params) for name, params in rest.vectors.items()}
    sparse = {name: _sparse(params) for name, params in (rest.sparse_vectors or {}).items()}
    if not vectors and not sparse:
        sparse[HIDDEN_SPARSE] = edge.EdgeSparseVectorParams()
    return edge.EdgeConfig(
        vectors=vectors, sparse_vectors=sparse, on_disk_payload=rest.on_disk_payload
    )


_SCHEMA_TYPES = {
    "Keyword": models.PayloadSchemaType.KEYWORD,
    "Integer": models.PayloadSchemaType.INTEGER,
    "Float": models.PayloadSchemaType.FLOAT,
    "Geo": models.PayloadSchemaType.GEO,
    "Text": models.PayloadSchemaType.TEXT,
    "Bool": models.PayloadSchemaType.BOOL,
    "Datetime": models.PayloadSchemaType.DATETIME,
    "Uuid": models.PayloadSchemaType.UUID,
}


def _payload_schema(found: edge.ShardInfo) -> dict[str, models.PayloadIndexInfo]:
    return {
        key: models.PayloadIndexInfo(
            data_type=_SCHEMA_TYPES[str(index.data_type).rsplit(".", 1)[-1]], points=index.points
        )
        for key, index in found.payload_schema.items()
    }


def collection_info(rest: models.CreateCollection, found: edge.ShardInfo) -> models.CollectionInfo:
    return models.CollectionInfo(
        status=models.CollectionStatus.GREEN,
        optimizer_status=models.OptimizersStatusOneOf.OK,
        indexed_vectors_count=found.indexed_vectors_count,
        points_count=found.points_count,
        segments_count=found.segments_count,
        payload_schema=_payload_schema(found),
        config=models.CollectionConfig(
            params=models.CollectionParams(
                vectors=rest.vectors if rest.vectors is not None else {},
                shard_number=rest.shard_number or 1,
                replication_factor=rest.replication_factor or 1,
                write_consistency_factor=rest.write_consistency_factor or 1,
                on_disk_payload=True if rest.on_disk_payload is None else rest.on_disk_payload,
                sparse_vectors=rest.sparse_vectors,
            ),
            hnsw_config=models.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            wal_config=models.WalConfig(wal_capacity_mb=32, wal_segments_ahead=0),
            optimizer_config=models.OptimizersConfig(
                deleted_threshold=0.2,
                vacuum_min_vector_number=1000,
                default_segment_number=0,
                indexing_threshold=10000,
                flush_interval_sec=5,
            ),
            metadata=rest.metadata,
        ),
    )
