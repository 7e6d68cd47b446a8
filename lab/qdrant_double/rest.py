"""The REST listener: authenticates, reads a JSON body where Qdrant extracts one, then authorizes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.qdrant_double.access import Access, Authenticator, require_audited
from lab.qdrant_double.audit import AuditLog, Caller
from lab.qdrant_double.config import DoubleConfig
from lab.qdrant_double.errors import (
    BadRequest,
    DoubleError,
    Forbidden,
    NotFound,
    ServiceError,
    Unauthorized,
)
from lab.qdrant_double.paths import _public_page, canonical_path, is_public_path
from lab.qdrant_double.rest_routes import _jsonable, _match_route, _RestCall
from lab.qdrant_double.snapshots import Download, Stream
from lab.qdrant_double.store import Store

_STREAM_CHUNK = 1 << 20


class _RestServer(ThreadingHTTPServer):
    """Tracks open connections so that stop() can end keep-alive sessions and free ports."""

    daemon_threads = False  # server_close() joins the handler threads
    # socketserver's default listen backlog is 5: a proxy opening a few dozen upstream
    # connections at once overflows it, and every dropped SYN costs its request a 1 s retry.
    request_queue_size = 128

    def __init__(
        self, config: DoubleConfig, store: Store, auth: Authenticator, audit: AuditLog
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in config.rest_host else socket.AF_INET
        self.config = config
        self.store = store
        self.auth = auth
        self.audit = audit
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.rest_host, config.rest_port), _RestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients and proxies reset idle keep-alive connections; that is not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, each keep-alive response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    # Buffered, so that headers and body leave in one write (flushed after each request): written
    # apart, without Nagle they are two segments and the proxy wakes up twice per response.
    wbufsize = 64 * 1024
    server: _RestServer

    def _handle(self) -> None:
        started = time.perf_counter()
        self._body_read = False
        path = canonical_path(self.path)
        try:
            if is_public_path(path, self.server.config.enable_static_content):
                self._serve_public(path)
                return
            access, caller = self._authenticate(path)
            route, params = _match_route(self.command, path)
            # actix extracts a JSON body (a handler argument) before the handler checks access:
            # a body Qdrant cannot read is its 400 even for a token the endpoint refuses.
            request = None if route.read is None else route.read(self._read_json())
            require_audited(
                access,
                route.need,
                params.get("collection_name"),
                self.server.audit,
                caller,
                route.operation,
            )
            # Read in any case, to keep the stream usable; only an upload's handler looks at it.
            raw = self._read_body() if route.read is None else b""
            query = {
                name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()
            }
            call = _RestCall(
                self.server.store,
                access,
                params,
                request,
                query,
                body=raw,
                content_type=self.headers.get("Content-Type", ""),
                url_recovery=self.server.config.enable_snapshot_url_recovery,
            )
            answer = route.action(call)
            if isinstance(answer, Download):
                self._send_file(answer.path)
                return
            if isinstance(answer, Stream):
                self._send_stream(answer)
                return
            result = _jsonable(answer)
        except DoubleError as error:
            self._send_error(error)
            return
        except Exception as error:  # a handler failure is Qdrant's 500, never a dropped connection
            self.log_error("handler failure: %r", error)
            self._send_error(ServiceError(str(error)))
            return
        elapsed = time.perf_counter() - started
        self._send_json(200, {"result": result, "status": "ok", "time": elapsed})

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    def _authenticate(self, path: str) -> tuple[Access, Caller]:
        """The request's access, and its caller as the audit log records it (src/actix/auth.rs:
        the api is the path without its query)."""
        header = self.headers.get
        caller = self.server.audit.caller(header, self.client_address[0], path)
        try:
            access, auth_type, subject = self.server.auth.identify(header)
        except (Unauthorized, Forbidden) as error:
            self.server.audit.denied_auth(caller, error)
            raise
        return access, caller.authenticated(auth_type, subject)

    def _serve_public(self, path: str) -> None:
        page = _public_page(path, self.server.config.version) if self.command == "GET" else None
        if page is None:
            raise NotFound(f"Not found: {self.command} {path}")
        self._send(200, page[0], page[1])

    def _read_json(self) -> Any:
        raw = self._read_body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise BadRequest(f"Format error in JSON body: {error}") from None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            length = self.headers.get("Content-Length", "0").strip()
            if not length.isdigit():
                raise BadRequest("Invalid Content-Length")
            body = self.rfile.read(int(length))
        self._body_read = True
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline()
            try:
                size = int(size_line.split(b";", 1)[0], 16)
            except ValueError:
                raise BadRequest("Invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _has_unread_body(self) -> bool:
        if self._body_read:
            return False
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return chunked or self.headers.get("Content-Length", "0").strip() != "0"

    def _send_error(self, error: DoubleError) -> None:
        if error.auth_layer:
            self._send(error.http_status, None, str(error).encode())
            return
        self._send_json(error.http_status, {"status": {"error": str(error)}, "time": 0.0})

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send_file(self, path: Path) -> None:
        """A file as actix's `NamedFile` serves one with no known media type: an attachment."""
        with open(path, "rb") as read:
            size = os.fstat(read.fileno()).st_size
            self._send_headers(200, "application/octet-stream", size)
            self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
            self.end_headers()
            shutil.copyfileobj(read, self.wfile)

    def _send_stream(self, stream: Stream) -> None:
        """A snapshot as Qdrant's `SnapshotStream` answers one: an octet-stream attachment under
        its name, chunked; its file unlinked once open, so none is left whatever the client does."""
        with open(stream.path, "rb") as read:
            stream.path.unlink()
            self._send_headers(200, "application/octet-stream", None)
            self.send_header("Content-Disposition", f'attachment; filename="{stream.name}"')
            self.end_headers()
            for chunk in iter(lambda: read.read(_STREAM_CHUNK), b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, content_type: str | None, body: bytes) -> None:
        self._send_headers(status, content_type, len(body))
        self.end_headers()
        self.wfile.write(body)

    def _send_headers(self, status: int, content_type: str | None, length: int | None) -> None:
        """``length`` None: the body follows chunked."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        # A server about to close says so (RFC 9112, 9.6): the client asked for it, or the request
        # was refused before its body was read and the stream is unusable.
        if self.close_connection or self._has_unread_body():
            self.send_header("Connection", "close")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.config.log_requests:
            super().log_message(format, *args)
