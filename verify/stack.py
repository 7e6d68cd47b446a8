"""Reaching a deployed stack: its outputs, from Pulumi or the gate's environment, and its host,
once it serves. Shared by `python -m verify` and `python -m verify.allowlist`.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from model.gate_environment import OUTPUTS_VARIABLE
from verify.client import https_request
from verify.target import Target, TargetError, parse_outputs

# Pulumi's own rule for a stack name, optionally qualified by organization and project. A name
# starting with `-` would reach `pulumi` as an option.
STACK_NAME = re.compile(r"(?:[A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+")


def stack_outputs(stack: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    if stack is None:
        if OUTPUTS_VARIABLE not in environ:
            raise TargetError(f"give --stack, or the outputs as JSON in {OUTPUTS_VARIABLE}")
        return parse_outputs(environ[OUTPUTS_VARIABLE], OUTPUTS_VARIABLE)
    if not STACK_NAME.fullmatch(stack) or stack.startswith("-"):
        raise TargetError(
            f"--stack {stack!r} is not a stack name (letters, digits, - _ . and up to two /)"
        )
    try:
        printed = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise TargetError("--stack needs the pulumi CLI, which is not on PATH") from None
    except OSError as error:
        # Not startable: a `pulumi` that is not executable, a PATH whose last entry is a file
        # (ENOTDIR), a machine out of processes or memory (EAGAIN, ENOMEM).
        raise TargetError(f"--stack: pulumi could not be started: {error.strerror}") from None
    if printed.returncode != 0:
        said = printed.stderr.strip().splitlines() or [f"exit status {printed.returncode}"]
        raise TargetError(f"pulumi stack output --stack {stack} failed: {said[-1]}")
    return parse_outputs(printed.stdout, f"pulumi's outputs of stack {stack}")


def wait_until_serving(target: Target, seconds: float) -> bool:
    """Bounded wait for a fresh host (cloud-init needs minutes before TLS is up) or for a rotation
    (the host applies new keys within about a minute): until Qdrant answers and takes the master
    key the outputs hold. Whether it did before the time was up."""
    deadline = time.monotonic() + seconds
    delay = 2.0
    while True:
        try:
            if (
                https_request(target, "GET", "/healthz").status == 200
                and https_request(target, "GET", "/collections", {"api-key": target.api_key}).status
                == 200
            ):
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 30.0)
