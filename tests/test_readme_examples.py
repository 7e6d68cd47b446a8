"""The README's client example, run as written: what a newcomer copies must reach the open ports."""

from __future__ import annotations

from typing import Any

import pytest
import qdrant_client

from model.settings import PORTS
from tests.consumers.stack_files import EXAMPLE_STACK_FILE, deploy_stack_file
from tests.program import Exported, run_consumer
from tests.readme import python_block

RealClient = qdrant_client.QdrantClient


class _RecordedClient:
    """The real client, built from the example's arguments, that sends nothing anywhere."""

    made: list[RealClient] = []

    def __init__(self, **arguments: Any) -> None:
        # Only the start-up version probe is switched off: it would dial the example's host.
        real = RealClient(**arguments, check_compatibility=False)
        self.made.append(real)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture
def example_clients(monkeypatch):
    monkeypatch.setenv("QDRANT_HOST", "qdrant.example.com")
    monkeypatch.setenv("QDRANT_TOKEN", "token-from-the-stack")
    monkeypatch.setattr(qdrant_client, "QdrantClient", _RecordedClient)
    monkeypatch.setattr(_RecordedClient, "made", [])
    exec(python_block("from qdrant_client import QdrantClient"), {"print": lambda *a: None})
    return _RecordedClient.made


def test_readme_client_example_uses_rest_over_tls_on_the_https_port(example_clients):
    """6333 is never open: a client left on its default REST port cannot connect (qdrant-client
    uses REST even with prefer_grpc, e.g. for its version check)."""
    assert example_clients, "the README example builds no client"
    for client in example_clients:
        assert client._client.rest_uri == f"https://qdrant.example.com:{PORTS.https}"


def test_readme_grpc_example_uses_tls_on_the_grpc_edge_port(example_clients):
    grpc_clients = [client for client in example_clients if client._client._prefer_grpc]

    assert grpc_clients, "the README example has no gRPC client"
    for client in grpc_clients:
        assert client._client._grpc_port == PORTS.grpc_tls
        assert client._client._https is True


def test_readme_stack_reference_example_hands_the_app_its_host_and_its_token_as_a_secret():
    """The outputs and the token name the README tells an app to read exist in the example stack,
    and the token reaches the app still secret."""
    example = deploy_stack_file(EXAMPLE_STACK_FILE)
    domain = example.outputs["grpcHost"].value

    app = run_consumer(
        python_block("pulumi.StackReference("),
        {"my-org/secure-qdrant/dev": example.outputs},
    )

    assert app["app_env.QDRANT_HOST"] == Exported(domain, secret=False)
    token = app["app_env.QDRANT_TOKEN"]
    assert token.secret
    assert token.value == example.outputs["tokens"].value["search-api"]
