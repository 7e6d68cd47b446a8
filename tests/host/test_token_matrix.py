"""What each kind of scoped token may do, asked by qdrant-client through the edge (nginx, TLS, the
lab CA) of the double's real data plane, over REST and over gRPC.

Every test runs on both transports: an app picks one, and nginx passes each its own way
(`proxy_pass`, `grpc_pass`). Refusals are compared as Qdrant's HTTP statuses; over gRPC Qdrant
answers UNAUTHENTICATED for 401, PERMISSION_DENIED for 403 (`src/tonic/auth.rs`) and the double
UNIMPLEMENTED for its 501. One lab serves the module, its rate limit lifted: every call here is
about a scope, none about the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import grpc
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_client.http.models import Distance, PayloadSchemaType, PointStruct, VectorParams

from lab.edge import UNTHROTTLED, EdgeLab, running_edge_lab
from lab.probes import qdrant_client, qdrant_rest_client
from lab.processes import LabUnavailable
from lab.qdrant_double import JWT_LEEWAY_SECONDS
from model.tokens import mint_token

# Searched and counted, never written after the fixture fills it.
CATALOGUE = "catalogue"
# Where tokens write (point writes, payload indexes, snapshots).
INBOX = "inbox"
# A collection the tokens under test are not scoped to.
LEDGER = "ledger"
# Holds the points `value_exists` tokens depend on.
ALLOWLIST = "allowlist"
VECTORS = VectorParams(size=4, distance=Distance.COSINE)
CATALOGUE_POINTS = [
    PointStruct(id=1, vector=[1.0, 0.0, 0.0, 0.0], payload={"name": "north"}),
    PointStruct(id=2, vector=[0.0, 1.0, 0.0, 0.0], payload={"name": "east"}),
    PointStruct(id=3, vector=[0.0, 0.0, 1.0, 0.0], payload={"name": "south"}),
]
QUERY, NEAREST = [0.1, 0.9, 0.2, 0.0], 2
SERVED = 200
GRPC_AS_HTTP = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
# A point id of its own per transport, so the two runs of a test never touch each other's data.
POINT_ID = {"rest": 101, "grpc": 102}


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        try:
            edge = stack.enter_context(running_edge_lab(limits=UNTHROTTLED))
        except LabUnavailable as missing:
            pytest.skip(f"loopback lab unavailable: {missing}")
        admin = stack.enter_context(closing(qdrant_rest_client(edge, edge.api_key)))
        for name in (CATALOGUE, INBOX, LEDGER, ALLOWLIST):
            admin.create_collection(name, vectors_config=VECTORS)
        admin.upsert(CATALOGUE, CATALOGUE_POINTS)
        yield edge


@pytest.fixture(params=["rest", "grpc"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(lab: EdgeLab, transport: str) -> Iterator[Callable[[str], QdrantClient]]:
    """qdrant-client holding a credential, over this test's transport; closed after the test."""
    make = qdrant_rest_client if transport == "rest" else qdrant_client
    with ExitStack() as clients:
        yield lambda credential: clients.enter_context(closing(make(lab, credential)))


def token(lab: EdgeLab, access: Any, **claims: Any) -> str:
    return mint_token({"access": access, **claims}, lab.api_key)


def scoped(lab: EdgeLab, collection: str, access: str, **claims: Any) -> str:
    return token(lab, [{"collection": collection, "access": access}], **claims)


def answer(call: Callable[[], object]) -> int | str | None:
    """SERVED, or the HTTP status Qdrant refused the call with (a gRPC code with no such status
    comes back as its name)."""
    try:
        call()
    except UnexpectedResponse as refused:
        return refused.status_code
    except grpc.RpcError as refused:
        return GRPC_AS_HTTP.get(refused.code(), refused.code().name)
    return SERVED


def point(transport: str) -> PointStruct:
    payload = {"by": transport}
    return PointStruct(id=POINT_ID[transport], vector=[0.5, 0.5, 0.5, 0.5], payload=payload)


# --------------------------------------------------------------------------- r: read only


def test_read_token_finds_the_nearest_point_of_its_collection(lab, connect):
    """A search token is for searching: the edge passes its query, and the data plane ranks the
    collection's points for real."""
    client = connect(scoped(lab, CATALOGUE, "r"))

    hits = client.query_points(CATALOGUE, query=QUERY, limit=1).points

    assert [hit.id for hit in hits] == [NEAREST]


def test_read_token_counts_its_collection(lab, connect):
    client = connect(scoped(lab, CATALOGUE, "r"))

    assert client.count(CATALOGUE).count == len(CATALOGUE_POINTS)


def test_read_token_cannot_upsert(lab, connect, transport):
    """A leaked search token must not let anyone alter what the app serves."""
    client = connect(scoped(lab, CATALOGUE, "r"))

    assert answer(lambda: client.upsert(CATALOGUE, [point(transport)])) == 403
    assert client.count(CATALOGUE).count == len(CATALOGUE_POINTS)


