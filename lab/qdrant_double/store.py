"""The double's engine: Qdrant Edge (`qdrant-edge-py`), one `EdgeShard` per collection, laid out
under the storage path as Qdrant lays out its own: `collections/<name>/config.json` and the shard
(`wal/`, `segments/`) in `collections/<name>/0`, aliases in `aliases/data.json`.

Edge is Qdrant's segment, WAL and index code in process: a write is in its WAL before the call
returns, as on the server. What the server keeps above its shards, Edge has none of, and the
double keeps it here the server's way:
- the collection registry and its config (lib/collection/src/config.rs, `CollectionConfig`);
- aliases (lib/storage/src/content_manager/alias_mapping.rs), and names resolved through them
  (lib/storage/src/content_manager/toc/mod.rs, `resolve_name`);
- a collection without vectors: Edge wants at least one, so it gets a sparse vector no point
  ever has (`HIDDEN_SPARSE`), which info and answers never show;
- the flush worker, which syncs every shard's WAL and segments to disk (`FLUSH_INTERVAL_SECONDS`).
Every call is serialized, as the JWT `value_exists` check, REST and gRPC share one Store.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as edge
from pydantic import ValidationError
from qdrant_client.http import models

from lab.qdrant_double.edge_config import collection_info, edge_config
from lab.qdrant_double.errors import BadRequest, Conflict, DoubleError, NotFound
from lab.qdrant_double.values import Pairs, Record

COLLECTIONS_DIR = "collections"
SHARD_ID = 0
"""The one shard of a collection created with Qdrant's default `shard_number` on one node."""
SHARD_DIR = str(SHARD_ID)
CONFIG_FILE = "config.json"
ALIASES_FILE = os.path.join("aliases", "data.json")
FLUSH_INTERVAL_SECONDS = 5.0
"""Qdrant's default `flush_interval_sec` (config/config.yaml, `storage.optimizers`): how long its
update handler's flush worker sleeps before each sync of a shard's WAL and segments to disk
(lib/collection/src/update_handler.rs, `flush_worker`). Edge leaves flushing to its caller;
between flushes, acknowledged writes are in the page cache only."""
SNAPSHOTS_DIR = "snapshots"
"""Where snapshots are kept when no snapshots path is given (Qdrant's `storage.snapshots_path`,
`./snapshots` beside `./storage` by default)."""
LOCK_FILE = ".qdrant-double.lock"
"""Held while a double serves the storage: two engines writing one shard would corrupt it."""

T = TypeVar("T")

_MISSING_POINT = re.compile(r"No point with id (\S+?)(?: found)?$")


@dataclass
class Collection:
    name: str
    config: models.CreateCollection
    shard: edge.EdgeShard
    path: Path
    """The shard's directory."""
    flushed: Callable[[], None]
    operations: int = 0

    def apply(self, operation: edge.UpdateOperation) -> models.UpdateResult:
        self.shard.update(operation)
        self.operations += 1
        return models.UpdateResult(
            operation_id=self.operations, status=models.UpdateStatus.COMPLETED
        )

    def flush(self) -> None:
        self.shard.flush()
        self.flushed()


def _engine_error(error: Exception) -> DoubleError:
    """Edge's error as the server words it (lib/storage/src/content_manager/errors.rs)."""
    missing = _MISSING_POINT.search(str(error))
    if missing is not None:
        return NotFound(f"Not found: No point with id {missing.group(1)} found")
    return BadRequest(f"Wrong input: {error}")


