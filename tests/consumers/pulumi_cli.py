"""The Pulumi CLI's rules for `Pulumi.yaml` and `Pulumi.<stack>.yaml`, restated from its Go source.

Each function names the pulumi/pulumi file it restates. Covered is what this project's files use: a
project with a typed `config:` block, and stack files with plain (not encrypted) values. A value held
as ciphertext is refused here, since a test has no key to decrypt it with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIMPLE_TYPES = ("string", "integer", "boolean", "array")
_DECLARATION_FIELDS = {"type", "items", "description", "secret", "default", "value"}
_OPTIONAL_STRINGS = ("description", "author", "website", "license", "main", "stackConfigDir")
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ATOI = re.compile(r"^[+-]?[0-9]+$")
_INT64 = range(-(2**63), 2**63)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fits_declared_type(type_name: str | None, items: Any, value: Any) -> bool:
    """`ValidateConfigValue` (sdk/go/common/workspace/project.go): a default or stack value vs its type.

    Stack scalars reach it as strings, so an integer key takes "20" (strconv.Atoi) and a boolean key
    takes exactly "true" or "false".
    """
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, float):
            return value.is_integer()
        if isinstance(value, str):
            return bool(_ATOI.match(value)) and int(value) in _INT64
        return _is_int(value)
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or not isinstance(items, dict):
        return False
    return all(fits_declared_type(items.get("type"), items.get("items"), item) for item in value)


def full_type_name(type_name: str | None, items: Any) -> str:
    """`InferFullTypeName` (project.go), as the CLI's messages spell a type: array<string>."""
    if isinstance(items, dict):
        return f"array<{full_type_name(items.get('type'), items.get('items'))}>"
    return str(type_name)


def namespaced_by_project(project_name: str, key: str) -> bool:
    """`configKeyIsNamespacedByProject` (project.go): `key` and `<project>:key` are the project's own."""
    return ":" not in key or key.startswith(project_name + ":")


def _items_problems(where: str, items: Any) -> list[str]:
    # `configItemsType` in sdk/go/common/workspace/project.json.
    if not isinstance(items, dict):
        return [f"{where}: items must be a mapping with a `type`"]
    problems = []
    item_type = items.get("type")
    if "type" not in items:
        problems.append(f"{where}: items needs a `type`")
    elif isinstance(item_type, dict):
        problems += _items_problems(f"{where}.type", item_type)
    elif item_type not in SIMPLE_TYPES:
        problems.append(
            f"{where}: items type {item_type!r} is not one of {', '.join(SIMPLE_TYPES)}"
        )
    if item_type == "array" and "items" not in items:
        problems.append(f"{where}: an array of arrays needs nested `items`")
    if "items" in items:
        problems += _items_problems(f"{where}.items", items["items"])
    return problems


def _declaration(
    project_name: str, key: str, entry: Any
) -> tuple[dict[str, Any] | None, list[str]]:
    """The entry after `RewriteShorthandConfigValues` (project.go), or the schema's complaint."""
    where = f"config.{key}"
    if isinstance(entry, (str, bool, list)) or _is_int(entry):
        # Shorthand: a project key's bare value is its default, another namespace's is its value.
        return (
            {"default": entry} if namespaced_by_project(project_name, key) else {"value": entry}
        ), []
    if not isinstance(entry, dict):
        return None, [f"{where}: must be a string, integer, boolean, list or a type declaration"]
    problems = [
        f"{where}: unknown property {field!r} (allowed: {', '.join(sorted(_DECLARATION_FIELDS))})"
        for field in sorted(set(entry) - _DECLARATION_FIELDS)
    ]
    if "type" in entry and entry["type"] not in SIMPLE_TYPES:
        problems.append(f"{where}: type {entry['type']!r} is not one of {', '.join(SIMPLE_TYPES)}")
    if "description" in entry and not isinstance(entry["description"], str):
        problems.append(f"{where}: description must be a string")
    if "secret" in entry and not isinstance(entry["secret"], bool):
        problems.append(f"{where}: secret must be a boolean")
    if "items" in entry:
        problems += _items_problems(where, entry["items"])
    return entry, problems


