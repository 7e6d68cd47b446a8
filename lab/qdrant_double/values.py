"""Value types of the JWT `value_exists` claim and of the records that seed a store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PointId = int | str
Scalar = str | int | bool
Pairs = Sequence[tuple[str, Scalar]]
Record = tuple[PointId, dict[str, Any]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int))  # bool is an int
