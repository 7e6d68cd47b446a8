"""Recovering a snapshot the double took, as Qdrant's server recovers one on one node
(lab/qdrant_double/snapshot_recovery.py): by a shard snapshot's name, a collection snapshot's
`file://` path, or an upload, the data applied by Qdrant Edge's own snapshot code. Restoring a
backup is the point of taking one: a drill that cannot restore through the API proves nothing."""

from __future__ import annotations

import hashlib
import http.client
import uuid
from typing import Any

import pytest

from lab.qdrant_double import QdrantDouble
from tests.double_client import KEY, api_key, rest, start_double

MASTER = api_key(KEY)
POINTS = {
    "points": [
        {"id": n, "vector": [0.1 * n, 0.2, 0.3, 0.4], "payload": {"n": n}} for n in (2, 3, 4)
    ]
}
DELETE = {"points": [2, 3, 4]}


def _count(double: QdrantDouble, collection: str = "alpha") -> int:
    code, body = rest(
        double, "POST", f"/collections/{collection}/points/count", {"exact": True}, MASTER
    )
    assert code == 200, body
    return int(body["result"]["count"])


def _taken(double: QdrantDouble, path: str) -> dict[str, Any]:
    """A snapshot taken after three points were written, which are then deleted."""
    assert rest(double, "PUT", "/collections/alpha/points?wait=true", POINTS, MASTER)[0] == 200
    code, body = rest(double, "POST", path, headers=MASTER)
    assert code == 200, body
    assert (
        rest(double, "POST", "/collections/alpha/points/delete?wait=true", DELETE, MASTER)[0] == 200
    )
    assert _count(double) == 1
    return dict(body["result"])


def _raw(
    double: QdrantDouble, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _upload(double: QdrantDouble, path: str, data: bytes) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="snapshot"; '
            f'filename="s.snapshot"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**MASTER, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return _raw(double, "POST", path, form, headers)


def _download(double: QdrantDouble, path: str) -> bytes:
    code, data = _raw(double, "GET", path, b"", MASTER)
    assert code == 200
    return data


def test_a_shard_recovered_by_snapshot_name_gets_its_points_back(double: QdrantDouble) -> None:
    taken = _taken(double, "/collections/alpha/shards/0/snapshots")
    code, body = rest(
        double,
        "PUT",
        "/collections/alpha/shards/0/snapshots/recover",
        {"location": taken["name"], "checksum": taken["checksum"]},
        MASTER,
    )
    assert (code, body["result"]) == (200, True)
    assert _count(double) == 4


def test_an_uploaded_shard_snapshot_is_recovered(double: QdrantDouble) -> None:
    taken = _taken(double, "/collections/alpha/shards/0/snapshots")
    data = _download(double, f"/collections/alpha/shards/0/snapshots/{taken['name']}")
    code, _ = _upload(double, "/collections/alpha/shards/0/snapshots/upload", data)
    assert code == 200
    assert _count(double) == 4


def test_a_collection_recovered_from_its_snapshot_file_gets_its_points_back(
    double: QdrantDouble,
) -> None:
    taken = _taken(double, "/collections/alpha/snapshots")
    location = (double.store.snapshots_path / "alpha" / taken["name"]).as_uri()
    code, body = rest(
        double, "PUT", "/collections/alpha/snapshots/recover", {"location": location}, MASTER
    )
    assert (code, body["result"]) == (200, True)
    assert _count(double) == 4


def test_an_uploaded_collection_snapshot_recreates_a_collection_the_node_lacks(
    double: QdrantDouble,
) -> None:
    """Restoring onto a fresh node: the collection comes back with its points."""
    taken = _taken(double, "/collections/alpha/snapshots")
    data = _download(double, f"/collections/alpha/snapshots/{taken['name']}")
    code, _ = _upload(double, "/collections/restored/snapshots/upload", data)
    assert code == 200
    assert _count(double, "restored") == 4


def test_a_snapshot_whose_checksum_differs_is_refused_before_recovery(double: QdrantDouble) -> None:
    """A corrupt or swapped file must not replace the data."""
    taken = _taken(double, "/collections/alpha/shards/0/snapshots")
    wrong = hashlib.sha256(b"another file").hexdigest()
    code, body = rest(
        double,
        "PUT",
        "/collections/alpha/shards/0/snapshots/recover",
        {"location": taken["name"], "checksum": wrong},
        MASTER,
    )
    assert (code, body["status"]["error"]) == (
        400,
        f"Wrong input: Snapshot checksum mismatch: expected {wrong}, got {taken['checksum']}",
    )
    assert _count(double) == 1


@pytest.mark.parametrize(
    "path",
    ["/collections/alpha/snapshots/recover", "/collections/alpha/shards/0/snapshots/recover"],
    ids=["collection", "shard"],
)
def test_url_recovery_off_is_qdrants_403_before_any_download(path: str) -> None:
    """The deployment turns URL recovery off (no SSRF through a manager's token): the double
    refuses as Qdrant does, without fetching."""
    double = start_double(enable_snapshot_url_recovery=False)
    try:
        code, body = rest(
            double, "PUT", path, {"location": "http://example.invalid/s.snapshot"}, MASTER
        )
        assert (code, body["status"]["error"]) == (
            403,
            "Forbidden: Snapshot recovery from remote URLs is disabled",
        )
    finally:
        double.stop()


def test_a_shard_location_with_another_scheme_is_qdrants_400(double: QdrantDouble) -> None:
    code, body = rest(
        double,
        "PUT",
        "/collections/alpha/shards/0/snapshots/recover",
        {"location": "file:///etc/passwd"},
        MASTER,
    )
    assert (code, body["status"]["error"]) == (
        400,
        "Wrong input: Invalid snapshot URL file:///etc/passwd: URLs with file scheme are not supported",
    )
