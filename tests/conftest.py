"""The test tiers (pytest.ini's markers, docs/testing.md), and the fixtures shared by the test
modules that talk to the Qdrant test double directly."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import grpc
import pytest

from lab.qdrant_double import QdrantDouble
from tests.double_client import start_double

# What a test needs beyond Python and requirements-dev.txt, by where it is: a directory, or a module
# all of whose tests need it. A test whose place says less carries its mark itself.
TIERS = ("root", "debian", "booted", "npm")
_TESTS = Path(__file__).resolve().parent
_LAB = ("root", "debian")  # the loopback labs: namespaces, loop devices, nginx, certbot, pebble
NEEDS: dict[str, tuple[str, ...]] = {
    "booted": ("booted", *_LAB),
    "bench": _LAB,
    "consumers/test_cloud_init.py": _LAB,  # Debian's cloud-init, its write_files as root
    "consumers/test_iam_deployer.py": ("npm",),
    "consumers/test_iam_dns01.py": ("npm",),
    "consumers/test_iam_evaluation.py": ("npm",),
    "host/test_audit_edge.py": _LAB,
    "host/test_bootstrap.py": _LAB,
    "host/test_converge.py": _LAB,
    "host/test_edge_matrix.py": _LAB,
    "host/test_fail2ban_jails.py": _LAB,
    "host/test_hostile_clients.py": _LAB,
    "host/test_metrics_publisher.py": ("debian",),  # the host's openssl and df
    "host/test_rotation_on_host.py": _LAB,
    "host/test_tls_edge.py": _LAB,
    "host/test_token_matrix.py": _LAB,
    "lab/test_dns01_lab.py": (*_LAB, "npm"),
    "lab/test_lab_command.py": _LAB,
    "lab/test_lab_serve.py": _LAB,
    "lab/test_readme_against_lab.py": _LAB,
    "lab/test_vm_ports.py": _LAB,
    "verify/test_allowlist_lab.py": _LAB,
    "verify/test_audit_logged_lab.py": _LAB,
    "verify/test_verify_dns01.py": _LAB,
    "verify/test_verify_lab.py": _LAB,
}


def _needs(item: pytest.Item) -> set[str]:
    if not item.path.is_relative_to(_TESTS):
        return set()
    path = item.path.relative_to(_TESTS)
    return {need for place, needs in NEEDS.items() if path.is_relative_to(place) for need in needs}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--unit",
        action="store_true",
        help="the unit tier: only tests needing none of " + ", ".join(TIERS) + "; a test that "
        "skips there fails, as one whose tier marker is missing",
    )


def pytest_configure(config: pytest.Config) -> None:
    # A place named here that no longer exists would leave its tests unmarked without a word.
    stale = [place for place in NEEDS if not (_TESTS / place).exists()]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py NEEDS names what is not there: {stale}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for need in sorted(_needs(item)):
            item.add_marker(need)
    if config.getoption("unit"):
        unit, other = [], []
        for item in items:
            (other if any(item.get_closest_marker(tier) for tier in TIERS) else unit).append(item)
        config.hook.pytest_deselected(items=other)
        items[:] = unit


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In the unit tier, a skip from inside a test or fixture (`pytest.skip("needs root")`) is a
    missing tier marker: on a laptop it would pass by unseen, so it fails, naming its reason. A
    `skipif` mark is a declared condition and skips as it says."""
    report = yield
    if not (report.skipped and item.config.getoption("unit")):
        return report
    # pytest raises a mark's skip at the test's own location; `pytest.skip()` at its caller's.
    if call.excinfo is not None and getattr(call.excinfo.value, "_use_item_location", False):
        return report
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in the unit tier ({reason}): mark what it needs ({', '.join(TIERS)}) "
        "in tests/conftest.py NEEDS or on the test"
    )
    return report


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
