"""The double's audit log: the lines Qdrant v1.18 writes (lib/storage/src/audit.rs), so that the lab
and the booted host can prove who did what, from where, on REST and gRPC alike.

Every double listens on ephemeral loopback ports and is stopped by its fixture; its log directory
is the test's own temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from qdrant_client import grpc as qgrpc

from lab.qdrant_double import DoubleConfig, QdrantDouble
from lab.qdrant_double.audit import AuditConfig, AuditLog, Caller, timestamp
from tests.double_client import (
    KEY,
    READ_ONLY_KEY,
    UPSERT,
    WRONG_KEY,
    api_key,
    bearer,
    grpc_code,
    rest,
    start_double,
    token,
)

READER = token({"access": [{"collection": "alpha", "access": "r"}], "subject": "search-app"})
FORGED = token({"access": "m", "subject": "search-app"}, key=WRONG_KEY)
CLIENT = "203.0.113.9"
# chrono's `DateTime<Utc>`: seconds, then 0, 3, 6 or 9 fraction digits, then Z.
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z")


def _audit(directory: Path, **settings: Any) -> AuditConfig:
    return AuditConfig(enabled=True, dir=str(directory), **settings)


def _running(config: AuditConfig) -> Iterator[QdrantDouble]:
    double = start_double(audit=config)
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[QdrantDouble]:
    yield from _running(_audit(tmp_path))


@pytest.fixture
def trusting(tmp_path: Path) -> Iterator[QdrantDouble]:
    yield from _running(_audit(tmp_path, trust_forwarded_headers=True))


def lines(double: QdrantDouble) -> list[dict[str, Any]]:
    directory = Path(double.config.audit.dir)
    return [
        json.loads(line)
        for log in sorted(directory.glob("audit.*.log"))
        for line in log.read_text().splitlines()
    ]


def only_line(double: QdrantDouble) -> dict[str, Any]:
    [line] = lines(double)
    return line


def untimed(line: dict[str, Any]) -> dict[str, Any]:
    """The line without its timestamp, once that is checked to be chrono's form."""
    rest_of_line = dict(line)
    assert TIMESTAMP.fullmatch(rest_of_line.pop("timestamp"))
    return rest_of_line


def points_stub(double: QdrantDouble) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(double.grpc_target, options=[("grpc.enable_http_proxy", 0)])
    return channel, qgrpc.PointsStub(channel)


def grpc_scroll(double: QdrantDouble, metadata: list[tuple[str, str]]) -> None:
    channel, stub = points_stub(double)
    with channel:
        stub.Scroll(qgrpc.ScrollPoints(collection_name="alpha"), metadata=metadata, timeout=5)


def test_a_tokens_read_is_an_ok_line_naming_its_application(audited: QdrantDouble) -> None:
    """The first question after an incident is which credential did it: a JWT's `subject` is the
    line's subject, with the collection and the call it was allowed (rbac/auth.rs, emit_audit)."""
    assert rest(audited, "POST", "/collections/alpha/points/scroll", {}, bearer(READER))[0] == 200

    assert untimed(only_line(audited)) == {
        "method": "scroll_points",
        "api": "/collections/alpha/points/scroll",
        "auth_type": "jwt",
        "subject": "search-app",
        "remote": "127.0.0.1",
        "collection": "alpha",
        "result": "ok",
    }
    assert list(json.loads(next(Path(audited.config.audit.dir).glob("*.log")).read_text())) == [
        "timestamp",
        "method",
        "api",
        "auth_type",
        "subject",
        "remote",
        "collection",
        "result",
    ], "fields in AuditEvent's order"


def test_a_refused_write_is_a_denied_line_with_qdrants_reason(audited: QdrantDouble) -> None:
    """A read token trying to write is what a denial alarm per application counts: the line says
    whose token, which collection, and Qdrant's own refusal."""
    assert rest(audited, "PUT", "/collections/alpha/points", UPSERT, bearer(READER))[0] == 403

    line = only_line(audited)
    assert line["result"] == "denied"
    assert line["subject"] == "search-app"
    assert line["auth_type"] == "jwt"
    assert line["collection"] == "alpha"
    assert line["method"] == "upsert_points"
    assert line["error"] == "Forbidden: Write access to collection alpha is required"


