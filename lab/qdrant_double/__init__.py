"""Qdrant TEST DOUBLE: Qdrant v1.18's auth semantics in front of a real search engine, not Qdrant.

This module serves REST and gRPC on loopback with the authentication and
authorization rules of Qdrant v1.18 (``src/common/auth/*.rs`` and
``lib/storage/src/rbac`` in the qdrant/qdrant repository), so that integration
tests can put a real Nginx in front of something that answers 401 and 403
exactly where Qdrant would. Behind that layer, every data call is served by
qdrant-client's local mode (``QdrantClient(path=...)``): collections, points
with their vectors and payloads, count, scroll, the universal query (search and
recommend among it), payload and vector updates, aliases. Qdrant's older search
and recommend calls are answered through it. Bodies and messages are read
and written with qdrant-client's own models and conversions; search is exact
(no HNSW), payload indexes are accepted but change nothing, and snapshots are
not served (501, gRPC UNIMPLEMENTED). The data persists under Qdrant's storage
path (``QDRANT__STORAGE__STORAGE_PATH``), so a restarted double finds it again.

What it mirrors, behaviour by behaviour and each with the Qdrant source file
it was read from, is ``QDRANT_BEHAVIOURS`` (``lab/qdrant_double/behaviours.py``).
It is configured from the environment variables Qdrant reads
(``DoubleConfig.from_env``), and ``unit_environment`` takes them from the
deployed systemd unit. Authorization happens before a request body is read
(the v1.18.1 fix); a rejected request with an unread body gets
``Connection: close``.

Simplifications: there is no request size limit (the proxy is the cap).
qdrant-client 1.20 has no stubs for v1.18's ``qdrant.StorageRead`` service, so
every method under it answers an empty message to any authenticated caller:
enough for a proxy test to check that the service is blocked.

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
from lab.qdrant_double.behaviours import QDRANT_BEHAVIOURS, Behaviour
from lab.qdrant_double.cli import main
from lab.qdrant_double.config import TITLE, DoubleConfig, unit_environment
from lab.qdrant_double.errors import (
    BadRequest,
    Conflict,
    DoubleError,
    Forbidden,
    NotFound,
    Unauthorized,
    Unsupported,
)
from lab.qdrant_double.paths import canonical_path, is_public_path
from lab.qdrant_double.server import QdrantDouble
from lab.qdrant_double.store import Store
from lab.qdrant_double.values import Pairs, PointId, Record, Scalar

__all__ = [
    "FULL_ACCESS",
    "JWT_LEEWAY_SECONDS",
    "READ_ACCESS",
    "TITLE",
    "QDRANT_BEHAVIOURS",
    "Access",
    "Authenticator",
    "BadRequest",
    "Behaviour",
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
    "Unsupported",
    "canonical_path",
    "is_public_path",
    "main",
    "unit_environment",
]
