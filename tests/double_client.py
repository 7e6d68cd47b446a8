"""Starting the Qdrant test double and talking to it, for the tests that exercise it directly.

Every server listens on ephemeral loopback ports and is stopped by its fixture.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest

from lab.qdrant_double import DoubleConfig, QdrantDouble

KEY = "master-key-for-tests-0123456789abcdef"
READ_ONLY_KEY = "read-only-key-for-tests-0123456789ab"
WRONG_KEY = "not-the-master-key-0123456789abcdef0"
NEW_KEY = "rotated-master-key-0123456789abcdef0"
VECTORS = {"size": 4, "distance": "Cosine"}
UPSERT = {"points": [{"id": 7, "vector": [0.1, 0.2, 0.3, 0.4], "payload": {"n": 7}}]}


def double_config(**overrides: Any) -> DoubleConfig:
    """The tests' keys, JWT RBAC on, ephemeral loopback ports."""
    settings: dict[str, Any] = {
        "api_key": KEY,
        "read_only_api_key": READ_ONLY_KEY,
        "jwt_rbac": True,
        "rest_port": 0,
        "grpc_port": 0,
        **overrides,
    }
    return DoubleConfig(**settings)


def start_double(**overrides: Any) -> QdrantDouble:
    """A double with collections `alpha` (one point without vectors, payload tenant/token_id) and
    `beta`."""
    double = QdrantDouble(double_config(**overrides)).start()
    double.store.create("alpha", VECTORS)
    double.store.create("beta", VECTORS)
    double.store.upsert("alpha", [(1, {"tenant": "acme", "token_id": "t-1"})])
    return double


def token(claims: dict[str, Any], key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def api_key(value: str) -> dict[str, str]:
    return {"api-key": value}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def rest(
    double: QdrantDouble,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request on a fresh connection; JSON bodies are decoded, others come back as text."""
    connection = http.client.HTTPConnection("127.0.0.1", double.rest_port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(raw)
        return response.status, raw.decode()
    finally:
        connection.close()


def status(double: QdrantDouble, method: str, path: str, body: Any = None, **kw: Any) -> int:
    return rest(double, method, path, body, **kw)[0]


def grpc_code(call: Callable[[], Any]) -> grpc.StatusCode:
    """The status code `call` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()