def test_a_forged_token_is_a_denied_line_without_subject(audited: QdrantDouble) -> None:
    """A token that fails its signature has no trustworthy claims: Qdrant's `log_denied_auth`
    records no auth type, no subject, the path as method and api, and the auth error."""
    assert rest(audited, "POST", "/collections/alpha/points/scroll", {}, bearer(FORGED))[0] == 403

    assert untimed(only_line(audited)) == {
        "method": "/collections/alpha/points/scroll",
        "api": "/collections/alpha/points/scroll",
        "auth_type": "none",
        "remote": "127.0.0.1",
        "result": "denied",
        "error": "Forbidden: Invalid JWT: InvalidSignature",
    }


def test_a_missing_credential_is_a_denied_unauthorized_line(audited: QdrantDouble) -> None:
    assert rest(audited, "GET", "/collections")[0] == 401

    assert only_line(audited)["error"] == (
        "Unauthorized: Must provide an API key or an Authorization bearer token"
    )


def test_a_key_is_audited_as_an_api_key_without_subject(audited: QdrantDouble) -> None:
    """The master and read-only keys name no application: their lines say `api_key` only."""
    assert rest(audited, "GET", "/collections", headers=api_key(READ_ONLY_KEY))[0] == 200

    line = only_line(audited)
    assert (line["auth_type"], line["result"], line["method"]) == (
        "api_key",
        "ok",
        "get_collections",
    )
    assert "subject" not in line and "collection" not in line


def test_grpc_calls_write_the_same_lines(audited: QdrantDouble) -> None:
    """Clients prefer gRPC: its calls must be as accountable as REST's."""
    grpc_scroll(audited, [("authorization", f"Bearer {READER}")])
    channel, stub = points_stub(audited)
    with channel:
        refused = grpc_code(
            lambda: stub.Upsert(
                qgrpc.UpsertPoints(collection_name="alpha"),
                metadata=[("authorization", f"Bearer {READER}")],
                timeout=5,
            )
        )
    assert refused == grpc.StatusCode.PERMISSION_DENIED
    forged = grpc_code(lambda: grpc_scroll(audited, [("authorization", f"Bearer {FORGED}")]))
    assert forged == grpc.StatusCode.PERMISSION_DENIED

    read, write, forgery = lines(audited)
    assert (read["method"], read["api"], read["subject"], read["result"]) == (
        "scroll",
        "/qdrant.Points/Scroll",
        "search-app",
        "ok",
    )
    assert (read["remote"], read["collection"]) == ("127.0.0.1", "alpha")
    assert (write["subject"], write["result"]) == ("search-app", "denied")
    assert (forgery["auth_type"], forgery["result"], forgery["api"]) == (
        "none",
        "denied",
        "/qdrant.Points/Scroll",
    )
    assert "subject" not in forgery


def test_x_forwarded_for_is_ignored_unless_trusted(audited: QdrantDouble) -> None:
    """Any client can send X-Forwarded-For: untrusted, it would let one forge its address."""
    headers = {**bearer(READER), "X-Forwarded-For": CLIENT}
    rest(audited, "POST", "/collections/alpha/points/scroll", {}, headers)
    grpc_scroll(audited, [("authorization", f"Bearer {READER}"), ("x-forwarded-for", CLIENT)])

    assert [line["remote"] for line in lines(audited)] == ["127.0.0.1", "127.0.0.1"]


def test_x_forwarded_for_is_the_remote_when_trusted(trusting: QdrantDouble) -> None:
    """Behind the edge every peer is the proxy: only its X-Forwarded-For names the client, on REST
    and gRPC alike (src/actix/auth.rs, src/tonic/auth.rs)."""
    headers = {**bearer(READER), "X-Forwarded-For": CLIENT}
    rest(trusting, "POST", "/collections/alpha/points/scroll", {}, headers)
    grpc_scroll(trusting, [("authorization", f"Bearer {READER}"), ("x-forwarded-for", CLIENT)])
    rest(trusting, "POST", "/collections/alpha/points/scroll", {}, bearer(READER))

    assert [line["remote"] for line in lines(trusting)] == [CLIENT, CLIENT, "127.0.0.1"]


def test_a_forwarded_header_wins_over_x_forwarded_for_when_trusted(trusting: QdrantDouble) -> None:
    """Qdrant reads RFC 7239 `Forwarded` first (forwarded.rs): an edge that sets X-Forwarded-For
    must also drop a client's `Forwarded`, or the client chooses its logged address."""
    headers = {**bearer(READER), "X-Forwarded-For": CLIENT, "Forwarded": "for=198.51.100.1"}
    rest(trusting, "POST", "/collections/alpha/points/scroll", {}, headers)

    assert only_line(trusting)["remote"] == "for=198.51.100.1"


