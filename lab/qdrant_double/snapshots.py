"""Qdrant's snapshot endpoints, over a snapshots directory kept as Qdrant keeps its own
(snapshot_files.py): `<collection>/` for a collection's snapshots, `<collection>/shards/<id>/` for
a shard's (lib/collection/src/collection/snapshots.rs, `shard_snapshot_manager`), full snapshots
at the top.

For a caller the access check allowed:
- a listing is the directory's snapshots, once the collection is found (src/common/collections.rs,
  `do_list_snapshots`; lib/storage/src/content_manager/snapshots/mod.rs,
  `do_list_full_snapshots`);
- a download or a deletion of a snapshot that is not there is Qdrant's 404, the collection checked
  first (lib/storage/src/content_manager/snapshots/mod.rs, `do_delete_collection_snapshot`;
  src/actix/api/snapshot_api.rs, `get_snapshot`; the snapshot manager's `get_snapshot_path`);
- a shard's snapshots likewise, for the collection's one shard; another shard id is Qdrant's
  404 for a shard the collection lacks (lib/collection/src/shards/shard_holder/mod.rs,
  `shard_not_found_error`; src/common/snapshots.rs);
- taking a collection or shard snapshot flushes the shard and archives it in the format Qdrant
  Edge reads back (shard_snapshot.py), named as Qdrant names it: `{collection}-{peer id}-{time}`
  for a collection (lib/collection/src/collection/snapshots.rs, `create_temp_snapshot`),
  `{collection}-shard-{shard id}-{time}` for a shard (lib/collection/src/shards/shard_holder/
  mod.rs, `create_shard_snapshot`); a collection's snapshot holds its shard under `0/` and the
  collection's config in `config.json`;
- streaming a shard snapshot takes one in Qdrant's streamable format for the response alone,
  named as a shard snapshot, and keeps no file (src/actix/api/snapshot_api.rs,
  `stream_shard_snapshot`; lib/collection/src/shards/shard_holder/mod.rs);
- taking a full snapshot takes a snapshot of each collection, kept in its directory, then
  archives them with a `config.json` mapping each collection to its snapshot and each alias to
  its collection, named `full-snapshot-{time}` (lib/storage/src/content_manager/snapshots/mod.rs,
  `_do_create_full_snapshot`);
- recovering one is snapshot_recovery.py's.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qdrant_client.http import models

from lab.qdrant_double import shard_snapshot, snapshot_files
from lab.qdrant_double.edge_config import collection_info
from lab.qdrant_double.errors import NotFound, ServiceError
from lab.qdrant_double.store import SHARD_DIR, SHARD_ID, Collection, Store

SHARDS_DIR = "shards"
COLLECTION_CONFIG_FILE = "config.json"
"""A collection snapshot's collection config, and a full snapshot's mapping of its collections."""
FULL_SNAPSHOT_NAME = "full-snapshot"


@dataclass(frozen=True)
class Download:
    """A snapshot file, answered as its bytes (actix's `NamedFile`)."""

    path: Path


@dataclass(frozen=True)
class Stream:
    """A shard snapshot taken for one response, sent as a stream under ``name`` and not kept
    (lib/collection/src/common/snapshot_stream.rs, `SnapshotStream::new_stream`)."""

    path: Path
    """Its archive, which the response removes once it has opened it."""
    name: str


def _name(store: Store, collection: str) -> str:
    """The collection's own name, when ``collection`` is an alias of it."""
    return store.run(collection, lambda found: found.name)


def _directory(store: Store, collection: str) -> Path:
    return store.snapshots_path / _name(store, collection)


def shard_directory(store: Store, collection: str, shard: str) -> Path:
    directory = _directory(store, collection)
    if shard != str(SHARD_ID):
        raise NotFound(f"Not found: shard {shard} not found")
    return directory / SHARDS_DIR / shard


def listed(store: Store, collection: str) -> list[models.SnapshotDescription]:
    return snapshot_files.listed(_directory(store, collection))


def listed_full(store: Store) -> list[models.SnapshotDescription]:
    return snapshot_files.listed(store.snapshots_path)


def listed_in_shard(store: Store, collection: str, shard: str) -> list[models.SnapshotDescription]:
    return snapshot_files.listed(shard_directory(store, collection, shard))


def downloaded(store: Store, collection: str, snapshot: str) -> Download:
    return Download(snapshot_files.found(_directory(store, collection), snapshot))


def deleted(store: Store, collection: str, snapshot: str) -> bool:
    return snapshot_files.delete(_directory(store, collection), snapshot)


def downloaded_full(store: Store, snapshot: str) -> Download:
    return Download(snapshot_files.found(store.snapshots_path, snapshot))


def deleted_full(store: Store, snapshot: str) -> bool:
    return snapshot_files.delete(store.snapshots_path, snapshot)


def downloaded_from_shard(store: Store, collection: str, shard: str, snapshot: str) -> Download:
    return Download(snapshot_files.found(shard_directory(store, collection, shard), snapshot))


def deleted_from_shard(store: Store, collection: str, shard: str, snapshot: str) -> bool:
    return snapshot_files.delete(shard_directory(store, collection, shard), snapshot)


@contextlib.contextmanager
def scratch(store: Store) -> Iterator[Path]:
    """A directory for a recovery's intermediate files, beside the snapshots (Qdrant's
    `snapshots_download_tempdir`), removed after it."""
    store.snapshots_path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".recovery-", dir=store.snapshots_path) as directory:
        yield Path(directory)


