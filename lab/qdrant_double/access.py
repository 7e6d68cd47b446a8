"""The access model (Qdrant's RBAC) and authentication: API keys, JWTs and their claims."""

from __future__ import annotations

import enum
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from lab.qdrant_double.audit import AUTH_API_KEY, AUTH_JWT, AuditLog, Caller
from lab.qdrant_double.config import DoubleConfig
from lab.qdrant_double.errors import AccessDenied, Forbidden, NotFound, Unauthorized
from lab.qdrant_double.store import Store
from lab.qdrant_double.values import Pairs, _is_int, _is_scalar

JWT_LEEWAY_SECONDS = 30


class Need(enum.Enum):
    """What an endpoint requires, in Qdrant's RBAC terms (`lib/storage/src/rbac/mod.rs`): global
    needs are checked with `check_global_access`, the others with `check_collection_access`."""

    PUBLIC = "public"  # no credential at all: the whitelisted paths and health methods
    LIST = "list"  # any valid credential; results are filtered to visible collections
    GLOBAL_READ = "global read"  # `r` or `m` global access; no collection token
    MANAGE = "manage"  # global `m` only
    READ = "read"
    WRITE_POINTS = "point write"  # rw or prw
    READ_COLLECTION = "collection read"  # r or rw, not prw (points only): the collection's extras
    WRITE_COLLECTION = "collection write"  # rw only: payload indexes, snapshots


@dataclass(frozen=True)
class _Requirements:
    """Qdrant's `AccessRequirements` of a Need, and whether it is checked globally."""

    global_scope: bool = False
    write: bool = False
    manage: bool = False
    extras: bool = False


_REQUIREMENTS = {
    Need.GLOBAL_READ: _Requirements(global_scope=True),
    Need.MANAGE: _Requirements(global_scope=True, manage=True),
    Need.READ: _Requirements(),
    Need.WRITE_POINTS: _Requirements(write=True),
    Need.READ_COLLECTION: _Requirements(extras=True),
    Need.WRITE_COLLECTION: _Requirements(write=True, extras=True),
}
_GLOBAL_MODES = frozenset({"r", "m"})
_COLLECTION_MODES = frozenset({"r", "rw", "prw"})


@dataclass(frozen=True)
class Access:
    """Either a global mode ("r" or "m") or per-collection modes (r, rw, prw)."""

    global_mode: str | None = None
    collections: Mapping[str, str] = field(default_factory=dict)

    def can_see(self, collection: str) -> bool:
        return self.global_mode is not None or collection in self.collections

    def require(self, need: Need, collection: str | None = None) -> None:
        """Raise AccessDenied, with Qdrant's words, unless this access allows ``need`` (on
        ``collection``)."""
        requirements = _REQUIREMENTS.get(need)
        if requirements is None:
            return
        if self.global_mode is not None:
            if self.global_mode == "r" and (requirements.write or requirements.manage):
                raise AccessDenied("Global manage access is required")
            return
        if requirements.global_scope:
            raise AccessDenied("Global access is required")
        name = collection or ""
        mode = self.collections.get(name)
        if mode is None:
            raise AccessDenied(f"Access to collection {name} is required")
        if requirements.extras and mode == "prw":
            raise AccessDenied(f"Only points access is allowed for collection {name}")
        if requirements.write and mode == "r":
            raise AccessDenied(f"Write access to collection {name} is required")


_COLLECTION_CHECKS = frozenset(need for need, r in _REQUIREMENTS.items() if not r.global_scope)


def require_audited(
    access: Access,
    need: Need,
    collection: str | None,
    audit: AuditLog,
    caller: Caller,
    method: str,
) -> None:
    """``access.require``, with the line Qdrant's ``Auth`` writes for the check (``emit_audit``,
    lib/storage/src/rbac/auth.rs): a collection-scoped check names its collection, a global one
    (and the listing calls, checked through ``Auth::access``) none."""
    scope = collection if need in _COLLECTION_CHECKS else None
    try:
        access.require(need, collection)
    except AccessDenied as error:
        audit.checked(caller, method, scope, error)
        raise
    audit.checked(caller, method, scope, None)


FULL_ACCESS = Access(global_mode="m")
READ_ACCESS = Access(global_mode="r")


