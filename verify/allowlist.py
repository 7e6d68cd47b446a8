"""Keeps Qdrant's token allowlist in step with the stack: `python -m verify.allowlist`.

A revocable token carries a `value_exists` claim on the allowlist collection, matching its own name:
Qdrant accepts it only while a point with that name exists. This makes the collection hold one point
per revocable token that is not revoked, and nothing else, so a revoked token (or a revocable one no
longer configured) is refused (401) from the moment it ends, while every other credential keeps
working. `pulumi up` runs it once the host is up and before the deploy gate
(components/allowlist.py); run by hand, `--stack` reads a stack's outputs as `verify` does.

Idempotent: the collection is created if missing, active points are upserted (ids derived from the
names), every other point is deleted. It talks to Qdrant through the TLS edge with the master key,
which reaches it by environment only, and prints no credential.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from model.settings import TOKEN_ALLOWLIST_COLLECTION, TOKEN_ID_KEY
from verify.arguments import OneLineParser, add_stack_arguments, one_line
from verify.client import https_request
from verify.stack import stack_outputs, wait_until_serving
from verify.target import Target, TargetError, target_from_outputs

# Point ids are UUIDs Qdrant accepts, the same for a name on every run and every host.
POINT_NAMESPACE = uuid.UUID("6f1b6c59-2f34-4c55-9d57-5d6c1d0b7e21")
# More revocable tokens than a stack configures; a fuller collection is refused, not half-synced.
SCROLL_LIMIT = 10_000


class AllowlistError(RuntimeError):
    """Qdrant did not do what the sync asked; the message names the request and its status."""


@dataclass(frozen=True)
class Synced:
    allowed: tuple[str, ...]
    removed: int


def point_id(name: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, name))


def allowed_names(target: Target) -> tuple[str, ...]:
    """The revocable tokens not revoked: those whose claim names the allowlist."""
    return tuple(
        sorted(
            token.name
            for token in target.tokens
            if not token.revoked
            and token.claims.get("value_exists", {}).get("collection") == TOKEN_ALLOWLIST_COLLECTION
        )
    )


def _call(target: Target, method: str, path: str, body: Any = None) -> Any:
    headers = {"api-key": target.api_key, "Content-Type": "application/json"}
    payload = None if body is None else json.dumps(body)
    reply = https_request(target, method, path, headers, payload)
    if reply.status != 200:
        raise AllowlistError(f"{method} {path} -> {reply.status}")
    return json.loads(reply.body)["result"]


def sync(target: Target) -> Synced:
    collection = f"/collections/{quote(TOKEN_ALLOWLIST_COLLECTION, safe='')}"
    if not _call(target, "GET", f"{collection}/exists")["exists"]:
        # Payload only: Qdrant keeps points without vectors in a collection with no vector config.
        _call(target, "PUT", collection, {"vectors": {}})
    allowed = allowed_names(target)
    if allowed:
        points = [
            {"id": point_id(name), "vector": {}, "payload": {TOKEN_ID_KEY: name}}
            for name in allowed
        ]
        _call(target, "PUT", f"{collection}/points?wait=true", {"points": points})
    found = _call(
        target,
        "POST",
        f"{collection}/points/scroll",
        {"limit": SCROLL_LIMIT, "with_payload": True, "with_vector": False},
    )
    if found.get("next_page_offset") is not None:
        raise AllowlistError(f"{TOKEN_ALLOWLIST_COLLECTION} holds over {SCROLL_LIMIT} points")
    stale = [
        point["id"]
        for point in found["points"]
        if (point.get("payload") or {}).get(TOKEN_ID_KEY) not in allowed
    ]
    if stale:
        _call(target, "POST", f"{collection}/points/delete?wait=true", {"points": stale})
    return Synced(allowed, len(stale))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m verify.allowlist", description=__doc__)
    add_stack_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = parse_args(argv)
    try:
        target = target_from_outputs(stack_outputs(args.stack, environ))
    except TargetError as error:
        print(f"allowlist: {one_line(str(error))}", file=sys.stderr)
        return 2
    if args.wait:
        wait_until_serving(target, args.wait)
    try:
        synced = sync(target)
    except (AllowlistError, OSError, ValueError, KeyError, TypeError) as error:
        print(
            f"allowlist: {TOKEN_ALLOWLIST_COLLECTION} not synced: {one_line(str(error))}",
            file=sys.stderr,
        )
        return 1
    print(
        f"allowlist {TOKEN_ALLOWLIST_COLLECTION}: {len(synced.allowed)} allowed "
        f"({', '.join(synced.allowed) or 'none'}), {synced.removed} removed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
