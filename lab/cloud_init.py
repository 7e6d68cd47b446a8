"""What cloud-init does with the rendered user data, done on this machine: write its files, run its
command. Every lab runs the VM's own files this way, never a re-implementation of them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from lab.processes import clean_env


def write_files(user_data: str) -> None:
    """cloud-init's `write_files`: each file with its permissions (owned by this process)."""
    for entry in yaml.safe_load(user_data)["write_files"]:
        path = Path(entry["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(entry["content"])
        path.chmod(int(entry["permissions"], 8))


def run_bootstrap(
    user_data: str,
    steps: Sequence[str],
    environment: Mapping[str, str],
    trace: bool = False,
    wrap: Callable[[list[str]], list[str]] = list,
) -> subprocess.CompletedProcess[str]:
    """cloud-init's `runcmd` with only `steps` selected; `trace` runs it under `bash -x`, `wrap`
    lets a caller run it elsewhere (e.g. inside a mount namespace)."""
    (command,) = yaml.safe_load(user_data)["runcmd"]
    argv = ["bash", "-x", *command] if trace else list(command)
    # The lab's Python has boto3, as python3-boto3 gives the VM's.
    python_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in clean_env().items() if not key.startswith("AWS_")}
    env.update(PATH=f"{python_bin}:{env.get('PATH', os.defpath)}", BOOTSTRAP_STEPS=" ".join(steps))
    env.update(environment)
    return subprocess.run(
        wrap(argv), env=env, capture_output=True, text=True, timeout=120, check=False
    )
