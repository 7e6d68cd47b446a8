"""A directory of snapshots kept as Qdrant's snapshot manager keeps them
(lib/collection/src/common/snapshots_manager.rs; lib/collection/src/collection/snapshots.rs,
`create_temp_snapshot`): each `<name>.snapshot` archive with a `<name>.snapshot.checksum` beside
it, the archive's SHA-256 in hex (lib/collection/src/common/sha_256.rs, `hash_file`), written
before the archive takes its name so that no listed snapshot lacks its checksum; a listing is the
directory's `*.snapshot` files.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from qdrant_client.http import models

from lab.qdrant_double.errors import NotFound

SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
_CHUNK = 1 << 20

Writer = Callable[[tarfile.TarFile, Path], None]
"""Fills a snapshot's archive, given a scratch directory for its intermediate files."""


def timestamp(now: datetime.datetime) -> str:
    """The time in a snapshot's name, `chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S")`."""
    return now.strftime("%Y-%m-%d-%H-%M-%S")


def sha256(path: Path) -> str:
    """The file's SHA-256 in hex, as Qdrant's `hash_file`."""
    digest = hashlib.sha256()
    with open(path, "rb") as read:
        for chunk in iter(lambda: read.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def describe(path: Path) -> models.SnapshotDescription:
    """Name, size, modification time (UTC, as `creation_time`) and the stored checksum."""
    stat = path.stat()
    modified = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
    checksum = _checksum_path(path)
    return models.SnapshotDescription(
        name=path.name,
        creation_time=modified.replace(tzinfo=None).isoformat(),
        size=stat.st_size,
        checksum=checksum.read_text().strip() if checksum.exists() else None,
    )


def save(directory: Path, name: str, write: Writer) -> models.SnapshotDescription:
    """Writes the archive under a temporary name, then its checksum, then renames it."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    partial = final.with_suffix(".tmp")
    try:
        with tempfile.TemporaryDirectory(prefix=".scratch-", dir=directory) as scratch:
            with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as archive:
                write(archive, Path(scratch))
        _checksum_path(final).write_text(sha256(partial))
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return describe(final)


def listed(directory: Path) -> list[models.SnapshotDescription]:
    if not directory.is_dir():
        return []
    return [describe(path) for path in sorted(directory.glob(f"*{SUFFIX}")) if path.is_file()]


def found(directory: Path, name: str) -> Path:
    """The snapshot ``name`` of ``directory``; a name that is not one of its files is Qdrant's
    404, so a caller never reaches a file outside the directory."""
    path = directory / name
    if os.path.basename(name) != name or name in (".", "..") or not path.is_file():
        # The snapshot manager's `not_found(format!("Snapshot {snapshot_name}"))`.
        raise NotFound(f"Not found: Snapshot {name} not found")
    return path


def delete(directory: Path, name: str) -> bool:
    path = found(directory, name)
    path.unlink()
    _checksum_path(path).unlink(missing_ok=True)
    return True
