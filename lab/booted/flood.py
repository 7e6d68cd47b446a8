"""What clients of the booted host's outside do: a key guesser's flood and a well-behaved
application, each recorded answer by answer.

Run them from a client's address with `Client.call` (lab/booted/outside.py). Every request opens a
connection of its own, as a guesser cut off by the host would have to: a ban then shows as the next
connection being refused, not as a stalled keep-alive connection.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from verify.client import https_request
from verify.target import Target

PATH = "/collections"
REFUSED = "refused"
DROPPED = "dropped"
"""Connected, then no answer in time or the connection reset: a ban landing mid-request."""
# Short, so that a request a ban cuts half-way costs the flood less than a second of its figure.
FLOOD_TIMEOUT = 1.0


@dataclass(frozen=True)
class Answer:
    seconds: float
    """When it came, in seconds since the `epoch` (a `time.monotonic()`) the caller gave."""
    outcome: str
    """The HTTP status ("401", "429"), REFUSED or DROPPED."""


def answer(target: Target, key: str, timeout: float) -> str:
    """One request with `key` on a new connection, and what came back."""
    try:
        reply = https_request(
            target, "GET", PATH, {"api-key": key}, wait_out_rate_limit=False, timeout=timeout
        )
    except ConnectionRefusedError:
        return REFUSED
    except OSError:
        return DROPPED
    return str(reply.status)


def flood_until_refused(
    target: Target, key: str, epoch: float, limit_seconds: float
) -> list[Answer]:
    """Requests with `key`, back to back, until a connection is refused or `limit_seconds` pass."""
    answers: list[Answer] = []
    while time.monotonic() - epoch < limit_seconds:
        outcome = answer(target, key, FLOOD_TIMEOUT)
        answers.append(Answer(time.monotonic() - epoch, outcome))
        if outcome == REFUSED:
            break
    return answers


def steadily(
    target: Target, key: str, epoch: float, interval: float, stop: threading.Event
) -> list[Answer]:
    """A request every `interval` seconds until `stop` is set: an application within its limit."""
    answers: list[Answer] = []
    while not stop.is_set():
        outcome = answer(target, key, timeout=10.0)
        answers.append(Answer(time.monotonic() - epoch, outcome))
        stop.wait(interval)
    return answers
