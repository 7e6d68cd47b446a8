"""The edge lab on the VM's own ports (80, 443, 6334), in a network namespace of its own.

On this machine those ports may be taken, and binding them would reach past the lab. In a fresh
network namespace nothing else listens and nothing outside can connect, so the lab's nginx takes
the ports the security group opens and a client can be run exactly as the README writes it, with
no port changed. `localhost`, the lab's domain, resolves from /etc/hosts, which the namespace
shares, to its own loopback.

`vm_ports_lab()` starts `python -m lab.vm_ports HANDOFF` under `unshare --net`; that process brings
up loopback and the edge lab, copies the client CA and writes the master and read-only keys
(owner-only, as `python -m lab --serve` does) into the handoff directory, marks it ready and runs
until SIGTERM, when it stops everything it started. `VmPortsLab.command()` runs a command inside
the namespace. Needs root (a network namespace, ports below 1024).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.credentials import (
    MASTER_KEY_FILE,
    READ_ONLY_KEY_FILE,
    lab_credentials,
    write_owner_only,
)
from lab.edge import LAB_DOMAIN, UNTHROTTLED, running_edge_lab
from lab.processes import LabUnavailable, Service, clean_env, require_tools, run, wait_until
from model.settings import PORTS

REPOSITORY = Path(__file__).resolve().parent.parent
CA_FILE = "client-ca.pem"
CREDENTIALS_DIR = "credentials"
READY_FILE = "ready"
LOG_FILE = "lab.log"
STARTUP_SECONDS = 120
# nginx, pebble and the double each get a few seconds to stop.
STOP_SECONDS = 60


@dataclass(frozen=True)
class VmPortsLab:
    namespace_pid: int
    handoff: Path

    domain = LAB_DOMAIN
    ports = PORTS

    @property
    def ca_file(self) -> Path:
        return self.handoff / CA_FILE

    @property
    def api_key(self) -> str:
        return (self.handoff / CREDENTIALS_DIR / MASTER_KEY_FILE).read_text()

    @property
    def read_only_api_key(self) -> str:
        return (self.handoff / CREDENTIALS_DIR / READ_ONLY_KEY_FILE).read_text()

    def command(self, *arguments: str) -> list[str]:
        return ["nsenter", "--target", str(self.namespace_pid), "--net", "--", *arguments]


@contextmanager
def vm_ports_lab(handoff: Path) -> Iterator[VmPortsLab]:
    """The lab up in its namespace; `handoff` (an empty directory) receives its CA and keys."""
    if os.geteuid() != 0:
        raise LabUnavailable("the lab on the VM's ports needs root (a network namespace)")
    require_tools("unshare", "nsenter", "ip")
    command = ["unshare", "--net", "--", sys.executable, "-m", "lab.vm_ports", str(handoff)]
    service = Service(
        "edge lab in a network namespace",
        command,
        handoff / LOG_FILE,
        env=clean_env(PYTHONPATH=str(REPOSITORY)),
    )

    def ready() -> bool:
        if not service.running():
            log = (handoff / LOG_FILE).read_text(errors="replace")
            raise RuntimeError(f"the lab exited:\n{log}")
        return (handoff / READY_FILE).exists()

    try:
        wait_until(ready, "the edge lab in its network namespace", STARTUP_SECONDS)
        yield VmPortsLab(service.pid, handoff)
    finally:
        service.stop(STOP_SECONDS)
        # The keys open nothing once the lab is down; still, none is left lying around.
        shutil.rmtree(handoff / CREDENTIALS_DIR, ignore_errors=True)


def serve(handoff: Path) -> None:
    """Inside the namespace: the edge lab on the VM's ports until SIGTERM."""
    run(["ip", "link", "set", "lo", "up"])
    with running_edge_lab(limits=UNTHROTTLED, public_ports=PORTS) as lab:
        shutil.copyfile(lab.client_ca, handoff / CA_FILE)
        credentials = lab_credentials(lab.api_key, lab.read_only_api_key, ())
        write_owner_only(handoff / CREDENTIALS_DIR, (credentials.master, credentials.read_only))
        (handoff / READY_FILE).touch()
        signal.pause()


def main(argv: Sequence[str]) -> int:
    # SIGTERM unwinds the lab like Ctrl-C, stopping every server it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(Path(argv[0]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
