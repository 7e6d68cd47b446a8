"""Qdrant as the consumer of our credentials and our edge: one test per behaviour that `verify` and
the nginx site rely on, run against the double.

Each test names its entry in `QDRANT_BEHAVIOURS`, which records the qdrant/qdrant source file the
behaviour was read from; `test_every_behaviour_has_exactly_one_test` keeps table and tests in step.
The double's own plumbing (transport, store, qdrant-client round trips) is tested in
tests/lab/test_qdrant_double.py.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from qdrant_client import grpc as qgrpc

from lab.qdrant_double import (
    QDRANT_BEHAVIOURS,
    DoubleConfig,
    QdrantDouble,
    unit_environment,
)
from tests.double_client import (
    KEY,
    NEW_KEY,
    READ_ONLY_KEY,
    UPSERT,
    VECTORS,
    WRONG_KEY,
    api_key,
    bearer,
    grpc_code,
    rest,
    start_double,
    status,
    token,
)

QDRANT_UNIT = Path(__file__).resolve().parents[2] / "cloud-init" / "qdrant.service"


def mirrors(behaviour: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Ties a test to the behaviour (and so the Qdrant source file) it checks."""
    assert behaviour in QDRANT_BEHAVIOURS, behaviour

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.behaviour = behaviour  # type: ignore[attr-defined]
        return test

    return mark


def value_exists(collection: str, value: str) -> dict[str, Any]:
    return {"collection": collection, "matches": [{"key": "token_id", "value": value}]}


# --------------------------------------------------------------------------- REST: who you are


@mirrors("no-credentials-401")
def test_no_credentials_is_401(double: QdrantDouble) -> None:
    """`auth-required` expects exactly 401 from the edge for an anonymous caller."""
    assert status(double, "GET", "/collections") == 401


@mirrors("unknown-key-401")
def test_unknown_key_is_401(double: QdrantDouble) -> None:
    assert status(double, "GET", "/collections", headers=api_key(WRONG_KEY)) == 401


@mirrors("malformed-token-401")
def test_malformed_token_is_401(double: QdrantDouble) -> None:
    assert status(double, "GET", "/collections", headers=bearer("foo.bar.baz")) == 401


@mirrors("bad-signature-403")
def test_token_signed_with_another_key_is_403(double: QdrantDouble) -> None:
    """`forged-token-refused` counts on a forged manage token being refused, whatever it claims."""
    headers = bearer(token({"access": "m"}, key=WRONG_KEY))
    assert status(double, "GET", "/collections", headers=headers) == 403


@mirrors("expired-403")
@pytest.mark.parametrize(("age", "expected"), [(60, 403), (10, 200)], ids=["expired", "in-leeway"])
def test_expired_token_is_403_after_the_leeway(
    double: QdrantDouble, age: int, expected: int
) -> None:
    headers = bearer(token({"access": "r", "exp": int(time.time()) - age}))
    assert status(double, "GET", "/collections", headers=headers) == expected


