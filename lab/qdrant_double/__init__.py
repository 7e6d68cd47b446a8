"""Qdrant TEST DOUBLE: Qdrant v1.18's auth semantics in front of a real search engine, not Qdrant.

This module serves REST and gRPC on loopback with the authentication and
authorization rules of Qdrant v1.18 (``src/common/auth/*.rs`` and
``lib/storage/src/rbac`` in the qdrant/qdrant repository), so that integration
tests can put a real Nginx in front of something that answers 401 and 403
exactly where Qdrant would. Behind that layer, every data call is served by
Qdrant Edge (``qdrant-edge-py``), Qdrant's own segment, WAL and index code in
process: one ``EdgeShard`` per collection (``store.py``), with points, vectors,
payloads and payload indexes, count, scroll, the universal query (search and
recommend among it), payload and vector updates. Qdrant's older search and
recommend calls are answered through it. Bodies and messages are read and
written with qdrant-client's own models and conversions, then mapped onto
Edge's types (``edge_filters.py``, ``edge_points.py``, ``edge_queries.py``,
``edge_config.py``). The data persists under Qdrant's storage path
(``QDRANT__STORAGE__STORAGE_PATH``) in Qdrant's layout, so a restarted double
finds it again.

What Edge has not, because the server keeps it above its shards, the double
keeps as the server does, each place with the Qdrant file it follows: the
collection registry and config (``store.py``; lib/collection/src/config.rs),
aliases and names resolved through them (``store.py``;
lib/storage/src/content_manager/alias_mapping.rs and toc/mod.rs), point ids
given as query vectors, the exclusion of the points a query names, and
``average_vector`` recommendation (``edge_queries.py``;
lib/collection/src/operations/universal_query/collection_query.rs,
lib/segment/src/vector_storage/query/reco_query.rs),
a collection without vectors (``edge_config.py``; Edge wants one, the server
does not), the periodic flush of each shard's WAL and segments to disk
(``store.py``, every 5 s; lib/collection/src/update_handler.rs, ``flush_worker``).
The cluster endpoints answer as the server does on one node without
distributed mode (``standalone.py``: ``GET /cluster`` is ``disabled``, a
collection's cluster info its one Active local shard, its shard keys none,
cluster telemetry "Could not get telemetry from cluster" (no peer known), updates (shard keys
among them), peer removal and recovery Qdrant's own errors; src/actix/api/cluster_api.rs,
src/common/collections.rs, lib/storage/src/dispatcher.rs). Snapshots are
taken, listed, downloaded, streamed, deleted and recovered as the server does, in
Qdrant's snapshots path (``QDRANT__STORAGE__SNAPSHOTS_PATH``; ``snapshots/``
of the storage when unset) with Qdrant's names and SHA-256 ``.checksum`` files
(``snapshots.py``, ``snapshot_files.py``, ``snapshot_recovery.py``;
lib/storage/src/content_manager/snapshots/mod.rs, src/common/snapshots.rs,
lib/collection/src/collection/snapshots.rs). Edge has no call that takes a
snapshot, so the double writes the server's shard-snapshot tar itself after a
flush (``shard_snapshot.py``; lib/collection/src/shards/local_shard/snapshot.rs,
lib/segment/src/segment/snapshot.rs), and Edge's own ``unpack_snapshot`` and
``update_from_snapshot`` read it back: recovery goes through them.

Where the double answers differently from Qdrant's server, each with the file
it would follow:
- a snapshot is written with the shard's writes held back, where the server
  keeps accepting them through proxy segments
  (lib/collection/src/shards/local_shard/snapshot.rs,
  ``proxy_all_segments_and_apply``); the REST ``wait=false`` of a snapshot
  call is not honoured: the call always waits;
- a collection snapshot holds the shard (``0/``) and the collection's
  ``config.json`` only, not the server's ``version.info``, shard config,
  replica state or payload index schema (lib/collection/src/collection/snapshots.rs),
  so it is not claimed to restore on a Qdrant server; a shard snapshot lacks
  the replica set's ``shard_config.json`` likewise;
- recovering a collection that exists keeps its own config, where the server
  takes the snapshot's (lib/collection/src/collection/snapshots.rs,
  ``_restore_snapshot``);
  a missing one is created with the snapshot's vectors only;
- recovering from an http(s) URL with ``enable_snapshot_url_recovery`` on
  answers 501: the double fetches nothing (src/common/snapshots.rs,
  lib/storage/src/content_manager/snapshots/download.rs); with it off (the
  deployment's setting), Qdrant's 403, whose text
  (``Forbidden: Snapshot recovery from remote URLs is disabled``) is read
  only as far as Qdrant's own test of it asserts
  (tests/consensus_tests/test_disable_url_snapshot_recovery.py);
- a checksum mismatch on an upload is worded as on a recovery by location
  (``Snapshot checksum mismatch: expected ..., got ...``, src/common/snapshots.rs);
  the upload handler's own wording was not read (src/actix/api/snapshot_api.rs);
- a streamed shard snapshot is written whole to a temporary file, then sent (chunked), where
  the server sends it as it writes it (lib/collection/src/shards/shard_holder/mod.rs,
  ``stream_shard_snapshot``); like the server, it keeps no file of it;
- the REST shard key listing of a collection without custom sharding leaves out
  ``shard_keys``, as the double leaves out every unset field; whether the server writes it as
  ``null`` was not read (``ShardKeysResponse``'s serde attributes are not in the search tool's
  index; src/common/collections.rs builds it with ``shard_keys: None``);
- a shard id that is not a number is the double's 404 for a shard the
  collection lacks, and a peer id that is not one its 400 for a peer removal,
  where actix refuses the path before the handler (``web::Path<u64>``,
  src/actix/api/snapshot_api.rs, src/actix/api/cluster_api.rs);
- a missing snapshot's text, ``Not found: Snapshot <name> not found``, is read
  as far as the snapshot manager's ``not_found(format!("Snapshot {snapshot_name}"))``
  (lib/collection/src/common/snapshots_manager.rs); that helper's own wording
  was not read in v1.18's source, only ``CollectionError::NotFound``'s
  ``{what} not found`` (lib/collection/src/operations/types.rs);
- the peer id is drawn at each start, where Qdrant keeps it in
  ``raft_state.json`` (lib/storage/src/content_manager/consensus/persistent.rs);
- a collection's cluster info counts points with Edge's shard info, Qdrant with
  an approximate count (lib/collection/src/collection/mod.rs, ``cluster_info``);
- a gRPC write without its points selector, or a shard key call without its
  request, is judged for access first, then refused INVALID_ARGUMENT; Qdrant
  refuses it before the access check (src/tonic/api/update_common.rs,
  src/tonic/api/collections_api.rs);
- the endpoints ``rest_routes.py`` and ``grpc_api.py`` do not serve (telemetry, metrics,
  issues, a collection's update, optimizations and named vectors, facets, groups, discovery,
  batches of the older search and recommend, the distance matrix) answer 501 once their access
  check passes (src/actix/api/service_api.rs, src/actix/api/collections_api.rs, ...).

Every endpoint of Qdrant's REST spec and public gRPC port is judged by the
access rule Qdrant applies to it (``access_table.py``, generated by
``lab/gen_qdrant_access.py`` from the release's API surface and the per-family
rules of ``access_rules.py``); an allowed call to an endpoint the double does
not serve answers 501 (gRPC UNIMPLEMENTED). Bodies are read as Qdrant's serde
models read them (``bodies.py``), and a handler failure is Qdrant's 500
(INTERNAL), never a dropped connection.

What it mirrors, behaviour by behaviour and each with the Qdrant source file
it was read from, is ``QDRANT_BEHAVIOURS`` (``lab/qdrant_double/behaviours.py``).
It is configured from the environment variables Qdrant reads
(``DoubleConfig.from_env``), and ``unit_environment`` takes them from the
deployed systemd unit. Authentication happens before a request body is read
(the v1.18.1 fix); a JSON body is read before access is judged, as actix extracts
a handler's body before the handler's check; a rejected request with an unread
body gets ``Connection: close``.

With ``QDRANT__AUDIT__ENABLED`` it writes Qdrant's audit log (``audit.py``;
lib/storage/src/audit.rs): one JSON line per access-checked request, REST and gRPC, in Qdrant's
rotating files under ``QDRANT__AUDIT__DIR``, the remote address taken from ``Forwarded`` or
``X-Forwarded-For`` only with ``QDRANT__AUDIT__TRUST_FORWARDED_HEADERS``.

Simplifications: there is no request size limit (the proxy is the cap).
qdrant-client 1.20 has no stubs for v1.18's ``qdrant.StorageRead`` service: the
double reads only the collection its requests name (``grpc_storage_read.py``),
judges the call on it, and answers an allowed one with an empty message. The double has one
shard: a shard key selector is read and ignored.

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
