"""One booted host through its life (issues 9 and 11): reboot, replacement on the same data disk, a
slow Qdrant start, certificate renewal, a grown disk, a restore from a snapshot of the disk in use.

`host_life()` keeps the lab (`HostLab`: moto, IMDS, pebble, the data disk) for the whole life and
one guest at a time: `reboot()` shuts the guest down cleanly and boots the same root filesystem;
`launch()` boots a fresh copy of the image as a new instance with the same user data and the same
disk, as `pulumi up` replacing the instance does, and discards the old root; `restore()` launches
one on a new volume made from a `snapshot()`. The rest reads the host from outside (through the
published ports, pebble's log) or from its journal.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lab.booted.ebs import Snapshot
from lab.booted.host import (
    BootedHost,
    HostLab,
    boot,
    host_lab,
    instance_user_data,
    new_instance_root,
)
from lab.booted.nspawn import Guest
from lab.booted.qdrant_image import LOADING_FILE_NAME
from lab.processes import run
from model.settings import HostSettings
from verify.client import https_request, peer_certificate
from verify.target import Target

# systemd's catalog ids for a job's start, its success and a unit's failure (systemd's
# src/systemd/sd-messages.h): the same for every unit type, mounts included.
UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
UNIT_FAILED = "be02cf6855d2428ba40df7e9d022f03d"
UNIT_EVENTS = {UNIT_STARTING: "starting", UNIT_STARTED: "started", UNIT_FAILED: "failed"}
# What pebble logs for each certificate it issues.
PEBBLE_ISSUED = "Issued certificate serial"


class HostLife:
    """The lab and its one current guest."""

    def __init__(self, lab: HostLab, stack: ExitStack) -> None:
        self.lab = lab
        self._stack = stack
        self._guest = ExitStack()
        stack.callback(self._guest.close)
        self._boots = 0
        self._root: Path | None = None
        self._current: BootedHost | None = None

    def reboot(self, watch: Callable[[Guest], None] = lambda _: None) -> BootedHost:
        """The same root filesystem booted again after a clean shutdown."""
        assert self._root is not None, "nothing booted yet"
        return self._boot(self._root, watch)

    def launch(self, watch: Callable[[Guest], None] = lambda _: None) -> BootedHost:
        """A new instance, the first or a replacement: a fresh copy of the image, a new instance
        id, the same user data and data disk. The old instance's root goes, as EC2 deletes a
        terminated instance's."""
        self.shut_down()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = self.lab.workdir / f"root-{self._boots + 1}"
        self._stack.callback(shutil.rmtree, self._root, ignore_errors=True)
        new_instance_root(self.lab, self._root)
        return self._boot(self._root, watch)

    @property
    def current(self) -> BootedHost:
        assert self._current is not None, "no guest is up"
        return self._current

    def shut_down(self) -> None:
        self._current = None
        self._guest.close()

    def grow_disk(self, size: int) -> None:
        """What modifying the EBS volume does, here while the instance is stopped."""
        self.lab.volumes.grow(self.lab.volume, size)

    def snapshot(self) -> Snapshot:
        """What Data Lifecycle Manager takes: the data volume's blocks now, the guest running."""
        return self.lab.volumes.snapshot(self.lab.volume)

    def restore(self, snapshot: Snapshot) -> BootedHost:
        """What `pulumi up` does with `restoreFromSnapshotId` set: a new volume made from the
        snapshot, the instance replaced by one whose user data names that volume. The old volume
        stays, detached from every instance."""
        volume = self.lab.volumes.create_from_snapshot(snapshot)
        user_data = instance_user_data(self.lab.store, self.lab.host, volume)
        self.lab = replace(self.lab, volume=volume, user_data=user_data)
        return self.launch()

    def _boot(self, root: Path, watch: Callable[[Guest], None]) -> BootedHost:
        self.shut_down()
        self._boots += 1
        workdir = self.lab.workdir / f"boot-{self._boots}"
        self._current = self._guest.enter_context(boot(self.lab, root, workdir, watch))
        return self._current


@contextmanager
def host_life(workdir: Path) -> Iterator[HostLife]:
    """The lab for one host's life; the guest, the lab and every root go on exit."""
    with ExitStack() as stack:
        lab = stack.enter_context(host_lab(workdir))
        yield HostLife(lab, stack)


def certificates_issued(lab: HostLab) -> int:
    """How many certificates pebble issued so far: its own log's count."""
    return lab.pebble_log.read_text(errors="replace").count(PEBBLE_ISSUED)


def served_serial(booted: BootedHost) -> str:
    """The serial of the certificate a client verifies on 443 (the chain checked for the domain)."""
    return str(peer_certificate(booted.verify_target())["serialNumber"])


def _master_request(booted: BootedHost, method: str, path: str, body: Any = None) -> Any:
    """Through the edge with the master key; Qdrant's `result`."""
    headers = {"api-key": booted.api_key, "Content-Type": "application/json"}
    reply = https_request(booted.verify_target(), method, path, headers, json.dumps(body))
    if reply.status != 200:
        raise RuntimeError(f"{method} {path} through the edge: HTTP {reply.status}")
    return json.loads(reply.body)["result"]


def write_points(booted: BootedHost, collection: str, points: Sequence[Mapping[str, Any]]) -> None:
    """A collection of `points` (4-dimensional), written through the edge and acknowledged."""
    _master_request(
        booted, "PUT", f"/collections/{collection}", {"vectors": {"size": 4, "distance": "Dot"}}
    )
    upsert_points(booted, collection, points)


def upsert_points(booted: BootedHost, collection: str, points: Sequence[Mapping[str, Any]]) -> None:
    """Through the edge; returns once Qdrant acknowledges them applied (`wait=true`)."""
    _master_request(
        booted, "PUT", f"/collections/{collection}/points?wait=true", {"points": points}
    )


