"""Recovering a collection or a shard from a snapshot, as Qdrant's server does on one node, the
data applied by Qdrant Edge's own `EdgeShard.update_from_snapshot` (a snapshot whose segments carry
no partial manifest replaces the shard's data: lib/edge/python/src/snapshots.rs).

Where the snapshot comes from (src/common/snapshots.rs, `recover_shard_snapshot`;
lib/storage/src/content_manager/snapshots/download.rs, `download_snapshot`):
- a shard's location is a snapshot of that shard, by name, or an http(s) URL; another scheme is
  Qdrant's 400;
- a collection's location is a `file://` path on the node, or an http(s) URL; another scheme is
  Qdrant's 400;
- an uploaded file (multipart field `snapshot`, src/actix/api/snapshot_api.rs);
- an http(s) URL is refused with Qdrant's 403 when `service.enable_snapshot_url_recovery` is off
  (the deployment's setting, cloud-init/qdrant.service); when on, the double fetches nothing
  (tests send traffic to this machine only) and answers 501.
An optional `checksum` must be the file's SHA-256, or Qdrant's 400.

A collection snapshot's shard (`0/`) is applied to the collection's shard; a collection the node
lacks is created first with the vectors of the snapshot's `config.json`. Qdrant also replaces an
existing collection's config with the snapshot's; the double keeps the collection's own.
"""

from __future__ import annotations

import email.parser
import email.policy
import tarfile
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from qdrant_client.http import models

from lab.qdrant_double import snapshot_files, snapshots
from lab.qdrant_double.errors import AccessDenied, BadRequest, Unsupported
from lab.qdrant_double.store import SHARD_DIR, Collection, Store

REMOTE_SCHEMES = ("http", "https")
UPLOAD_FIELD = "snapshot"


def _scheme(location: str) -> str | None:
    """A location's URL scheme, None for a bare snapshot name (not a URL to `url::Url`)."""
    scheme = urlsplit(location).scheme
    return scheme.lower() if scheme and ":" in location else None


def _refuse_remote(url_recovery: bool) -> NoReturn:
    if not url_recovery:
        raise AccessDenied("Snapshot recovery from remote URLs is disabled")
    raise Unsupported("Not served by the Qdrant test double: downloading snapshots from a URL")


def _check(path: Path, checksum: str | None) -> None:
    if checksum is None:
        return
    actual = snapshot_files.sha256(path)
    if actual != checksum:
        raise BadRequest(
            f"Wrong input: Snapshot checksum mismatch: expected {checksum}, got {actual}"
        )


def _apply(store: Store, collection: str, shard_snapshot: Path) -> bool:
    def apply(found: Collection) -> bool:
        found.shard.update_from_snapshot(str(shard_snapshot))
        found.flush()
        return True

    return store.run(collection, apply)


def shard_from_location(
    store: Store,
    collection: str,
    shard: str,
    request: models.ShardSnapshotRecover,
    url_recovery: bool,
) -> bool:
    directory = snapshots.shard_directory(store, collection, shard)
    scheme = _scheme(request.location)
    if scheme in REMOTE_SCHEMES:
        _refuse_remote(url_recovery)
    if scheme is not None:
        raise BadRequest(
            f"Wrong input: Invalid snapshot URL {request.location}: "
            f"URLs with {scheme} scheme are not supported"
        )
    path = snapshot_files.found(directory, request.location)
    _check(path, request.checksum)
    return _apply(store, collection, path)


def uploaded(content_type: str, body: bytes, into: Path) -> Path:
    """The multipart form's `snapshot` file, written to ``into``."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    for part in form.iter_parts() if form.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == UPLOAD_FIELD:
            payload = part.get_payload(decode=True)
            into.write_bytes(payload if isinstance(payload, bytes) else b"")
            return into
    raise BadRequest(f"Wrong input: no `{UPLOAD_FIELD}` file in the multipart form")


def shard_from_upload(
    store: Store, collection: str, shard: str, file: Path, checksum: str | None
) -> bool:
    snapshots.shard_directory(store, collection, shard)
    _check(file, checksum)
    return _apply(store, collection, file)


def _shard_of(collection_snapshot: Path, into: Path) -> Path:
    """The collection snapshot's shard (`0/`) as a shard snapshot of its own."""
    prefix = f"{SHARD_DIR}/"
    with tarfile.open(collection_snapshot) as source, tarfile.open(into, "w") as shard:
        for member in source:
            if member.name.startswith(prefix) and member.isfile():
                content = source.extractfile(member)
                member.name = member.name[len(prefix) :]
                shard.addfile(member, content)
    return into


def _config_of(collection_snapshot: Path) -> models.CreateCollection:
    with tarfile.open(collection_snapshot) as source:
        try:
            member = source.extractfile(snapshots.COLLECTION_CONFIG_FILE)
        except KeyError:
            member = None
        if member is None:
            raise BadRequest("Wrong input: the snapshot holds no collection config")
        params = models.CollectionConfig.model_validate_json(member.read()).params
    return models.CreateCollection(vectors=params.vectors, sparse_vectors=params.sparse_vectors)


def collection_from_file(
    store: Store, collection: str, file: Path, checksum: str | None, scratch: Path
) -> bool:
    _check(file, checksum)
    if not store.exists(collection):
        store.create_collection(collection, _config_of(file))
    return _apply(store, collection, _shard_of(file, scratch / "shard.snapshot"))


def local_file(location: str, url_recovery: bool) -> Path:
    """A collection snapshot's `file://` location, as the node's path."""
    scheme = _scheme(location)
    if scheme in REMOTE_SCHEMES:
        _refuse_remote(url_recovery)
    if scheme != "file":
        raise BadRequest(f"Wrong input: URL {location} with scheme {scheme} is not supported")
    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise BadRequest(
            "Wrong input: Invalid snapshot URI, file path must be absolute or on localhost"
        )
    path = Path(unquote(parts.path))
    if not path.exists():
        raise BadRequest(f'Wrong input: Snapshot file "{path}" does not exist')
    return path
