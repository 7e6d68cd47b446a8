"""The booted lab's outside network (lab/booted/outside.py), on a stand-in guest: a process in a
network namespace of its own, serving HTTP. Needs root and iproute2; no guest is booted."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from lab.booted.outside import (
    ADMIN_ADDRESS,
    GRPC_OUTSIDER_ADDRESS,
    GUEST_ADDRESS,
    GUEST_INTERFACE,
    MISTAKEN_ADDRESS,
    OUTSIDER_ADDRESS,
    WELL_BEHAVED_ADDRESS,
    outside,
)
from lab.processes import LabUnavailable, require_tools, wait_until

PORT = 8080


def netns_names() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


def guest_links(pid: int) -> str:
    listed = subprocess.run(
        ["nsenter", f"--target={pid}", "--net", "--", "ip", "-brief", "link"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout


@pytest.fixture
def stand_in_guest() -> Iterator[int]:
    """The PID of a process with a private network namespace and a server on every address."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    try:
        require_tools("ip", "nsenter", "unshare")
    except LabUnavailable as missing:
        pytest.skip(str(missing))
    serve = f"ip link set lo up && exec python3 -m http.server --bind 0.0.0.0 {PORT}"
    guest = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", serve],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield guest.pid
    finally:
        guest.kill()
        guest.wait()


def source_address() -> str:
    """The address the guest's server sees this connection come from."""

    def connect() -> bool:
        try:
            socket.create_connection((GUEST_ADDRESS, PORT), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(connect, "the stand-in guest's server")
    with socket.create_connection((GUEST_ADDRESS, PORT), timeout=2) as connection:
        return str(connection.getsockname()[0])


def test_each_client_reaches_the_guest_from_its_own_address(stand_in_guest: int) -> None:
    """What ufw's SSH rule, nginx's rate limit and fail2ban decide by is the client's address:
    each client must arrive with its own, not a shared gateway's."""
    with outside(stand_in_guest) as network:
        assert network.admin.call(source_address) == ADMIN_ADDRESS
        assert network.outsider.call(source_address) == OUTSIDER_ADDRESS
        assert network.grpc_outsider.call(source_address) == GRPC_OUTSIDER_ADDRESS
        assert network.well_behaved.call(source_address) == WELL_BEHAVED_ADDRESS
        assert network.mistaken.call(source_address) == MISTAKEN_ADDRESS


def test_a_clients_child_process_connects_from_the_clients_address(stand_in_guest: int) -> None:
    """gRPC clients run in a child process (grpcio connects from threads of its own, which the
    calling thread's namespace does not reach): the child must leave from the client's address."""
    with outside(stand_in_guest) as network:
        assert network.mistaken.call_in_process(source_address) == MISTAKEN_ADDRESS


def test_no_namespace_is_left_behind_when_the_block_fails(stand_in_guest: int) -> None:
    """Namespaces outlive the process that made them, and the guest's end of the lab network
    would stay in the guest: the lab must delete them itself, however the block ends."""
    with pytest.raises(RuntimeError, match="a test failed"):
        with outside(stand_in_guest) as network:
            prefix = network.outsider.namespace.rsplit("-", 1)[0]
            assert GUEST_INTERFACE in guest_links(stand_in_guest)
            raise RuntimeError("a test failed")
    assert [name for name in netns_names() if name.startswith(prefix)] == []
    assert GUEST_INTERFACE not in guest_links(stand_in_guest)
