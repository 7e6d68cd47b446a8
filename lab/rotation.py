"""A key rotation played on the bootstrap lab: what `pulumi up` writes to SSM after a version bump,
and what systemd does when the bootstrap's secrets step (the rotation timer's run) asks for it.

The lab has no systemd: `systemd_stand_in` puts a `systemctl` first on the bootstrap's PATH that
reports Qdrant running and records what it was asked, so the test or benchmark restarts the double
from the env file the step wrote, as systemd would restart the container.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from components.api_keys import previous_key_document
from lab.bootstrap import BootstrapLab, EdgeBootstrap
from lab.demo import start_qdrant
from lab.qdrant_double import QdrantDouble
from model.settings import HostSettings

# Logs each call, answers `is-active` with "active" (exit 0): the Qdrant unit is up.
_SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >>"{log}"
[ "$1" != is-active ] || exit 0
"""


@dataclass(frozen=True)
class RotatedKeys:
    api_key: str
    read_only_api_key: str
    valid_until: int
    """When the replaced master key stops working (Unix seconds)."""


class ParameterStore(Protocol):
    """SSM as the labs stand it in: moto, over HTTP (`lab.bootstrap`) or TLS (`lab.booted`)."""

    def put(self, name: str, value: str) -> None: ...


def rotate(
    ssm: ParameterStore, host: HostSettings, previous_key: str, grace_seconds: int
) -> RotatedKeys:
    """New keys in SSM, in the order `pulumi up` writes them (components/api_keys.py): the previous
    key first, with the end of its grace window, then the new master and read-only keys. After a
    bump by one the previous key is the replaced master key; see `jump` for a bigger bump."""
    valid_until = int(time.time()) + grace_seconds
    ssm.put(host.previous_api_key_parameter, previous_key_document(previous_key, valid_until))
    keys = RotatedKeys(secrets.token_hex(24), secrets.token_hex(24), valid_until)
    ssm.put(host.api_key_parameter, keys.api_key)
    ssm.put(host.read_only_api_key_parameter, keys.read_only_api_key)
    return keys


def jump(ssm: ParameterStore, host: HostSettings, grace_seconds: int) -> RotatedKeys:
    """What `pulumi up` writes after a version bump of two or more: both of the master key's slots
    are regenerated, so the previous-key parameter names a key no host ever ran with."""
    return rotate(ssm, host, secrets.token_hex(24), grace_seconds)


@dataclass(frozen=True)
class SystemdStandIn:
    lab: BootstrapLab
    """The same lab, whose bootstrap runs find the stand-in's `systemctl` first."""
    log: Path

    def restarts(self, unit: str) -> int:
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        return calls.count(f"restart {unit}")


def systemd_stand_in(lab: BootstrapLab, directory: Path) -> SystemdStandIn:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "systemctl.log"
    systemctl = directory / "systemctl"
    systemctl.write_text(_SYSTEMCTL.format(log=log))
    systemctl.chmod(0o755)
    # The lab's Python (boto3) stays on the path, as `run_bootstrap` puts it there.
    path = os.pathsep.join((str(directory), str(Path(sys.executable).parent), os.defpath))
    environment = {**lab.environment, "PATH": path}
    return SystemdStandIn(dataclasses.replace(lab, environment=environment), log)


class RestartableQdrant:
    """The double as the Qdrant unit runs it, restarted from the env file as systemd would."""

    def __init__(self, edge: EdgeBootstrap) -> None:
        self._edge = edge
        self._stack = ExitStack()
        self.double = self._start()

    def _start(self) -> QdrantDouble:
        return start_qdrant(self._edge, self._stack)

    def restart(self) -> None:
        self._stack.close()
        self.double = self._start()

    def stop(self) -> None:
        self._stack.close()
