"""The README's quick start, as a reader types it: its `pulumi config set` lines make the stack file
the Pulumi CLI would write, which the CLI's type checks accept and the program deploys under mocks
into the stack the README promises. A quick start that fails on its first `pulumi up` is the first
thing a new user meets."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from tests.consumers.pulumi_cli import language_host_environment, stack_problems
from tests.consumers.stack_files import load_project
from tests.program import deploy_from_environment
from tests.readme import code_block

QUICK_START = code_block("sh", "pulumi stack init")
PROJECT = "secure-qdrant"
# Pulumi's property paths (`pulumi config set --path`): a key, then `.name` or `[index]` steps.
PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def commands() -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in QUICK_START.splitlines() if line.strip()]


def _set_path(config: dict[str, Any], key: str, value: str) -> None:
    """As `pulumi config set --path` writes a nested value: lists grow by index, objects by
    name, and the leaf is the string typed (the CLI's default type)."""
    head, rest = re.match(r"([^.\[]+)(.*)", key).groups()  # type: ignore[union-attr]
    steps: list[str | int] = [name or int(index) for name, index in PATH_STEP.findall(rest)]
    assert "".join(f".{s}" if isinstance(s, str) else f"[{s}]" for s in steps) == rest, key
    container: Any = config
    keys: list[str | int] = [head, *steps]
    for step, following in zip(keys, keys[1:] + [None], strict=True):
        if following is None:
            _put(container, step, value)
        else:
            if not _has(container, step):
                _put(container, step, [] if isinstance(following, int) else {})
            container = container[step]


def _has(container: Any, step: str | int) -> bool:
    return step in container if isinstance(container, dict) else step < len(container)


def _put(container: Any, step: str | int, value: Any) -> None:
    if isinstance(container, list):
        assert step == len(container) or isinstance(step, int) and step < len(container), step
        if step == len(container):
            container.append(value)
            return
    container[step] = value


def quick_start_stack() -> tuple[str, dict[str, Any]]:
    """The stack's name and the stack file the quick start's commands leave behind."""
    stack_name, config = "", {}
    for command in commands():
        assert command[0] == "pulumi", command
        if command[1:3] == ["stack", "init"]:
            stack_name = command[3]
        elif command[1:3] == ["config", "set"]:
            arguments = command[3:]
            path = arguments[0] == "--path"
            key, value = arguments[1:] if path else arguments
            namespaced = key if ":" in key.split("[")[0].split(".")[0] else f"{PROJECT}:{key}"
            if path:
                _set_path(config, namespaced, value)
            else:
                config[namespaced] = value
    return stack_name, {"config": config}


def test_the_quick_start_sets_only_what_the_project_declares():
    """The CLI refuses a stack whose values don't fit the project's declared types before it runs
    the program: the quick start's must fit."""
    stack_name, stack = quick_start_stack()
    assert stack_name == "dev"
    assert stack_problems(load_project(), stack, stack_name) == []


def test_the_quick_start_deploys_the_stack_the_readme_promises():
    """One scoped token for search-api, reading only `products`, and SSH only from the one admin
    address: exactly the access the commands configured, nothing wider."""
    stack_name, stack = quick_start_stack()
    deployment = deploy_from_environment(
        language_host_environment(load_project(), stack), stack_name
    )
    scopes = deployment.outputs["tokenScopes"].value
    assert scopes["search-api"]["access"] == [{"collection": "products", "access": "r"}]
    ssh = [
        rule.inputs
        for rule in deployment.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule.inputs.get("fromPort") == 22
    ]
    assert [rule.get("cidrIpv4") for rule in ssh] == ["203.0.113.7/32"]


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("adminCidrs[0]", "a", {"adminCidrs": ["a"]}),
        ("tokens[0].access[0].access", "r", {"tokens": [{"access": [{"access": "r"}]}]}),
    ],
)
def test_a_property_path_nests_as_the_cli_writes_it(key, value, expected):
    config: dict[str, Any] = {}
    _set_path(config, key, value)
    assert config == expected
