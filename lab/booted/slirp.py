"""The guest's network: slirp4netns, user-mode NAT from the guest's namespace to this machine.

The guest gets 10.0.2.100 behind a gateway, 10.0.2.2, that is this machine's loopback: the lab's
servers listen on 127.0.0.1 only and the guest reaches them there. Ports of the guest are published
with slirp4netns's API onto a loopback address of this machine, nowhere else.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

from lab.processes import Service, require_tools, wait_until

GATEWAY = "10.0.2.2"
"""How the guest reaches this machine's 127.0.0.1."""
GUEST_ADDRESS = "10.0.2.100"
INTERFACE = "tap0"
# The largest MTU slirp4netns takes: fewer, bigger segments through the user-mode stack.
MTU = 65520


class SlirpError(RuntimeError):
    """slirp4netns refused an API request."""


@dataclass(frozen=True)
class Forward:
    host_address: str
    host_port: int
    guest_port: int


class Slirp:
    """slirp4netns attached to the network namespace of process `pid`; stops with `stop()`."""

    def __init__(self, pid: int, workdir: Path) -> None:
        require_tools("slirp4netns")
        self._api = workdir / "slirp4netns.sock"
        self._api.unlink(missing_ok=True)
        self._service = Service(
            "slirp4netns",
            ["slirp4netns", "--configure", f"--mtu={MTU}", "--api-socket", str(self._api),
             str(pid), INTERFACE],
            workdir / "slirp4netns.log",
        )  # fmt: skip
        wait_until(self._api.exists, "slirp4netns's API socket")

    def forward(self, forward: Forward) -> None:
        """Publish the guest's TCP port on this machine."""
        self._call(
            "add_hostfwd",
            proto="tcp",
            host_addr=forward.host_address,
            host_port=forward.host_port,
            guest_addr=GUEST_ADDRESS,
            guest_port=forward.guest_port,
        )

    def _call(self, command: str, **arguments: object) -> object:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as api:
            api.connect(str(self._api))
            api.sendall(json.dumps({"execute": command, "arguments": arguments}).encode())
            api.shutdown(socket.SHUT_WR)
            reply = json.loads(b"".join(iter(lambda: api.recv(4096), b"")))
        if "error" in reply:
            raise SlirpError(f"slirp4netns {command} {arguments}: {reply['error']}")
        return reply.get("return")

    def stop(self) -> None:
        self._service.stop()
        self._api.unlink(missing_ok=True)
