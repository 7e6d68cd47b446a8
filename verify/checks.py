"""The hardening guide's verification steps, as checks against a live endpoint.

Each check returns PASS, FAIL with the evidence, or SKIP with the reason, and never raises for a
network problem: a connection failure is evidence too. No check prints or returns a credential.
Writes go only to a probe collection that `token_checks` creates and removes itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import grpc
import jwt

from model.settings import PORTS
from verify.client import (
    Response,
    certificate_dns_names,
    http_request,
    https_request,
    negotiate_tls,
    patiently,
    peer_certificate,
    port_answers,
)
from verify.result import CheckResult, Status
from verify.target import Target, Token

MIN_CERTIFICATE_DAYS = 14
HSTS_MIN_AGE = 31536000
RATE_LIMIT_PROBES = 200
SIGNED_PROBE_SECONDS = 60
# What Qdrant serves without credentials beyond the health paths: its version and its web UI.
PUBLIC_QDRANT_PAGES = ("/", "/dashboard")
VERSION_PATTERN = re.compile(rb"\d+\.\d+(\.\d+)?")
PROBE_VECTOR = [0.1, 0.2, 0.3, 0.4]
REFUSED = (401, 403)

Check = Callable[[Target], CheckResult]


def _pass(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.PASS, detail)


def _fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, detail)


def _guarded(name: str) -> Callable[[Check], Check]:
    """A check whose endpoint is unreachable fails under its own name with the error, rather than
    stopping the run."""

    def decorate(check: Check) -> Check:
        def run(target: Target) -> CheckResult:
            try:
                return check(target)
            except (OSError, ssl.SSLError) as error:
                return _fail(name, f"{error}")

        run.__name__ = check.__name__
        return run

    return decorate


def _key(secret: str) -> dict[str, str]:
    return {"api-key": secret}


@_guarded("http-redirect")
def check_http_redirect(target: Target) -> CheckResult:
    """Plain HTTP must never serve content, only send the client to HTTPS (same host and path)."""
    if PORTS.http not in target.public_ports:
        return CheckResult(
            "http-redirect",
            Status.SKIP,
            f"the stack opens no port {PORTS.http} (acmeChallenge {target.acme_challenge})",
        )
    path = "/collections?verify=redirect"
    reply = http_request(target, path)
    port = "" if target.https_port == PORTS.https else f":{target.https_port}"
    expected = f"https://{target.domain}{port}{path}"
    location = reply.headers.get("Location", "")
    if reply.status == 301 and location == expected:
        return _pass("http-redirect", f"301 -> {location}")
    return _fail(
        "http-redirect", f"HTTP {reply.status}, Location {location!r}, expected 301 -> {expected}"
    )


@_guarded("certificate")
def check_certificate(target: Target) -> CheckResult:
    try:
        certificate = peer_certificate(target)
    except ssl.SSLCertVerificationError as error:
        return _fail(
            "certificate", f"chain does not verify for {target.domain}: {error.verify_message}"
        )
    expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), dt.UTC)
    days_left = (expires - dt.datetime.now(dt.UTC)).days
    if days_left <= MIN_CERTIFICATE_DAYS:
        return _fail(
            "certificate", f"expires {expires:%Y-%m-%d}, in {days_left} days (renewal broken?)"
        )
    carried = certificate_dns_names(certificate)
    missing = [name for name in target.certificate_names if name.lower() not in carried]
    if missing:
        return _fail(
            "certificate", f"does not carry {', '.join(missing)} (it has {', '.join(carried)})"
        )
    names = ", ".join(target.certificate_names or (target.domain,))
    return _pass(
        "certificate", f"verifies for {names}, expires {expires:%Y-%m-%d} ({days_left} days)"
    )


@_guarded("tls-1.3")
def check_tls13(target: Target) -> CheckResult:
    version = negotiate_tls(target, ssl.TLSVersion.TLSv1_3)
    if version == "TLSv1.3":
        return _pass("tls-1.3", "TLSv1.3 negotiated")
    return _fail("tls-1.3", f"offering only TLS 1.3 got {version or 'a refusal'}")


@_guarded("tls-legacy-refused")
def check_legacy_tls_refused(target: Target) -> CheckResult:
    """TLS 1.0 and 1.1 have known weaknesses (BEAST, SHA-1 MACs) and no place on a new endpoint."""
    accepted = [
        name
        for name, version in (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1))
        if negotiate_tls(target, version) is not None
    ]
    if accepted:
        return _fail("tls-legacy-refused", f"server accepted {', '.join(accepted)}")
    return _pass("tls-legacy-refused", "TLSv1 and TLSv1.1 refused")


def _at_least(digits: str, floor: int) -> bool:
    # The server under test writes the number: past 4,300 digits int() raises, so it is measured.
    significant = digits.lstrip("0")
    return len(significant) > len(str(floor)) or int(significant or "0") >= floor


def _header_problems(reply: Response) -> list[str]:
    problems = []
    hsts = reply.headers.get("Strict-Transport-Security", "")
    max_age = re.search(r"max-age=([0-9]+)", hsts)
    if not max_age or not _at_least(max_age.group(1), HSTS_MIN_AGE):
        problems.append(f"Strict-Transport-Security {hsts!r} (need max-age >= {HSTS_MIN_AGE})")
    if reply.headers.get("X-Content-Type-Options", "").lower() != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    for header in ("X-Frame-Options", "Referrer-Policy"):
        if not reply.headers.get(header):
            problems.append(f"{header} missing")
    return problems


@_guarded("security-headers")
def check_security_headers(target: Target) -> CheckResult:
    """Browsers (the dashboard) get HSTS and anti-sniffing/framing headers on every response,
    including errors, which Nginx drops unless `always` is set."""
    replies = {
        "200": https_request(target, "GET", "/collections", _key(target.api_key)),
        "401": https_request(target, "GET", "/collections"),
    }
    evidence = [
        f"on the {label} response (was {reply.status}): {problem}"
        for label, reply in replies.items()
        for problem in _header_problems(reply)
    ]
    if evidence:
        return _fail("security-headers", "; ".join(evidence))
    return _pass(
        "security-headers", "HSTS, nosniff, X-Frame-Options, Referrer-Policy on 200 and 401"
    )


@_guarded("server-version-hidden")
def check_server_version_hidden(target: Target) -> CheckResult:
    server = https_request(target, "GET", "/healthz").headers.get("Server", "")
    if re.search(r"\d", server):
        return _fail("server-version-hidden", f"Server: {server}")
    return _pass("server-version-hidden", f"Server: {server or '(absent)'}")


@_guarded("auth-required")
def check_auth_required(target: Target) -> CheckResult:
    status = https_request(target, "GET", "/collections").status
    if status == 401:
        return _pass("auth-required", "no credentials -> 401")
    return _fail("auth-required", f"no credentials -> {status}, expected 401")


@_guarded("forged-token-refused")
def check_forged_token_refused(target: Target) -> CheckResult:
    """A token signed with any key but the master key must not get in, whatever it claims."""
    forged = jwt.encode({"access": "m"}, secrets.token_urlsafe(32), algorithm="HS256")
    status = https_request(target, "GET", "/collections", _key(forged)).status
    if status in REFUSED:
        return _pass("forged-token-refused", f"manage token signed with a random key -> {status}")
    return _fail("forged-token-refused", f"forged manage token -> {status}")


@_guarded("master-key")
def check_master_key(target: Target) -> CheckResult:
    """The key in the outputs must be the one Qdrant calls its API key, as seen through the edge:
    it is accepted in the `api-key` header, and a token it signs is accepted as a Bearer token.
    Only Qdrant's API key signs tokens (the read-only key and tokens cannot), so both together prove
    it is the master key, not merely some credential. The signed token is short-lived, read-only,
    and only ever sent to the endpoint."""
    as_key = https_request(target, "GET", "/collections", _key(target.api_key)).status
    signed = jwt.encode(
        {"access": "r", "exp": int(time.time()) + SIGNED_PROBE_SECONDS},
        target.api_key,
        algorithm="HS256",
    )
    as_signer = https_request(
        target, "GET", "/collections", {"Authorization": f"Bearer {signed}"}
    ).status
    evidence = f"api-key header -> {as_key}, token signed with the key (Bearer) -> {as_signer}"
    if as_key == 200 and as_signer == 200:
        return _pass("master-key", f"{evidence}: Qdrant's signing key")
    return _fail("master-key", f"{evidence}; expected 200 and 200")


def _shown_version(reply: Response) -> str | None:
    try:
        version = json.loads(reply.body).get("version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def _revealed(reply: Response) -> str | None:
    """What an anonymous reply gives away: any page at all, or a version (Qdrant's, or nginx's on
    an error page)."""
    version = VERSION_PATTERN.search(reply.body)
    if version:
        return f"{reply.status} showing version {version.group().decode()}"
    return f"{reply.status} with a page" if reply.status == 200 else None


@_guarded("banner-hidden")
def check_banner_hidden(target: Target) -> CheckResult:
    """Qdrant tells anyone its exact version at `/` and serves its web UI at `/dashboard`: without
    credentials the edge must answer neither, while a caller with a key still gets the version that
    qdrant-client's start-up compatibility check reads."""
    anonymous = {path: https_request(target, "GET", path) for path in PUBLIC_QDRANT_PAGES}
    revealed = {path: _revealed(reply) for path, reply in anonymous.items()}
    problems = [f"{path} without credentials -> {what}" for path, what in revealed.items() if what]
    version = _shown_version(https_request(target, "GET", "/", _key(target.api_key)))
    if version is None:
        problems.append("/ with the master key shows no version (qdrant-client checks it)")
    if problems:
        return _fail("banner-hidden", "; ".join(problems))
    statuses = ", ".join(f"{path} {reply.status}" for path, reply in anonymous.items())
    return _pass(
        "banner-hidden", f"without credentials {statuses}; with the key / shows Qdrant {version}"
    )


