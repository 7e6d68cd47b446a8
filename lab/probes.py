"""Clients that look at the lab from outside, as a caller on the internet would.

They trust only the lab's CA and always name the lab's domain (SNI, Host, certificate check) while
dialling loopback, like a client whose DNS points the domain at the VM.

The rate limit is keyed on the client address, and the whole 127.0.0.0/8 is local on Linux: a probe
that must start from a full burst budget sends from its own `fresh_source_address()`.
"""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from qdrant_client import QdrantClient

from lab.edge import EdgeLab
from lab.processes import LOOPBACK, clean_env, require_tools, run

# An empty protobuf message in gRPC's length-prefixed framing: no compression, length 0.
EMPTY_GRPC_MESSAGE = b"\x00\x00\x00\x00\x00"
GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}

_sources = itertools.count()


def fresh_source_address() -> str:
    """A loopback address (127.0.1.1 on) no probe has used, so the rate limiter has not seen it."""
    n = next(_sources)
    return f"127.0.{n // 254 + 1}.{n % 254 + 1}"


@dataclass(frozen=True)
class Reply:
    status: int
    http_version: str
    headers: Mapping[str, str]
    """Lower-case names; the last value of a repeated header."""
    body: bytes
    redirect_url: str


@dataclass(frozen=True)
class Request:
    """What curl sends. `address` is where the lab's domain resolves: 127.0.0.1 or ::1."""

    path: str
    scheme: str = "https"
    port: int | None = None
    """Default: the lab's port for `scheme`."""
    http_version: str = "2"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes | None = None
    address: str = LOOPBACK
    source: str | None = None

    def curl_command(self, lab: EdgeLab, scratch: Path) -> list[str]:
        command = [
            "curl", "--silent", "--show-error",
            "--cacert", str(lab.client_ca),
            "--resolve", f"{lab.domain}:{self._port(lab)}:{_bracketed(self.address)}",
            f"--http{self.http_version}",
            "--request", self.method,
        ]  # fmt: skip
        for name, value in self.headers.items():
            command += ["--header", f"{name}: {value}"]
        if self.data is not None:
            # Via a file: a gRPC frame holds NUL bytes, which no argument can carry.
            (scratch / "data").write_bytes(self.data)
            command += ["--data-binary", f"@{scratch / 'data'}"]
        if self.source is not None:
            command += ["--interface", self.source]
        return command

    def url(self, lab: EdgeLab) -> str:
        return f"{self.scheme}://{lab.domain}:{self._port(lab)}{self.path}"

    def _port(self, lab: EdgeLab) -> int:
        if self.port is not None:
            return self.port
        return lab.host.ports.https if self.scheme == "https" else lab.host.ports.http


def curl(lab: EdgeLab, request: Request) -> Reply:
    require_tools("curl")
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        output = run(
            [
                *request.curl_command(lab, scratch),
                "--output", str(scratch / "body"),
                "--write-out", "%{json}\\n%{header_json}",
                request.url(lab),
            ],
            env=clean_env(),
        )  # fmt: skip
        summary, received = (json.loads(part) for part in output.split("\n", 1))
        return Reply(
            status=summary["http_code"],
            http_version=summary["http_version"],
            headers={name.lower(): values[-1] for name, values in received.items()},
            body=(scratch / "body").read_bytes(),
            redirect_url=summary["redirect_url"] or "",
        )


def curl_statuses(lab: EdgeLab, request: Request, count: int) -> list[int]:
    """`count` copies of `request` in a row on one connection, as fast as curl sends them."""
    require_tools("curl")
    url = request.url(lab)
    with tempfile.TemporaryDirectory() as directory:
        output = run(
            [
                *request.curl_command(lab, Path(directory)),
                "--write-out", "%{http_code}\\n",
                *itertools.chain.from_iterable(["-o", "/dev/null", url] for _ in range(count)),
            ],
            env=clean_env(),
        )  # fmt: skip
    return [int(status) for status in output.split()]


def tls_handshake(
    lab: EdgeLab, port: int, version: ssl.TLSVersion | None = None, address: str = LOOPBACK
) -> str:
    """Handshake (offering only `version`, if given); the protocol agreed, or ssl.SSLError."""
    context = client_tls_context(lab)
    if version is not None:
        with warnings.catch_warnings():
            # Offering TLS 1.0/1.1 is the point when checking that the server refuses them.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        # OpenSSL 3 will not offer TLS 1.0/1.1 at its default security level: lowered so that a
        # refusal can only come from the server.
        context.set_ciphers("ALL:@SECLEVEL=0")
    with _tls_connection(lab, port, context, address) as connection:
        return str(connection.version())


def served_certificate(lab: EdgeLab, port: int, address: str = LOOPBACK) -> bytes:
    """The leaf certificate (DER) the server presents right now, verified against the lab CA."""
    with _tls_connection(lab, port, client_tls_context(lab), address) as connection:
        certificate = connection.getpeercert(binary_form=True)
    if certificate is None:
        raise ssl.SSLError("no certificate presented")
    return certificate


def client_tls_context(lab: EdgeLab) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(lab.client_ca))


def grpc_options(lab: EdgeLab) -> dict[str, Any]:
    """qdrant-client's `grpc_options`: trust the lab CA and check the lab's name on loopback."""
    return {
        "root_certificates": lab.client_ca.read_bytes(),
        "grpc.ssl_target_name_override": lab.domain,
    }


def qdrant_client(lab: EdgeLab, api_key: str | None, address: str = LOOPBACK) -> QdrantClient:
    """qdrant-client over gRPC+TLS through nginx, configured as an application would be."""
    return QdrantClient(
        host=_bracketed(address),
        port=lab.host.ports.https,
        grpc_port=lab.host.ports.grpc_tls,
        prefer_grpc=True,
        https=True,
        api_key=api_key,
        grpc_options=grpc_options(lab),
        # The start-up version check goes over REST and ignores the gRPC trust settings.
        check_compatibility=False,
    )


def qdrant_rest_client(lab: EdgeLab, api_key: str | None) -> QdrantClient:
    """qdrant-client over REST+TLS through nginx, trusting only the lab CA. The lab's domain
    resolves to loopback by itself, so the client dials it by name."""
    return QdrantClient(
        url=f"https://{lab.domain}",
        port=lab.host.ports.https,
        api_key=api_key,
        verify=client_tls_context(lab),
        # The start-up version check ignores `verify`.
        check_compatibility=False,
    )


def grpc_channel(lab: EdgeLab, address: str = LOOPBACK) -> grpc.Channel:
    """A bare channel through nginx, for calls qdrant-client has no method for."""
    credentials = grpc.ssl_channel_credentials(root_certificates=lab.client_ca.read_bytes())
    return grpc.secure_channel(
        f"{_bracketed(address)}:{lab.host.ports.grpc_tls}",
        credentials,
        options=[("grpc.ssl_target_name_override", lab.domain)],
    )


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _tls_connection(
    lab: EdgeLab, port: int, context: ssl.SSLContext, address: str
) -> ssl.SSLSocket:
    raw = socket.create_connection((address, port), timeout=5)
    try:
        return context.wrap_socket(raw, server_hostname=lab.domain)
    except BaseException:
        raw.close()
        raise
