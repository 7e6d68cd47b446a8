"""The Qdrant image the booted host runs: the project's Qdrant test double, as a tarball for
`docker import` under the tag the unit runs (no registry is reachable, and none must be needed).

Like Qdrant's own image it works in `/qdrant`, keeps its data in `./storage` (so `/qdrant/storage`,
the unit's volume), listens on `QDRANT_IMAGE_PORTS` on every interface of the container, and
takes its keys from Qdrant's environment variables; it runs as whatever `--user` the unit gives it.
Its Python packages are the ones the tests run the double with (this venv's versions), installed
for Debian 12's Python, which has the same ABI as the venv's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from lab.booted.cache import cached
from lab.booted.debian import apt_sources, mmdebstrap, sources_recipe
from lab.processes import run
from model.settings import QDRANT_IMAGE_PORTS, HostSettings

PROJECT = Path(__file__).resolve().parents[2]
# The double's code and the one project module it imports.
SOURCES = ("model/__init__.py", "model/settings.py", "lab/__init__.py", "lab/qdrant_double")
# What the double imports; pip adds their dependencies at the versions this venv has.
REQUIREMENTS = ("qdrant-client", "qdrant-edge-py", "grpcio", "protobuf", "pyjwt")
INSTALL_DIR = "/opt/qdrant-double"
WORKDIR = "/qdrant"
# mmdebstrap's customize hooks, `{stage}` being the staged files. The unit runs the image as
# Qdrant's uid, not root: what was staged under the builder's umask (077 makes it root's alone) is
# made readable to every user.
HOOKS = (
    f'mkdir -p "$1{INSTALL_DIR}"',
    f"sync-in {{stage}} {INSTALL_DIR}",
    f'chmod -R a+rX "$1{INSTALL_DIR}"',
    f'chroot "$1" python3 -m compileall -q {INSTALL_DIR}',
    f'mkdir -p "$1{WORKDIR}/storage" "$1{WORKDIR}/snapshots"',
)
# While this file exists on the data volume the double listens nowhere, as Qdrant still loading a
# large storage: how a lab test makes a slow start without touching the unit or its env file.
LOADING_FILE_NAME = ".secure-qdrant-lab-loading"
LOADING_FILE = f"{WORKDIR}/storage/{LOADING_FILE_NAME}"


def _frozen_versions() -> list[str]:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(line for line in frozen.splitlines() if "==" in line)


def source_files() -> list[Path]:
    found: list[Path] = []
    for name in SOURCES:
        path = PROJECT / name
        found.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return found


def _stage(stage: Path, constraints: list[str]) -> None:
    """The files the image adds to Debian: the packages, then the code."""
    pins = stage / "constraints.txt"
    stage.mkdir(parents=True)
    pins.write_text("\n".join(constraints) + "\n")
    run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
         "--target", str(stage / "site-packages"), "--constraint", str(pins), *REQUIREMENTS],
        timeout=600,
    )  # fmt: skip
    pins.unlink()
    for source in source_files():
        target = stage / "app" / source.relative_to(PROJECT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def image_tarball() -> Path:
    """The cached tarball (built now if this code or these versions never were)."""
    constraints = _frozen_versions()
    sources = apt_sources()
    recipe = {
        "constraints": constraints,
        "sources": sources_recipe(sources),
        "code": {str(path.relative_to(PROJECT)): path.read_text() for path in source_files()},
        "hooks": HOOKS,
    }

    def build(target: Path) -> None:
        stage = target.with_name(f"{target.name}.stage")
        # mmdebstrap picks the output format by the name's extension.
        tarball = target.with_name(f"{target.name}.tar")
        shutil.rmtree(stage, ignore_errors=True)
        try:
            _stage(stage, constraints)
            hooks = tuple(hook.format(stage=stage) for hook in HOOKS)
            mmdebstrap(tarball, "minbase", ("python3",), sources, hooks)
            tarball.rename(target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            tarball.unlink(missing_ok=True)

    return cached("qdrant-image", recipe, build)


def import_changes(host: HostSettings) -> list[str]:
    """`docker import --change` instructions: what a Dockerfile would say about the image."""
    version = host.qdrant_version.removeprefix("v")
    command = [
        "python3", "-m", "lab.qdrant_double", "--host", "0.0.0.0",
        "--rest-port", str(QDRANT_IMAGE_PORTS.rest), "--grpc-port", str(QDRANT_IMAGE_PORTS.grpc),
        "--version", version, "--loading-while", LOADING_FILE,
    ]  # fmt: skip
    return [
        f"ENV PYTHONPATH={INSTALL_DIR}/site-packages:{INSTALL_DIR}/app",
        f"WORKDIR {WORKDIR}",
        f"EXPOSE {QDRANT_IMAGE_PORTS.rest} {QDRANT_IMAGE_PORTS.grpc}",
        f"CMD {json.dumps(command)}",
    ]
