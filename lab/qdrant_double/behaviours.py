"""Every Qdrant behaviour that `verify` and the edge rely on, with the Qdrant source that defines it.

Each entry was read in the qdrant/qdrant repository (the v1.18 line; paths as in v1.18.3) and is
what the double implements. tests/consumers/test_qdrant_behaviours.py holds exactly one test per
entry, run against the double, so a change here without a test (or a test without an entry) fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    source: str
    """The file in qdrant/qdrant that decides it."""
    summary: str


_AUTH = "src/common/auth/mod.rs"
_JWT = "src/common/auth/jwt_parser.rs"
_REST_AUTH = "src/actix/auth.rs"
_REST_APP = "src/actix/mod.rs"
_GRPC_AUTH = "src/tonic/auth.rs"

QDRANT_BEHAVIOURS: Mapping[str, Behaviour] = {
    "no-credentials-401": Behaviour(
        _AUTH, "no `api-key` header and no `Authorization: Bearer`: 401 (REST)"
    ),
    "unknown-key-401": Behaviour(
        _AUTH, "a key that is neither API key nor a JWT any parser decodes: 401"
    ),
    "malformed-token-401": Behaviour(_JWT, "a token that does not decode as HS256 JWT: 401"),
    "bad-signature-403": Behaviour(_JWT, "a JWT signed with another key: 403 (InvalidSignature)"),
    "expired-403": Behaviour(_JWT, "a JWT past `exp` (30 s leeway): 403 (ExpiredSignature)"),
    "auth-refusal-plain-text": Behaviour(
        _REST_AUTH,
        "the auth middleware's 401 and 403 carry its message as a bare body, no content "
        "type; a handler's RBAC 403 is the JSON error shape (`Forbidden: ...`)",
    ),
    "out-of-scope-403": Behaviour(
        "lib/storage/src/rbac/mod.rs", "a valid credential asking beyond its access: 403"
    ),
    "api-key-header-first": Behaviour(
        _AUTH, "`api-key` is read first: a wrong one is not rescued by a valid Bearer token"
    ),
    "bearer-prefix-case-sensitive": Behaviour(
        _AUTH, "only the exact prefix `Bearer ` is stripped from `Authorization`"
    ),
    "master-key-manages": Behaviour(_AUTH, "the API key gets global manage access"),
    "read-only-key-reads-only": Behaviour(
        _AUTH, "the read-only key gets global read: reads pass, writes 403"
    ),
    "jwt-signed-with-master-key": Behaviour(
        _AUTH, "JWTs are decoded with the API key (and alt key): one it signed is accepted"
    ),
    "alt-key-manages": Behaviour(
        _AUTH, "`alt_api_key` (rotation) is a second master key: global manage, like `api_key`"
    ),
    "jwt-signed-with-alt-key": Behaviour(
        _AUTH,
        "JWTs are also decoded with `alt_api_key`: one the previous master key signed is "
        "accepted while it is set, refused (403) once it is not",
    ),
    "read-only-key-signs-nothing": Behaviour(
        _AUTH, "the read-only key is not a JWT key: a token it signed gets 403"
    ),
    "no-access-claim-manages": Behaviour(
        "src/common/auth/claims.rs", "a JWT without `access` gets full manage access"
    ),
    "value-exists-collection-missing-403": Behaviour(
        _AUTH, "`value_exists` naming a collection that does not exist: 403 on every request"
    ),
    "value-exists-point-missing-401": Behaviour(
        _AUTH, "`value_exists` with no matching point in an existing collection: 401"
    ),
    "public-paths": Behaviour(
        _REST_APP,
        "without credentials: exact `/`, `/healthz`; prefixes `/readyz`, `/livez`, "
        "`/dashboard` (the last only with static content on)",
    ),
    "banner-shows-version": Behaviour(_REST_APP, "`GET /` answers `{title, version, commit}`"),
    "whitelist-on-normalized-path": Behaviour(
        _REST_APP, "the whitelist sees the normalized path (v1.18.2): no `/dashboard%2f..` bypass"
    ),
    "static-content-off-removes-dashboard": Behaviour(
        "src/actix/web_ui.rs",
        "`enable_static_content: false`: no `/dashboard` route and no whitelist entry for it",
    ),
    "snapshot-url-recovery-off-403": Behaviour(
        # The handler's own check was not in the searchable source; Qdrant's test of it was.
        "tests/consensus_tests/test_disable_url_snapshot_recovery.py",
        "`enable_snapshot_url_recovery: false`: recovering a collection or shard snapshot from an "
        "http(s) URL is 403 (`Snapshot recovery from remote URLs is disabled`), before any download",
    ),
    "auth-before-routing": Behaviour(
        _REST_AUTH, "the auth middleware runs before routing: an unknown path without a key is 401"
    ),
    "grpc-health-public": Behaviour(
        _GRPC_AUTH, "`qdrant.Qdrant/HealthCheck` and `grpc.health.v1.Health/Check` need no key"
    ),
    "grpc-status-mapping": Behaviour(
        _GRPC_AUTH, "gRPC answers UNAUTHENTICATED where REST says 401, PERMISSION_DENIED for 403"
    ),
    "grpc-storage-read-exists": Behaviour(
        "lib/api/src/grpc/proto/storage_read_service.proto",
        "the `qdrant.StorageRead` service serves raw shard files to collection readers",
    ),
}
