"""A Debian root filesystem booted with systemd-nspawn: systemd as PID 1, a private network.

The flags each answer a failure seen on these machines (see booted-host-notes.md): no system bus
(`--register=no --keep-unit`), tzdata's postinst against a bind-mounted localtime
(`--timezone=off`), dockerd's iptables (`--capability=all`), runc's session keyring, which nspawn's
seccomp filter forbids ("unable to join session keyring": `--system-call-filter=@keyring`), and
the machine's own interfaces, which cloud-init must not see (`--private-network`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lab.booted.slirp import Forward, Slirp
from lab.processes import Service, require_tools, run, wait_until

# Shutting down stops Qdrant's container (`docker stop --time 30`) among the rest.
SHUTDOWN_SECONDS = 60
CGROUP_ROOT = Path("/sys/fs/cgroup")
NSPAWN_CGROUPS = ("payload", "supervisor")
GUEST_LOCK = "/run/secure-qdrant-lab-guest.lock"


@dataclass(frozen=True)
class Bind:
    source: str
    target: str
    read_only: bool = False

    @property
    def flag(self) -> str:
        return f"--bind{'-ro' if self.read_only else ''}={self.source}:{self.target}"


def nspawn_command(root: Path, name: str, binds: Sequence[Bind]) -> list[str]:
    return [
        "systemd-nspawn", "--boot", f"--directory={root}", f"--machine={name}",
        "--register=no", "--keep-unit", "--private-network", "--capability=all",
        "--timezone=off", "--resolv-conf=copy-host", "--console=read-only",
        "--system-call-filter=@keyring",
        *(bind.flag for bind in binds),
    ]  # fmt: skip


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after it are safe.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _init_of(nspawn_pid: int) -> int | None:
    """The guest's PID 1 (as this machine numbers it): the `systemd` child of nspawn."""
    for child in _children(nspawn_pid):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            # nspawn's short-lived helper children exit between the listing and this read.
            continue
        if name == "systemd":
            return child
    return None


def _docker_cgroups() -> set[Path]:
    """The `docker` folders in every cgroup hierarchy: where a guest's dockerd puts containers."""
    found = set()
    for top, folders, _ in os.walk(CGROUP_ROOT):
        if "docker" in folders:
            found.add(Path(top) / "docker")
            folders.remove("docker")
    return found


def _nspawn_cgroups() -> set[Path]:
    """nspawn's folders for the guest and itself in the named systemd hierarchy. nspawn only joins
    them (it would create them in cgroup v2, which this machine does not mount), so the lab makes
    them; their names are fixed, as nspawn's path in cgroup v2 is the root here."""
    return {CGROUP_ROOT / "systemd" / name for name in NSPAWN_CGROUPS}


_held_guest_locks: list[IO[str]] = []


@contextmanager
def one_guest_at_a_time() -> Iterator[None]:
    """nspawn's cgroup folders have fixed names: a second guest would share them. A lab whose
    servers outlive one boot (a reboot, a replacement) holds it across them, so it is reentrant
    within this process: each boot inside takes it again without waiting on itself."""
    if _held_guest_locks:
        yield
        return
    with open(GUEST_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held_guest_locks.append(lock)
        try:
            yield
        finally:
            _held_guest_locks.remove(lock)


def _remove_cgroups(tops: set[Path]) -> None:
    """Empty cgroup folders go with rmdir only, children first."""
    for top in tops:
        for folder in sorted(
            (top, *top.rglob("*/")), key=lambda path: len(path.parts), reverse=True
        ):
            # One still busy (a process outlived the guest) must not keep the others.
            with contextlib.suppress(FileNotFoundError, OSError):
                folder.rmdir()


class Guest:
    """A booted guest: run commands inside with `run`, read its files with `path`."""

    def __init__(self, nspawn: Service, init_pid: int, slirp: Slirp) -> None:
        self._nspawn = nspawn
        self.init_pid = init_pid
        self.slirp = slirp

    def command(self, *arguments: str) -> list[str]:
        """`arguments` run inside the guest: its namespaces, its root, its PATH."""
        return ["nsenter", f"--target={self.init_pid}", "--all", "--", *arguments]

    def run(self, *arguments: str, timeout: float = 120) -> str:
        return run(self.command(*arguments), timeout=timeout)

    def path(self, path: str) -> Path:
        """A path of the guest as this machine sees it."""
        return Path(f"/proc/{self.init_pid}/root{path}")

    def running(self) -> bool:
        return self._nspawn.running()

    def stop(self) -> None:
        """A clean shutdown (nspawn turns SIGTERM into the guest's poweroff), forced if it hangs."""
        if self._nspawn.running():
            self._nspawn.send_signal(signal.SIGTERM)
            try:
                wait_until(
                    lambda: not self._nspawn.running(), "the guest's shutdown", SHUTDOWN_SECONDS
                )
            except TimeoutError:
                pass
        self._nspawn.stop()


@contextmanager
def booted(
    root: Path,
    name: str,
    workdir: Path,
    binds: Sequence[Bind] = (),
    forwards: Sequence[Forward] = (),
) -> Iterator[Guest]:
    """`root` booted as machine `name`, its `forwards` published; shut down and cleaned up on exit,
    however the block ends."""
    require_tools("systemd-nspawn", "nsenter")
    if os.geteuid() != 0:
        raise PermissionError("booting a guest needs root")
    with ExitStack() as stack:
        stack.enter_context(one_guest_at_a_time())
        docker_before = _docker_cgroups()
        stack.callback(
            lambda: _remove_cgroups(_nspawn_cgroups() | (_docker_cgroups() - docker_before))
        )
        for folder in _nspawn_cgroups():
            folder.mkdir(exist_ok=True)
        nspawn = Service(
            "systemd-nspawn", nspawn_command(root, name, binds), workdir / "console.log"
        )
        stack.callback(nspawn.stop)
        found: list[int] = []

        def started() -> bool:
            if not nspawn.running():
                raise RuntimeError(
                    f"systemd-nspawn exited:\n{nspawn.log.read_text(errors='replace')}"
                )
            pid = _init_of(nspawn.pid)
            found.extend([pid] if pid else [])
            return bool(found)

        wait_until(started, "the guest's systemd", timeout=30)
        slirp = Slirp(found[0], workdir)
        stack.callback(slirp.stop)
        guest = Guest(nspawn, found[0], slirp)
        stack.callback(guest.stop)
        for forward in forwards:
            slirp.forward(forward)
        yield guest