@contextmanager
def probe_collection(target: Target) -> Iterator[str]:
    """A throwaway collection for write checks, removed however the checks end."""
    name = f"secure-qdrant-verify-{secrets.token_hex(4)}"
    body = json.dumps({"vectors": {"size": len(PROBE_VECTOR), "distance": "Dot"}})
    created = https_request(
        target,
        "PUT",
        f"/collections/{name}",
        {**_key(target.api_key), "Content-Type": "application/json"},
        body,
    )
    if created.status != 200:
        raise OSError(f"could not create probe collection {name}: HTTP {created.status}")
    try:
        yield name
    finally:
        https_request(target, "DELETE", f"/collections/{name}", _key(target.api_key))


def _read(target: Target, token: Token, collection: str) -> int:
    return https_request(target, "GET", f"/collections/{collection}", _key(token.jwt)).status


def _write(target: Target, token: Token, collection: str) -> int:
    body = json.dumps({"points": [{"id": 1, "vector": PROBE_VECTOR, "payload": {}}]})
    headers = {**_key(token.jwt), "Content-Type": "application/json"}
    return https_request(
        target, "PUT", f"/collections/{collection}/points?wait=true", headers, body
    ).status


Expectation = tuple[str, Callable[[], int], bool]


def _expectations(target: Target, token: Token, probe: str) -> list[Expectation]:
    """(what, request, allowed) for what the token's scope allows and what it must be refused.

    Writes are only tried on the probe collection: a token's own collections hold user data, so
    there only reads are exercised.
    """
    access: Any = token.claims.get("access")

    def read(collection: str) -> Callable[[], int]:
        return lambda: _read(target, token, collection)

    def write(collection: str) -> Callable[[], int]:
        return lambda: _write(target, token, collection)

    if access == "m":
        return [(f"write {probe}", write(probe), True)]
    if access == "r":
        return [(f"read {probe}", read(probe), True), (f"write {probe}", write(probe), False)]
    own = [rule["collection"] for rule in access or []]
    return [
        *((f"read {collection}", read(collection), True) for collection in own),
        (f"read {probe}", read(probe), False),
        (f"write {probe}", write(probe), False),
    ]


