"""The access model (Qdrant's RBAC) and authentication: API keys, JWTs and their claims."""

from __future__ import annotations

import enum
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Tuple

import jwt

from lab.qdrant_double.config import DoubleConfig
from lab.qdrant_double.errors import Forbidden, NotFound, Unauthorized
from lab.qdrant_double.store import Store
from lab.qdrant_double.values import Pairs, _is_int, _is_scalar

JWT_LEEWAY_SECONDS = 30


class Need(enum.Enum):
    """What an operation requires, in Qdrant's RBAC terms."""

    LIST = "list"  # any valid credential; results are filtered to visible collections
    READ = "read"
    WRITE_POINTS = "point write"  # rw or prw
    READ_COLLECTION = "collection read"  # r or rw, not prw (points only): snapshot lists
    WRITE_COLLECTION = "collection write"  # rw only: payload indexes, snapshots
    MANAGE = "manage"  # global m only


_GLOBAL_GRANTS = {
    "r": frozenset({Need.LIST, Need.READ, Need.READ_COLLECTION}),
    "m": frozenset(Need),
}
_COLLECTION_GRANTS = {
    "r": frozenset({Need.LIST, Need.READ, Need.READ_COLLECTION}),
    "prw": frozenset({Need.LIST, Need.READ, Need.WRITE_POINTS}),
    "rw": frozenset(
        {Need.LIST, Need.READ, Need.WRITE_POINTS, Need.READ_COLLECTION, Need.WRITE_COLLECTION}
    ),
}


@dataclass(frozen=True)
class Access:
    """Either a global mode ("r" or "m") or per-collection modes (r, rw, prw)."""

    global_mode: Optional[str] = None
    collections: Mapping[str, str] = field(default_factory=dict)

    def can_see(self, collection: str) -> bool:
        return self.global_mode is not None or collection in self.collections

    def require(self, need: Need, collection: Optional[str] = None) -> None:
        """Raise Forbidden unless this access allows ``need`` (on ``collection``)."""
        if self.global_mode is not None:
            granted = _GLOBAL_GRANTS[self.global_mode]
        elif collection is None:
            granted = frozenset({Need.LIST})
        elif collection in self.collections:
            granted = _COLLECTION_GRANTS[self.collections[collection]]
        else:
            raise Forbidden(f"Access to collection {collection} is required")
        if need not in granted:
            target = f" on collection {collection}" if collection else ""
            raise Forbidden(f"{need.value.capitalize()} access{target} is required")


FULL_ACCESS = Access(global_mode="m")
READ_ACCESS = Access(global_mode="r")


class Authenticator:
    """Turns request headers (or gRPC metadata) into an Access, as Qdrant's AuthKeys does."""

    def __init__(self, config: DoubleConfig, store: "Store") -> None:
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

    def authenticate(self, header: Callable[[str], Optional[str]]) -> Access:
        """``header(name)`` returns the first value of a lower-case header name, or None."""
        access = self._authenticate(header)
        if self._read_only_writes and access.global_mode == "r":
            return FULL_ACCESS
        return access

    def _authenticate(self, header: Callable[[str], Optional[str]]) -> Access:
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
            return FULL_ACCESS
        if self._read_only_key is not None and hmac.compare_digest(
            presented, self._read_only_key
        ):
            return READ_ACCESS
        if not self._jwt_rbac:
            raise Unauthorized("Invalid API key or JWT")
        return self._access_from_jwt(credential)

    def _access_from_jwt(self, token: str) -> Access:
        claims = _json_object(self._decode(token))
        _check_expiry(claims.get("exp"))
        for informational in ("sub", "subject"):
            if claims.get(informational) is not None and not isinstance(
                claims[informational], str
            ):
                raise Unauthorized("Invalid API key or JWT")
        access = _access_from_claim(claims)
        if claims.get("value_exists") is not None:
            self._check_value_exists(claims["value_exists"])
        return access

    def _decode(self, token: str) -> bytes:
        """The payload under the first key that verifies it, else the first key's error: Qdrant
        tries a parser per key (api_key, then alt_api_key) and keeps the first claims or error."""
        errors: list[Exception] = []
        for key in self._master_keys:
            # Same order as jsonwebtoken: signature, exp format, expiry, then claim shapes.
            try:
                return self._jws.decode(token, key, algorithms=["HS256"])
            except jwt.InvalidSignatureError as error:
                errors.append(Forbidden(f"Invalid JWT: {error}"))
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
    if isinstance(access, str) and access in _GLOBAL_GRANTS:
        return Access(global_mode=access)
    if not isinstance(access, list):
        raise Unauthorized("Invalid API key or JWT")
    grants: dict[str, str] = {}
    for entry in access:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("collection"), str)
            and isinstance(entry.get("access"), str)
            and entry["access"] in _COLLECTION_GRANTS
        ):
            raise Unauthorized("Invalid API key or JWT")
        if entry.get("payload") is not None:
            raise Unauthorized("Invalid JWT: payload restrictions are not supported")
        if entry["collection"] in grants:
            raise Unauthorized("Invalid JWT: collection name should be unique")
        grants[entry["collection"]] = entry["access"]
    return Access(collections=grants)


def _parse_value_exists(claim: Any) -> Tuple[str, Pairs]:
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
