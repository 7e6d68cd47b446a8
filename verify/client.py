"""Minimal HTTP(S) and gRPC clients that dial an address while speaking to a domain.

The checks connect to the public IP but present the domain in SNI, certificate validation and
`Host`, exactly as a client that resolved the name would: this needs no DNS and tests the address
that is actually exposed.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, TypeVar

from verify.target import Target

TIMEOUT = 10.0
# The edge rate-limits every client, verify included: a 429 is waited out with backoff rather than
# reported as the endpoint's answer, for about this long in all.
RATE_LIMIT_PATIENCE_SECONDS = 30.0
TOO_MANY_REQUESTS = 429

T = TypeVar("T")


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes


class _DialingHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, context: ssl.SSLContext, timeout: float = TIMEOUT) -> None:
        super().__init__(target.address, target.https_port, timeout=timeout, context=context)
        self._target = target
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(raw, server_hostname=self._target.domain)


def tls_context(target: Target) -> ssl.SSLContext:
    """Verifies the chain and the host name, like any client of the endpoint."""
    return ssl.create_default_context(cafile=target.ca_file)


def keep_alive_connection(target: Target) -> http.client.HTTPSConnection:
    """One connection to the target's address, speaking to its domain, for many requests."""
    return _DialingHTTPSConnection(target, tls_context(target))


def patiently(attempt: Callable[[], T], rate_limited: Callable[[T], bool]) -> T:
    """`attempt()`, repeated with backoff while the edge answers that the caller is rate-limited,
    for RATE_LIMIT_PATIENCE_SECONDS at most; then the last answer stands."""
    waited, delay = 0.0, 0.5
    result = attempt()
    while rate_limited(result) and waited < RATE_LIMIT_PATIENCE_SECONDS:
        time.sleep(delay)
        waited += delay
        delay = min(delay * 2, 8.0)
        result = attempt()
    return result


def https_request(
    target: Target,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    wait_out_rate_limit: bool = True,
    timeout: float = TIMEOUT,
) -> Response:
    def attempt() -> Response:
        return _https_request_once(target, method, path, headers, body, timeout)

    if not wait_out_rate_limit:
        return attempt()
    return patiently(attempt, lambda response: response.status == TOO_MANY_REQUESTS)


def _https_request_once(
    target: Target,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    body: Any,
    timeout: float,
) -> Response:
    connection = _DialingHTTPSConnection(target, tls_context(target), timeout)
    try:
        connection.request(
            method, path, body=body, headers={"Host": target.domain, **(headers or {})}
        )
        reply = connection.getresponse()
        return Response(reply.status, reply.headers, reply.read())
    finally:
        connection.close()


def http_request(target: Target, path: str) -> Response:
    connection = http.client.HTTPConnection(target.address, target.http_port, timeout=TIMEOUT)
    try:
        connection.request("GET", path, headers={"Host": target.domain})
        reply = connection.getresponse()
        return Response(reply.status, reply.headers, reply.read())
    finally:
        connection.close()


def negotiate_tls(target: Target, version: ssl.TLSVersion) -> str | None:
    """The protocol the server agrees to when offered only `version`, or None if it refuses.

    The client drops OpenSSL's own floor (security level 0) so that a refusal is the server's.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Offering the deprecated versions is the point: the server must be the one to refuse.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    try:
        with socket.create_connection((target.address, target.https_port), TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname=target.domain) as tls:
                return tls.version()
    except (ssl.SSLError, ConnectionResetError):
        return None


def peer_certificate(target: Target) -> dict[str, Any]:
    """The verified certificate (raises ssl.SSLCertVerificationError when the chain is bad)."""
    with socket.create_connection((target.address, target.https_port), TIMEOUT) as raw:
        with tls_context(target).wrap_socket(raw, server_hostname=target.domain) as tls:
            return tls.getpeercert() or {}


def certificate_dns_names(certificate: Mapping[str, Any]) -> list[str]:
    """The DNS names of a certificate as `getpeercert` gives it, sorted and lowercase."""
    alternatives = certificate.get("subjectAltName", ())
    return sorted(value.lower() for kind, value in alternatives if kind == "DNS")


def port_answers(address: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout):
            return True
    except OSError:
        return False
