"""Fixtures shared by the test modules that talk to the Qdrant test double directly."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from lab.qdrant_double import QdrantDouble
from tests.double_client import start_double


def _running_double() -> Iterator[QdrantDouble]:
    """A running double with collections `alpha` and `beta`, stopped after its scope."""
    running = start_double()
    try:
        yield running
    finally:
        running.stop()


double = pytest.fixture(_running_double, name="double")
shared_double = pytest.fixture(_running_double, name="shared_double", scope="module")
"""One double for a module whose tests change nothing in it."""


@pytest.fixture
def channel(double: QdrantDouble) -> Iterator[grpc.Channel]:
    """A plain gRPC channel to the double (loopback only: no proxy)."""
    with grpc.insecure_channel(double.grpc_target, options=[("grpc.enable_http_proxy", 0)]) as ch:
        yield ch
