"""Value types of the JWT `value_exists` claim and of the records that seed a store."""

from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

PointId = Union[int, str]
Scalar = Union[str, int, bool]
Pairs = Sequence[Tuple[str, Scalar]]
Record = Tuple[PointId, dict[str, Any]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int))  # bool is an int
