"""The bootstrap and the converge unit's loader as their systemd units start them (`ExecStart`),
for labs on this machine, which has no systemd to start it: each call is one run, as one start of the unit
is, and a lab re-runs a failed one as the unit's `Restart=` would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lab.processes import clean_env
from model.settings import HostSettings
from model.user_data import bootstrap_command, loader_command


def run_bootstrap(
    host: HostSettings,
    steps: Sequence[str],
    environment: Mapping[str, str],
    trace: bool = False,
    wrap: Callable[[list[str]], list[str]] = list,
) -> subprocess.CompletedProcess[str]:
    """One run with only `steps` selected; `trace` runs it under `bash -x`, `wrap` lets a caller
    run it elsewhere (e.g. inside a mount namespace)."""
    command = list(bootstrap_command(host))
    argv = ["bash", "-x", *command] if trace else command
    env = {**_host_environment(environment), "BOOTSTRAP_STEPS": " ".join(steps)}
    return subprocess.run(
        wrap(argv), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def run_loader(
    host: HostSettings,
    environment: Mapping[str, str],
    wrap: Callable[[list[str]], list[str]] = list,
) -> subprocess.CompletedProcess[str]:
    """One run of the converge unit (the loader, then the converge program it hands the
    document to), as its timer starts it."""
    argv = [sys.executable, *loader_command(host)]
    return subprocess.run(
        wrap(argv),
        env=_host_environment(environment),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _host_environment(environment: Mapping[str, str]) -> dict[str, str]:
    # The lab's Python has boto3, as python3-boto3 gives the VM's.
    python_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in clean_env().items() if not key.startswith("AWS_")}
    env.update(PATH=f"{python_bin}:{env.get('PATH', os.defpath)}")
    env.update(environment)
    return env
