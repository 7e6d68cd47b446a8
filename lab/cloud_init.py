"""What cloud-init does with the user data EC2 receives, done on this machine by cloud-init's own
code: decode it, write its files, and give the lab its command to run. Every lab runs the VM's own
files this way, never a re-implementation of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.processes import clean_env

# Debian's cloud-init is a package of the system Python, which the lab's venv does not see.
HOST_PYTHON = "/usr/bin/python3"
_HOST_SIDE = Path(__file__).with_name("cloud_init_host.py")


@dataclass(frozen=True)
class CloudConfig:
    """The user data as cloud-init read it."""

    part_types: tuple[str, ...]
    config: dict[str, Any]
    schema_errors: tuple[str, ...]
    schema_deprecations: tuple[str, ...]
    runcmd_script: str | None
    """The script cloud-init's `runcmd` module writes and the final stage executes."""

    @property
    def command(self) -> list[str]:
        """The bootstrap's command line: the one `runcmd` entry."""
        (command,) = self.config["runcmd"]
        return list(command)


def cloud_init_available() -> bool:
    """Whether the host's Python has Debian's cloud-init (scripts/test installs it)."""
    return (
        subprocess.run(
            [HOST_PYTHON, "-I", "-c", "import cloudinit"], capture_output=True, check=False
        ).returncode
        == 0
    )


def _cloud_init(user_data_base64: str, *arguments: str) -> str:
    result = subprocess.run(
        [HOST_PYTHON, "-I", str(_HOST_SIDE), *arguments],
        input=user_data_base64,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cloud-init {arguments[0]} failed:\n{result.stderr}")
    return result.stdout


def read_user_data(user_data_base64: str) -> CloudConfig:
    """cloud-init's reading of the user data, from the bytes EC2 hands the instance."""
    read = json.loads(_cloud_init(user_data_base64, "read"))
    return CloudConfig(
        part_types=tuple(read["part_types"]),
        config=read["config"],
        schema_errors=tuple(read["schema_errors"]),
        schema_deprecations=tuple(read["schema_deprecations"]),
        runcmd_script=read["runcmd_script"],
    )


def write_files(user_data_base64: str, root: Path | None = None) -> None:
    """cloud-init's `write_files` module, as root; `root` re-roots every path (the lab's own host
    settings already point into a scratch dir and need none)."""
    _cloud_init(user_data_base64, "write-files", *([str(root)] if root else []))


def run_bootstrap(
    user_data_base64: str,
    steps: Sequence[str],
    environment: Mapping[str, str],
    trace: bool = False,
    wrap: Callable[[list[str]], list[str]] = list,
) -> subprocess.CompletedProcess[str]:
    """cloud-init's `runcmd` with only `steps` selected; `trace` runs it under `bash -x`, `wrap`
    lets a caller run it elsewhere (e.g. inside a mount namespace)."""
    command = read_user_data(user_data_base64).command
    argv = ["bash", "-x", *command] if trace else command
    # The lab's Python has boto3, as python3-boto3 gives the VM's.
    python_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in clean_env().items() if not key.startswith("AWS_")}
    env.update(PATH=f"{python_bin}:{env.get('PATH', os.defpath)}", BOOTSTRAP_STEPS=" ".join(steps))
    env.update(environment)
    return subprocess.run(
        wrap(argv), env=env, capture_output=True, text=True, timeout=120, check=False
    )
