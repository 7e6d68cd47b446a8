"""Who did what from where, through the real edge: Debian's nginx running the rendered site in front
of the Qdrant double, which writes Qdrant's audit log as the deployed unit configures it.

Each request comes from a loopback address of its own (`fresh_source_address`, never 127.0.0.1)
and carries a tracing id of its own, so its lines are found by the id and its true address is one
nothing else uses. The claimed address is a documentation one (RFC 5737) the lab never has.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import grpc as qdrant_grpc

from lab.edge import UNTHROTTLED, EdgeLab, running_edge_lab
from lab.probes import GRPC_HEADERS, Request, curl, fresh_source_address
from lab.processes import LabUnavailable
from model.settings import AccessRule, TokenSpec
from model.tokens import mint_tokens
from tests.lab.test_qdrant_double_audit import lines

COLLECTION = "audited"
READER = TokenSpec("search-api", (AccessRule(COLLECTION, "r"),))
CLAIMED = "203.0.113.9"
# Each way a client could name an address for itself; Qdrant reads `Forwarded` first.
CLAIMS = {
    "x-forwarded-for": {"X-Forwarded-For": CLAIMED},
    "forwarded": {"Forwarded": f"for={CLAIMED}"},
    "both": {"Forwarded": f"for={CLAIMED}", "X-Forwarded-For": CLAIMED},
}


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        try:
            edge = stack.enter_context(running_edge_lab(limits=UNTHROTTLED))
        except LabUnavailable as missing:
            pytest.skip(f"loopback lab unavailable: {missing}")
        edge.qdrant.store.create(COLLECTION, {"size": 4, "distance": "Dot"})
        yield edge


def reader_token(lab: EdgeLab) -> str:
    return mint_tokens((READER,), lab.api_key)[READER.name]


def traced(lab: EdgeLab, tracing_id: str) -> list[dict[str, Any]]:
    return [line for line in lines(lab.qdrant) if line.get("tracing_id") == tracing_id]


def grpc_frame(message: bytes) -> bytes:
    """gRPC's length-prefixed framing: not compressed, the length big-endian."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def rest_read(headers: dict[str, str]) -> Request:
    return Request(f"/collections/{COLLECTION}", headers=headers)


def grpc_read(lab: EdgeLab, headers: dict[str, str]) -> Request:
    message = qdrant_grpc.GetCollectionInfoRequest(collection_name=COLLECTION)
    return Request(
        "/qdrant.Collections/Get",
        port=lab.host.ports.grpc_tls,
        method="POST",
        headers={**GRPC_HEADERS, **headers},
        data=grpc_frame(message.SerializeToString()),
    )


@pytest.mark.parametrize("claim", CLAIMS.values(), ids=CLAIMS.keys())
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_client_is_logged_with_its_true_address_whatever_it_claims(
    lab: EdgeLab, protocol: str, claim: dict[str, str]
) -> None:
    """Qdrant trusts the edge's `X-Forwarded-For` and reads `Forwarded` before it: if a client's
    own header got through, an attacker could file every request under someone else's address.
    The line names the address the connection came from, the token's application and `ok`."""
    source, tracing_id = fresh_source_address(), str(uuid.uuid4())
    headers = {
        "Authorization": f"Bearer {reader_token(lab)}",
        "X-Request-Id": tracing_id,
        **claim,
    }
    request = rest_read(headers) if protocol == "rest" else grpc_read(lab, headers)
    reply = curl(lab, replace(request, source=source))
    assert reply.status == 200
    if protocol == "grpc":
        assert reply.headers.get("grpc-status") == "0", reply.headers

    logged = traced(lab, tracing_id)
    assert logged, f"no audit line for {tracing_id}"
    assert {line["remote"] for line in logged} == {source}
    assert {
        (line["subject"], line["auth_type"], line["collection"], line["result"]) for line in logged
    } == {(READER.name, "jwt", COLLECTION, "ok")}


def test_qdrant_itself_believes_any_address_it_is_told(lab: EdgeLab) -> None:
    """The residual, pinned: trusting forwarded headers, Qdrant records whatever address a request
    sent straight to its loopback port claims. That no one but the host itself can send one is
    the deployment's doing (test_user_data.py,
    test_only_processes_on_the_host_reach_qdrant_to_claim_an_address), not Qdrant's."""
    tracing_id = str(uuid.uuid4())
    connection = http.client.HTTPConnection("127.0.0.1", lab.qdrant.rest_port, timeout=10)
    try:
        connection.request(
            "GET",
            f"/collections/{COLLECTION}",
            headers={
                "Authorization": f"Bearer {reader_token(lab)}",
                "X-Request-Id": tracing_id,
                "X-Forwarded-For": CLAIMED,
            },
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert {line["remote"] for line in traced(lab, tracing_id)} == {CLAIMED}


def test_no_audit_line_holds_a_key_or_a_token(lab: EdgeLab) -> None:
    """The log is read by people and shipped off the host: a credential in it would hand whoever
    reads it Qdrant. A read, a refused write, a forged token and both keys each leave a line, and
    no line holds any of them, nor the token's signature."""
    token = reader_token(lab)
    forged = mint_tokens((READER,), lab.read_only_api_key)[READER.name]
    bearer = {"Authorization": f"Bearer {token}"}
    point = b'{"points": [{"id": 1, "vector": [1, 0, 0, 0]}]}'
    attempts = [
        (bearer, Request(f"/collections/{COLLECTION}"), 200),
        (bearer, Request(f"/collections/{COLLECTION}/points", method="PUT", data=point), 403),
        ({"Authorization": f"Bearer {forged}"}, Request(f"/collections/{COLLECTION}"), 403),
        ({"api-key": lab.api_key}, Request(f"/collections/{COLLECTION}"), 200),
        ({"api-key": lab.read_only_api_key}, Request(f"/collections/{COLLECTION}"), 200),
    ]
    for credential, request, status in attempts:
        tracing_id = str(uuid.uuid4())
        headers = {**credential, "X-Request-Id": tracing_id, "Content-Type": "application/json"}
        reply = curl(lab, replace(request, headers=headers, source=fresh_source_address()))
        assert reply.status == status, (request.method, request.path, reply.body)
        assert traced(lab, tracing_id), f"no audit line for {request.method} {request.path}"
    text = "".join(log.read_text() for log in Path(lab.qdrant.config.audit.dir).glob("audit.*"))
    for secret in (lab.api_key, lab.read_only_api_key, token, forged, token.rsplit(".", 1)[1]):
        assert secret not in text
