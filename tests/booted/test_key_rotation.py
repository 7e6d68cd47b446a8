"""Key rotation on a real Debian 12 host (systemd-nspawn): the converge timer, systemd and Docker do
what the lab stands in for.

After the guest is ready, new keys go into its SSM (moto) as `pulumi up` writes them. Nothing else
touches the guest: its `secure-qdrant-converge.timer` (the secrets step of every run) must notice
them, restart the Qdrant container with the old master key as `alt_api_key`, and drop it once the
grace window is over, while an
application keeps calling through the edge. The test watches the guest from inside (its env file,
the container's start time, Qdrant's `/healthz`) rather than probing the edge with keys not live yet:
fail2ban would ban the lab's address after 20 refusals. Timings are printed, not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from bench.rotation import Hammering
from lab.booted.host import BootedHost
from lab.processes import CommandFailed
from lab.rotation import rotate
from model.user_data import CONVERGE_TIMER, CONVERGE_UNIT, qdrant_env_path
from tests.booted.test_first_boot import booted  # noqa: F401 (the module's guest)
from verify.client import https_request
from verify.target import Target

ALT = "QDRANT__SERVICE__ALT_API_KEY="
# Longer than the timer's minute plus a restart, so the window is seen open before it closes.
GRACE_SECONDS = 150
# The timer's minute, its accuracy, the secrets step and Qdrant's restart, with room to spare.
APPLY_TIMEOUT_SECONDS = 150
# Below the edge's 5 requests per second per client, with room for the test's own requests.
PAUSE_SECONDS = 0.5


def status(target: Target, credential: str) -> int:
    return https_request(target, "GET", "/collections", {"api-key": credential}).status


def watch(condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `condition` held, polled once a second from this machine."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)
    return time.monotonic() - started


def converge_timer_report(booted: BootedHost) -> str:
    """What systemd says of the timer and its last runs: for a failure message (no secret in it)."""
    return "\n".join(
        booted.guest.run(*command)
        for command in (
            ("systemctl", "list-timers", "--all", "--no-pager", CONVERGE_TIMER),
            ("journalctl", "--no-pager", "--lines=30", f"--unit={CONVERGE_UNIT}"),
        )
    )


def qdrant_started_at(booted: BootedHost) -> str:
    return booted.guest.run("docker", "inspect", "--format", "{{.State.StartedAt}}", "qdrant")


def applied(booted: BootedHost, with_alt: bool, since: str) -> Callable[[], bool]:
    """The env file holds (or no longer holds) the alt key, Qdrant's container was started again
    after `since` (a StartedAt), and Qdrant is healthy."""
    env_file = booted.guest.path(qdrant_env_path(booted.host))

    def done() -> bool:
        if (ALT in env_file.read_text()) != with_alt:
            return False
        try:
            if qdrant_started_at(booted) == since:
                return False
            booted.guest.run("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:6333/healthz")
        except CommandFailed:
            return False
        return True

    return done


def outages(entries: list[tuple[float, str]]) -> list[tuple[float, int]]:
    """(seconds, failed requests) of each run of failures, runs apart by more than 10 s."""
    failed = [t for t, outcome in entries if outcome not in ("200", "429")]
    runs: list[list[float]] = []
    for moment in failed:
        if runs and moment - runs[-1][-1] <= 10:
            runs[-1].append(moment)
        else:
            runs.append([moment])
    return [(round(run[-1] - run[0], 2), len(run)) for run in runs]


def test_the_timer_applies_a_rotation_and_ends_the_grace_window_without_replacing_the_host(
    booted: BootedHost,  # noqa: F811
) -> None:
    """docs/operations.md's promise: after `pulumi up` the running host takes the new keys within
    about a minute, the old key and its tokens work until the window ends and are refused within a
    minute after, and an application moving to its re-minted token never sees a 401 or 403."""
    target = booted.verify_target()
    old_key, old_token = booted.api_key, jwt.encode({"access": "r"}, booted.api_key)
    load = Hammering(target, old_token, clients=1, pause=PAUSE_SECONDS)
    try:
        first_start = qdrant_started_at(booted)
        rotated = time.monotonic()
        keys = rotate(booted.ssm, booted.host, old_key, GRACE_SECONDS)
        new_token = jwt.encode({"access": "r"}, keys.api_key)
        to_apply = watch(
            applied(booted, True, first_start), "the timer to apply the keys", APPLY_TIMEOUT_SECONDS
        )
        second_start = qdrant_started_at(booted)
        load.token = new_token
        during = {
            "old key": status(target, old_key),
            "old token": status(target, old_token),
            "new key": status(target, keys.api_key),
            "new token": status(target, new_token),
        }
        watch(lambda: time.time() > keys.valid_until, "the grace window to end", GRACE_SECONDS)
        to_drop = watch(
            applied(booted, False, second_start),
            "the timer to drop the old key",
            APPLY_TIMEOUT_SECONDS,
        )
        after = {
            "old key": status(target, old_key),
            "old token": status(target, old_token),
            "new key": status(target, keys.api_key),
            "new token": status(target, new_token),
        }
        time.sleep(2)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{converge_timer_report(booted)}") from None
    finally:
        load.stop()
    outcomes = load.outcomes.since(rotated)
    journal = booted.guest.run(
        "journalctl", "--no-pager", "--output=short-iso", "-t", "secure-qdrant", "--lines=30"
    )
    print(f"\n{journal}")
    print(
        f"\nnew keys applied and Qdrant healthy {to_apply:.0f} s after the rotation; the old key "
        f"dropped and Qdrant healthy {to_drop:.0f} s after the window; outages the client saw "
        f"(seconds, failed requests): {outages(outcomes)} in {len(outcomes)} requests "
        f"{PAUSE_SECONDS} s apart"
    )

    assert during == dict.fromkeys(during, 200)
    assert after == {"old key": 401, "old token": 403, "new key": 200, "new token": 200}
    assert not {"401", "403"} & {outcome for _, outcome in outcomes}
    assert booted.guest.run("systemctl", "is-active", CONVERGE_TIMER).strip() == "active"
    result = booted.guest.run("systemctl", "show", "--property=Result", CONVERGE_UNIT).strip()
    assert result == "Result=success"