class Authenticator:
    """Turns request headers (or gRPC metadata) into an Access, as Qdrant's AuthKeys does."""

    def __init__(self, config: DoubleConfig, store: Store) -> None:
        # Each is a master key and a JWT signing key: the alt one carries a rotation's old key.
        self._master_keys = tuple(
            key.encode() for key in (config.api_key, config.alt_api_key) if key
        )
        self._read_only_key = (
            config.read_only_api_key.encode() if config.read_only_api_key else None
        )
        self._jwt_rbac = config.jwt_rbac
        self._read_only_writes = config.read_only_writes
        self._store = store
        self._jws = jwt.PyJWS(algorithms=["HS256"])

    def authenticate(self, header: Callable[[str], str | None]) -> Access:
        """``header(name)`` returns the first value of a lower-case header name, or None."""
        return self.identify(header)[0]

    def identify(self, header: Callable[[str], str | None]) -> tuple[Access, str, str | None]:
        """The access, the auth type and the JWT's `subject` claim, as `validate_request` returns
        them (src/common/auth/mod.rs) for the audit log."""
        access, auth_type, subject = self._authenticate(header)
        if self._read_only_writes and access.global_mode == "r":
            return FULL_ACCESS, auth_type, subject
        return access, auth_type, subject

    def _authenticate(self, header: Callable[[str], str | None]) -> tuple[Access, str, str | None]:
        credential = header("api-key")
        if credential is None:
            authorization = header("authorization")
            if authorization is not None and authorization.startswith("Bearer "):
                credential = authorization[len("Bearer ") :]
        if credential is None:
            raise Unauthorized("Must provide an API key or an Authorization bearer token")
        presented = credential.encode()
        # Every key compared, as Qdrant's `can_write` does, whichever matches.
        if any([hmac.compare_digest(presented, key) for key in self._master_keys]):
            return FULL_ACCESS, AUTH_API_KEY, None
        if self._read_only_key is not None and hmac.compare_digest(presented, self._read_only_key):
            return READ_ACCESS, AUTH_API_KEY, None
        if not self._jwt_rbac:
            raise Unauthorized("Invalid API key or JWT")
        return self._access_from_jwt(credential)

    def _access_from_jwt(self, token: str) -> tuple[Access, str, str | None]:
        claims = _json_object(self._decode(token))
        _check_expiry(claims.get("exp"))
        for informational in ("sub", "subject"):
            if claims.get(informational) is not None and not isinstance(claims[informational], str):
                raise Unauthorized("Invalid API key or JWT")
        access = _access_from_claim(claims)
        if claims.get("value_exists") is not None:
            self._check_value_exists(claims["value_exists"])
        return access, AUTH_JWT, claims.get("subject")

    def _decode(self, token: str) -> bytes:
        """The payload under the first key that verifies it, else the first key's error: Qdrant
        tries a parser per key (api_key, then alt_api_key) and keeps the first claims or error."""
        errors: list[Exception] = []
        for key in self._master_keys:
            # Same order as jsonwebtoken: signature, exp format, expiry, then claim shapes.
            try:
                return self._jws.decode(token, key, algorithms=["HS256"])
            except jwt.InvalidSignatureError:
                # jsonwebtoken's Display of ErrorKind::InvalidSignature, as Qdrant words it.
                errors.append(Forbidden("Invalid JWT: InvalidSignature"))
            except jwt.InvalidTokenError:
                errors.append(Unauthorized("Invalid API key or JWT"))
        raise errors[0]

    def _check_value_exists(self, claim: Any) -> None:
        collection, pairs = _parse_value_exists(claim)
        try:
            found = self._store.has_matching_point(collection, pairs)
        except NotFound:
            raise Forbidden("Invalid JWT, stateful validation failed") from None
        if not found:
            raise Unauthorized("Invalid JWT, stateful validation failed")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(raw)
    except ValueError:
        raise Unauthorized("Invalid API key or JWT") from None
    if not isinstance(claims, dict):
        raise Unauthorized("Invalid API key or JWT")
    return claims


def _check_expiry(exp: Any) -> None:
    if exp is None:
        return
    if not _is_int(exp) or exp < 0:
        raise Unauthorized("Invalid API key or JWT")
    if exp < int(time.time()) - JWT_LEEWAY_SECONDS:
        raise Forbidden("Invalid JWT: ExpiredSignature")


def _access_from_claim(claims: Mapping[str, Any]) -> Access:
    if "access" not in claims:
        return FULL_ACCESS  # Qdrant's default: a token without `access` can do everything
    access = claims["access"]
    if isinstance(access, str) and access in _GLOBAL_MODES:
        return Access(global_mode=access)
    if not isinstance(access, list):
        raise Unauthorized("Invalid API key or JWT")
    grants: dict[str, str] = {}
    for entry in access:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("collection"), str)
            and isinstance(entry.get("access"), str)
            and entry["access"] in _COLLECTION_MODES
        ):
            raise Unauthorized("Invalid API key or JWT")
        if entry.get("payload") is not None:
            raise Unauthorized("Invalid JWT: payload restrictions are not supported")
        if entry["collection"] in grants:
            raise Unauthorized("Invalid JWT: collection name should be unique")
        grants[entry["collection"]] = entry["access"]
    return Access(collections=grants)


def _parse_value_exists(claim: Any) -> tuple[str, Pairs]:
    if not (
        isinstance(claim, dict)
        and isinstance(claim.get("collection"), str)
        and isinstance(claim.get("matches"), list)
    ):
        raise Unauthorized("Invalid API key or JWT")
    pairs = []
    for match in claim["matches"]:
        if not (
            isinstance(match, dict)
            and isinstance(match.get("key"), str)
            and _is_scalar(match.get("value"))
        ):
            raise Unauthorized("Invalid API key or JWT")
        pairs.append((match["key"], match["value"]))
    return claim["collection"], pairs
