"""Qdrant's snapshot endpoints on a node whose snapshots directory holds none, which is always the
double's: Qdrant Edge has no call that takes a snapshot of a shard (`EdgeShard` only reads a
snapshot's manifest and unpacks or applies one), and the server's collection snapshot (a tar of
every shard's segments and WAL with the collection config, lib/collection/src/collection/
snapshots.rs) is not something the double can build faithfully from outside Edge.

So, for a caller the access check allowed:
- a listing is empty, once the collection is found (src/common/collections.rs, `do_list_snapshots`;
  lib/storage/src/content_manager/snapshots/mod.rs, `do_list_full_snapshots`: the `*.snapshot`
  files of the snapshots directory, lib/collection/src/common/snapshots_manager.rs);
- a download or a deletion names a snapshot that is not there: Qdrant's 404 (NOT_FOUND), the
  collection checked first (lib/storage/src/content_manager/snapshots/mod.rs,
  `do_delete_collection_snapshot`, `do_delete_full_snapshot`; src/actix/api/snapshot_api.rs,
  `get_snapshot`, `get_full_snapshot`; the snapshot manager's `get_snapshot_path`);
- a shard's snapshots likewise, for the collection's one shard; another shard id is Qdrant's
  404 for a shard the collection lacks (lib/collection/src/shards/shard_holder/mod.rs,
  `shard_not_found_error`; src/common/snapshots.rs, `list_shard_snapshots`,
  `delete_shard_snapshot`, `check_shard_snapshot_file_exists`);
- taking or recovering a snapshot is not served: 501 (UNIMPLEMENTED), where Qdrant would write or
  read a snapshot file.
"""

from __future__ import annotations

from typing import NoReturn

from qdrant_client.http import models

from lab.qdrant_double.errors import NotFound, Unsupported
from lab.qdrant_double.store import SHARD_ID, Store


def _found(store: Store, collection: str) -> None:
    store.run(collection, lambda found: None)


def listed(store: Store, collection: str) -> list[models.SnapshotDescription]:
    _found(store, collection)
    return []


def listed_full() -> list[models.SnapshotDescription]:
    return []


def missing(snapshot: str) -> NoReturn:
    # The snapshot manager's `not_found(format!("Snapshot {snapshot_name}"))`, a NotFound whose
    # `{what} not found` the storage error prefixes with `Not found: `.
    raise NotFound(f"Not found: Snapshot {snapshot} not found")


def missing_in(store: Store, collection: str, snapshot: str) -> NoReturn:
    _found(store, collection)
    missing(snapshot)


def _shard_found(store: Store, collection: str, shard: str) -> None:
    _found(store, collection)
    if shard != str(SHARD_ID):
        raise NotFound(f"Not found: shard {shard} not found")


def listed_in_shard(store: Store, collection: str, shard: str) -> list[models.SnapshotDescription]:
    _shard_found(store, collection, shard)
    return []


def missing_in_shard(store: Store, collection: str, shard: str, snapshot: str) -> NoReturn:
    _shard_found(store, collection, shard)
    missing(snapshot)


def not_taken(store: Store, collection: str) -> NoReturn:
    _found(store, collection)
    raise Unsupported("Not served by the Qdrant test double: taking collection snapshots")
