"""Qdrant's audit log: one JSON line per access-checked request, as Qdrant v1.18 writes it.

Read from qdrant/qdrant (the search tool's copies; none is tagged, the field set is the one the
v1.18.3 notes in /work/shared/reference/qdrant-auth.md list):
- ``lib/storage/src/audit.rs``: ``AuditConfig`` (the ``audit:`` settings and their defaults),
  ``AuditEvent`` (the line's fields, in serialization order, absent ones left out),
  ``extract_tracing_id`` and the rolling file appender (prefix ``audit``, suffix ``log``);
- ``lib/storage/src/rbac/auth.rs``, ``emit_audit``: a line per ``check_global_access`` (no
  collection) and ``check_collection_access`` (its collection), ``ok`` or ``denied`` with the
  ``StorageError``'s text; none for Qdrant's internal calls;
- ``src/common/auth/mod.rs``, ``log_denied_auth``: a credential refused before any check (none, a
  wrong key, a forged or expired token) is a ``denied`` line with ``auth_type`` ``none``, no
  subject, the request path and the ``AuthError``'s text (``Unauthorized: ...``/``Forbidden: ...``);
- ``src/actix/auth.rs`` and ``src/tonic/auth.rs``: the remote address is the ``Forwarded`` header,
  else ``X-Forwarded-For``, taken raw (``src/actix/forwarded.rs``, ``src/tonic/forwarded.rs``) and
  only with ``trust_forwarded_headers``; otherwise, and when neither is sent, the TCP peer's IP.
  gRPC reads the same headers (its metadata) as REST.

Where the double differs: ``method`` is Qdrant's internal operation name, given per handler in
Qdrant's source, which the double does not have; it writes the OpenAPI operation id of a REST
endpoint (``search_points``) and the snake-cased method of a gRPC call (``search``).
``AuthType``'s serde attributes were not found in the search tool's index: its values are written
snake-cased (``none``, ``api_key``, ``jwt``), the usual serde form of Qdrant's enums, unverified.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from lab.qdrant_double.errors import Unauthorized

Header = Callable[[str], str | None]

AUTH_NONE, AUTH_API_KEY, AUTH_JWT = "none", "api_key", "jwt"
"""``AuthType`` (lib/storage/src/rbac): no credential checked, a key, a JWT."""

MAX_TRACING_ID_LEN = 256
TRACING_ID_HEADERS = ("x-request-id", "x-tracing-id", "traceparent")
"""audit.rs, ``TRACING_ID_HEADERS``: checked in this order."""

_ROTATION_FORMATS = {"daily": "%Y-%m-%d", "hourly": "%Y-%m-%d-%H"}
"""tracing-appender's ``Rotation::DAILY``/``HOURLY`` file dates, in UTC."""


