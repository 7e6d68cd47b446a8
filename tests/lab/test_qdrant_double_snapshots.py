"""The snapshot endpoints answer as Qdrant's server does (lab/qdrant_double/snapshots.py says where
each answer comes from): a backup script or client taking, listing, downloading or deleting
snapshots through the edge sees Qdrant's answers, and a snapshot the double takes is one Qdrant's
own engine (Qdrant Edge) reads back (recovering one: test_qdrant_double_snapshot_recovery.py)."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
import tarfile
from pathlib import Path

import grpc
import pytest
import qdrant_edge as edge
from qdrant_client import grpc as qgrpc
from qdrant_client.grpc import snapshots_service_pb2_grpc

from lab.qdrant_double import QdrantDouble
from tests.double_client import KEY, api_key, bearer, rest, token

MASTER = api_key(KEY)
ALPHA_R = bearer(token({"access": [{"collection": "alpha", "access": "r"}]}))
ALPHA_RW = bearer(token({"access": [{"collection": "alpha", "access": "rw"}]}))
GRPC_KEY = [("api-key", KEY)]
ALIAS = {"actions": [{"create_alias": {"collection_name": "alpha", "alias_name": "a1"}}]}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/collections/alpha/snapshots", ALPHA_R),
        ("/snapshots", MASTER),
        ("/collections/alpha/shards/0/snapshots", ALPHA_R),
    ],
    ids=["collection", "full", "shard"],
)
def test_snapshot_listings_are_empty(
    double: QdrantDouble, path: str, headers: dict[str, str]
) -> None:
    code, body = rest(double, "GET", path, headers=headers)
    assert (code, body["result"]) == (200, [])


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/collections/alpha/snapshots/s.snapshot", ALPHA_R),
        ("DELETE", "/collections/alpha/snapshots/s.snapshot", ALPHA_RW),
        ("GET", "/snapshots/s.snapshot", MASTER),
        ("DELETE", "/snapshots/s.snapshot", MASTER),
        ("GET", "/collections/alpha/shards/0/snapshots/s.snapshot", ALPHA_R),
        ("DELETE", "/collections/alpha/shards/0/snapshots/s.snapshot", ALPHA_RW),
    ],
)
def test_a_snapshot_not_taken_is_qdrants_404(
    double: QdrantDouble, method: str, path: str, headers: dict[str, str]
) -> None:
    code, body = rest(double, method, path, headers=headers)
    assert (code, body["status"]["error"]) == (404, "Not found: Snapshot s.snapshot not found")


def test_a_missing_collection_is_found_missing_before_its_snapshot(double: QdrantDouble) -> None:
    code, body = rest(double, "GET", "/collections/gamma/snapshots/s.snapshot", headers=MASTER)
    assert (code, body["status"]["error"]) == (404, "Not found: Collection `gamma` doesn't exist!")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/collections/alpha/shards/1/snapshots"),
        ("DELETE", "/collections/alpha/shards/1/snapshots/s.snapshot"),
    ],
)
def test_a_shard_the_collection_lacks_is_qdrants_404(
    double: QdrantDouble, method: str, path: str
) -> None:
    """One node, one shard: shard 1 is not there, before any snapshot of it is looked for."""
    code, body = rest(double, method, path, headers=MASTER)
    assert (code, body["status"]["error"]) == (404, "Not found: shard 1 not found")


def test_grpc_snapshot_listings_are_empty_and_deletions_not_found(channel: grpc.Channel) -> None:
    stub = snapshots_service_pb2_grpc.SnapshotsStub(channel)
    listed = stub.List(qgrpc.ListSnapshotsRequest(collection_name="alpha"), metadata=GRPC_KEY)
    assert list(listed.snapshot_descriptions) == []
    assert (
        list(
            stub.ListFull(qgrpc.ListFullSnapshotsRequest(), metadata=GRPC_KEY).snapshot_descriptions
        )
        == []
    )
    deletions = [
        lambda: stub.Delete(
            qgrpc.DeleteSnapshotRequest(collection_name="alpha", snapshot_name="s.snapshot"),
            metadata=GRPC_KEY,
        ),
        lambda: stub.DeleteFull(
            qgrpc.DeleteFullSnapshotRequest(snapshot_name="s.snapshot"), metadata=GRPC_KEY
        ),
    ]
    for delete in deletions:
        with pytest.raises(grpc.RpcError) as refused:
            delete()
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.NOT_FOUND,
            "Not found: Snapshot s.snapshot not found",
        )


# ------------------------------------------------------------------------ taking a snapshot

STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}"
POINTS = {
    "points": [
        {"id": n, "vector": [0.1 * n, 0.2, 0.3, 0.4], "payload": {"n": n}} for n in (2, 3, 4)
    ]
}


def _download(
    double: QdrantDouble, path: str, headers: dict[str, str] = ALPHA_R
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _with_points(double: QdrantDouble) -> None:
    assert rest(double, "PUT", "/collections/alpha/points?wait=true", POINTS, MASTER)[0] == 200


def _count(shard: edge.EdgeShard) -> int:
    return int(shard.count(edge.CountRequest(exact=True)))


def test_a_collection_snapshot_is_named_and_described_as_qdrant_does(double: QdrantDouble) -> None:
    """A backup script keys on Qdrant's name pattern and checks the download against the
    checksum Qdrant reports: both must be Qdrant's, or a restore trusts a corrupt file."""
    code, body = rest(double, "POST", "/collections/alpha/snapshots", headers=ALPHA_RW)
    assert code == 200, body
    taken = body["result"]
    assert re.fullmatch(rf"alpha-{double.store.peer_id}-{STAMP}\.snapshot", taken["name"])
    code, headers, data = _download(double, f"/collections/alpha/snapshots/{taken['name']}")
    assert (code, headers["Content-Type"]) == (200, "application/octet-stream")
    assert taken["size"] == len(data)
    assert taken["checksum"] == hashlib.sha256(data).hexdigest()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", taken["creation_time"])
    assert rest(double, "GET", "/collections/alpha/snapshots", headers=ALPHA_R)[1]["result"] == [
        taken
    ]


