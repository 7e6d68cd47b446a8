"""Command-line parsing shared by `verify`, `lab` and `bench`: a wrong argument is one line on stderr
naming it, and exit status 2, before anything starts.

argparse already exits 2 on a bad argument, but prints its whole usage block first; and `type=float`
takes `nan`, `inf` and negative numbers, which the commands would only trip over minutes later.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import NoReturn

HIGHEST_PORT = 65535
# ASCII digits only (int() also takes spaces, `_` and other scripts' digits), and few enough that
# int() never meets its 4,300-digit limit.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


def one_line(message: str) -> str:
    """`message` with what would break or hide its line (newlines, control characters) escaped:
    it quotes the user's own input, which may hold anything."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message)} (see --help)\n")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_number(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0")
    return value


def non_negative_number(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def positive_integer(text: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at most 18 digits")
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0")
    return value


def port(text: str) -> int:
    value = positive_integer(text)
    if value > HIGHEST_PORT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-{HIGHEST_PORT})")
    return value


def new_file(text: str) -> Path:
    """A file to write at the end of a long run: its directory must exist now, not only then."""
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file in an existing directory")
    return path


def directory(text: str) -> Path:
    """A directory, created if missing: anything else already there is refused."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return path


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """`--stack` and `--wait`, for the commands that act on a deployed stack."""
    parser.add_argument("--stack", help="Pulumi stack whose outputs describe the deployment")
    parser.add_argument(
        "--wait",
        type=non_negative_number,
        default=0,
        metavar="SECONDS",
        help="wait for the endpoint first",
    )
