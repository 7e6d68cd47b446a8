"""The booted guest's outside: clients with addresses of their own that reach it directly.

slirp4netns publishes only the public ports and every connection it carries reaches the guest from
its gateway, one address for everyone: nothing that decides by the client's address (ufw's SSH rule,
nginx's per-address rate limit, fail2ban's bans) can be tried through it. So the guest also gets a
second interface on a lab network: a bridge in a namespace of its own (the switch), the guest's end
of a veth pair moved into the guest's network namespace, and one network namespace per client.
The addresses are from TEST-NET-2 (RFC 5737), routed nowhere: nothing here can reach beyond the
lab. `outside()` deletes the guest's end and every namespace it made (their links go with them),
however its block ends: nothing is left behind.

A client's code runs in a thread that joined the client's namespace (`Client.call`): every socket
it opens, with the ordinary Python clients, leaves from the client's address. grpcio opens its
sockets from threads of its own, which a namespace set for one thread does not reach: gRPC clients
run in a child process started from that thread (`Client.call_in_process`), all of whose threads are
in the namespace.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lab.processes import require_tools, run

T = TypeVar("T")
# Fork would copy whatever threads and locks the test process holds (grpcio's among them).
CHILD_PROCESSES = multiprocessing.get_context("spawn")

NETWORK_PREFIX = 24
GUEST_ADDRESS = "198.51.100.1"
"""The guest's address on the lab network, as the security group's public IP would be."""
ADMIN_CIDR = "198.51.100.8/29"
"""The booted host's `adminCidrs`: only addresses in it may reach SSH."""
ADMIN_ADDRESS = "198.51.100.9"
OUTSIDER_ADDRESS = "198.51.100.20"
GRPC_OUTSIDER_ADDRESS = "198.51.100.21"
WELL_BEHAVED_ADDRESS = "198.51.100.30"
MISTAKEN_ADDRESS = "198.51.100.40"
GUEST_INTERFACE = "outside0"
# From sched.h: setns(2) into a network namespace.
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


@dataclass(frozen=True)
class Client:
    name: str
    address: str
    namespace: str
    """The `ip netns` name."""

    def call(self, function: Callable[[], T]) -> T:
        """`function()` run from this client's address: in a thread inside its namespace (a
        namespace is a thread's own, the caller's stays as it was)."""
        outcome: list[T] = []
        failure: list[BaseException] = []

        def inside() -> None:
            try:
                _join_namespace(self.namespace)
                outcome.append(function())
            except BaseException as error:  # re-raised in the caller's thread
                failure.append(error)

        thread = threading.Thread(target=inside, name=f"client-{self.name}")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return outcome[0]

    def call_in_process(self, function: Callable[..., T], *arguments: object) -> T:
        """`function(*arguments)` run from this client's address in a child process (a new Python:
        `function`, its arguments and its result must pickle), which ends with the call."""

        def in_child() -> T:
            with ProcessPoolExecutor(max_workers=1, mp_context=CHILD_PROCESSES) as child:
                return child.submit(function, *arguments).result()

        return self.call(in_child)

    def command(self, *arguments: str) -> list[str]:
        """`arguments` run as a command in this client's namespace."""
        return ["ip", "netns", "exec", self.namespace, *arguments]


@dataclass(frozen=True)
class Outside:
    guest_address: str
    admin: Client
    """Inside the host's `adminCidrs`."""
    outsider: Client
    """Anyone on the internet: outside `adminCidrs`."""
    grpc_outsider: Client
    """Another one, flooding over gRPC: no ban or failure count of the outsider's is its own."""
    well_behaved: Client
    """An application with a valid key, staying under the rate limit."""
    mistaken: Client
    """An application with a wrong key, staying under the rate limit: a few 401s, never banned."""


def _join_namespace(namespace: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(f"{NETNS_DIR}/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def _namespace(stack: ExitStack, name: str) -> str:
    run(["ip", "netns", "add", name])
    stack.callback(run, ["ip", "netns", "delete", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return name


def _attach(switch: str, port: str, namespace_flag: str, inner: str) -> None:
    """A veth pair: `port` on the switch's bridge, its peer `inner` in another namespace (a name,
    or a PID for the guest's, which has no name)."""
    run(["ip", "-n", switch, "link", "add", port, "type", "veth",
         "peer", "name", inner, "netns", namespace_flag])  # fmt: skip
    run(["ip", "-n", switch, "link", "set", port, "master", "br0", "up"])


def _delete_link(guest_pid: int, in_guest: list[str]) -> None:
    """Unless the guest is gone already, and its network namespace with it."""
    if Path(f"/proc/{guest_pid}").exists():
        run([*in_guest, "link", "delete", GUEST_INTERFACE])


@contextmanager
def outside(guest_pid: int) -> Iterator[Outside]:
    """The lab network around the guest whose PID 1 is `guest_pid`; removed on exit."""
    require_tools("ip", "nsenter")
    prefix = f"sq-{secrets.token_hex(3)}"
    with ExitStack() as stack:
        switch = _namespace(stack, f"{prefix}-switch")
        run(["ip", "-n", switch, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", switch, "link", "set", "br0", "up"])
        _attach(switch, "guest", str(guest_pid), GUEST_INTERFACE)
        in_guest = ["nsenter", f"--target={guest_pid}", "--net", "--", "ip"]
        # A deleted namespace takes its links down only when the kernel gets round to it: the
        # guest's end would linger for a while. Deleting it deletes the pair at once.
        stack.callback(_delete_link, guest_pid, in_guest)
        run(
            [
                *in_guest,
                "address",
                "add",
                f"{GUEST_ADDRESS}/{NETWORK_PREFIX}",
                "dev",
                GUEST_INTERFACE,
            ]
        )
        run([*in_guest, "link", "set", GUEST_INTERFACE, "up"])

        def client(name: str, address: str) -> Client:
            namespace = _namespace(stack, f"{prefix}-{name}")
            _attach(switch, name, namespace, "eth0")
            run(
                [
                    "ip",
                    "-n",
                    namespace,
                    "address",
                    "add",
                    f"{address}/{NETWORK_PREFIX}",
                    "dev",
                    "eth0",
                ]
            )
            run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
            return Client(name, address, namespace)

        yield Outside(
            guest_address=GUEST_ADDRESS,
            admin=client("admin", ADMIN_ADDRESS),
            outsider=client("outsider", OUTSIDER_ADDRESS),
            grpc_outsider=client("grpc-outsider", GRPC_OUTSIDER_ADDRESS),
            well_behaved=client("behaved", WELL_BEHAVED_ADDRESS),
            mistaken=client("mistaken", MISTAKEN_ADDRESS),
        )