def test_a_shard_snapshot_is_one_qdrant_edge_recovers_in_a_fresh_directory(
    double: QdrantDouble, tmp_path: Path
) -> None:
    """The snapshot must be Qdrant's shard format, not a look-alike: Qdrant's own engine unpacks
    it into a new directory and serves every point it held."""
    _with_points(double)
    code, body = rest(double, "POST", "/collections/alpha/shards/0/snapshots", headers=ALPHA_RW)
    assert code == 200, body
    name = body["result"]["name"]
    assert re.fullmatch(rf"alpha-shard-0-{STAMP}\.snapshot", name)
    code, _, data = _download(double, f"/collections/alpha/shards/0/snapshots/{name}")
    assert code == 200
    archive = tmp_path / name
    archive.write_bytes(data)
    edge.EdgeShard.unpack_snapshot(str(archive), str(tmp_path / "fresh"))
    recovered = edge.EdgeShard.load(str(tmp_path / "fresh"))
    try:
        assert _count(recovered) == 4  # alpha's seeded point and the three upserted
    finally:
        recovered.close()


def test_points_deleted_after_a_shard_snapshot_come_back_when_qdrant_edge_applies_it(
    double: QdrantDouble, tmp_path: Path
) -> None:
    """Recovery is what a snapshot is for: Qdrant Edge's `update_from_snapshot` of a shard that
    lost points since the snapshot brings them back."""
    _with_points(double)
    name = rest(double, "POST", "/collections/alpha/shards/0/snapshots", headers=ALPHA_RW)[1][
        "result"
    ]["name"]
    archive = tmp_path / name
    archive.write_bytes(_download(double, f"/collections/alpha/shards/0/snapshots/{name}")[2])
    edge.EdgeShard.unpack_snapshot(str(archive), str(tmp_path / "shard"))
    shard = edge.EdgeShard.load(str(tmp_path / "shard"))
    try:
        shard.update(edge.UpdateOperation.delete_points([2, 3, 4]))
        assert _count(shard) == 1
        shard.update_from_snapshot(str(archive))
        assert _count(shard) == 4
    finally:
        shard.close()


def test_a_collection_snapshot_holds_the_shard_and_the_collection_config(
    double: QdrantDouble,
) -> None:
    """Qdrant's collection snapshot layout: the shard under `0/` (its segments and WAL), the
    collection's config beside it, so that the archive says what it restores."""
    name = rest(double, "POST", "/collections/alpha/snapshots", headers=ALPHA_RW)[1]["result"][
        "name"
    ]
    data = _download(double, f"/collections/alpha/snapshots/{name}")[2]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        config = archive.extractfile("config.json")
        assert config is not None and b'"size": 4' in config.read()
    assert any(re.fullmatch(r"0/segments/[0-9a-f-]{36}\.tar", entry) for entry in names)
    assert any(entry.startswith("0/wal/") for entry in names)


def test_a_deleted_snapshot_is_gone_from_listing_and_download(double: QdrantDouble) -> None:
    """A deletion an operator was told succeeded must leave no copy of the data to download."""
    name = rest(double, "POST", "/collections/alpha/snapshots", headers=ALPHA_RW)[1]["result"][
        "name"
    ]
    path = f"/collections/alpha/snapshots/{name}"
    code, body = rest(double, "DELETE", path, headers=ALPHA_RW)
    assert (code, body["result"]) == (200, True)
    assert rest(double, "GET", "/collections/alpha/snapshots", headers=ALPHA_R)[1]["result"] == []
    assert _download(double, path)[0] == 404


def test_a_snapshot_name_outside_the_snapshots_is_not_found(double: QdrantDouble) -> None:
    """A name that is a directory of the snapshots store is not a snapshot: 404, never a
    handler failure or a file outside the snapshot directory."""
    rest(double, "POST", "/collections/alpha/shards/0/snapshots", headers=ALPHA_RW)
    code, body = rest(double, "GET", "/collections/alpha/snapshots/shards", headers=ALPHA_R)
    assert (code, body["status"]["error"]) == (404, "Not found: Snapshot shards not found")