def _typing_problems(project_name: str, key: str, declaration: Mapping[str, Any]) -> list[str]:
    # `(*Project).Validate` in project.go, on the rewritten declaration.
    where = f"config.{key}"
    type_name = declaration.get("type")
    if "default" in declaration and "value" in declaration:
        return [f"{where}: cannot have both a 'default' and 'value' attribute"]
    if not namespaced_by_project(project_name, key):
        if type_name is not None or "default" in declaration:
            return [f"{where}: another namespace's key takes a 'value', not a type or default"]
        return (
            [] if "value" in declaration else [f"{where}: another namespace's key needs a 'value'"]
        )
    if type_name == "array" and "items" not in declaration:
        return [f"{where}: declares an array but not its 'items'"]
    default = declaration.get("default")
    if type_name is not None and default is not None:
        if not fits_declared_type(type_name, declaration.get("items"), default):
            expected = full_type_name(type_name, declaration.get("items"))
            return [f"{where}: default {default!r} is not of the expected type '{expected}'"]
    return []


def project_problems(project: Any) -> list[str]:
    """What `LoadProject` (sdk/go/common/workspace/loaders.go) refuses after the YAML parsed: the
    project.json schema (`ValidateProject`), then `(*Project).Validate`, all problems at once."""
    if not isinstance(project, dict):
        return ["the project file is not a mapping"]
    problems = []
    name = project.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name: a non-empty string is required")
    elif not _PROJECT_NAME.match(name):
        problems.append(f"name: {name!r} may hold only letters, digits, '-', '_' and '.'")
    runtime = project.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if not isinstance(runtime_name, str) or not runtime_name:
        problems.append("runtime: a name (string, or `name:` with optional `options:`) is required")
    if isinstance(runtime, dict):
        unknown = sorted(set(runtime) - {"name", "options"})
        problems += [f"runtime: unknown property {field!r}" for field in unknown]
        if not isinstance(runtime.get("options", {}), dict):
            problems.append("runtime.options: must be a mapping")
    problems += [
        f"{field}: must be a string"
        for field in _OPTIONAL_STRINGS
        if project.get(field) is not None and not isinstance(project[field], str)
    ]
    config = project.get("config")
    if config is None or isinstance(config, str):  # a string is the deprecated stackConfigDir
        return problems
    if not isinstance(config, dict):
        return [*problems, "config: must be a mapping of keys to types"]
    for key, entry in config.items():
        declaration, schema_problems = _declaration(str(name), key, entry)
        problems += schema_problems
        if declaration is not None and not schema_problems:
            problems += _typing_problems(str(name), key, declaration)
    return problems


