"""The double's engine is Qdrant Edge, Qdrant's own segment, WAL and index code: its files are
Qdrant's, laid out as Qdrant lays out a collection, and it answers as Qdrant does where
qdrant-client's local mode (the engine before it) did not.

Run from the repo root with PYTHONPATH=.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import qdrant_edge
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from lab.booted.host import booted_host_settings
from lab.booted.qdrant_image import import_changes
from lab.processes import wait_until
from lab.qdrant_double import QdrantDouble
from lab.qdrant_double.cli import argument_parser
from lab.qdrant_double.store import Store
from tests.double_client import KEY, api_key, double_config, rest

pytestmark = pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")

POINTS = [
    models.PointStruct(id=1, vector=[1.0, 0.0], payload={"rank": 3}),
    models.PointStruct(id=2, vector=[0.0, 1.0], payload={"rank": 1}),
]


def _client(double: QdrantDouble) -> QdrantClient:
    return QdrantClient(
        host="127.0.0.1", port=double.rest_port, https=False, api_key=KEY, check_compatibility=False
    )


def _seeded(double: QdrantDouble) -> QdrantClient:
    client = _client(double)
    client.create_collection("ranked", models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("ranked", POINTS)
    return client


def test_collection_is_an_edge_shard_with_its_wal_and_segments_in_qdrant_layout(
    tmp_path: Path,
) -> None:
    """What a restored data volume holds is Qdrant's own format: the shard's WAL and segments in
    `collections/<name>/0`, which Qdrant Edge itself opens and reads back."""
    with QdrantDouble(double_config(storage_path=str(tmp_path))) as double:
        _seeded(double).close()
    shard_path = tmp_path / "collections" / "ranked" / "0"
    assert any((shard_path / "wal").iterdir())
    assert list((shard_path / "segments").glob("*/segment.json"))
    shard = qdrant_edge.EdgeShard.load(str(shard_path))
    try:
        found = shard.retrieve([1], True, False)
    finally:
        shard.close()
    assert [(point.id, point.payload) for point in found] == [(1, {"rank": 3})]


def test_ordering_by_a_payload_key_without_a_range_index_is_refused_as_qdrant_does(
    tmp_path: Path,
) -> None:
    """Qdrant orders by a payload key only through a range index and answers 400 without one
    (lib/collection/src/collection/point_ops.rs, `scroll_by`); local mode sorted anyway, so a
    client that works against the double failed against Qdrant."""
    with QdrantDouble(double_config(storage_path=str(tmp_path))) as double:
        client = _seeded(double)
        with pytest.raises(UnexpectedResponse) as refused:
            client.scroll("ranked", order_by="rank")
        client.close()
    assert refused.value.status_code == 400
    assert "No range index for `order_by` key" in refused.value.content.decode()


def test_ordering_by_a_range_indexed_payload_key_sorts_by_it(tmp_path: Path) -> None:
    """With Qdrant's integer index the same request orders the points by the key."""
    with QdrantDouble(double_config(storage_path=str(tmp_path))) as double:
        client = _seeded(double)
        client.create_payload_index("ranked", "rank", models.PayloadSchemaType.INTEGER)
        points, _ = client.scroll("ranked", order_by="rank")
        client.close()
    assert [point.id for point in points] == [2, 1]


def test_payload_index_shows_in_collection_info_with_its_point_count(tmp_path: Path) -> None:
    """Qdrant's collection info lists each payload index and how many points it covers; local mode
    built none and listed none."""
    with QdrantDouble(double_config(storage_path=str(tmp_path))) as double:
        _seeded(double).create_payload_index("ranked", "rank", models.PayloadSchemaType.INTEGER)
        code, body = rest(double, "GET", "/collections/ranked", headers=api_key(KEY))
    assert code == 200
    assert body["result"]["payload_schema"] == {"rank": {"data_type": "integer", "points": 2}}


def test_acknowledged_writes_are_flushed_to_disk_while_the_double_runs(tmp_path: Path) -> None:
    """Edge syncs its WAL only when asked; Qdrant's flush worker does so every
    `flush_interval_sec` (lib/collection/src/update_handler.rs). Without it, what a snapshot of the
    running volume holds would depend on the kernel's writeback, not on Qdrant's behaviour."""
    store = Store(str(tmp_path), flush_interval=0.01)
    try:
        store.create("flushed", {"size": 2, "distance": "Dot"})
        store.upsert("flushed", [(1, {"k": "v"})])
        flushes = store.flushes
        wait_until(lambda: store.flushes > flushes, "a flush after the write")
    finally:
        store.close()


def test_a_write_is_left_to_the_flush_worker_as_qdrant_leaves_it(tmp_path: Path) -> None:
    """Qdrant acknowledges a write once it is in its WAL, not once the WAL is on disk: what a
    snapshot taken meanwhile holds is the restore drill's measure of Qdrant's engine."""
    store = Store(str(tmp_path), flush_interval=3600)
    try:
        store.create("unsynced", {"size": 2, "distance": "Dot"})
        store.upsert("unsynced", [(1, {"k": "v"})])
        assert store.flushes == 0
    finally:
        store.close()


def test_booted_image_runs_the_double_with_qdrants_flush_alone() -> None:
    """The booted host keeps what Qdrant's server keeps: its double has no option to sync each
    write before acknowledging it, and the image's command is one the double's CLI reads. A
    stronger durability than Qdrant's would make the restore drill measure the double, not Qdrant."""
    host = booted_host_settings("https://127.0.0.1:14000/dir")
    command = json.loads(import_changes(host)[-1].removeprefix("CMD "))
    assert command[:3] == ["python3", "-m", "lab.qdrant_double"]
    argument_parser().parse_args(command[3:])


def test_closing_the_store_stops_its_flush_worker(tmp_path: Path) -> None:
    """A stopped double leaves no thread writing to the volume it served."""
    Store(str(tmp_path), flush_interval=0.01).close()
    assert "qdrant-double-flush" not in {thread.name for thread in threading.enumerate()}
