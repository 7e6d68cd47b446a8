"""All of one namespace's stack config as raw strings, including keys the program does not know.

`pulumi.Config` only answers for keys it is asked about; typo protection needs the whole set.
"""

from __future__ import annotations

from pulumi.runtime import config as runtime_config


def raw_config(namespace: str) -> dict[str, str]:
    """`{key: value}` for every `namespace:key` set in the stack (values as Pulumi passes them)."""
    prefix = f"{namespace}:"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {
        key[len(prefix) :]: value if isinstance(value, str) else str(value)
        for key, value in merged.items()
        if key.startswith(prefix)
    }
