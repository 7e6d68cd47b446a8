"""The booted host's Qdrant image installs every package the double imports.

The image is built by the booted tests alone (they need root, mmdebstrap and minutes); this test
reads what the image would lack without building it: the double's imports, by the source files
the image copies, against the packages it installs.

Run from the repo root with PYTHONPATH=.
"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions, requires

from packaging.requirements import Requirement

from lab.booted.qdrant_image import PROJECT, REQUIREMENTS, source_files

PROJECT_PACKAGES = {"lab", "model"}


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for source in source_files():
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - PROJECT_PACKAGES - {"__future__"}


def _normalized(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def _with_dependencies(names: tuple[str, ...]) -> set[str]:
    """What pip installs for `names` on this Python: them and, recursively, their requirements."""
    found: set[str] = set()
    pending = [_normalized(name) for name in names]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_normalized(requirement.name))
    return found


def test_image_installs_the_distribution_of_every_module_the_double_imports() -> None:
    """A module missing from the image stops the booted host's Qdrant at its first import, and
    with it every booted data-path check; the engine (qdrant_edge) among them."""
    distributions = packages_distributions()
    installed = _with_dependencies(REQUIREMENTS)
    missing = {
        module: distributions.get(module, [module])
        for module in _imported_top_levels()
        if not installed & {_normalized(name) for name in distributions.get(module, [module])}
    }
    assert not missing
    assert "qdrant_edge" in _imported_top_levels()


def test_image_copies_every_project_module_the_double_imports() -> None:
    """The image carries a few of the project's own files, not the project: a module of ours the
    double comes to import (however indirectly) and the image lacks stops Qdrant at start."""
    copied = {path.resolve() for path in source_files()}
    missing = set()
    for source in source_files():
        for node in ast.walk(ast.parse(source.read_text())):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            for module in modules:
                if module.split(".")[0] not in PROJECT_PACKAGES:
                    continue
                base = PROJECT / module.replace(".", "/")
                candidates = {base.with_suffix(".py").resolve(), (base / "__init__.py").resolve()}
                if not candidates & copied:
                    missing.add(f"{module} (imported by {source.relative_to(PROJECT)})")
    assert not missing, sorted(missing)
