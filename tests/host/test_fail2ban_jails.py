"""Each fail2ban jail alone, as the real fail2ban-server runs it: an address is banned at exactly
the jail's configured number of failures within its window, and not one before.

The jails are the rendered ones, with the distribution's configuration around them, each started
alone (in the booted flood both ban, and the rate-limit jail may be first, hiding the other's
threshold). Only the ban action is swapped for one that records the address and fail2ban's own
count of its failures: banning is the action's job, and this machine's netfilter is not ours.

Every log is written before the server starts: fail2ban then reads it as it does after a restart,
dating each failure by its log line, so a failure can lie outside the window without the test
waiting for it. (Once running, fail2ban dates a line far from now as now, "a latency problem".)
"""

from __future__ import annotations

import configparser
import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.processes import Service, clean_env, wait_until
from model.nginx_config import ADDRESS_ZONE
from model.user_data import JAIL
from tests.host.test_user_data import (  # noqa: F401 (the fixture)
    access_log_line,
    fail2ban_config,
    limit_req_line,
    require_bundled_filter,
)
from tests.readme import SECURITY_MODEL, stated

AUTH_JAIL = "secure-qdrant-auth"
RATE_LIMIT_JAIL = "secure-qdrant-rate-limit"
RECORDING_ACTION = "secure-qdrant-test-record"
# Documentation addresses (RFC 5737): never this machine's, which fail2ban ignores by default.
BELOW_THRESHOLD, AT_THRESHOLD, OUTSIDE_WINDOW, INSIDE_WINDOW = (
    "203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13",
)  # fmt: skip
# A bound on waiting for a ban, far above fail2ban's start-up time on a loaded machine.
BAN_WAIT_SECONDS = 120


def auth_failure(address: str, when: dt.datetime) -> str:
    """A REST 401 in nginx's access log; its time as nginx writes `$time_local` (UTC here)."""
    time_local = when.astimezone(dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return access_log_line(remote_addr=address, time_local=time_local, status="401")


def rate_limit_refusal(address: str, when: dt.datetime) -> str:
    """A 429 of the per-address zone in nginx's error log, which carries local time, no zone."""
    return limit_req_line(ADDRESS_ZONE, address, when.astimezone().strftime("%Y/%m/%d %H:%M:%S"))


FAILURE_LINES: dict[str, Callable[[str, dt.datetime], str]] = {
    AUTH_JAIL: auth_failure,
    RATE_LIMIT_JAIL: rate_limit_refusal,
}
# What docs/security-model.md says of each jail: its ban, failures and window.
DOCUMENTED_CLAIMS = {
    AUTH_JAIL: r"for ([\w ]+?) after (\d+) failed authentications \([^)]*\) within ([\w ]+?),",
    RATE_LIMIT_JAIL: (
        r"for ([\w ]+?) after (\d+) refusals by its address's rate limit within ([\w ]+?);"
    ),
}


@dataclass(frozen=True)
class Jail:
    name: str
    log: Path
    maxretry: int
    findtime_s: int
    bantime_s: int


def seconds(fail2ban_time: str) -> int:
    """A jail's time (`10m`, `1h`) as fail2ban itself converts it."""
    converted = subprocess.run(
        ["fail2ban-server", "--str2sec", fail2ban_time], capture_output=True, text=True, check=True
    )
    return int(converted.stdout)


def shipped_jail(config: Path, name: str) -> Jail:
    """The jail as rendered for the host: the log it reads and its numbers."""
    jails = configparser.ConfigParser(interpolation=None)
    jails.read(config / JAIL)
    jail = jails[name]
    return Jail(
        name=name,
        log=Path(jail["logpath"]),
        maxretry=int(jail["maxretry"]),
        findtime_s=seconds(jail["findtime"]),
        bantime_s=seconds(jail["bantime"]),
    )


def documented_seconds(duration: str) -> int:
    """`an hour`, `10 minutes`, `30 minutes`: the documentation's way of writing a jail's time."""
    count, unit = duration.split()
    per_unit = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600}[unit]
    return (1 if count in ("a", "an") else int(count)) * per_unit


def write_failures(jail: Jail, failures: dict[str, list[dt.datetime]]) -> None:
    line = FAILURE_LINES[jail.name]
    lines = (line(address, when) for address, times in failures.items() for when in times)
    jail.log.write_text("".join(f"{text}\n" for text in lines))