def _value_exists_filter(claim: Mapping[str, Any]) -> dict[str, Any]:
    conditions = [{"key": m["key"], "match": {"value": m["value"]}} for m in claim["matches"]]
    return {"filter": {"must": conditions}, "limit": 1, "with_payload": False, "with_vector": False}


def _value_exists_skip(target: Target, name: str, claim: Mapping[str, Any]) -> CheckResult | None:
    """Qdrant accepts a `value_exists` token only while its point exists, and refuses it with a 403
    (collection missing) or 401 (point missing) that says nothing about its scope: such a token
    is skipped with what to do, found out with the master key rather than guessed from a status."""
    collection = claim["collection"]
    wanted = ", ".join(f"{m['key']}={m['value']!r}" for m in claim["matches"])
    headers = {**_key(target.api_key), "Content-Type": "application/json"}
    path = f"/collections/{quote(collection, safe='')}/points/scroll"
    reply = https_request(target, "POST", path, headers, json.dumps(_value_exists_filter(claim)))
    if reply.status == 404:
        return CheckResult(
            name,
            Status.SKIP,
            f"its value_exists collection {collection!r} does not exist, so Qdrant refuses the "
            f"token (403): create the collection and a point with {wanted} (master key)",
        )
    try:
        points = json.loads(reply.body)["result"]["points"] if reply.status == 200 else None
    except (ValueError, KeyError, TypeError):
        points = None
    if points is None:
        return _fail(name, f"looking up its value_exists point in {collection!r} -> {reply.status}")
    if not points:
        return CheckResult(
            name,
            Status.SKIP,
            f"revoked or not yet allowed: no point in {collection!r} has {wanted}, so Qdrant "
            "answers 401; upsert one (master key) to allow the token",
        )
    return None


def _revoked(target: Target, token: Token, name: str) -> CheckResult:
    """A revoked token must get nowhere: Qdrant answers 401 once its allowlist point is gone."""
    status = https_request(target, "GET", "/collections", _key(token.jwt)).status
    if status in REFUSED:
        return _pass(name, f"revoked: refused ({status})")
    return _fail(name, f"revoked, yet GET /collections -> {status}")


