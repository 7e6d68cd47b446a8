"""How the load generators and the server side share the machine's cores.

On the VM, nginx and Qdrant share the host's cores and the clients are elsewhere. Here the clients
run on the same machine, so the cores are split: the server side (nginx, the Qdrant double, and this
process, which hosts the double) gets the first half, the load generators the second. Direct and
proxied runs then spend the same server-side budget, and a client can never slow the server down
by competing with it for a core.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreLayout:
    server: frozenset[int]
    client: frozenset[int]

    @property
    def shared(self) -> bool:
        """One core: nothing could be separated."""
        return self.server == self.client

    def client_command(self, command: Sequence[str]) -> list[str]:
        """`command` confined to the client cores (taskset execs it: the pid stays the tool's)."""
        return ["taskset", "--cpu-list", _cpu_list(self.client), *command]

    def describe(self) -> str:
        if self.shared:
            return f"one core ({_cpu_list(self.server)}): clients and servers share it"
        return (
            f"server side (nginx, Qdrant double) on CPU {_cpu_list(self.server)}, "
            f"load generators on CPU {_cpu_list(self.client)}"
        )


def split_cores() -> CoreLayout:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return CoreLayout(frozenset(cores), frozenset(cores))
    half = len(cores) // 2
    return CoreLayout(frozenset(cores[:half]), frozenset(cores[half:]))


@contextmanager
def server_side(layout: CoreLayout) -> Iterator[None]:
    """Run this process on the server cores: every thread it has, and every thread and process
    it starts meanwhile (they inherit the mask)."""
    before = {thread: os.sched_getaffinity(thread) for thread in _threads()}
    for thread in before:
        os.sched_setaffinity(thread, layout.server)
    try:
        yield
    finally:
        for thread, cores in before.items():
            try:
                os.sched_setaffinity(thread, cores)
            except ProcessLookupError:
                pass  # that thread has ended meanwhile


def _threads() -> list[int]:
    return [int(thread) for thread in os.listdir("/proc/self/task")]


def _cpu_list(cores: frozenset[int]) -> str:
    return ",".join(str(core) for core in sorted(cores))