def test_grpc_create_takes_a_snapshot_that_list_and_delete_see(channel: grpc.Channel) -> None:
    """gRPC clients back up through the Snapshots service as REST ones do."""
    stub = snapshots_service_pb2_grpc.SnapshotsStub(channel)
    taken = stub.Create(qgrpc.CreateSnapshotRequest(collection_name="alpha"), metadata=GRPC_KEY)
    description = taken.snapshot_description
    assert description.size > 0 and len(description.checksum) == 64
    listed = stub.List(qgrpc.ListSnapshotsRequest(collection_name="alpha"), metadata=GRPC_KEY)
    assert [s.name for s in listed.snapshot_descriptions] == [description.name]
    stub.Delete(
        qgrpc.DeleteSnapshotRequest(collection_name="alpha", snapshot_name=description.name),
        metadata=GRPC_KEY,
    )
    listed = stub.List(qgrpc.ListSnapshotsRequest(collection_name="alpha"), metadata=GRPC_KEY)
    assert list(listed.snapshot_descriptions) == []


def test_a_full_snapshot_archives_each_collection_snapshot_and_their_mapping(
    double: QdrantDouble,
) -> None:
    """Qdrant's full snapshot: a snapshot of every collection (each also kept with its
    collection) and a `config.json` naming them and the aliases, so that a node restores whole."""
    code, body = rest(double, "POST", "/collections/aliases", ALIAS, MASTER)
    assert code == 200, body
    code, body = rest(double, "POST", "/snapshots", headers=MASTER)
    assert code == 200, body
    full = body["result"]
    assert re.fullmatch(rf"full-snapshot-{STAMP}\.snapshot", full["name"])
    assert rest(double, "GET", "/snapshots", headers=MASTER)[1]["result"] == [full]
    mapping = {
        collection: rest(double, "GET", f"/collections/{collection}/snapshots", headers=MASTER)[1][
            "result"
        ][0]["name"]
        for collection in ("alpha", "beta")
    }
    with tarfile.open(double.store.snapshots_path / full["name"]) as archive:
        assert sorted(archive.getnames()) == sorted([*mapping.values(), "config.json"])
        config = archive.extractfile("config.json")
        assert config is not None
        assert json.loads(config.read()) == {
            "collections_mapping": mapping,
            "collections_aliases": {"a1": "alpha"},
        }


# ------------------------------------------------------------------- streaming a shard snapshot


def test_a_streamed_shard_snapshot_is_one_qdrant_edge_recovers_and_no_file_is_kept(
    double: QdrantDouble, tmp_path: Path
) -> None:
    """`GET .../shards/{id}/snapshot` is how a peer or a backup script pulls a shard without
    leaving a file on the server: Qdrant streams a fresh snapshot (chunked, as an attachment named
    as a shard snapshot) and keeps nothing, so the listing stays empty and the disk does not fill
    (src/actix/api/snapshot_api.rs, lib/collection/src/common/snapshot_stream.rs)."""
    _with_points(double)
    code, headers, data = _download(double, "/collections/alpha/shards/0/snapshot", ALPHA_RW)
    assert code == 200, data[:200]
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Transfer-Encoding"] == "chunked"
    disposition = re.fullmatch(r'attachment; filename="(.+)"', headers["Content-Disposition"])
    assert disposition and re.fullmatch(rf"alpha-shard-0-{STAMP}\.snapshot", disposition[1])
    archive = tmp_path / disposition[1]
    archive.write_bytes(data)
    edge.EdgeShard.unpack_snapshot(str(archive), str(tmp_path / "fresh"))
    recovered = edge.EdgeShard.load(str(tmp_path / "fresh"))
    try:
        assert _count(recovered) == 4
    finally:
        recovered.close()
    listed = rest(double, "GET", "/collections/alpha/shards/0/snapshots", headers=ALPHA_R)[1]
    assert listed["result"] == []
    assert [p for p in double.store.snapshots_path.rglob("*") if p.is_file()] == []


def test_a_streamed_shard_snapshot_is_refused_to_a_collection_reader(double: QdrantDouble) -> None:
    """Qdrant checks write access and the collection's extras before streaming a shard
    (src/common/snapshots.rs, `stream_shard_snapshot`): a read token must not carry off the whole
    shard."""
    code, body = rest(double, "GET", "/collections/alpha/shards/0/snapshot", headers=ALPHA_R)
    assert code == 403
    assert body["status"]["error"].startswith("Forbidden: ")


def test_streaming_a_shard_the_collection_lacks_is_qdrants_404(double: QdrantDouble) -> None:
    code, body = rest(double, "GET", "/collections/alpha/shards/1/snapshot", headers=ALPHA_RW)
    assert (code, body["status"]["error"]) == (404, "Not found: shard 1 not found")
