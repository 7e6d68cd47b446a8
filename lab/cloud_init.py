"""What cloud-init does with the user data EC2 receives, done on this machine by cloud-init's own
code: decode it and write its files. Every lab runs the VM's own files this way, never a
re-implementation of them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