def _write_atomically(path: Path, text: str) -> None:
    """Whole or not at all, as the server writes its config files: a crash-consistent copy of the
    volume (a snapshot, a power cut) never holds half a file the next start cannot read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w") as written:
        written.write(text)
        written.flush()
        os.fsync(written.fileno())
    os.replace(partial, path)


def _hold(lock: Any, storage_path: str) -> None:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RuntimeError(
            f"Storage folder {storage_path} is already accessed by another Qdrant double"
        ) from None


class Store:
    """Collections and points, persisted under ``storage_path`` (a temporary directory, removed
    by close(), when None). Thread-safe."""

    def __init__(
        self,
        storage_path: str | None = None,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        snapshots_path: str | None = None,
    ) -> None:
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if storage_path is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="qdrant-double-")
            storage_path = self._temporary.name
        self._root = Path(storage_path)
        self.snapshots_path = (
            Path(snapshots_path) if snapshots_path is not None else self._root / SNAPSHOTS_DIR
        )
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self.peer_id = secrets.randbits(63) or 1
        """This node's id, drawn as Qdrant draws it on its first start; Qdrant keeps it in
        `raft_state.json`, the double draws it again at each start."""
        self.flushes = 0
        self._stopping = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_every,
            args=(flush_interval,),
            name="qdrant-double-flush",
            daemon=True,
        )
        self._root.mkdir(parents=True, exist_ok=True)
        self._held = open(self._root / LOCK_FILE, "a")
        try:
            _hold(self._held, storage_path)
            self._aliases: dict[str, str] = self._read_aliases()
            for directory in sorted((self._root / COLLECTIONS_DIR).glob(f"*/{CONFIG_FILE}")):
                self._open(directory.parent)
            self._flusher.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stopping.set()
        if self._flusher.is_alive():
            self._flusher.join()
        with self._lock:
            for collection in self._collections.values():
                collection.shard.close()
            self._collections.clear()
        self._held.close()
        if self._temporary is not None:
            self._temporary.cleanup()

    def _flush_every(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            with self._lock:
                for collection in self._collections.values():
                    collection.flush()

    def _count_flush(self) -> None:
        self.flushes += 1

    def _collection_of(
        self, name: str, config: models.CreateCollection, shard: edge.EdgeShard
    ) -> Collection:
        path = self._root / COLLECTIONS_DIR / name / SHARD_DIR
        return Collection(name, config, shard, path, self._count_flush)

    def _open(self, directory: Path) -> None:
        config = models.CreateCollection.model_validate_json((directory / CONFIG_FILE).read_text())
        shard = edge.EdgeShard.load(str(directory / SHARD_DIR))
        self._collections[directory.name] = self._collection_of(directory.name, config, shard)

    def _read_aliases(self) -> dict[str, str]:
        path = self._root / ALIASES_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_aliases(self) -> None:
        _write_atomically(self._root / ALIASES_FILE, json.dumps(self._aliases, sort_keys=True))

    def _collection(self, name: str) -> Collection:
        found = self._collections.get(self._aliases.get(name, name))
        if found is None:
            raise NotFound(f"Not found: Collection `{name}` doesn't exist!")
        return found

    def run(self, name: str, operation: Callable[[Collection], T]) -> T:
        """``operation`` on a collection (or an alias of one), alone; a missing one is Qdrant's
        404, Edge's errors answered as the server answers them."""
        with self._lock:
            collection = self._collection(name)
            try:
                return operation(collection)
            except DoubleError:
                raise
            except (ValueError, TypeError) as error:
                raise BadRequest(f"Bad request: {error}") from None
            except Exception as error:  # Edge raises its OperationError as a bare Exception
                raise _engine_error(error) from None

    def peer(self, name: str) -> Collection:
        """Another collection, for an operation already running alone in run() (a query's
        `lookup_from`)."""
        assert self._lock.locked()
        return self._collection(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def exists(self, name: str) -> bool:
        with self._lock:
            return self._aliases.get(name, name) in self._collections

    def create(self, name: str, vectors: Any = None) -> bool:
        """A collection with a REST `vectors` config (or none); for seeding."""
        try:
            config = models.CreateCollection.model_validate({"vectors": vectors})
        except ValidationError as error:
            raise BadRequest(f"Invalid vectors config: {error}") from None
        return self.create_collection(name, config)

    def create_collection(self, name: str, config: models.CreateCollection) -> bool:
        with self._lock:
            if name in self._collections or name in self._aliases:
                raise Conflict(f"Wrong input: Collection `{name}` already exists!")
            directory = self._root / COLLECTIONS_DIR / name
            # A directory without its config is a creation a crash cut short: never served.
            shutil.rmtree(directory, ignore_errors=True)
            try:
                shard = edge.EdgeShard.create(str(directory / SHARD_DIR), edge_config(config))
            except Exception as error:  # Edge's config checks
                shutil.rmtree(directory, ignore_errors=True)
                raise BadRequest(f"Wrong input: {error}") from None
            _write_atomically(directory / CONFIG_FILE, config.model_dump_json(exclude_none=True))
            self._collections[name] = self._collection_of(name, config, shard)
            return True

    def delete(self, name: str) -> bool:
        """Qdrant drops the collection's aliases with it."""
        with self._lock:
            collection = self._collections.pop(name, None)
            if collection is None:
                return False
            collection.shard.close()
            shutil.rmtree(self._root / COLLECTIONS_DIR / name)
            self._aliases = {alias: to for alias, to in self._aliases.items() if to != name}
            self._write_aliases()
            return True

    def info(self, name: str) -> dict[str, Any]:
        """The collection's REST CollectionInfo, as JSON."""
        info = self.run(name, lambda found: collection_info(found.config, found.shard.info()))
        return info.model_dump(mode="json", exclude_none=True)

    def upsert(self, name: str, records: Sequence[Record]) -> None:
        """Points without vectors, for seeding payloads (such as `value_exists` allow lists)."""
        points = [edge.Point(pid, {}, data) for pid, data in records]
        self.run(name, lambda found: found.apply(edge.UpdateOperation.upsert_points(points)))

    def has_matching_point(self, name: str, pairs: Pairs) -> bool:
        """Qdrant's `value_exists` lookup: a point whose payload matches every (key, value)."""
        conditions: list[Any] = [
            edge.FieldCondition(key, match=edge.MatchValue(value)) for key, value in pairs
        ]
        request = edge.CountRequest(exact=True, filter=edge.Filter(must=conditions))
        return self.run(name, lambda found: found.shard.count(request)) > 0

    def aliases(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._aliases.items())

    def change_aliases(self, actions: Sequence[Any]) -> bool:
        """Qdrant's alias actions, all or none (lib/storage/src/content_manager/toc/collection_meta_ops.rs)."""
        with self._lock:
            changed = dict(self._aliases)
            for action in actions:
                _apply_alias_action(changed, self._collections, action)
            self._aliases = changed
            self._write_aliases()
            return True


def _apply_alias_action(aliases: dict[str, str], collections: Any, action: Any) -> None:
    if isinstance(action, models.CreateAliasOperation):
        create = action.create_alias
        if create.collection_name not in collections:
            raise NotFound(f"Not found: Collection `{create.collection_name}` doesn't exist!")
        if create.alias_name in collections:
            raise BadRequest(f"Wrong input: Collection `{create.alias_name}` already exists!")
        aliases[create.alias_name] = create.collection_name
    elif isinstance(action, models.DeleteAliasOperation):
        if aliases.pop(action.delete_alias.alias_name, None) is None:
            raise NotFound(f"Not found: Alias {action.delete_alias.alias_name} does not exists!")
    else:
        rename = action.rename_alias
        if rename.old_alias_name not in aliases:
            raise NotFound(f"Not found: Alias {rename.old_alias_name} does not exists!")
        aliases[rename.new_alias_name] = aliases.pop(rename.old_alias_name)
