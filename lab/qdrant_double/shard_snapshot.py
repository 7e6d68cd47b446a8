"""A shard's snapshot in the format Qdrant's server writes (lib/collection/src/shards/local_shard/
snapshot.rs, `LocalShard::create_snapshot` with `SnapshotFormat::Regular` and the WAL saved), the
format Qdrant Edge's own `EdgeShard.unpack_snapshot` and `update_from_snapshot` read back
(lib/shard/src/snapshots/snapshot_utils.rs, `SnapshotUtils::unpack_snapshot`):

- `segments/<segment id>.tar`, one archive per segment, holding its files under `snapshot/files/`
  (lib/segment/src/segment/snapshot.rs, `take_snapshot`, `snapshot_files`): the files the
  segment's manifest lists (what its storages and indexes call their `files()`), then its
  `segment.json` and `version.info`;
- `wal/`, every file of the shard's WAL but the `.wal` lock sentinel (`snapshot_wal`).

A streamed shard snapshot is `SnapshotFormat::Streamable` (lib/collection/src/shards/shard_holder/
mod.rs, `stream_shard_snapshot`): each segment's files go straight into the archive under
`segments/<segment id>/`, without the inner archive, so it can be written as it is sent
(`Segment::take_snapshot`, lib/segment/src/segment/snapshot.rs).

Edge has no call that writes this (it reads a snapshot's manifest, unpacks and applies one), so
the double writes it from the shard's directory, after a flush, with the shard's lock held: the
server flushes every segment first too (`proxy_all_segments_and_apply`), but keeps accepting
writes through proxy segments meanwhile, where the double holds them back until the archive is
written.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SEGMENTS_DIR = "segments"
WAL_DIR = "wal"
FILES_DIR = "files"
SEGMENT_FILES_DIR = os.path.join("snapshot", FILES_DIR)
SEGMENT_STATE_FILES = ("segment.json", "version.info")
WAL_LOCK_SENTINEL = ".wal"


def _segment_files(segment: Mapping[str, Any]) -> list[str]:
    return sorted(segment["file_versions"]) + list(SEGMENT_STATE_FILES)


def _add_segment(
    archive: tarfile.TarFile, shard: Path, segment: Mapping[str, Any], prefix: str, scratch: str
) -> None:
    segment_id = segment["segment_id"]
    directory = shard / SEGMENTS_DIR / segment_id
    inner_path = os.path.join(scratch, f"{segment_id}.tar")
    with tarfile.open(inner_path, "w", format=tarfile.GNU_FORMAT) as inner:
        for name in _segment_files(segment):
            inner.add(directory / name, arcname=os.path.join(SEGMENT_FILES_DIR, name))
    archive.add(inner_path, arcname=f"{prefix}{SEGMENTS_DIR}/{segment_id}.tar")
    os.remove(inner_path)


def _add_streamable_segment(
    archive: tarfile.TarFile, shard: Path, segment: Mapping[str, Any], prefix: str
) -> None:
    segment_id = segment["segment_id"]
    directory = shard / SEGMENTS_DIR / segment_id
    for name in _segment_files(segment):
        arcname = f"{prefix}{SEGMENTS_DIR}/{segment_id}/{FILES_DIR}/{name}"
        archive.add(directory / name, arcname=arcname)


def write_shard(
    archive: tarfile.TarFile,
    shard: Path,
    manifest: Mapping[str, Any],
    scratch: Path,
    prefix: str = "",
    streamable: bool = False,
) -> None:
    """The shard in ``shard`` (flushed; ``manifest`` is Edge's `snapshot_manifest()` of it) into
    ``archive``, under ``prefix`` (a collection snapshot's `0/`); each segment's archive is
    built in ``scratch`` first, or, ``streamable``, its files added as they are."""
    for segment in manifest.values():
        if streamable:
            _add_streamable_segment(archive, shard, segment, prefix)
        else:
            _add_segment(archive, shard, segment, prefix, str(scratch))
    wal = shard / WAL_DIR
    for name in sorted(os.listdir(wal)):
        if name != WAL_LOCK_SENTINEL:
            archive.add(wal / name, arcname=f"{prefix}{WAL_DIR}/{name}")