# --------------------------------------------------------------------------- rw and prw


@pytest.mark.parametrize("access", ["rw", "prw"])
def test_point_write_token_upserts_into_its_collection(lab, connect, transport, access):
    """Both writing scopes write points, and what they write is stored."""
    client = connect(scoped(lab, INBOX, access))

    assert answer(lambda: client.upsert(INBOX, [point(transport)])) == SERVED
    [stored] = client.retrieve(INBOX, [POINT_ID[transport]])
    assert stored.payload == {"by": transport}


@pytest.mark.parametrize("access", ["rw", "prw"])
def test_point_write_token_cannot_write_another_collection(lab, connect, transport, access):
    """One app's writer cannot touch another app's collection."""
    client = connect(scoped(lab, INBOX, access))

    assert answer(lambda: client.upsert(LEDGER, [point(transport)])) == 403


@pytest.mark.parametrize("access, expected", [("prw", 403), ("rw", SERVED)])
def test_only_rw_gets_past_authorization_to_create_a_snapshot(lab, connect, access, expected):
    """`prw` is points only: a snapshot copies the whole collection out, so Qdrant refuses it.
    `rw` is allowed, through the edge and past Qdrant's authorization, and the snapshot is taken."""
    client = connect(scoped(lab, INBOX, access))

    assert answer(lambda: client.create_snapshot(INBOX)) == expected


@pytest.mark.parametrize("access, expected", [("prw", 403), ("rw", SERVED)])
def test_only_rw_creates_a_payload_index(lab, connect, access, expected):
    """A payload index changes the collection's configuration, beyond `prw`'s points."""
    client = connect(scoped(lab, INBOX, access))

    assert answer(lambda: client.create_payload_index(INBOX, "by", PayloadSchemaType.KEYWORD)) == (
        expected
    )


# --------------------------------------------------------------------------- m: collections


def test_global_manage_token_creates_a_collection(lab, connect, transport):
    """An `m` token is the README's way for an app to create its own collection."""
    name = f"made-by-m-over-{transport}"
    client = connect(token(lab, "m"))

    assert answer(lambda: client.create_collection(name, vectors_config=VECTORS)) == SERVED
    assert lab.qdrant.store.exists(name)


def test_collection_scoped_token_cannot_create_its_collection(lab, connect, transport):
    """What the README warns of: even `rw` on a collection cannot create it (only the master key
    or `m` create collections), so an app that "ensures" its collection at start-up fails."""
    name = f"wanted-by-rw-over-{transport}"
    client = connect(scoped(lab, name, "rw"))

    assert answer(lambda: client.create_collection(name, vectors_config=VECTORS)) == 403
    assert not lab.qdrant.store.exists(name)


# --------------------------------------------------------------------------- tokens that lapse


def test_expired_token_is_refused(lab, connect):
    """`expiresAt` ends a token without rotating the master key; Qdrant allows 30 s of clock skew,
    so this one expired beyond that."""
    expired = int(time.time()) - JWT_LEEWAY_SECONDS - 60
    client = connect(scoped(lab, CATALOGUE, "r", exp=expired))

    assert answer(lambda: client.count(CATALOGUE)) == 403


def allowlist_entry(transport: str) -> PointStruct:
    """The point that keeps this transport's allowlisted reader valid."""
    payload = {"token": f"reader-{transport}"}
    return PointStruct(id=POINT_ID[transport], vector=[0.0, 0.0, 0.0, 1.0], payload=payload)


def allowlisted_reader(lab: EdgeLab, collection: str, payload: dict[str, Any]) -> str:
    """A reader of the catalogue, valid while `collection` holds a point with `payload`."""
    matches = [{"key": key, "value": value} for key, value in payload.items()]
    value_exists = {"collection": collection, "matches": matches}
    return scoped(lab, CATALOGUE, "r", value_exists=value_exists)


def test_value_exists_token_is_refused_once_its_point_is_deleted(lab, connect, transport):
    """Deleting one point revokes one token, with no key rotation: Qdrant's stateful check finds
    no matching point and answers 401."""
    entry = allowlist_entry(transport)
    admin = connect(lab.api_key)
    reader = connect(allowlisted_reader(lab, ALLOWLIST, entry.payload or {}))
    admin.upsert(ALLOWLIST, [entry])
    assert answer(lambda: reader.count(CATALOGUE)) == SERVED

    admin.delete(ALLOWLIST, [entry.id])

    assert answer(lambda: reader.count(CATALOGUE)) == 401


def test_value_exists_token_naming_a_missing_collection_is_refused(lab, connect):
    """A token whose allowlist collection does not exist is never valid: Qdrant answers 403."""
    client = connect(allowlisted_reader(lab, "no-such-allowlist", {"token": "anyone"}))

    assert answer(lambda: client.count(CATALOGUE)) == 403