def _raw(double: QdrantDouble, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
    """Status, Content-Type and body of `GET /collections/beta` as sent."""
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        connection.request("GET", "/collections/beta", headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@mirrors("auth-refusal-plain-text")
def test_auth_refusals_are_bare_text_and_rbac_refusals_json(double: QdrantDouble) -> None:
    """A client (or `verify`) reading a refusal sees what Qdrant sends: the middleware's own
    words for a credential it refuses, the handler's JSON only once the credential is accepted."""
    assert _raw(double, {}) == (
        401,
        None,
        b"Must provide an API key or an Authorization bearer token",
    )
    forged = bearer(token({"access": "m"}, key=WRONG_KEY))
    assert _raw(double, forged) == (403, None, b"Invalid JWT: InvalidSignature")
    scoped = bearer(token({"access": [{"collection": "alpha", "access": "r"}]}))
    code, content_type, body = _raw(double, scoped)
    assert (code, content_type) == (403, "application/json")
    assert json.loads(body)["status"]["error"] == "Forbidden: Access to collection beta is required"


@mirrors("api-key-header-first")
def test_api_key_header_takes_precedence_over_bearer(double: QdrantDouble) -> None:
    """The edge must pass both headers unchanged: Qdrant decides by `api-key` when it is there."""
    headers = {**api_key(WRONG_KEY), **bearer(KEY)}
    assert status(double, "GET", "/collections", headers=headers) == 401


@mirrors("bearer-prefix-case-sensitive")
def test_bearer_prefix_is_case_sensitive(double: QdrantDouble) -> None:
    assert status(double, "GET", "/collections", headers=bearer(KEY)) == 200
    lower = {"Authorization": f"bearer {KEY}"}
    assert status(double, "GET", "/collections", headers=lower) == 401


# --------------------------------------------------------------------------- REST: what you may do


@mirrors("master-key-manages")
def test_master_key_creates_and_deletes_collections(double: QdrantDouble) -> None:
    """`verify` creates its probe collection with the master key."""
    headers = api_key(KEY)
    assert status(double, "PUT", "/collections/gamma", {"vectors": VECTORS}, headers=headers) == 200
    assert status(double, "DELETE", "/collections/gamma", headers=headers) == 200


@mirrors("read-only-key-reads-only")
def test_read_only_key_reads_but_cannot_write(double: QdrantDouble) -> None:
    """A valid credential asking too much: 403, not 401."""
    headers = api_key(READ_ONLY_KEY)
    assert status(double, "GET", "/collections/alpha", headers=headers) == 200
    assert status(double, "PUT", "/collections/alpha/points", UPSERT, headers=headers) == 403


@mirrors("jwt-signed-with-master-key")
def test_token_signed_with_the_master_key_is_accepted(double: QdrantDouble) -> None:
    """`master-key` proves the key is Qdrant's signing key this way: no other credential signs."""
    headers = bearer(token({"access": "r"}))
    assert status(double, "GET", "/collections/alpha", headers=headers) == 200


@pytest.fixture
def rotated() -> Iterator[QdrantDouble]:
    """A double mid-rotation: a new master key, the test's usual one as `alt_api_key`."""
    running = start_double(api_key=NEW_KEY, alt_api_key=KEY)
    try:
        yield running
    finally:
        running.stop()


@mirrors("alt-key-manages")
def test_alt_key_manages_during_a_rotation(rotated: QdrantDouble) -> None:
    """The grace window's promise for the old master key: it still manages until the host drops it."""
    for key in (NEW_KEY, KEY):
        headers = api_key(key)
        create = {"vectors": VECTORS}
        assert status(rotated, "PUT", "/collections/gamma", create, headers=headers) == 200
        assert status(rotated, "DELETE", "/collections/gamma", headers=headers) == 200


@mirrors("jwt-signed-with-alt-key")
def test_token_signed_with_the_alt_key_is_accepted_until_it_is_unset(rotated: QdrantDouble) -> None:
    """Tokens minted before a rotation keep working through the grace window and stop after it."""
    old_token = bearer(token({"access": "r"}, key=KEY))
    assert status(rotated, "GET", "/collections/alpha", headers=old_token) == 200
    new_token = bearer(token({"access": "r"}, key=NEW_KEY))
    assert status(rotated, "GET", "/collections/alpha", headers=new_token) == 200
    after_grace = start_double(api_key=NEW_KEY)
    try:
        assert status(after_grace, "GET", "/collections/alpha", headers=old_token) == 403
    finally:
        after_grace.stop()


@mirrors("read-only-key-signs-nothing")
def test_token_signed_with_the_read_only_key_is_403(double: QdrantDouble) -> None:
    """Whoever holds the read-only key must not be able to mint manage tokens."""
    headers = bearer(token({"access": "m"}, key=READ_ONLY_KEY))
    assert status(double, "GET", "/collections", headers=headers) == 403


@mirrors("out-of-scope-403")
def test_collection_token_gets_403_outside_its_collection(double: QdrantDouble) -> None:
    """`token:<name>` expects 403, not 401, where a scope ends."""
    headers = bearer(token({"access": [{"collection": "alpha", "access": "rw"}]}))
    assert status(double, "GET", "/collections/beta", headers=headers) == 403
    assert status(double, "PUT", "/collections/beta/points", UPSERT, headers=headers) == 403


@mirrors("no-access-claim-manages")
def test_token_without_access_claim_has_manage_rights(double: QdrantDouble) -> None:
    """Why the program never mints one, and `token:<name>` fails one outright."""
    headers = bearer(token({"sub": "someone"}))
    assert status(double, "PUT", "/collections/gamma", {"vectors": VECTORS}, headers=headers) == 200


@mirrors("value-exists-collection-missing-403")
def test_value_exists_on_a_missing_collection_is_403(double: QdrantDouble) -> None:
    """The shipped example stack's `analytics` token before anyone creates `token-allowlist`:
    a 403 that says nothing about the token's scope."""
    claims = {"access": "r", "value_exists": value_exists("token-allowlist", "t-1")}
    assert status(double, "GET", "/collections", headers=bearer(token(claims))) == 403


@mirrors("value-exists-point-missing-401")
def test_value_exists_without_a_matching_point_is_401(double: QdrantDouble) -> None:
    """Deleting the point revokes the token: 401 from then on."""
    claims = {"access": "r", "value_exists": value_exists("alpha", "t-1")}
    headers = bearer(token(claims))
    assert status(double, "GET", "/collections", headers=headers) == 200
    double.store.upsert("alpha", [(1, {"token_id": "revoked"})])
    assert status(double, "GET", "/collections", headers=headers) == 401


# --------------------------------------------------------------------------- REST: paths


@mirrors("public-paths")
@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/livez", "/readyz", "/dashboard", "/dashboard/x.js"]
)
def test_whitelisted_paths_need_no_credentials(double: QdrantDouble, path: str) -> None:
    """What the edge has to hide or keep: load balancers need the health paths."""
    assert status(double, "GET", path) == 200


@mirrors("banner-shows-version")
def test_banner_tells_anyone_the_version(double: QdrantDouble) -> None:
    """Why the edge answers `/` only to callers with a credential."""
    code, body = rest(double, "GET", "/")
    assert code == 200
    assert body == {"title": "qdrant - vector search engine", "version": "1.18.3"}


@mirrors("whitelist-on-normalized-path")
@pytest.mark.parametrize(
    "path",
    [
        "/dashboard%2f..%2fcollections",
        "/dashboard%2F%2E%2E%2Fcollections",
        "/dashboard/../collections",
        "/healthz/../collections",
        "/readyz%2f..%2fcollections%2falpha",
        "//collections",
    ],
)
def test_encoded_or_dotted_whitelist_path_is_not_a_bypass(double: QdrantDouble, path: str) -> None:
    assert status(double, "GET", path) == 401


@mirrors("static-content-off-removes-dashboard")
def test_static_content_off_as_the_unit_sets_it_removes_the_dashboard() -> None:
    """Configured from the deployed unit's own `--env` lines: `/dashboard` is then an ordinary
    path, 401 without a key and 404 with one, while the banner stays public."""
    environment = {
        **unit_environment(QDRANT_UNIT.read_text()),
        "QDRANT__SERVICE__API_KEY": KEY,
    }
    assert environment["QDRANT__SERVICE__ENABLE_STATIC_CONTENT"] == "false"
    double = QdrantDouble(DoubleConfig.from_env(environment, rest_port=0, grpc_port=0)).start()
    try:
        assert status(double, "GET", "/dashboard") == 401
        assert status(double, "GET", "/dashboard", headers=api_key(KEY)) == 404
        assert status(double, "GET", "/") == 200
    finally:
        double.stop()


@mirrors("snapshot-url-recovery-off-403")
def test_snapshot_recovery_from_a_url_is_refused_as_the_unit_sets_it() -> None:
    """Configured from the deployed unit's own `--env` lines: a manager's token cannot make the
    node fetch a URL (no SSRF through snapshot recovery), for a collection or a shard."""
    environment = {
        **unit_environment(QDRANT_UNIT.read_text()),
        "QDRANT__SERVICE__API_KEY": KEY,
    }
    double = QdrantDouble(DoubleConfig.from_env(environment, rest_port=0, grpc_port=0)).start()
    try:
        double.store.create("alpha", {"size": 4, "distance": "Cosine"})
        remote = {"location": "https://example.invalid/s.snapshot"}
        for path in (
            "/collections/alpha/snapshots/recover",
            "/collections/alpha/shards/0/snapshots/recover",
        ):
            code, body = rest(double, "PUT", path, remote, headers=api_key(KEY))
            assert code == 403
            assert "Snapshot recovery from remote URLs is disabled" in body["status"]["error"]
    finally:
        double.stop()


@mirrors("auth-before-routing")
def test_unknown_path_without_credentials_is_401(double: QdrantDouble) -> None:
    """Probing for paths reveals nothing; with a key the same path is a plain 404."""
    assert status(double, "GET", "/telemetry-nope") == 401
    assert status(double, "GET", "/telemetry-nope", headers=api_key(KEY)) == 404


# --------------------------------------------------------------------------- gRPC


@mirrors("grpc-health-public")
def test_grpc_health_checks_need_no_credentials(channel: grpc.Channel) -> None:
    reply = qgrpc.QdrantStub(channel).HealthCheck(qgrpc.HealthCheckRequest(), timeout=5)
    assert reply.version == "1.18.3"
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    assert check(b"", timeout=5) == b"\x08\x01"  # status: SERVING


@mirrors("grpc-status-mapping")
def test_grpc_refusals_are_unauthenticated_and_permission_denied(channel: grpc.Channel) -> None:
    """The `grpc` check expects UNAUTHENTICATED without a key; fail2ban counts grpc_status=16."""
    stub = qgrpc.CollectionsStub(channel)
    request = qgrpc.ListCollectionsRequest()
    assert grpc_code(lambda: stub.List(request, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    forged = [("authorization", f"Bearer {token({'access': 'm'}, key=WRONG_KEY)}")]
    denied = grpc_code(lambda: stub.List(request, metadata=forged, timeout=5))
    assert denied == grpc.StatusCode.PERMISSION_DENIED


@mirrors("grpc-storage-read-exists")
def test_grpc_storage_read_answers_a_collection_reader(channel: grpc.Channel) -> None:
    """Why the edge refuses `qdrant.StorageRead` itself: Qdrant would serve it to any reader."""
    method = channel.unary_unary("/qdrant.StorageRead/ReadWhole")
    assert grpc_code(lambda: method(b"", timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    assert method(b"", metadata=[("api-key", READ_ONLY_KEY)], timeout=5) == b""


# --------------------------------------------------------------------------- the table itself


def test_every_behaviour_has_exactly_one_test() -> None:
    tests = [
        value for name, value in vars(sys.modules[__name__]).items() if name.startswith("test_")
    ]
    covered = sorted(test.behaviour for test in tests if hasattr(test, "behaviour"))
    assert covered == sorted(QDRANT_BEHAVIOURS)
