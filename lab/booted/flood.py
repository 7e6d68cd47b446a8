"""What clients of the booted host's outside do: a key guesser's flood, over REST or gRPC, and a
well-behaved application, each recorded answer by answer.

Run them from a client's address with `Client.call`, or `Client.call_in_process` for anything
that speaks gRPC (lab/booted/outside.py). Every request opens a connection of its own, as a guesser
cut off by the host would have to: a ban then shows as the next connection being refused, not as a
stalled keep-alive connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from verify.client import https_request
from verify.target import Target

PATH = "/collections"
# Needs no generated stubs (an empty request), only authorization: as verify's gRPC check.
GRPC_METHOD = "/qdrant.Collections/List"
REFUSED = "refused"
DROPPED = "dropped"
"""Connected, then no answer in time or the connection reset: a ban landing mid-request."""
# Short, so that a request a ban cuts half-way costs the flood less than a second of its figure.
FLOOD_TIMEOUT = 1.0
ANSWER_TIMEOUT = 10.0

Ask = Callable[[float], str]
"""One request on a new connection, given its timeout: what came back (`rest_answer`)."""


@dataclass(frozen=True)
class Answer:
    seconds: float
    """When it came, in seconds since the `epoch` (a `time.monotonic()`, one clock for every process
    of the machine) the caller gave."""
    outcome: str
    """The HTTP status ("401", "429"), the gRPC status ("UNAUTHENTICATED"), REFUSED or DROPPED."""


def rest_answer(target: Target, key: str, timeout: float) -> str:
    """One REST request with `key` on a new connection: its HTTP status."""
    try:
        reply = https_request(
            target, "GET", PATH, {"api-key": key}, wait_out_rate_limit=False, timeout=timeout
        )
    except ConnectionRefusedError:
        return REFUSED
    except OSError:
        return DROPPED
    return str(reply.status)


def grpc_answer(target: Target, key: str, timeout: float) -> str:
    """One gRPC call with `key` on a channel and connection of its own: its gRPC status, or "429"
    (nginx's rate limit reaches a gRPC client as UNAVAILABLE naming the HTTP status)."""
    root = Path(target.ca_file).read_bytes() if target.ca_file else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    # Channels share connections through grpcio's global subchannel pool unless told not to.
    options = [
        ("grpc.ssl_target_name_override", target.domain),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    with grpc.secure_channel(
        f"{target.address}:{target.grpc_port}", credentials, options
    ) as channel:
        call = channel.unary_unary(
            GRPC_METHOD, request_serializer=lambda _: b"", response_deserializer=lambda raw: raw
        )
        try:
            call(None, metadata=(("api-key", key),), timeout=timeout)
        except grpc.RpcError as error:
            return _grpc_outcome(error.code(), error.details() or "")
    return grpc.StatusCode.OK.name


def _grpc_outcome(code: grpc.StatusCode, details: str) -> str:
    if code is grpc.StatusCode.UNAVAILABLE:
        if "Connection refused" in details:
            return REFUSED
        return "429" if "429" in details else DROPPED
    return DROPPED if code is grpc.StatusCode.DEADLINE_EXCEEDED else code.name


@dataclass(frozen=True)
class Flood:
    started: float
    """When its first request left, in seconds since the `epoch`: a child process takes a while to
    start, which is no part of the host's reaction."""
    answers: list[Answer]

    def since_start(self, answer: Answer) -> float:
        return answer.seconds - self.started


def flood_until_refused(ask: Ask, epoch: float, limit_seconds: float) -> Flood:
    """`ask`, back to back, until a connection is refused or `limit_seconds` pass."""
    started = time.monotonic() - epoch
    answers: list[Answer] = []
    while time.monotonic() - epoch < limit_seconds:
        outcome = ask(FLOOD_TIMEOUT)
        answers.append(Answer(time.monotonic() - epoch, outcome))
        if outcome == REFUSED:
            break
    return Flood(started, answers)


def each_once(asks: Sequence[Ask]) -> list[str]:
    """Every one of `asks` in turn, once: what each got."""
    return [ask(ANSWER_TIMEOUT) for ask in asks]


def steadily(ask: Ask, epoch: float, interval: float, stop: threading.Event) -> list[Answer]:
    """`ask` every `interval` seconds until `stop` is set: an application within its limit."""
    answers: list[Answer] = []
    while not stop.is_set():
        outcome = ask(ANSWER_TIMEOUT)
        answers.append(Answer(time.monotonic() - epoch, outcome))
        stop.wait(interval)
    return answers
