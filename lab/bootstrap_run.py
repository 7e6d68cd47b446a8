"""The bootstrap as its systemd unit starts it (`ExecStart`, from `bootstrap_command`), for labs
on this machine, which has no systemd to start it: each call is one run, as one start of the unit
is, and a lab re-runs a failed one as the unit's `Restart=` would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from components.settings import HostSettings
from components.user_data import bootstrap_command
from lab.processes import clean_env


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
    # The lab's Python has boto3, as python3-boto3 gives the VM's.
    python_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in clean_env().items() if not key.startswith("AWS_")}
    env.update(PATH=f"{python_bin}:{env.get('PATH', os.defpath)}", BOOTSTRAP_STEPS=" ".join(steps))
    env.update(environment)
    return subprocess.run(
        wrap(argv), env=env, capture_output=True, text=True, timeout=120, check=False
    )