def _stamp() -> str:
    return snapshot_files.timestamp(datetime.datetime.now(datetime.UTC))


def _saved(directory: Path, name: str, write: snapshot_files.Writer) -> models.SnapshotDescription:
    try:
        return snapshot_files.save(directory, name, write)
    except OSError as error:
        raise ServiceError(f"Failed to create snapshot: {error}") from None


def _taken(
    store: Store,
    collection: str,
    directory: Callable[[Collection], Path],
    name: Callable[[Collection], str],
    write: Callable[[Collection, tarfile.TarFile, Path], None],
) -> models.SnapshotDescription:
    """A snapshot of the collection's shard, flushed first, taken with its lock held."""

    def take(found: Collection) -> models.SnapshotDescription:
        found.flush()
        return _saved(
            directory(found), name(found), lambda archive, scratch: write(found, archive, scratch)
        )

    return store.run(collection, take)


def _write_shard(
    found: Collection,
    archive: tarfile.TarFile,
    scratch: Path,
    prefix: str,
    streamable: bool = False,
) -> None:
    manifest = found.shard.snapshot_manifest()
    shard_snapshot.write_shard(archive, found.path, manifest, scratch, prefix, streamable)


def _write_collection(found: Collection, archive: tarfile.TarFile, scratch: Path) -> None:
    _write_shard(found, archive, scratch, f"{SHARD_DIR}/")
    config = collection_info(found.config, found.shard.info()).config
    config_path = scratch / COLLECTION_CONFIG_FILE
    config_path.write_text(json.dumps(config.model_dump(mode="json", exclude_none=True)))
    archive.add(config_path, arcname=COLLECTION_CONFIG_FILE)


def taken(store: Store, collection: str) -> models.SnapshotDescription:
    return _taken(
        store,
        collection,
        lambda found: store.snapshots_path / found.name,
        lambda found: f"{found.name}-{store.peer_id}-{_stamp()}{snapshot_files.SUFFIX}",
        _write_collection,
    )


def taken_of_shard(store: Store, collection: str, shard: str) -> models.SnapshotDescription:
    shard_directory(store, collection, shard)
    return _taken(
        store,
        collection,
        lambda found: store.snapshots_path / found.name / SHARDS_DIR / shard,
        lambda found: f"{found.name}-shard-{shard}-{_stamp()}{snapshot_files.SUFFIX}",
        lambda found, archive, scratch: _write_shard(found, archive, scratch, ""),
    )


def streamed_from_shard(store: Store, collection: str, shard: str) -> Stream:
    """A shard snapshot in Qdrant's streamable format, written beside the snapshots (the server's
    snapshot temp path) for the response to send: the server writes it as it sends it, keeping
    no file (lib/collection/src/shards/shard_holder/mod.rs, `stream_shard_snapshot`)."""
    shard_directory(store, collection, shard)
    store.snapshots_path.mkdir(parents=True, exist_ok=True)

    def take(found: Collection) -> Stream:
        found.flush()
        name = f"{found.name}-shard-{shard}-{_stamp()}{snapshot_files.SUFFIX}"
        with tempfile.NamedTemporaryFile(
            prefix=f".{name}-", suffix=".tar", dir=store.snapshots_path, delete=False
        ) as file:
            path = Path(file.name)
        with contextlib.ExitStack() as undo:  # unwound only if the archive is not written
            undo.callback(path.unlink, missing_ok=True)
            try:
                with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
                    _write_shard(found, archive, store.snapshots_path, "", streamable=True)
            except OSError as error:
                raise ServiceError(f"Failed to create snapshot: {error}") from None
            undo.pop_all()
        return Stream(path, name)

    return store.run(collection, take)


def taken_full(store: Store) -> models.SnapshotDescription:
    collections = {name: taken(store, name).name for name in store.names()}
    config = {"collections_mapping": collections, "collections_aliases": dict(store.aliases())}

    def write(archive: tarfile.TarFile, scratch: Path) -> None:
        for collection, snapshot in collections.items():
            archive.add(store.snapshots_path / collection / snapshot, arcname=snapshot)
        config_path = scratch / COLLECTION_CONFIG_FILE
        config_path.write_text(json.dumps(config, indent=2))
        archive.add(config_path, arcname=COLLECTION_CONFIG_FILE)

    name = f"{FULL_SNAPSHOT_NAME}-{_stamp()}{snapshot_files.SUFFIX}"
    return _saved(store.snapshots_path, name, write)
