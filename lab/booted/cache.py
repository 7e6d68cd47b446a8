"""Artifacts built once and kept by the hash of everything that went into them.

A rootfs takes half a minute to bootstrap and the same recipe always gives the same result, so each
run reuses what an earlier run built; a changed recipe (a package, a file, the apt sources) is a new
hash and a new build. Outside the project tree: worktrees and CI runs on one machine share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_DIR = Path("/var/cache/secure-qdrant-lab")


def recipe_key(recipe: Any) -> str:
    """A short digest of a JSON-able recipe."""
    encoded = json.dumps(recipe, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def cached(kind: str, recipe: Any, build: Callable[[Path], None]) -> Path:
    """The artifact `build(path)` makes from `recipe`, built only if no earlier run did.

    Built under a staging name and renamed into place, so an interrupted build never passes for a
    finished one, and two runs racing both end with the same complete artifact.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    final = CACHE_DIR / f"{kind}-{recipe_key(recipe)}"
    if final.exists():
        return final
    staging = CACHE_DIR / f".{final.name}.{os.getpid()}"
    _remove(staging)
    try:
        build(staging)
        os.rename(staging, final)
    except OSError:
        if not final.exists():
            raise
    finally:
        _remove(staging)
    return final
