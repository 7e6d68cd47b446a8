"""The double's access table covers Qdrant v1.18.3's whole API surface, and every endpoint, served or
not, is judged by Qdrant's access rule before anything else.

The surface (the release's OpenAPI spec and gRPC method list) is in `shared/reference/` beside the
checkout; the tests that read it skip on a clone without it, but never in CI, which always has it
beside the clone: there a missing reference fails them instead of passing them by.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from qdrant_client import grpc as qgrpc
from qdrant_client.grpc import (
    collections_service_pb2_grpc,
    points_service_pb2_grpc,
)

from lab import gen_qdrant_access
from lab.qdrant_double import Need, QdrantDouble, is_public_path
from lab.qdrant_double.access_table import GRPC_METHODS, JSON_BODY_OPERATIONS, REST_ENDPOINTS
from lab.qdrant_double.rest_routes import _ACTIONS, _READERS
from tests.double_client import KEY, READ_ONLY_KEY, api_key, bearer, rest, token
from tests.readme import TESTING, prose

REFERENCE = gen_qdrant_access.find_reference()
needs_reference = pytest.mark.skipif(
    REFERENCE is None and not os.environ.get("CI"),
    reason=f"no {gen_qdrant_access.REFERENCE_NAME} reference beside the checkout",
)


def _reference(name: str) -> Any:
    assert REFERENCE is not None
    return json.loads((REFERENCE / name).read_text())


# ----------------------------------------------------------------------------- the table


@needs_reference
def test_every_rest_endpoint_of_the_release_has_an_access_rule() -> None:
    """An endpoint without a rule would be answered 404 whatever the token, where Qdrant says 403:
    the token matrix could not judge it."""
    spec = gen_qdrant_access.rest_endpoints(_reference("openapi.json"))
    covered = {(method, path) for method, path, _, _ in REST_ENDPOINTS}
    assert [(method, path) for method, path, _ in spec if (method, path) not in covered] == []


@needs_reference
def test_every_public_grpc_method_of_the_release_has_an_access_rule() -> None:
    """Likewise for each method of Qdrant's public gRPC port (internal services excluded)."""
    methods = gen_qdrant_access.public_grpc_methods(_reference("grpc-methods.json"))
    covered = {name for name, _ in GRPC_METHODS}
    assert [name for name in methods if f"/{name}" not in covered] == []


@needs_reference
def test_committed_table_is_what_the_generator_derives() -> None:
    """A table edited by hand, or rules changed without regenerating, would silently diverge from
    Qdrant's surface."""
    assert REFERENCE is not None
    committed = gen_qdrant_access.TABLE_PATH.read_text()
    assert committed == gen_qdrant_access.render_table(REFERENCE)


def test_generator_refuses_an_endpoint_without_a_rule(tmp_path: Path) -> None:
    """A new endpoint in a release must stop the generator, not get a default rule."""
    (tmp_path / "openapi.json").write_text(
        json.dumps({"paths": {"/new": {"get": {"operationId": "brand_new_endpoint"}}}})
    )
    (tmp_path / "grpc-methods.json").write_text(json.dumps({"methods": []}))
    with pytest.raises(gen_qdrant_access.UncoveredSurface, match="brand_new_endpoint"):
        gen_qdrant_access.render_table(tmp_path)


def test_every_served_endpoint_is_in_the_table() -> None:
    """An action whose operationId is not Qdrant's would never be routed."""
    operations = {operation for _, _, operation, _ in REST_ENDPOINTS}
    assert sorted(set(_ACTIONS) - operations) == []


def test_served_endpoints_parse_a_body_exactly_where_qdrant_reads_one() -> None:
    """A body is read before access only where Qdrant's handler extracts one (its spec's JSON
    request bodies): a reader elsewhere would turn a refusal into a 400."""
    served_with_body = sorted(set(_ACTIONS) & JSON_BODY_OPERATIONS)
    assert sorted(_READERS) == served_with_body


def test_public_endpoints_are_exactly_the_whitelisted_paths() -> None:
    """The auth whitelist (paths.py) and the table agree: no endpoint the table judges public needs a
    credential, and none it judges is let through without one."""
    for method, path, operation, need in REST_ENDPOINTS:
        concrete = re.sub(r"\{\w+\}", "alpha", path)
        assert is_public_path(concrete) == (need is Need.PUBLIC), (method, path, operation)


# ----------------------------------------------------------------------------- unserved endpoints

CREDENTIALS: dict[str, dict[str, str]] = {
    "master key": api_key(KEY),
    "read-only key": api_key(READ_ONLY_KEY),
    "global r": bearer(token({"access": "r"})),
    "global m": bearer(token({"access": "m"})),
    "alpha r": bearer(token({"access": [{"collection": "alpha", "access": "r"}]})),
    "alpha rw": bearer(token({"access": [{"collection": "alpha", "access": "rw"}]})),
    "alpha prw": bearer(token({"access": [{"collection": "alpha", "access": "prw"}]})),
    "no credential": {},
    "payload-scoped": bearer(
        token({"access": [{"collection": "alpha", "access": "r", "payload": {"tenant": "acme"}}]})
    ),
}
UNAUTHENTICATED = frozenset({"no credential", "payload-scoped"})