def alone(config: Path, jail: str, record: Path) -> None:
    """Only `jail` runs, on its own socket and in-memory database, logging to the config dir;
    its ban action records `<ip> <failures>` instead of touching netfilter."""
    (config / "fail2ban.local").write_text(
        "[Definition]\n"
        f"socket = {config / 'fail2ban.sock'}\n"
        f"pidfile = {config / 'fail2ban.pid'}\n"
        "dbfile = :memory:\n"
        f"logtarget = {config / 'fail2ban.log'}\n"
    )
    (config / "action.d" / f"{RECORDING_ACTION}.conf").write_text(
        f"[Definition]\nactionban = echo <ip> <failures> >> {record}\n"
    )
    others = (other for other in ("sshd", *FAILURE_LINES) if other != jail)
    (config / "jail.d" / "zz-test-alone.local").write_text(
        "".join(f"[{other}]\nenabled = false\n" for other in others)
        + f"[{jail}]\naction = {RECORDING_ACTION}\n"
    )


@pytest.fixture
def run_alone(fail2ban_config: Path) -> Iterator[Callable[[Jail, str], list[str]]]:
    """Starts fail2ban with one jail on the logs already written, waits until it bans `last`
    (the address whose lines come last), and returns every ban it recorded, in order: fail2ban
    reads the log in order and bans in the order addresses reached their threshold, so an address
    written earlier that was banned is in the list too. The server is stopped afterwards."""
    services: list[Service] = []

    def run(jail: Jail, last: str) -> list[str]:
        record = fail2ban_config / "bans"
        alone(fail2ban_config, jail.name, record)
        server = Service(
            "fail2ban-server",
            ["fail2ban-server", "-f", "-x", "-c", str(fail2ban_config)],
            fail2ban_config / "server.out",
            env=clean_env(),
        )
        services.append(server)

        def banned() -> bool:
            if not server.running():
                raise RuntimeError((fail2ban_config / "server.out").read_text())
            return record.exists() and last in record.read_text().split()

        wait_until(banned, f"fail2ban's {jail.name} to ban {last}", BAN_WAIT_SECONDS)
        return record.read_text().splitlines()

    yield run
    for server in services:
        server.stop()


def require_jail_filters(jail: str) -> None:
    if jail == RATE_LIMIT_JAIL:
        require_bundled_filter("nginx-limit-req")


@pytest.mark.parametrize("jail_name", FAILURE_LINES)
def test_a_jail_bans_at_exactly_its_configured_failures(
    fail2ban_config: Path, run_alone: Callable[[Jail, str], list[str]], jail_name: str
) -> None:
    """A flood is banned at the jail's threshold, and one failure fewer is not: the threshold is
    the line between a misconfigured application (which must keep the host) and a flood."""
    require_jail_filters(jail_name)
    jail = shipped_jail(fail2ban_config, jail_name)
    now = dt.datetime.now(dt.UTC)
    write_failures(
        jail, {BELOW_THRESHOLD: [now] * (jail.maxretry - 1), AT_THRESHOLD: [now] * jail.maxretry}
    )

    bans = run_alone(jail, AT_THRESHOLD)

    assert bans == [f"{AT_THRESHOLD} {jail.maxretry}"]


@pytest.mark.parametrize("jail_name", FAILURE_LINES)
def test_a_jail_counts_only_failures_within_its_window(
    fail2ban_config: Path, run_alone: Callable[[Jail, str], list[str]], jail_name: str
) -> None:
    """Failures older than the window are forgotten, those inside it add up: the same threshold
    reached slowly is a client's trickle of mistakes, reached within the window a flood."""
    require_jail_filters(jail_name)
    jail = shipped_jail(fail2ban_config, jail_name)
    now = dt.datetime.now(dt.UTC)
    # A tenth of the window either side of its edge: far more than fail2ban's start-up takes.
    margin = dt.timedelta(seconds=jail.findtime_s / 10)
    window = dt.timedelta(seconds=jail.findtime_s)
    before_window, in_window = now - window - margin, now - window + margin
    write_failures(
        jail,
        {
            OUTSIDE_WINDOW: [before_window] * (jail.maxretry - 1) + [now],
            INSIDE_WINDOW: [in_window] * (jail.maxretry - 1) + [now],
        },
    )

    bans = run_alone(jail, INSIDE_WINDOW)

    assert bans == [f"{INSIDE_WINDOW} {jail.maxretry}"]


@pytest.mark.parametrize("jail_name", FAILURE_LINES)
def test_the_security_model_states_each_jails_numbers(
    fail2ban_config: Path, jail_name: str
) -> None:
    """The security model is where an operator learns how many failures cost an address the host,
    and for how long; a jail shipped with other numbers (100000 failures: no ban at all) is caught
    here."""
    jail = shipped_jail(fail2ban_config, jail_name)
    bantime, maxretry, findtime = stated(DOCUMENTED_CLAIMS[jail_name], SECURITY_MODEL)
    assert int(maxretry) == jail.maxretry
    assert documented_seconds(findtime) == jail.findtime_s
    assert documented_seconds(bantime) == jail.bantime_s