@dataclass(frozen=True)
class AuditConfig:
    """audit.rs, ``AuditConfig``, with its defaults."""

    enabled: bool = False
    dir: str = "./storage/audit"
    rotation: str = "daily"
    max_log_files: int = 7
    trust_forwarded_headers: bool = False
    log_api: bool = True

    def __post_init__(self) -> None:
        if self.rotation not in _ROTATION_FORMATS:
            raise ValueError(f"audit rotation must be daily or hourly, not {self.rotation!r}")
        if self.max_log_files < 0:
            raise ValueError("audit max_log_files must not be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], parse_bool: Callable[[str], bool]) -> AuditConfig:
        """The ``audit:`` keys as Qdrant reads them from ``QDRANT__AUDIT__<KEY>``."""
        default = cls()

        def flag(key: str, value: bool) -> bool:
            raw = environ.get(f"QDRANT__AUDIT__{key}")
            return value if raw is None else parse_bool(raw)

        return cls(
            enabled=flag("ENABLED", default.enabled),
            dir=environ.get("QDRANT__AUDIT__DIR", default.dir),
            rotation=environ.get("QDRANT__AUDIT__ROTATION", default.rotation).strip().lower(),
            max_log_files=int(environ.get("QDRANT__AUDIT__MAX_LOG_FILES", default.max_log_files)),
            trust_forwarded_headers=flag(
                "TRUST_FORWARDED_HEADERS", default.trust_forwarded_headers
            ),
            log_api=flag("LOG_API", default.log_api),
        )


@dataclass(frozen=True)
class Caller:
    """What the auth middleware knows of a request (src/actix/auth.rs, src/tonic/auth.rs):
    ``Auth``'s remote, api path, tracing id, then its auth type and the JWT's subject."""

    remote: str | None
    api: str
    tracing_id: str | None
    auth_type: str = AUTH_NONE
    subject: str | None = None

    def authenticated(self, auth_type: str, subject: str | None) -> Caller:
        return replace(self, auth_type=auth_type, subject=subject)


def remote_address(header: Header, peer_ip: str | None, trust_forwarded: bool) -> str | None:
    """The client address a line records: the raw ``Forwarded`` value, else ``X-Forwarded-For``,
    when trusted (actix/tonic ``forwarded.rs``: no parsing), else the TCP peer's IP."""
    if trust_forwarded:
        forwarded = header("forwarded") or header("x-forwarded-for")
        if forwarded is not None:
            return forwarded
    return peer_ip


def tracing_id(header: Header) -> str | None:
    """audit.rs, ``extract_tracing_id``: the first header present, cut to 256 bytes on a
    character boundary."""
    value = next((v for v in map(header, TRACING_ID_HEADERS) if v is not None), None)
    if value is None:
        return None
    return value.encode()[:MAX_TRACING_ID_LEN].decode(errors="ignore")


def timestamp(moment: dt.datetime) -> str:
    """chrono's serde form of a ``DateTime<Utc>``: RFC 3339 with ``Z``, the fraction in as few of
    3, 6 or 9 digits as hold it exactly, none when whole."""
    utc = moment.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    micro = utc.microsecond
    if micro:
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return text + "Z"


def audit_line(
    moment: dt.datetime,
    caller: Caller,
    *,
    method: str | None,
    api: str | None,
    collection: str | None,
    error: str | None,
) -> str:
    """One ``AuditEvent`` as serde_json writes it: fields in the struct's order, ``None`` left
    out (``skip_serializing_if``), ``result`` ``ok`` or ``denied`` (``AuditResult``, lowercase)."""
    fields = {
        "timestamp": timestamp(moment),
        "method": method,
        "api": api,
        "auth_type": caller.auth_type,
        "subject": caller.subject,
        "remote": caller.remote,
        "collection": collection,
        "tracing_id": caller.tracing_id,
        "result": "ok" if error is None else "denied",
        "error": error,
    }
    # serde_json's compact form; non-ASCII is written as is.
    return json.dumps(
        {name: value for name, value in fields.items() if value is not None},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def auth_error_text(error: Exception) -> str:
    """``AuthError``'s Display (src/common/auth/mod.rs): the kind, then Qdrant's message."""
    kind = "Unauthorized" if isinstance(error, Unauthorized) else "Forbidden"
    return f"{kind}: {error}"


def log_file_name(moment: dt.datetime, rotation: str) -> str:
    """tracing-appender's rolling name with prefix ``audit`` and suffix ``log``."""
    date = moment.astimezone(dt.UTC).strftime(_ROTATION_FORMATS[rotation])
    return f"audit.{date}.log"


class AuditLog:
    """Appends lines to the current rotation's file; on opening a new one, keeps the newest
    ``max_log_files`` (at least one, as audit.rs's ``.max(1)``). Disabled, it writes nothing."""

    def __init__(
        self,
        config: AuditConfig,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._open_name: str | None = None
        if config.enabled:
            Path(config.dir).mkdir(parents=True, exist_ok=True)

    def caller(self, header: Header, peer_ip: str | None, api: str) -> Caller:
        return Caller(
            remote=remote_address(header, peer_ip, self.config.trust_forwarded_headers),
            api=api,
            tracing_id=tracing_id(header),
        )

    def denied_auth(self, caller: Caller, error: Exception) -> None:
        """``log_denied_auth``: the path as the method and the api, no auth type or subject."""
        self._write(
            caller.authenticated(AUTH_NONE, None),
            method=caller.api,
            api=caller.api,
            collection=None,
            error=auth_error_text(error),
        )

    def checked(
        self, caller: Caller, method: str, collection: str | None, error: Exception | None
    ) -> None:
        """``emit_audit`` after an access check; ``error`` is its refusal, if any."""
        self._write(
            caller,
            method=method,
            api=caller.api if self.config.log_api else None,
            collection=collection,
            error=None if error is None else str(error),
        )

    def _write(
        self,
        caller: Caller,
        *,
        method: str,
        api: str | None,
        collection: str | None,
        error: str | None,
    ) -> None:
        if not self.config.enabled:
            return
        moment = self._clock()
        line = audit_line(
            moment, caller, method=method, api=api, collection=collection, error=error
        )
        name = log_file_name(moment, self.config.rotation)
        directory = Path(self.config.dir)
        with self._lock:
            if name != self._open_name:
                self._open_name = name
                (directory / name).touch()
                self._prune(directory)
            with open(directory / name, "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def _prune(self, directory: Path) -> None:
        pattern = re.compile(r"audit\.\d{4}-\d{2}-\d{2}(-\d{2})?\.log")
        logs = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
        for old in logs[: max(0, len(logs) - max(1, self.config.max_log_files))]:
            old.unlink()
