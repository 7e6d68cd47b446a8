"""Revoking one token against the real edge on loopback: `verify.allowlist` keeps the allowlist in
step, Qdrant (the double, whose `value_exists` check mirrors src/common/auth/mod.rs) refuses the
revoked token at once, every other credential keeps working, and `verify` reports it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from lab.edge import UNTHROTTLED, EdgeLab
from lab.processes import clean_env
from model.gate_environment import OUTPUTS_VARIABLE
from model.settings import AccessRule, TokenSpec
from tests.verify.test_verify_lab import USER_COLLECTION, start_lab
from verify.allowlist import sync
from verify.checks import token_checks
from verify.client import https_request
from verify.result import Status
from verify.target import Target

SPECS = (
    TokenSpec("search", (AccessRule(USER_COLLECTION, "r"),), revocable=True),
    TokenSpec("leaked", "r", revocable=True),
    TokenSpec("batch", (AccessRule(USER_COLLECTION, "rw"),)),
)


@pytest.fixture
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        yield start_lab(stack, limits=UNTHROTTLED)


def stack_target(lab: EdgeLab, specs=SPECS, revoked: frozenset[str] = frozenset()) -> Target:
    """The lab as the stack's outputs describe it, with `revoked` in `revokedTokens`."""
    target = lab.verify_target(specs)
    tokens = tuple(dataclasses.replace(t, revoked=t.name in revoked) for t in target.tokens)
    return dataclasses.replace(target, tokens=tokens)


def answers(target: Target, jwts: dict[str, str]) -> dict[str, int]:
    """GET /collections/products with each credential, through the TLS edge."""
    credentials = {
        **{f"token {name}": jwt for name, jwt in jwts.items()},
        "master key": target.api_key,
        "read-only key": target.read_only_api_key or "",
    }
    return {
        who: https_request(
            target, "GET", f"/collections/{USER_COLLECTION}", {"api-key": secret}
        ).status
        for who, secret in credentials.items()
    }


def jwts_of(target: Target) -> dict[str, str]:
    return {token.name: token.jwt for token in target.tokens}


def test_revoking_one_token_refuses_it_at_once_while_every_other_credential_works(lab):
    """The point of revocation: a leaked token is stopped without rotating anything else. The
    first request after the deploy's sync is refused (401: no allowlist point), not a later one."""
    allowed = stack_target(lab)
    synced = sync(allowed)
    assert synced.allowed == ("leaked", "search")
    assert answers(allowed, jwts_of(allowed)) == dict.fromkeys(
        answers(allowed, jwts_of(allowed)), 200
    )

    revoked = stack_target(lab, revoked=frozenset({"leaked"}))
    assert sync(revoked).removed == 1
    ended = time.monotonic()
    after = answers(revoked, jwts_of(revoked))
    print(f"\nfirst answers after the sync ended: {time.monotonic() - ended:.3f}s later")

    assert after == {
        "token search": 200,
        "token leaked": 401,
        "token batch": 200,
        "master key": 200,
        "read-only key": 200,
    }


def test_a_second_sync_changes_nothing(lab):
    """It runs on every `pulumi up` that changes a credential or the instance."""
    target = stack_target(lab, revoked=frozenset({"leaked"}))
    sync(target)

    again = sync(target)

    assert (again.allowed, again.removed) == (("search",), 0)


def test_a_revocable_token_dropped_from_the_config_is_refused(lab):
    """Removing a token from the config must not leave its point (and so the token) alive."""
    before = stack_target(lab)
    sync(before)

    sync(stack_target(lab, specs=tuple(s for s in SPECS if s.name != "leaked")))

    assert answers(before, {"leaked": jwts_of(before)["leaked"]})["token leaked"] == 401


def test_verify_passes_a_revoked_token_only_when_qdrant_refuses_it(lab):
    """`token:<name>` of a revoked token: PASS when refused; FAIL while Qdrant still accepts it
    (here: marked revoked, but the allowlist not synced since)."""
    sync(stack_target(lab))
    revoked = stack_target(lab, revoked=frozenset({"leaked"}))

    not_applied = {r.name: r for r in token_checks(revoked)}["token:leaked"]
    sync(revoked)
    applied = {r.name: r for r in token_checks(revoked)}

    assert not_applied.status is Status.FAIL, not_applied
    assert applied["token:leaked"].status is Status.PASS, applied["token:leaked"]
    assert "refused (401)" in applied["token:leaked"].detail
    assert applied["token:search"].status is Status.PASS, applied["token:search"]


def test_the_deploy_command_syncs_from_the_outputs_in_its_environment_and_prints_no_secret(lab):
    """What `pulumi up` runs (components/allowlist.py): the outputs JSON by environment only."""
    target = stack_target(lab, revoked=frozenset({"leaked"}))
    outputs = {
        "restUrl": f"https://{target.domain}:{target.https_port}",
        "publicIp": target.address,
        "apiKey": target.api_key,
        "tokens": jwts_of(target),
        "tokenScopes": {token.name: dict(token.claims) for token in target.tokens},
        "revokedTokens": ["leaked"],
    }
    environment = {
        **clean_env(),
        OUTPUTS_VARIABLE: json.dumps(outputs),
        # The lab's CA, as the system's trust store is on a deploying machine.
        "SSL_CERT_FILE": str(lab.client_ca),
    }

    done = subprocess.run(
        [sys.executable, "-m", "verify.allowlist", "--wait", "30"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "allowlist secure-qdrant-tokens: 1 allowed (search), 0 removed\n"
    for secret in (target.api_key, *jwts_of(target).values()):
        assert secret not in done.stdout + done.stderr
    assert answers(target, jwts_of(target))["token leaked"] == 401