@dataclass(frozen=True)
class Write:
    point_id: int
    sent: float
    acknowledged: float
    """Both `time.monotonic()`."""


class WriteStream:
    """A database in use: a thread writing one point at a time through the edge, each acknowledged
    before the next is sent, under the edge's per-address rate (0.25 s apart at the default)."""

    def __init__(self, booted: BootedHost, collection: str, first_id: int) -> None:
        self._booted, self._collection, self._next_id = booted, collection, first_id
        self._interval = 1.25 / booted.host.limits.rate_limit_rps
        self.writes: list[Write] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, daemon=True)

    def __enter__(self) -> WriteStream:
        self._thread.start()
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        # The body's own failure (a failed snapshot) is the one to see.
        if failure is None and self._error is not None:
            raise self._error

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until `count` writes are acknowledged in all."""
        deadline = time.monotonic() + timeout
        while len(self.writes) < count:
            if self._error is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(self.writes)} of {count} writes acknowledged"
                ) from self._error
            time.sleep(0.05)

    def _write(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                point = {"id": self._next_id, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {}}
                sent = time.monotonic()
                upsert_points(self._booted, self._collection, [point])
                self.writes.append(Write(self._next_id, sent, time.monotonic()))
                self._next_id += 1
        except BaseException as error:  # handed to the test by wait_for() and __exit__
            self._error = error


def read_points(booted: BootedHost, collection: str, ids: Sequence[int]) -> dict[int, Any]:
    """Point id to payload, read through the edge."""
    found = _master_request(
        booted,
        "POST",
        f"/collections/{collection}/points",
        {"ids": list(ids), "with_payload": True},
    )
    return {point["id"]: point["payload"] for point in found}


def unit_events(guest: Guest, units: Sequence[str]) -> list[tuple[str, str]]:
    """(unit, starting|started|failed) for `units`, in the order systemd logged them this boot."""
    entries = guest.run("journalctl", "--no-pager", "--boot", "--output=json", "_PID=1")
    events = []
    for line in entries.splitlines():
        entry = json.loads(line)
        event = UNIT_EVENTS.get(entry.get("MESSAGE_ID", ""))
        if event and entry.get("UNIT") in units:
            events.append((entry["UNIT"], event))
    return events


def unit_dependencies(guest: Guest, unit: str, kinds: Sequence[str]) -> dict[str, set[str]]:
    """`unit`'s dependencies of each kind (Requires, After, ...) as the guest's systemd holds them."""
    shown = guest.run("systemctl", "show", f"--property={','.join(kinds)}", unit)
    # A name with a backslash (`\x2d`) comes quoted, the backslash doubled.
    return {
        kind: set(shlex.split(units))
        for kind, _, units in (line.partition("=") for line in shown.splitlines())
    }


def filesystem_bytes(guest: Guest, path: str) -> int:
    """The size of the filesystem mounted at `path` in the guest."""
    found = os.statvfs(guest.path(path))
    return found.f_blocks * found.f_frsize


def loading_file(host: HostSettings) -> str:
    """Where, on the data volume, the lab's Qdrant image finds the file that keeps it loading."""
    return f"{host.paths.qdrant_storage}/{LOADING_FILE_NAME}"


def hold_qdrant_loading(booted: BootedHost) -> None:
    """Until the file goes, the lab's Qdrant image listens nowhere, as Qdrant does while it
    loads a large storage; on the data volume, so the next instance's Qdrant finds it too."""
    path = booted.guest.path(loading_file(booted.host))
    path.write_text("")
    path.chmod(0o644)


@dataclass(frozen=True)
class EdgeAnswer:
    serial: str
    healthz_status: int
    qdrant_loading: bool
    """The lab's file still held Qdrant loading when the edge answered."""


class EdgeWhileLoading:
    """A boot's watcher while Qdrant is held loading: the first time the edge completes a TLS
    handshake with a certificate that verifies for the domain, records what `/healthz` answers,
    then lets Qdrant finish loading (removes the file)."""

    def __init__(self, target: Target, host: HostSettings) -> None:
        self._target = target
        self._loading_file = loading_file(host)
        self.answer: EdgeAnswer | None = None

    def __call__(self, guest: Guest) -> None:
        if self.answer is not None:
            return
        file = guest.path(self._loading_file)
        try:
            serial = str(peer_certificate(self._target)["serialNumber"])
            reply = https_request(self._target, "GET", "/healthz", wait_out_rate_limit=False)
        except OSError:
            return  # no TLS site yet
        self.answer = EdgeAnswer(serial, reply.status, file.exists())
        file.unlink(missing_ok=True)


def renewal_conf(booted: BootedHost) -> Path:
    paths = booted.host.paths
    return booted.guest.path(f"{paths.letsencrypt_dir}/renewal/{booted.host.domain}.conf")


def make_certificate_due(booted: BootedHost) -> None:
    """certbot's own setting for how long before expiry it renews, set beyond the certificate's
    whole life: what the certificate's age would do 60 days after issuance."""
    conf = renewal_conf(booted)
    conf.write_text(f"renew_before_expiry = 100 days\n{conf.read_text()}")


def nginx_main_pid(guest: Guest) -> int:
    return int(guest.run("systemctl", "show", "--property=MainPID", "--value", "nginx.service"))


def ext4_features(image: Path) -> set[str]:
    """The features the ext4 superblock in `image` records; `needs_recovery` while it is mounted
    (or was, when a power cut came), until a mount replays the journal."""
    header = run(["dumpe2fs", "-h", str(image)])
    [features] = [line for line in header.splitlines() if line.startswith("Filesystem features:")]
    return set(features.split(":", 1)[1].split())
