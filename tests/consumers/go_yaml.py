"""YAML read the way the Pulumi CLI reads it: Go's gopkg.in/yaml.v3, not PyYAML's YAML 1.1.

The differences that matter for Pulumi files:
- a mapping key given twice is an error (yaml.v3 decode.go), where PyYAML keeps the last value;
- plain scalars resolve per yaml.v3 resolve.go: only true/True/TRUE and false/False/FALSE are booleans
  (`yes`, `on` stay strings), Go integer syntax (0x, 0o, 0b, a leading 0 is octal, `_` ignored),
  no base-60 numbers, and a timestamp decoded into an untyped value stays the string it was written as.

Syntax errors (such as `: ` inside a plain scalar) come from PyYAML's scanner, which, like yaml.v3's,
is a port of libyaml.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
# After removing `_`, what strconv.ParseInt(s, 0, 64) accepts.
_INT = re.compile(r"^[-+]?(?:0[bB][01]+|0[oO]?[0-7]+|0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)$")
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {
    **{text: math.nan for text in (".nan", ".NaN", ".NAN")},
    **{sign + text: math.inf for sign in ("", "+") for text in (".inf", ".Inf", ".INF")},
    **{"-" + text: -math.inf for text in (".inf", ".Inf", ".INF")},
}
_INT_BASES = {"0b": 2, "0o": 8, "0x": 16}


def _go_int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    base = _INT_BASES.get(digits[:2].lower())
    if base:
        return sign * int(digits[2:], base)
    # Go keeps YAML 1.1's leading-zero octal.
    return sign * int(digits, 8 if len(digits) > 1 and digits[0] == "0" else 10)


def _go_tag(text: str) -> str:
    """The tag yaml.v3 resolves a plain scalar to (a timestamp is kept as its text, so: str)."""
    if text in _BOOL:
        return "bool"
    if _NULL.match(text):
        return "null"
    if text in _SPECIAL_FLOATS:
        return "float"
    plain = text.replace("_", "")
    if _INT.match(plain):
        return "int"
    if _YAML_STYLE_FLOAT.match(plain):
        return "float"
    return "str"


class GoYamlLoader(yaml.SafeLoader):
    """SafeLoader with yaml.v3's scalar resolution and its refusal of duplicate keys."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return f"tag:yaml.org,2002:{_go_tag(value)}"
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key].start_mark.line + 1
                problem = f"mapping key {key!r} already defined at line {first}"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_go_bool(self, node: yaml.ScalarNode) -> bool:
        return _BOOL[node.value]

    def construct_go_int(self, node: yaml.ScalarNode) -> int:
        return _go_int(node.value)

    def construct_go_float(self, node: yaml.ScalarNode) -> float:
        special = _SPECIAL_FLOATS.get(node.value)
        return float(node.value.replace("_", "")) if special is None else special


GoYamlLoader.add_constructor("tag:yaml.org,2002:bool", GoYamlLoader.construct_go_bool)
GoYamlLoader.add_constructor("tag:yaml.org,2002:int", GoYamlLoader.construct_go_int)
GoYamlLoader.add_constructor("tag:yaml.org,2002:float", GoYamlLoader.construct_go_float)


def load(text: str) -> Any:
    """Parse one YAML document as yaml.v3 would decode it into an untyped value."""
    return yaml.load(text, Loader=GoYamlLoader)  # safe: GoYamlLoader is a SafeLoader
