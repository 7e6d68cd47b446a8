"""Debian 12 trees made with mmdebstrap from this machine's own apt sources (no proxy, no other
mirror): the booted guest's root filesystem, and the Qdrant image's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.processes import require_tools, run

SUITE = "bookworm"
APT_DIR = Path("/etc/apt")
# mmdebstrap fetches and unpacks a few hundred packages: far longer than a lab command's default.
BUILD_TIMEOUT_SECONDS = 900


def apt_sources(apt_dir: Path = APT_DIR) -> tuple[Path, ...]:
    """The machine's enabled apt sources files (apt ignores other extensions, e.g. `.disabled`)."""
    listed = apt_dir / "sources.list"
    parts = sorted(
        path
        for pattern in ("*.list", "*.sources")
        for path in (apt_dir / "sources.list.d").glob(pattern)
    )
    found = ([listed] if listed.exists() else []) + parts
    return tuple(path for path in found if _has_entries(path))


def _has_entries(path: Path) -> bool:
    return any(
        line.strip() and not line.lstrip().startswith("#") for line in path.read_text().splitlines()
    )


def sources_recipe(sources: Sequence[Path]) -> list[str]:
    """What the sources contribute to a cache key: their text, not their names."""
    return [path.read_text() for path in sources]


def mmdebstrap(
    target: Path,
    variant: str,
    packages: Sequence[str],
    sources: Sequence[Path],
    hooks: Sequence[str] = (),
) -> None:
    """`target` becomes a directory, or a tarball when it ends in `.tar`."""
    require_tools("mmdebstrap")
    if not sources:
        raise RuntimeError(f"no apt sources found under {APT_DIR}")
    command = [
        "mmdebstrap",
        "--quiet",
        f"--variant={variant}",
        f"--include={','.join(packages)}",
        *(f"--customize-hook={hook}" for hook in hooks),
        SUITE,
        str(target),
        *map(str, sources),
    ]
    run(command, timeout=BUILD_TIMEOUT_SECONDS)