def declared_config(project: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's own config declarations by bare key name (shorthand rewritten)."""
    name = project["name"]
    declared = {}
    for key, entry in (project.get("config") or {}).items():
        if namespaced_by_project(name, key):
            declaration, _ = _declaration(name, key, entry)
            declared[key.split(":", 1)[-1]] = declaration or {}
    return declared


def parse_key(key: str) -> tuple[str, str] | None:
    """`ParseKey` (sdk/go/common/resource/config/key.go): (namespace, name), or None if unparseable."""
    parts = key.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config":
        return parts[0], parts[2]
    return None


def _holds_ciphertext(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_holds_ciphertext(v) for v in value.values())
    return isinstance(value, list) and any(_holds_ciphertext(v) for v in value)


def _go_numbers(value: Any) -> Any:
    # encoding/json prints a whole float64 below 1e21 without a fraction: 20.0 -> 20.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    return value


def go_json(value: Any) -> str:
    """Go's json.Marshal: sorted keys, no spaces, UTF-8 kept, <, >, & escaped; NaN/Inf refused."""
    text = json.dumps(
        _go_numbers(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


@dataclass(frozen=True)
class StackValue:
    text: str
    """What the program receives for the key."""
    is_object: bool
    """A list or mapping (or null), handed over as JSON text."""


def stack_value(raw: Any) -> StackValue:
    """A stack file value as the CLI stores it: `Value.UnmarshalYAML` -> `object.MarshalString`
    (sdk/go/common/resource/config/value.go, object.go). Scalars become their JSON text (a YAML
    `True` is "true", `20.0` is "20"), strings stay as written, the rest becomes JSON."""
    if _holds_ciphertext(raw):
        raise ValueError("a stack value is ciphertext ({secure: ...}): no key here to decrypt it")
    if isinstance(raw, str):
        return StackValue(raw, False)
    if isinstance(raw, (bool, int, float)):
        return StackValue(go_json(raw), False)
    return StackValue(go_json(raw), True)


def default_value(raw: Any) -> str:
    """`createConfigValue` (sdk/go/common/workspace/config.go): a project default as the program
    receives it; primitives via Go's %v, lists and mappings as JSON."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (str, int)):
        return str(raw)
    return go_json(raw)


def _content(value: StackValue) -> Any:
    # `validateStackConfigValue` (config.go) checks an object's decoded JSON, a scalar's string.
    return json.loads(value.text) if value.is_object else value.text


def stack_problems(project: Mapping[str, Any], stack: Any, stack_name: str) -> list[str]:
    """What `pulumi up` refuses in a stack file before the program runs: keys that do not parse,
    project keys without value or default (`mergeConfig`), values not of their declared type or not
    encrypted though declared secret (`validateStackConfigValue`), all in config.go."""
    if not isinstance(stack, dict):
        return [f"stack {stack_name!r}: the file is not a mapping"]
    config = stack.get("config") or {}
    problems = [
        f"{key}: not of the form <namespace>:<name>"
        for key in config
        if parse_key(str(key)) is None
    ]
    values = {parse_key(str(key)): raw for key, raw in config.items()}
    for name, declaration in declared_config(project).items():
        key = (project["name"], name)
        if key not in values:
            if "default" not in declaration and "value" not in declaration:
                problems.append(f"Stack {stack_name!r} is missing configuration value '{name}'")
            continue
        type_name = declaration.get("type")
        if type_name is None:  # the CLI checks only explicitly typed keys
            continue
        if declaration.get("secret"):
            problems.append(f"{':'.join(key)}: must be encrypted as it's secret")
        value = _content(stack_value(values[key]))
        if not fits_declared_type(type_name, declaration.get("items"), value):
            expected = full_type_name(type_name, declaration.get("items"))
            problems.append(f"{':'.join(key)}: must be of type '{expected}'")
    return problems


def language_host_environment(
    project: Mapping[str, Any], stack: Mapping[str, Any]
) -> dict[str, str]:
    """The config part of the environment the Python language host gives the program.

    The engine merges the stack's values with the project's defaults for keys the stack does not set
    (`mergeConfig`, config.go) and hands the decrypted map to the language host; the host serialises
    it as JSON into PULUMI_CONFIG and the secret keys into PULUMI_CONFIG_SECRET_KEYS
    (`constructConfig`, sdk/python/cmd/pulumi-language-python/main.go).
    """
    config = {}
    for key, raw in (stack.get("config") or {}).items():
        parsed = parse_key(str(key))
        if parsed is None:
            raise ValueError(f"{key}: not a configuration key; see stack_problems")
        config[":".join(parsed)] = stack_value(raw).text
    for name, declaration in declared_config(project).items():
        key = f"{project['name']}:{name}"
        for source in ("value", "default"):
            if key not in config and source in declaration:
                config[key] = default_value(declaration[source])
    # Ciphertext is refused above, so no key is secret.
    return {"PULUMI_CONFIG": go_json(config), "PULUMI_CONFIG_SECRET_KEYS": "[]"}
