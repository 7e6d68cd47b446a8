"""Warnings about credentials that are about to stop working (a token near its expiry, the key a
rotation replaced near the end of its grace window): not a failure of the deployment today, so a
WARN that leaves the exit status alone.

A token's expiry is read from the token itself, the claims part of the JWT decoded without its
signature checked: only the date is taken from it, to say when the caller must have a new one.
What the token may do is judged by Qdrant in the token checks, never from these bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from verify.result import CheckResult, Status
from verify.target import Token

EXPIRY_WARNING = dt.timedelta(days=30)


def token_expiry_warnings(tokens: Sequence[Token], now: dt.datetime) -> list[CheckResult]:
    """A WARN for each token whose own `exp` falls within EXPIRY_WARNING of `now` (or is past)."""
    warnings = []
    for token in tokens:
        expires = token.own_expiry()
        if expires is not None and expires - now <= EXPIRY_WARNING:
            warnings.append(
                CheckResult(
                    f"token-expiry:{token.name}",
                    Status.WARN,
                    f"{_when(expires, now)} ({expires:%Y-%m-%d %H:%M} UTC): set a later expiresAt "
                    "and pulumi up to mint a new one",
                )
            )
    return warnings


def grace_window_warnings(ends_at: dt.datetime | None, now: dt.datetime) -> list[CheckResult]:
    """A WARN while a rotation's grace window is open: the replaced master key and the tokens it
    signed still work until `ends_at`, and every application still using them stops then."""
    if ends_at is None or ends_at <= now:
        return []
    hours = (ends_at - now) / dt.timedelta(hours=1)
    return [
        CheckResult(
            "key-grace-window",
            Status.WARN,
            f"the previous master key and the tokens it signed work for {hours:.0f} more hours "
            f"(until {ends_at:%Y-%m-%d %H:%M} UTC): move every application to the re-minted "
            "credentials before then",
        )
    ]


def _when(expires: dt.datetime, now: dt.datetime) -> str:
    days = (expires - now) / dt.timedelta(days=1)
    if days <= 0:
        return f"expired {-days:.0f} days ago"
    return f"expires in {days:.0f} days"
