"""The double's engine: qdrant-client's local mode, kept under Qdrant's storage path.

REST, gRPC and the JWT `value_exists` check all reach the data through one Store. Local mode is not
thread-safe and locks its directory against other instances, so every call is serialized here and
close() releases the directory: a double restarted on the same storage path finds its data again.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar

from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_client.http import models

from lab.qdrant_double.errors import BadRequest, Conflict, NotFound, Unsupported
from lab.qdrant_double.values import Pairs, Record

LOCAL_MODE_DIR = "qdrant-client-local"
"""Local mode's own files, inside the storage path but apart from anything in Qdrant's format."""

T = TypeVar("T")


class Store:
    """Collections and points, persisted under ``storage_path`` (a temporary directory, removed
    by close(), when None). Thread-safe."""

    def __init__(self, storage_path: Optional[str] = None) -> None:
        self._temporary: Optional[tempfile.TemporaryDirectory[str]] = None
        if storage_path is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="qdrant-double-")
            storage_path = self._temporary.name
        self._lock = threading.Lock()
        try:
            # The lock above serializes every call, which is what local mode needs across threads.
            self._client = QdrantClient(
                path=os.path.join(storage_path, LOCAL_MODE_DIR),
                force_disable_check_same_thread=True,
            )
        except BaseException:
            self._remove_temporary()
            raise

    def close(self) -> None:
        with self._lock:
            self._client.close()
        self._remove_temporary()

    def run(self, operation: Callable[[QdrantClient], T], collection: Optional[str] = None) -> T:
        """``operation`` on the engine, alone; errors answered as Qdrant answers them. With a
        ``collection``, a missing one is Qdrant's 404 rather than local mode's ValueError."""
        with self._lock:
            if collection is not None and not self._client.collection_exists(collection):
                raise NotFound(f"Not found: Collection `{collection}` doesn't exist!")
            try:
                return operation(self._client)
            except ValueError as error:  # pydantic's ValidationError included
                raise BadRequest(f"Bad request: {error}") from None
            except KeyError as error:  # local mode names the first missing point of a write
                raise NotFound(f"Not found: No point with id {error.args[0]} found") from None
            except NotImplementedError as error:
                raise Unsupported(f"Not served by the Qdrant test double: {error}") from None

    def names(self) -> list[str]:
        response = self.run(lambda client: client.get_collections())
        return sorted(collection.name for collection in response.collections)

    def exists(self, name: str) -> bool:
        return self.run(lambda client: client.collection_exists(name))

    def create(self, name: str, vectors: Any = None) -> bool:
        """A collection with a REST `vectors` config (or none); for seeding."""
        try:
            config = models.CreateCollection.model_validate({"vectors": vectors})
        except ValidationError as error:
            raise BadRequest(f"Invalid vectors config: {error}") from None
        return self.create_collection(name, config)

    def create_collection(self, name: str, config: models.CreateCollection) -> bool:
        def create(client: QdrantClient) -> bool:
            if client.collection_exists(name):
                raise Conflict(f"Wrong input: Collection `{name}` already exists!")
            # Local mode keeps vectors, sparse vectors and metadata; the rest tunes Qdrant's
            # indexes and storage, which local mode (exact search, SQLite) has none of.
            return client.create_collection(
                name,
                vectors_config=config.vectors,
                sparse_vectors_config=config.sparse_vectors,
                metadata=config.metadata,
            )

        return self.run(create)

    def delete(self, name: str) -> bool:
        return self.run(lambda client: client.delete_collection(name))

    def info(self, name: str) -> dict[str, Any]:
        """The collection's REST CollectionInfo, as JSON."""
        info = self.run(lambda client: client.get_collection(name), name)
        return info.model_dump(mode="json", exclude_none=True)

    def upsert(self, name: str, records: Sequence[Record]) -> None:
        """Points without vectors, for seeding payloads (such as `value_exists` allow lists)."""
        points = [models.PointStruct(id=pid, vector={}, payload=data) for pid, data in records]
        self.run(lambda client: client.upsert(name, points), name)

    def has_matching_point(self, name: str, pairs: Pairs) -> bool:
        """Qdrant's `value_exists` lookup: a point whose payload matches every (key, value)."""
        conditions: list[Any] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in pairs
        ]
        count_filter = models.Filter(must=conditions)
        found = self.run(lambda client: client.count(name, count_filter=count_filter), name)
        return found.count > 0

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