def test_no_line_carries_a_key_or_a_token(audited: QdrantDouble) -> None:
    """The audit log leaves the host: a credential in it would be a credential leaked."""
    secrets = [KEY, READ_ONLY_KEY, WRONG_KEY, READER, FORGED]
    for credential in (api_key(KEY), api_key(READ_ONLY_KEY), api_key(WRONG_KEY)):
        rest(audited, "PUT", "/collections/alpha/points", UPSERT, credential)
    for value in (READER, FORGED):
        rest(audited, "PUT", "/collections/alpha/points", UPSERT, bearer(value))
        grpc_scroll_or_refused(audited, value)

    text = "".join(log.read_text() for log in Path(audited.config.audit.dir).glob("*.log"))
    assert len(text.splitlines()) == 7
    for secret in secrets:
        # Signatures and payloads too: any 16-character piece of a credential.
        pieces = {secret[i : i + 16] for i in range(0, len(secret) - 15, 8)}
        assert not [piece for piece in pieces if piece in text]


def grpc_scroll_or_refused(double: QdrantDouble, value: str) -> None:
    try:
        grpc_scroll(double, [("authorization", f"Bearer {value}")])
    except grpc.RpcError:
        pass  # the forged token's refusal: its line is what is checked


def test_public_paths_write_no_line(audited: QdrantDouble) -> None:
    """Qdrant audits access-checked requests only; health probes would drown them."""
    assert rest(audited, "GET", "/healthz")[0] == 200

    assert not lines(audited)


def test_the_audit_log_is_off_unless_enabled(tmp_path: Path) -> None:
    """Qdrant's default: `enabled: false` writes nothing."""
    double = start_double(audit=AuditConfig(dir=str(tmp_path / "audit")))
    try:
        rest(double, "GET", "/collections", headers=api_key(KEY))
    finally:
        double.stop()

    assert not (tmp_path / "audit").exists()


def test_the_audit_settings_are_read_from_qdrants_variables() -> None:
    """The host's unit configures the double and Qdrant with the same `QDRANT__AUDIT__*`."""
    config = DoubleConfig.from_env(
        {
            "QDRANT__SERVICE__API_KEY": KEY,
            "QDRANT__AUDIT__ENABLED": "true",
            "QDRANT__AUDIT__DIR": "/var/lib/qdrant/storage/audit",
            "QDRANT__AUDIT__ROTATION": "hourly",
            "QDRANT__AUDIT__MAX_LOG_FILES": "720",
            "QDRANT__AUDIT__TRUST_FORWARDED_HEADERS": "true",
            "QDRANT__AUDIT__LOG_API": "false",
        }
    )

    assert config.audit == AuditConfig(
        True, "/var/lib/qdrant/storage/audit", "hourly", 720, True, False
    )
    assert DoubleConfig.from_env({"QDRANT__SERVICE__API_KEY": KEY}).audit == AuditConfig(
        False, "./storage/audit", "daily", 7, False, True
    )


def test_without_log_api_a_line_has_no_api(tmp_path: Path) -> None:
    double = start_double(audit=_audit(tmp_path, log_api=False))
    try:
        rest(double, "GET", "/collections", headers=api_key(KEY))
    finally:
        double.stop()

    assert "api" not in only_line(double)


def test_files_rotate_and_only_max_log_files_are_kept(tmp_path: Path) -> None:
    """Rotation bounds the disk the log takes; `max_log_files` is how far back it reaches."""
    hours = iter(dt.datetime(2026, 12, 7, hour, 30, tzinfo=dt.UTC) for hour in (1, 2, 3))
    log = AuditLog(_audit(tmp_path, rotation="hourly", max_log_files=2), clock=lambda: next(hours))
    caller = Caller(remote="127.0.0.1", api="/collections", tracing_id=None)
    for _ in range(3):
        log.checked(caller, "get_collections", None, None)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.2026-12-07-02.log",
        "audit.2026-12-07-03.log",
    ]


def test_timestamps_are_written_as_chrono_writes_them() -> None:
    moment = dt.datetime(2026, 12, 7, 22, 5, 1, tzinfo=dt.UTC)
    assert timestamp(moment) == "2026-12-07T22:05:01Z"
    assert timestamp(moment.replace(microsecond=120000)) == "2026-12-07T22:05:01.120Z"
    assert timestamp(moment.replace(microsecond=123456)) == "2026-12-07T22:05:01.123456Z"