# Who Qdrant lets through, per kind of check (lib/storage/src/rbac/mod.rs; the matrix of Qdrant's
# own tests/auth_tests/test_jwt_access.py, with `prw` from v1.18's CollectionAccessMode).
ANY_CREDENTIAL = frozenset(CREDENTIALS) - UNAUTHENTICATED
GLOBAL_READERS = frozenset({"master key", "read-only key", "global r", "global m"})
MANAGERS = frozenset({"master key", "global m"})
COLLECTION_READERS = GLOBAL_READERS | {"alpha r", "alpha rw", "alpha prw"}
EXTRAS_WRITERS = MANAGERS | {"alpha rw"}

UNSERVED_REST = {
    "GET /telemetry": ANY_CREDENTIAL,
    "GET /issues": ANY_CREDENTIAL,
    "GET /metrics": GLOBAL_READERS,
    "DELETE /issues": MANAGERS,
    "PATCH /collections/alpha": MANAGERS,
    "POST /collections/alpha/facet": COLLECTION_READERS,
    "POST /collections/alpha/points/query/groups": COLLECTION_READERS,
    "PUT /collections/alpha/vectors/extra": EXTRAS_WRITERS,
    "DELETE /collections/alpha/vectors/extra": EXTRAS_WRITERS,
}


def _expected_status(credential: str, allowed: frozenset[str]) -> int:
    if credential in UNAUTHENTICATED:
        return 401
    return 501 if credential in allowed else 403


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("endpoint", UNSERVED_REST)
def test_unserved_rest_endpoint_is_judged_before_it_is_refused(
    shared_double: QdrantDouble, endpoint: str, credential: str
) -> None:
    """A token Qdrant refuses must be refused by the double too (401, or 403 with Qdrant's
    `Forbidden: ` text); only an allowed one learns the double does not serve the endpoint."""
    method, path = endpoint.split(" ")
    body = {} if method in ("PUT", "POST", "PATCH") else None
    code, answer = rest(shared_double, method, path, body, headers=CREDENTIALS[credential])
    assert code == _expected_status(credential, UNSERVED_REST[endpoint])
    if code == 403:
        assert answer["status"]["error"].startswith("Forbidden: ")


GrpcCall = Callable[[grpc.Channel, list[tuple[str, str]]], Any]


def _call(stub: Any, method: str, request: Any) -> GrpcCall:
    return lambda channel, metadata: getattr(stub(channel), method)(request, metadata=metadata)


_POINTS = points_service_pb2_grpc.PointsStub
_COLLECTIONS = collections_service_pb2_grpc.CollectionsStub
UNSERVED_GRPC: dict[str, tuple[GrpcCall, frozenset[str]]] = {
    "Points/Facet": (
        _call(_POINTS, "Facet", qgrpc.FacetCounts(collection_name="alpha", key="n")),
        COLLECTION_READERS,
    ),
    "Collections/Update": (
        _call(_COLLECTIONS, "Update", qgrpc.UpdateCollection(collection_name="alpha")),
        MANAGERS,
    ),
    "Points/CreateVectorName": (
        _call(
            _POINTS,
            "CreateVectorName",
            qgrpc.CreateVectorNameRequest(collection_name="alpha", vector_name="extra"),
        ),
        EXTRAS_WRITERS,
    ),
}
_GRPC_STATUS = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    501: grpc.StatusCode.UNIMPLEMENTED,
}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method", UNSERVED_GRPC)
def test_unserved_grpc_method_is_judged_before_it_is_refused(
    shared_double: QdrantDouble, method: str, credential: str
) -> None:
    """The same on gRPC: UNAUTHENTICATED, PERMISSION_DENIED (`Forbidden: ...`), and UNIMPLEMENTED
    only for a caller Qdrant would serve."""
    call, allowed = UNSERVED_GRPC[method]
    metadata = [(name.lower(), value) for name, value in CREDENTIALS[credential].items()]
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(shared_double.grpc_target, options=options) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            call(channel, metadata)
    expected = _GRPC_STATUS[_expected_status(credential, allowed)]
    assert refused.value.code() == expected
    if expected == grpc.StatusCode.PERMISSION_DENIED:
        assert refused.value.details().startswith("Forbidden: ")


def test_the_documented_counts_are_the_tables() -> None:
    """docs/testing.md's endpoint counts are the generated table's, not a figure written once."""
    documented = prose(TESTING)
    rest_count = len(REST_ENDPOINTS)
    grpc_count = len(GRPC_METHODS)
    assert f"REST spec ({rest_count}) and public gRPC port ({grpc_count})" in documented
