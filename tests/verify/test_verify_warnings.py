"""`verify`'s warnings: a token about to expire is reported as WARN, read from the token's own
`exp`; so is a rotation's grace window still open, read from `keyGraceEndsAt`; and a WARN never
changes the exit status (0 stays 0, 1 stays 1), in the table and in JSON.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from contextlib import redirect_stdout
from unittest import mock

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import verify.cli as verify_cli
from model.gate_environment import OUTPUTS_VARIABLE
from verify.expiry import EXPIRY_WARNING, grace_window_warnings, token_expiry_warnings
from verify.result import CheckResult, Status
from verify.target import TargetError, Token, target_from_outputs

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
MASTER = "m" * 48


def token(
    name: str = "app",
    expires_in: dt.timedelta | None = None,
    now: dt.datetime = NOW,
    **scope: object,
) -> Token:
    claims: dict[str, object] = {"access": "r"}
    if expires_in is not None:
        claims["exp"] = int((now + expires_in).timestamp())
    return Token(name, jwt.encode(claims, MASTER, algorithm="HS256"), {"access": "r", **scope})


def test_a_token_expiring_within_30_days_is_a_warning_naming_it() -> None:
    (warning,) = token_expiry_warnings([token("billing", dt.timedelta(days=10))], NOW)

    assert warning.status is Status.WARN
    assert warning.name == "token-expiry:billing"
    assert "expires in 10 days (2026-12-10 00:00 UTC)" in warning.detail


def test_a_token_expiring_in_more_than_30_days_is_not_warned_about() -> None:
    later = EXPIRY_WARNING + dt.timedelta(hours=1)

    assert token_expiry_warnings([token(expires_in=later)], NOW) == []


def test_a_token_without_exp_is_not_warned_about() -> None:
    assert token_expiry_warnings([token()], NOW) == []


def test_an_expired_token_is_a_warning_too() -> None:
    (warning,) = token_expiry_warnings([token(expires_in=-dt.timedelta(days=3))], NOW)

    assert warning.status is Status.WARN and "expired 3 days ago" in warning.detail


def test_the_expiry_is_read_from_the_token_not_from_its_outputs() -> None:
    """The outputs' tokenScopes may be stale or hand-edited; the token is what Qdrant judges."""
    far = int((NOW + dt.timedelta(days=365)).timestamp())

    (warning,) = token_expiry_warnings([token(expires_in=dt.timedelta(days=5), exp=far)], NOW)

    assert "expires in 5 days" in warning.detail


@pytest.mark.parametrize(
    "value",
    ["not-a-jwt", "a.b.c", "a.!!!.c", f"x.{'e30'}.y", "x.eyJleHAiOiAiMTAifQ.y", "x.WzFd.y"],
    ids=["no-dots", "bad-base64-json", "bad-base64", "no-exp", "exp-as-string", "claims-a-list"],
)
def test_a_token_whose_exp_cannot_be_read_is_not_warned_about(value: str) -> None:
    assert token_expiry_warnings([Token("odd", value, {})], NOW) == []


@given(st.text())
def test_any_token_text_gives_a_warning_or_none_never_an_exception(value: str) -> None:
    results = token_expiry_warnings([Token("any", value, {})], NOW)

    assert all(result.status is Status.WARN for result in results)


def test_an_open_grace_window_is_a_warning_saying_until_when() -> None:
    """Applications still on the replaced key stop working when the window ends: the operator
    is told while there is time to move them."""
    (warning,) = grace_window_warnings(NOW + dt.timedelta(hours=5), NOW)

    assert (warning.name, warning.status) == ("key-grace-window", Status.WARN)
    assert "5 more hours (until 2026-11-30 05:00 UTC)" in warning.detail


@pytest.mark.parametrize(
    "ends_at", [None, NOW, NOW - dt.timedelta(hours=1)], ids=["none", "now", "past"]
)
def test_no_grace_window_or_a_closed_one_is_not_warned_about(ends_at: dt.datetime | None) -> None:
    assert grace_window_warnings(ends_at, NOW) == []


OUTPUTS = {
    "restUrl": "https://qdrant.example.com",
    "publicIp": "127.0.0.1",
    "apiKey": MASTER,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("2030-03-18T17:46:40Z", dt.datetime(2030, 3, 18, 17, 46, 40, tzinfo=dt.UTC)),
    ],
)
def test_the_grace_end_is_read_from_the_keygraceendsat_output(text: str, expected: object) -> None:
    target = target_from_outputs({**OUTPUTS, "keyGraceEndsAt": text})

    assert target.key_grace_ends_at == expected


@pytest.mark.parametrize("text", ["tomorrow", "2030-03-18", "2030-03-18T17:46:40+02:00"])
def test_a_grace_end_that_is_not_a_utc_time_is_refused_naming_the_output(text: str) -> None:
    with pytest.raises(TargetError, match="keyGraceEndsAt"):
        target_from_outputs({**OUTPUTS, "keyGraceEndsAt": text})


def run_verify(
    endpoint_results: list[CheckResult], *argv: str, **more_outputs: object
) -> tuple[int, str]:
    """`python -m verify` on outputs with a token expiring in 10 days, the network checks
    replaced by `endpoint_results`."""
    expiring = token(expires_in=dt.timedelta(days=10), now=dt.datetime.now(dt.UTC))
    outputs = {
        **OUTPUTS,
        "tokens": {"app": expiring.jwt},
        "tokenScopes": {"app": {"access": "r"}},
        **more_outputs,
    }
    stdout = io.StringIO()
    with (
        mock.patch.object(
            verify_cli, "endpoint_checks", lambda target, rate_limit: endpoint_results
        ),
        redirect_stdout(stdout),
    ):
        status = verify_cli.main(["--no-aws", *argv], {OUTPUTS_VARIABLE: json.dumps(outputs)})
    return status, stdout.getvalue()


def test_a_warning_leaves_a_passing_run_at_exit_0() -> None:
    status, report = run_verify([CheckResult("grpc", Status.PASS, "ok")])

    assert status == 0
    assert "WARN  token-expiry:app" in report
    assert report.rstrip().endswith("verify: passed (1 PASS, 0 FAIL, 0 SKIP, 1 WARN)")


def test_a_warning_leaves_a_failing_run_at_exit_1() -> None:
    status, report = run_verify([CheckResult("grpc", Status.FAIL, "refused")])

    assert status == 1 and "verify: FAILED" in report


def test_a_warning_is_in_the_json_report_which_still_passes() -> None:
    status, report = run_verify([], "--json")

    document = json.loads(report)
    assert status == 0 and document["passed"] is True
    assert [check["status"] for check in document["checks"]] == ["WARN"]
    assert MASTER not in report


def test_an_open_grace_window_is_in_the_report_of_a_passing_run() -> None:
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)

    status, report = run_verify([], keyGraceEndsAt=f"{ends:%Y-%m-%dT%H:%M:%SZ}")

    assert status == 0
    assert "WARN  key-grace-window" in report
