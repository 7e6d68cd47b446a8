"""Running the lab's servers: free loopback ports, a clean environment, processes that stop."""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"
EPHEMERAL_PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
# Below 10000 live the well-known development services (databases, proxies, Qdrant's own 6333).
_CANDIDATE_PORTS = range(10000, 65536)
# Every port `free_port` has handed out in this process: a lab binds its ports only after choosing
# them all, so a port chosen twice would be free at both choices and taken by the first to bind.
_HANDED_OUT: set[int] = set()

# This machine points these at the system bundle; anything the lab starts must trust the lab's CAs
# only, so they are dropped and each caller sets what it needs.
_PRESET_TRUST = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
)
# The lab's Python must not leak into system tools written in Python (certbot).
_PYTHON_OVERRIDES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


class LabUnavailable(RuntimeError):
    """A tool or privilege the lab needs is missing: tests skip with this message."""


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise LabUnavailable(f"not installed: {', '.join(missing)}")


def clean_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _PRESET_TRUST and key not in _PYTHON_OVERRIDES
    }
    env.update(overrides)
    return env


def ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections and to `bind(port 0)`."""
    low, high = Path(EPHEMERAL_PORT_RANGE).read_text().split()
    return range(int(low), int(high) + 1)


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (the DNS server needs both), chosen outside the
    ephemeral range: a lab binds its ports seconds after choosing them, and meanwhile any outgoing
    connection on the machine (certbot, curl, a benchmark's thousands) could take an ephemeral one.
    Never the same port twice in one process."""
    ephemeral = ephemeral_ports()
    candidates = [port for port in _CANDIDATE_PORTS if port not in ephemeral]
    for _ in range(50):
        port = random.choice(candidates) if candidates else 0
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((LOOPBACK, port))
            except OSError:
                continue
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return int(port)
    raise LabUnavailable("no free loopback port")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def accepts_connections(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class CommandFailed(RuntimeError):
    """A lab command exited non-zero; the message carries its output, which is what one debugs."""


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    timeout: float = 120,
) -> str:
    """Run a command to completion and return its standard output."""
    result = subprocess.run(
        list(command),
        env=dict(env) if env is not None else clean_env(),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        errors = result.stderr.decode(errors="replace")
        raise CommandFailed(f"{shlex.join(command)} exited {result.returncode}:\n{output}{errors}")
    return output


class Service:
    """A long-running child in its own process group, logging to a file.

    Stopping signals the whole group, so workers it forked (nginx) go with it.
    """

    def __init__(
        self, name: str, command: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    def wait_for_port(self, port: int, host: str = LOOPBACK, timeout: float = 15.0) -> None:
        def ready() -> bool:
            if not self.running():
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')}")
            return accepts_connections(port, host)

        wait_until(ready, f"{self.name} on {host}:{port}", timeout)

    def send_signal(self, signum: signal.Signals) -> None:
        self._process.send_signal(signum)

    def stop(self, timeout: float = 5.0) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (workers still shutting down, a hung leader) goes now.
        self._signal_group(signal.SIGKILL)
        self._process.wait()

    def _signal_group(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self._process.pid, signum)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