def check_token(target: Target, token: Token, probe: str) -> CheckResult:
    """A token does what its scope allows and gets 403 outside it."""
    name = f"token:{token.name}"
    if token.revoked:
        return _revoked(target, token, name)
    if token.expired(dt.datetime.now(dt.UTC)):
        return CheckResult(name, Status.SKIP, "expired")
    if "access" not in token.claims:
        return _fail(name, "no access claim: Qdrant gives such a token full manage rights")
    if "value_exists" in token.claims:
        skipped = _value_exists_skip(target, name, token.claims["value_exists"])
        if skipped is not None:
            return skipped
    seen, wrong = [], []
    for what, request, allowed in _expectations(target, token, probe):
        status = request()
        seen.append(f"{what} {status}")
        if not (status not in REFUSED if allowed else status == 403):
            wrong.append(f"{what} -> {status}, expected {'allowed' if allowed else '403'}")
    if wrong:
        return _fail(name, "; ".join(wrong))
    return _pass(name, ", ".join(seen))


def token_checks(target: Target) -> list[CheckResult]:
    if not target.tokens:
        return []
    try:
        with probe_collection(target) as probe:
            return [check_token(target, token, probe) for token in target.tokens]
    except (OSError, ssl.SSLError) as error:
        return [_fail(f"token:{token.name}", str(error)) for token in target.tokens]


def _grpc_status(target: Target, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    root = open(target.ca_file, "rb").read() if target.ca_file else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    options = [("grpc.ssl_target_name_override", target.domain)]
    host = f"[{target.address}]" if ":" in target.address else target.address
    with grpc.secure_channel(f"{host}:{target.grpc_port}", credentials, options) as channel:
        # Collections/List with an empty request: needs no generated stubs, only authorization.
        list_collections = channel.unary_unary(
            "/qdrant.Collections/List",
            request_serializer=lambda _: b"",
            response_deserializer=lambda raw: raw,
        )

        def attempt() -> tuple[grpc.StatusCode, str]:
            try:
                list_collections(None, metadata=metadata, timeout=10)
                return grpc.StatusCode.OK, ""
            except grpc.RpcError as error:
                return error.code(), error.details() or ""

        # nginx's 429 reaches a gRPC client as UNAVAILABLE naming the HTTP status.
        code, _ = patiently(
            attempt,
            lambda result: result[0] == grpc.StatusCode.UNAVAILABLE and "429" in result[1],
        )
        return code


@_guarded("grpc")
def check_grpc(target: Target) -> CheckResult:
    """gRPC goes through the same TLS edge and the same authentication as REST."""
    with_key = _grpc_status(target, (("api-key", target.api_key),))
    without = _grpc_status(target, ())
    evidence = f"with key {with_key.name}, without {without.name}"
    if with_key == grpc.StatusCode.OK and without == grpc.StatusCode.UNAUTHENTICATED:
        return _pass("grpc", evidence)
    return _fail("grpc", f"{evidence}; expected OK and UNAUTHENTICATED")


def check_qdrant_ports_closed(target: Target) -> CheckResult:
    """Qdrant's own listeners speak cleartext: they must only answer on the host's loopback."""
    open_ports = [port for port in target.closed_ports if port_answers(target.address, port)]
    if open_ports:
        return _fail("qdrant-ports-closed", f"{target.address} answers on {open_ports}")
    return _pass(
        "qdrant-ports-closed", f"{target.address} does not answer on {list(target.closed_ports)}"
    )


@_guarded("rate-limit")
def check_rate_limit(target: Target) -> CheckResult:
    """Opt-in: it spends the caller's burst budget. Stops at the first 429."""
    for sent in range(1, RATE_LIMIT_PROBES + 1):
        status = https_request(
            target, "GET", "/collections", _key(target.api_key), wait_out_rate_limit=False
        ).status
        if status == 429:
            return _pass("rate-limit", f"429 after {sent} rapid requests")
    return _fail("rate-limit", f"no 429 in {RATE_LIMIT_PROBES} rapid requests")


ENDPOINT_CHECKS: tuple[Check, ...] = (
    check_http_redirect,
    check_certificate,
    check_tls13,
    check_legacy_tls_refused,
    check_security_headers,
    check_server_version_hidden,
    check_auth_required,
    check_forged_token_refused,
    check_master_key,
    check_banner_hidden,
    check_grpc,
    check_qdrant_ports_closed,
)


def endpoint_checks(target: Target, rate_limit: bool = False) -> list[CheckResult]:
    results = [check(target) for check in ENDPOINT_CHECKS]
    results += token_checks(target)
    if rate_limit:
        results.append(check_rate_limit(target))
    return results
