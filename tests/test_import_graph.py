"""The code graph runs one way: the pure model, then the Pulumi wiring, then the tools around them.

`model/` is what a stack is and what the host runs, as data and pure functions; `components/` wires
it into Pulumi resources; `verify/`, `lab/` and `bench/` check, rehearse and measure the product.
The product must not depend on its own checkers: a checker the product imports can no longer fail
independently of it, and a cycle means neither can be read, tested or changed alone. A `__main__`
module is a command line, not a library: what others need lives in a module they can import
without running a program. Read from the source with `ast`, so the rule holds for every file,
imported by a test or not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "components", "verify", "lab", "bench", "tests")
# The project's packages each may import (itself included). Anything outside the project is free,
# except Pulumi for the model (below).
ALLOWED = {
    "model": {"model"},
    "components": {"model", "components"},
    # verify checks what a stack deployed from its outputs and AWS's answers, never through the
    # program that deployed it: the model gives it the ports, paths and names it checks against.
    "verify": {"model", "verify"},
    "lab": {"model", "components", "verify", "lab"},
    "bench": {"model", "components", "verify", "lab", "bench"},
    "tests": set(PACKAGES),
    # The Pulumi program (`__main__.py` at the root) and the host's own Python (cloud-init/).
    "program": {"model", "components"},
    "cloud-init": set(),
}
# The model is pure: no Pulumi at all, so it is tested directly and runs where Pulumi does not
# (on the host side of the lab, in the checks, in the booted guests' images).
PULUMI = ("pulumi", "pulumi_aws", "pulumi_command", "pulumi_random", "pulumi_tls")


def sources() -> list[Path]:
    files = [ROOT / "__main__.py", *sorted((ROOT / "cloud-init").glob("*.py"))]
    for package in PACKAGES:
        files += sorted(
            path for path in (ROOT / package).rglob("*.py") if "node_modules" not in path.parts
        )
    return files


def owner(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return "program" if relative == Path("__main__.py") else relative.parts[0]


def is_project_module(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, at any depth (TYPE_CHECKING blocks and functions included),
    relative imports resolved against the file's package."""
    package = list(path.relative_to(ROOT).parent.parts)
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            modules.add(module)
            # `from package import name` imports a module when `name` is one of the package's.
            modules.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if is_project_module(f"{module}.{alias.name}")
            )
    return modules


def project_package(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in PACKAGES else None


GRAPH = {path: imported_modules(path) for path in sources()}


def violations(rule) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path, modules in GRAPH.items()
        for module in modules
        if rule(owner(path), module)
    )


def test_the_sources_are_found():
    """A rule over no files would hold trivially: the walk sees the model, wiring and tools."""
    owners = {owner(path) for path in GRAPH}
    assert owners >= {"program", "model", "components", "verify", "lab", "bench", "tests"}


def test_each_package_imports_only_the_layers_beneath_it():
    """The product (model/, components/) imports nothing of the tools that check it (verify/,
    lab/, bench/, tests/), verify/ reaches the product only through the model, and no package imports
    one above it: the graph has no cycle."""
    found = violations(
        lambda package, module: (
            project_package(module) is not None and project_package(module) not in ALLOWED[package]
        )
    )
    assert found == [], "imports against the layering:\n" + "\n".join(found)


def test_the_model_is_pulumi_free():
    """model/ renders, validates and computes; Pulumi's resources and runtime live in components/."""
    found = violations(
        lambda package, module: package == "model" and module.split(".")[0] in PULUMI
    )
    assert found == [], "Pulumi in the pure model:\n" + "\n".join(found)


def test_no_module_imports_a_main_module():
    """A `__main__` module only parses arguments and calls: code another module needs lives where
    importing it runs no program."""
    found = violations(lambda package, module: "__main__" in module.split("."))
    assert found == [], "imports of a __main__ module:\n" + "\n".join(found)


@pytest.mark.parametrize("package", ["model", "components"])
def test_the_product_packages_say_their_rule(package):
    """What belongs in model/ and what in components/ is written where their code is read: the
    package's `__init__` docstring."""
    init = ROOT / package / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"{package}/__init__.py has no docstring"
