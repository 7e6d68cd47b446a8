"""The project's Pulumi files as the CLI finds them, and a stack file deployed under mocks the way
`pulumi up` would hand it to the program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.consumers import go_yaml
from tests.consumers.pulumi_cli import language_host_environment
from tests.program import Deployment, deploy_from_environment

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILE = ROOT / "Pulumi.yaml"
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))
EXAMPLE_STACK_FILE = ROOT / "Pulumi.dev.yaml"


def stack_name(path: Path) -> str:
    return path.name[len("Pulumi.") : -len(".yaml")]


def load_project() -> Any:
    return go_yaml.load(PROJECT_FILE.read_text())


def load_stack(path: Path) -> Any:
    return go_yaml.load(path.read_text())


def deploy_stack_file(path: Path) -> Deployment:
    """Run the program with exactly the stack file's config, passed as the CLI passes it."""
    environment = language_host_environment(load_project(), load_stack(path))
    return deploy_from_environment(environment, stack_name(path))
