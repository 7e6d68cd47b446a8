"""Qdrant TEST DOUBLE: Qdrant v1.18's documented auth semantics, not Qdrant.

This module serves REST and gRPC on loopback with the authentication and
authorization rules of Qdrant v1.18 (``src/common/auth/*.rs`` and
``lib/storage/src/rbac`` in the qdrant/qdrant repository), so that integration
tests can put a real Nginx in front of something that answers 401 and 403
exactly where Qdrant would. It is not a vector database: vectors are accepted
and dropped; payloads are kept in memory so that scroll, retrieve and the JWT
``value_exists`` check have something to look at.

Mirrored from Qdrant:

* Credentials: the ``api-key`` header, else ``authorization: Bearer <token>``
  (case-sensitive prefix); the same metadata keys on gRPC. ``api_key`` gives
  global manage, ``read_only_api_key`` global read, then (only with
  ``jwt_rbac``) an HS256 JWT signed with the raw ``api_key`` bytes, 30 s leeway.
* JWT claims: ``access`` ``"r"`` | ``"m"`` | ``[{collection, access: r|rw|prw}]``;
  an absent ``access`` means full manage; duplicate collections or a per-collection
  ``payload`` constraint make the token invalid; ``value_exists`` must match a
  point (401 if none, 403 if the collection does not exist). Other claims are
  ignored, as in Qdrant.
* Status: no credential, unknown key, malformed token 401; bad signature or
  expired token 403; operation outside the token's scope 403. gRPC uses
  UNAUTHENTICATED and PERMISSION_DENIED for the same cases.
* Without credentials: REST ``/`` (banner), ``/healthz``, ``/readyz*``,
  ``/livez*``, ``/dashboard*`` (a placeholder page), matched on the
  percent-decoded, normalized path (the v1.18.2 fix: ``/dashboard%2f..%2fcollections``
  needs a credential). gRPC ``qdrant.Qdrant/HealthCheck`` and
  ``grpc.health.v1.Health/Check``.
* Authorization happens before a request body is read (the v1.18.1 fix); a
  rejected request with an unread body gets ``Connection: close``.

Simplifications: scroll filters only support ``{"must": [{"key", "match": {"value"}}]}``;
``with_payload`` is all or nothing; keys are dotted paths (``a.b``, ``a[].b``);
there is no request size limit (the proxy is the cap). qdrant-client 1.20 has
no stubs for v1.18's ``qdrant.StorageRead`` service, so every method under it
answers an empty message to any authenticated caller: enough for a proxy test
to check that the service is blocked.

Run ``python -m lab.qdrant_double --help``; keys come from the environment
variables real Qdrant reads, never from the command line.
"""

from lab.qdrant_double.access import (
    FULL_ACCESS,
    JWT_LEEWAY_SECONDS,
    READ_ACCESS,
    Access,
    Authenticator,
    Need,
)
from lab.qdrant_double.cli import main
from lab.qdrant_double.config import TITLE, DoubleConfig
from lab.qdrant_double.errors import (
    BadRequest,
    Conflict,
    DoubleError,
    Forbidden,
    NotFound,
    Unauthorized,
)
from lab.qdrant_double.paths import canonical_path, is_public_path
from lab.qdrant_double.server import QdrantDouble
from lab.qdrant_double.store import Store, filter_pairs, payload_matches, point_id
from lab.qdrant_double.values import Pairs, PointId, Record, Scalar

__all__ = [
    "FULL_ACCESS",
    "JWT_LEEWAY_SECONDS",
    "READ_ACCESS",
    "TITLE",
    "Access",
    "Authenticator",
    "BadRequest",
    "Conflict",
    "DoubleConfig",
    "DoubleError",
    "Forbidden",
    "Need",
    "NotFound",
    "Pairs",
    "PointId",
    "QdrantDouble",
    "Record",
    "Scalar",
    "Store",
    "Unauthorized",
    "canonical_path",
    "filter_pairs",
    "is_public_path",
    "main",
    "payload_matches",
    "point_id",
]
