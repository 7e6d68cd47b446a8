"""What a key rotation costs the applications: requests refused or failed while Qdrant restarts.

`venv/bin/python -m bench.rotation` (root): the bootstrap lab's edge (nginx, pebble's certificate,
moto as SSM) in front of the Qdrant double, with clients hammering `GET /collections` through the
TLS edge, each over its own keep-alive connection, with a token signed by the master key about to
be replaced. Each round writes new keys to SSM as `pulumi up` does, runs the bootstrap's secrets
step as the rotation timer does, and restarts the double from the env file it wrote, as systemd
restarts Qdrant. Every answer other than 200 and every failed connection is counted; the
interruption is the time from the first failed request to the last.

The double restarts in about as long as its Python starts; real Qdrant's restart adds `docker
stop` (a graceful shutdown, at most 30 s), the container's start and the loading of every
collection, which grows with the data: see docs/performance.md for how the figures compare.
"""

from __future__ import annotations

import http.client
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from lab.bootstrap import EDGE_STEPS, EdgeBootstrap, edge_bootstrap_lab, moto_ssm
from lab.edge import UNTHROTTLED, lab_target
from lab.processes import LabUnavailable
from lab.rotation import RestartableQdrant, rotate, systemd_stand_in
from model.user_data import QDRANT_UNIT
from verify.arguments import OneLineParser
from verify.client import keep_alive_connection
from verify.target import Target

CLIENTS = 4
ROUNDS = 5
SETTLE_SECONDS = 2.0
# Long enough that no round's old token expires before the next: what is measured is the restart.
GRACE_SECONDS = 3600


@dataclass
class Outcomes:
    """Every answer the clients got: (monotonic time, status or exception name)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[tuple[float, str]] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), outcome))

    def since(self, start: float) -> list[tuple[float, str]]:
        with self.lock:
            return [entry for entry in self.seen if entry[0] >= start]


class Hammering:
    """Clients of the edge, each one application on a keep-alive connection (reopened after any
    failure, as clients do) sending `GET /collections` with `token`, `pause` seconds apart, until
    stopped. `token` may be changed meanwhile: applications moving to a re-minted one."""

    def __init__(self, target: Target, token: str, clients: int, pause: float = 0.0) -> None:
        self.target, self.token, self.pause = target, token, pause
        self.outcomes = Outcomes()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        connection: http.client.HTTPSConnection | None = None
        while not self._stop.wait(self.pause):
            try:
                connection = connection or keep_alive_connection(self.target)
                connection.request(
                    "GET", "/collections", headers={"Authorization": f"Bearer {self.token}"}
                )
                response = connection.getresponse()
                response.read()
                self.outcomes.add(str(response.status))
            except (OSError, http.client.HTTPException) as error:
                self.outcomes.add(type(error).__name__)
                if connection is not None:
                    connection.close()
                connection = None

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


@dataclass(frozen=True)
class Round:
    requests: int
    failures: Counter[str]
    interruption_s: float
    step_s: float
    """The secrets step: SSM read, env file written, restart asked for."""
    restart_s: float
    """The double's stop and start, as systemd's restart of Qdrant."""


def interruption(entries: list[tuple[float, str]]) -> float:
    """From the first failed request to the last: how long applications saw errors."""
    failed = [t for t, outcome in entries if outcome != "200"]
    return failed[-1] - failed[0] if failed else 0.0


def measure(edge: EdgeBootstrap, rounds: int, clients: int) -> list[Round]:
    qdrant = RestartableQdrant(edge)
    systemd = systemd_stand_in(edge.lab, edge.lab.workdir / "systemd")
    master = edge.lab.api_key
    lab = edge.lab
    target = lab_target(lab.host, lab.api_key, lab.read_only_api_key, edge.client_ca)
    load = Hammering(target, jwt.encode({"access": "r"}, master), clients)
    results: list[Round] = []
    try:
        time.sleep(SETTLE_SECONDS)
        for _ in range(rounds):
            started = time.monotonic()
            keys = rotate(edge.lab.ssm, edge.lab.host, master, GRACE_SECONDS)
            result = systemd.lab.run(("secrets",))
            if result.returncode != 0 or systemd.restarts(QDRANT_UNIT) != len(results) + 1:
                raise RuntimeError(f"the secrets step did not ask for a restart:\n{result.stderr}")
            stepped = time.monotonic()
            qdrant.restart()
            restarted = time.monotonic()
            time.sleep(SETTLE_SECONDS)
            entries = load.outcomes.since(started)
            results.append(
                Round(
                    requests=len(entries),
                    failures=Counter(outcome for _, outcome in entries if outcome != "200"),
                    interruption_s=interruption(entries),
                    step_s=stepped - started,
                    restart_s=restarted - stepped,
                )
            )
            # The next round replaces this round's key; applications now hold tokens it signed.
            master = keys.api_key
            load.token = jwt.encode({"access": "r"}, master)
    finally:
        load.stop()
        qdrant.stop()
    return results


def table(results: Sequence[Round]) -> str:
    rows = [
        "| round | requests | failed | failures by kind | interruption, s | secrets step, s "
        "| double restart, s |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, result in enumerate(results, 1):
        kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(result.failures.items()))
        rows.append(
            f"| {number} | {result.requests} | {sum(result.failures.values())} | {kinds or '-'} "
            f"| {result.interruption_s:.2f} | {result.step_s:.2f} | {result.restart_s:.2f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    OneLineParser(prog="python -m bench.rotation", description=__doc__).parse_args(
        sys.argv[1:] if argv is None else argv
    )
    workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-bench-rotation-"))
    # Run as root, nginx's workers are `nobody` and must be able to reach the webroot.
    workdir.chmod(0o755)
    try:
        with (
            moto_ssm(workdir / "moto") as ssm,
            edge_bootstrap_lab(workdir, ssm, limits=UNTHROTTLED) as edge,
        ):
            bootstrap = edge.lab.run(EDGE_STEPS)
            if bootstrap.returncode != 0:
                print(bootstrap.stderr, file=sys.stderr)
                return 1
            results = measure(edge, ROUNDS, CLIENTS)
    except LabUnavailable as missing:
        print(f"bench.rotation: lab unavailable: {missing}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Command: `venv/bin/python -m bench.rotation` ({CLIENTS} clients, {ROUNDS} rounds)\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
