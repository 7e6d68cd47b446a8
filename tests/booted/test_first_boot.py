"""The VM's user data on a real Debian 12 host (systemd-nspawn), first boot: issue 9.

One guest for the module: booting it installs packages with apt, so each test reads the same host.
Everything it started (guest, slirp4netns, servers, loop device, cgroup folders) is gone afterwards,
also when a test fails: `booted_host` owns all of it. Needs root and the Debian tools scripts/test
installs; skips, saying what is missing, without them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import jwt
import pytest

from bench.rotation import Hammering
from lab.booted.demo import create_collection, verify_booted
from lab.booted.flood import (
    DROPPED,
    REFUSED,
    Answer,
    Flood,
    each_once,
    flood_until_refused,
    grpc_answer,
    rest_answer,
    steadily,
)
from lab.booted.host import BootedHost, booted_host
from lab.booted.outside import (
    ADMIN_CIDR,
    GUEST_ADDRESS,
    WELL_BEHAVED_ADDRESS,
    Client,
    Outside,
    outside,
)
from lab.demo import DEMO_COLLECTION, DEMO_TOKENS, DEMO_VECTORS
from lab.processes import run, wait_until
from model.audit_log import audit_log_group_name, audit_log_stream_name
from model.host_config import HostConfig, host_config_document, render_host_config
from model.nginx_config import certificate_paths
from model.settings import (
    METRICS_NAMESPACE,
    PORTS,
    QDRANT_IMAGE_PORTS,
    AccessRule,
    HostSettings,
    TokenSpec,
)
from model.tokens import mint_token, token_claims
from model.user_data import (
    CONVERGE_STATE,
    CONVERGE_TIMER,
    CONVERGE_UNIT,
    METRICS_UNIT,
    audit_dir,
    settings_env_path,
    staged_site_path,
    state_path,
)
from tests.booted import require_booted_lab
from verify.client import https_request, port_answers
from verify.result import Status
from verify.target import Target


@pytest.fixture(scope="module")
def booted() -> Iterator[BootedHost]:
    require_booted_lab()
    with tempfile.TemporaryDirectory(prefix="secure-qdrant-booted-") as workdir:
        with booted_host(Path(workdir)) as host:
            print(f"\nfirst boot to ready: {host.boot_to_ready_seconds:.1f} s")
            yield host


def test_first_boot_reaches_ready_unattended(booted: BootedHost) -> None:
    """cloud-init alone, from the gzip'd user data, takes the blank host to ready: every bootstrap
    step ran, the last one said so, and the marker `pulumi up`'s waiting relies on exists."""
    log = booted.bootstrap_log().splitlines()
    assert log[-1] == "ready"
    assert booted.guest.path(booted.host.paths.ready_marker).read_text() == "ready\n"
    assert [line for line in log if line.startswith("step ")] == [
        f"step {step}"
        for step in (
            "packages", "data_volume", "secrets", "qdrant", "nginx_http", "dns", "certificate",
            "renewal", "nginx_tls", "firewall", "fail2ban", "metrics", "qdrant_health", "ready",
        )
    ]  # fmt: skip


def test_qdrant_runs_the_pinned_image_without_a_registry(booted: BootedHost) -> None:
    """No registry is reachable from the lab: Qdrant runs because the bootstrap uses the pinned tag
    that is present instead of pulling it (it pulled unconditionally before, and failed here)."""
    image = booted.guest.run("docker", "inspect", "--format", "{{.Config.Image}}", "qdrant")
    assert image.strip() == booted.host.qdrant_image


# --- The 401s a minute the host publishes (its metrics timer, moto as CloudWatch) -----------------
# First among the tests that reach the guest: nothing has been refused yet, so the first run of the
# publisher is likely quiet already, and the wait short.

QUIET_WAIT_SECONDS = 200
"""For a publisher run that sent a value wanted: the 401 count's quiet minute (each run counts the
clock minute before its own), EdgeServes back to 1."""
PUBLISHER_RUN_WAIT_SECONDS = 90
# Under the per-address burst (20) and the auth jail's 20 failures: the mistaken application is
# neither throttled nor banned, so every request is judged and refused by Qdrant.
REFUSED_OVER_REST = 6
REFUSED_OVER_GRPC = 4


@dataclass(frozen=True)
class PublisherRun:
    """One finished run of the guest's metrics publisher, as its systemd unit recorded it."""

    started: dt.datetime
    exited: dt.datetime


def _systemd_time(shown: str) -> dt.datetime:
    """`systemctl show --timestamp=us+utc`: Mon 2026-11-30 04:01:00.123456 UTC."""
    return dt.datetime.strptime(shown, "%a %Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=dt.UTC)


def last_publisher_run(booted: BootedHost) -> PublisherRun | None:
    """The latest finished run; None before the first, and while one is running."""
    shown = booted.guest.run(
        "systemctl", "show", METRICS_UNIT, "--timestamp=us+utc",
        "--property=ExecMainStartTimestamp,ExecMainExitTimestamp,ActiveState,Result",
    )  # fmt: skip
    unit = dict(line.split("=", 1) for line in shown.splitlines())
    if unit["ActiveState"] == "activating" or not unit["ExecMainExitTimestamp"]:
        return None
    assert unit["Result"] == "success", shown
    latest = PublisherRun(
        _systemd_time(unit["ExecMainStartTimestamp"]), _systemd_time(unit["ExecMainExitTimestamp"])
    )
    # A run in progress has its start, and still the exit of the one before.
    return latest if latest.exited >= latest.started else None


def next_publisher_run(booted: BootedHost, after: PublisherRun | None) -> PublisherRun:
    """The first run that finished after `after`: the timer fires each minute."""
    deadline = time.monotonic() + PUBLISHER_RUN_WAIT_SECONDS
    while (latest := last_publisher_run(booted)) is None or (
        after and latest.started <= after.exited
    ):
        assert time.monotonic() < deadline, (
            f"no run of {METRICS_UNIT} in {PUBLISHER_RUN_WAIT_SECONDS} s"
        )
        # Each look is a command in the guest: a few a second, not wait_until's fifty.
        time.sleep(0.3)
    return latest


def published(booted: BootedHost, metric: str, by: PublisherRun) -> tuple[int, float]:
    """(values sent, their sum) of `metric` by this run: (1, value). Read from CloudWatch with a
    window around that run alone."""
    return booted.ssm.metric_values(
        METRICS_NAMESPACE, metric, ("Host", booted.host.name),
        by.started, by.exited + dt.timedelta(seconds=1),
    )  # fmt: skip


def run_publishing(
    booted: BootedHost, after: PublisherRun | None, metric: str, value: float
) -> PublisherRun:
    """The first publisher run after `after` that sent `value` for `metric`."""
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    run = next_publisher_run(booted, after)
    while published(booted, metric, run) != (1, value):
        assert time.monotonic() < deadline, f"no {metric} {value} in {QUIET_WAIT_SECONDS} s"
        run = next_publisher_run(booted, run)
    return run


def test_the_published_401_count_is_the_number_of_requests_refused_in_its_minute(
    booted: BootedHost, lab_network: Outside
) -> None:
    """The 401 alarm is only as good as the count behind it: after a run that counted nothing, an
    application with a wrong key is refused a known number of times over REST and gRPC, and the
    publisher's next run (its real timer) sends exactly that number, and the run after it 0: every
    refusal counted, and counted once. Each run's value is read from CloudWatch with a window
    around that run alone."""
    metric = "Unauthorized401"
    quiet = run_publishing(booted, last_publisher_run(booted), metric, 0)
    target = outside_target(booted, lab_network)
    wrong_key = secrets.token_hex(24)
    asks = [partial(rest_answer, target, wrong_key)] * REFUSED_OVER_REST + [
        partial(grpc_answer, target, wrong_key)
    ] * REFUSED_OVER_GRPC
    answers = lab_network.mistaken.call_in_process(each_once, asks)
    sent = dt.datetime.now(dt.UTC)
    counted = next_publisher_run(booted, quiet)
    after = next_publisher_run(booted, counted)
    runs = (quiet, counted, after)
    print(
        f"\n{len(asks)} refused {(sent - quiet.exited).total_seconds():.1f} s after a quiet run; "
        f"runs started at {[each.started.strftime('%H:%M:%S.%f') for each in runs]} published "
        f"{[published(booted, metric, each) for each in runs]} (values, sum)"
    )
    assert answers == ["401"] * REFUSED_OVER_REST + ["UNAUTHENTICATED"] * REFUSED_OVER_GRPC
    assert sent < counted.started, "the refusals straddle a run: the test proves nothing"
    assert [published(booted, metric, each) for each in runs] == [(1, 0), (1, len(asks)), (1, 0)]


def test_every_verify_check_passes_through_the_published_ports(booted: BootedHost) -> None:
    """The security posture as `verify` sees a deployment, from outside the guest: TLS, redirect,
    headers, keys, tokens, gRPC, the rate limit and Qdrant's own ports closed."""
    results = verify_booted(booted, DEMO_TOKENS, DEMO_COLLECTION, DEMO_VECTORS)
    assert [(r.name, r.status) for r in results if r.status is not Status.PASS] == []
    assert {r.name for r in results} >= {"certificate", "grpc", "qdrant-ports-closed", "rate-limit"}


# --- From the outside: clients with addresses of their own (lab/booted/outside.py) -----------------

AUTH_JAIL = "secure-qdrant-auth"
# Bounds, not expectations: a flood the host never bans ends here and the test fails.
FLOOD_LIMIT_SECONDS = 60.0
# How long the well-behaved client keeps going once the flood is cut off.
AFTER_BAN_SECONDS = 3.0
# Under the rate limit (5 r/s): an application that keeps to it must never be caught.
WELL_BEHAVED_INTERVAL = 0.5


@pytest.fixture(scope="module")
def lab_network(booted: BootedHost) -> Iterator[Outside]:
    with outside(booted.guest.init_pid) as network:
        yield network


def outside_target(booted: BootedHost, network: Outside) -> Target:
    """The guest as its clients on the lab network reach it: its own address there."""
    return replace(booted.verify_target(), address=network.guest_address)


def answering(client: Client, address: str, ports: Sequence[int]) -> dict[int, bool]:
    return client.call(lambda: {port: port_answers(address, port) for port in ports})


def test_from_outside_only_the_public_ports_answer(
    booted: BootedHost, lab_network: Outside
) -> None:
    """Qdrant's own ports speak cleartext and know nothing of the edge's limits: from another
    address they must not answer, while the edge's ports do (so the probe can tell)."""
    ports = (*PORTS.loopback_only, PORTS.https, PORTS.grpc_tls)
    assert answering(lab_network.outsider, lab_network.guest_address, ports) == {
        PORTS.qdrant_rest: False,
        PORTS.qdrant_grpc: False,
        PORTS.https: True,
        PORTS.grpc_tls: True,
    }


def test_a_neighbour_routing_to_dockers_bridge_does_not_reach_qdrant(
    booted: BootedHost, lab_network: Outside
) -> None:
    """Docker forwards whatever reaches the host for its bridge (moby#45610): a host on the same
    link, routing the container's address through the guest, reached Qdrant's cleartext ports
    past nginx, its TLS, rate limit and bans. Qdrant's unit allows only the container's own
    connections across."""
    container = booted.guest.run(
        "docker", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", "qdrant"
    ).strip()
    neighbour = lab_network.outsider
    run(neighbour.command("ip", "route", "add", container, "via", lab_network.guest_address))
    try:
        ports = (QDRANT_IMAGE_PORTS.rest, QDRANT_IMAGE_PORTS.grpc)
        assert answering(neighbour, container, ports) == {port: False for port in ports}
    finally:
        run(neighbour.command("ip", "route", "delete", container))


def ssh_banner(client: Client, address: str) -> bytes | None:
    def read() -> bytes | None:
        try:
            with socket.create_connection((address, PORTS.ssh), timeout=3) as connection:
                return connection.recv(64)
        except OSError:
            return None

    return client.call(read)


def test_ssh_answers_the_admin_network_only(booted: BootedHost, lab_network: Outside) -> None:
    """SSH is for `adminCidrs`: ufw admits the admin's address and drops everyone else's, so an
    outsider cannot even see the banner, let alone try keys."""
    assert booted.host.admin_cidrs == (ADMIN_CIDR,)
    assert (ssh_banner(lab_network.admin, lab_network.guest_address) or b"").startswith(b"SSH-2.0-")
    assert ssh_banner(lab_network.outsider, lab_network.guest_address) is None


@dataclass(frozen=True)
class FloodKind:
    """A wrong key flooded over one protocol, from an address of its own."""

    answer: Callable[[Target, str, float], str]
    refusal: str
    """What a wrong key gets: REST's 401, gRPC's UNAUTHENTICATED."""
    flooder: Callable[[Outside], Client]


FLOODS = {
    "rest": FloodKind(rest_answer, "401", lambda network: network.outsider),
    "grpc": FloodKind(grpc_answer, "UNAUTHENTICATED", lambda network: network.grpc_outsider),
}


@dataclass(frozen=True)
class KeyFlood:
    """A flood of wrong keys and what the host showed while its ban held."""

    kind: FloodKind
    flooder: str
    """The flooding address."""
    flood: Flood
    served: list[Answer]
    """The well-behaved client's answers, during the flood and after it was cut off."""
    jail_status: str
    """`fail2ban-client status` of the auth jail."""
    ruleset: str
    """The guest's netfilter rules as the kernel holds them (`nft list ruleset`)."""


def banned_by(booted: BootedHost, jail: str) -> list[str]:
    status = booted.guest.run("fail2ban-client", "status", jail)
    return status.split("Banned IP list:", 1)[1].split()


def lift_ban(booted: BootedHost, client: Client) -> None:
    """The guest as it was: the address banned by no jail, its connections answered again."""
    booted.guest.run("fail2ban-client", "unban", client.address)
    assert client.address not in booted.guest.run("fail2ban-client", "banned")
    assert answering(client, GUEST_ADDRESS, (PORTS.https,)) == {PORTS.https: True}


@pytest.fixture(scope="module", params=FLOODS)
def key_flood(
    request: pytest.FixtureRequest, booted: BootedHost, lab_network: Outside
) -> Iterator[KeyFlood]:
    """One flood of wrong keys (REST, or gRPC) while the well-behaved client keeps working; the
    guest is read while the ban holds and the ban is lifted before any test runs, so no other test
    meets it."""
    kind = FLOODS[request.param]
    flooder = kind.flooder(lab_network)
    target = outside_target(booted, lab_network)
    wrong_key = secrets.token_hex(24)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        epoch = time.monotonic()
        served = pool.submit(
            lab_network.well_behaved.call,
            lambda: steadily(
                partial(rest_answer, target, booted.api_key), epoch, WELL_BEHAVED_INTERVAL, stop
            ),
        )
        try:
            flood = flooder.call_in_process(
                flood_until_refused,
                partial(kind.answer, target, wrong_key),
                epoch,
                FLOOD_LIMIT_SECONDS,
            )
            # The rate-limit jail may be the one that refused first: the flood floods it too.
            wait_until(
                lambda: flooder.address in banned_by(booted, AUTH_JAIL),
                "the auth jail's ban",
                timeout=FLOOD_LIMIT_SECONDS,
            )
            jail_status = booted.guest.run("fail2ban-client", "status", AUTH_JAIL)
            ruleset = booted.guest.run("nft", "list", "ruleset")
            stop.wait(AFTER_BAN_SECONDS)
        finally:
            stop.set()
            lift_ban(booted, flooder)
        record = KeyFlood(kind, flooder.address, flood, served.result(), jail_status, ruleset)
    yield record


def outcomes(answers: Sequence[Answer]) -> list[str]:
    return [answer.outcome for answer in answers]


def test_a_401_flood_is_refused_by_netfilter_within_seconds(key_flood: KeyFlood) -> None:
    """Key guessing is futile against 48 random characters but costs the host: fail2ban cuts the
    guesser off at the packet filter, where its connections are refused before TLS. Over gRPC too,
    whose refusals nginx logs as HTTP 200 with grpc-status 16: the auth jail's second pattern."""
    flood = key_flood.flood
    answers = flood.answers
    assert answers[-1].outcome == REFUSED, f"not banned in {flood.since_start(answers[-1]):.0f} s"
    cut = next(answer for answer in answers if answer.outcome in (REFUSED, DROPPED))
    refusal = key_flood.kind.refusal
    answered = outcomes(answers)
    print(
        f"\n{refusal} flood: {len(answers)} requests, {answered.count(refusal)} answered {refusal}, "
        f"{answered.count('429')} 429; first connection cut after {flood.since_start(cut):.1f} s, "
        f"first refused after {flood.since_start(answers[-1]):.1f} s"
    )
    assert refusal in answered
    assert set(answered[: answered.index(cut.outcome)]) <= {refusal, "429"}


def test_the_well_behaved_client_is_served_during_and_after_a_flood(key_flood: KeyFlood) -> None:
    """A ban is for the address that misbehaved: an application elsewhere keeps being answered,
    while the flood runs and after its author is banned."""
    banned_at = key_flood.flood.answers[-1].seconds
    after = sum(1 for answer in key_flood.served if answer.seconds > banned_at)
    print(f"\nwell-behaved client: {outcomes(key_flood.served)}, {after} of them after the ban")
    assert outcomes(key_flood.served) == ["200"] * len(key_flood.served)
    assert any(answer.seconds < banned_at for answer in key_flood.served)
    assert any(answer.seconds > banned_at for answer in key_flood.served)


def fail2ban_rules(ruleset: str, address: str) -> dict[str, str]:
    """fail2ban's netfilter rule for `address`, by the jail whose chain (`f2b-JAIL`) holds it."""
    rules = {}
    for chain in ruleset.split("chain f2b-")[1:]:
        jail, body = chain.split(" {", 1)
        for line in body.split("}", 1)[0].splitlines():
            if f"ip saddr {address} " in line:
                rules[jail] = line.strip()
    return rules


def test_the_ban_is_a_netfilter_rule_that_dropped_the_flood(key_flood: KeyFlood) -> None:
    """fail2ban's database banning an address protects nothing by itself: the kernel must hold a
    rule for it, and the rules must be what met the flooder's packets (their counters moved). At a
    REST flood's pace both jails ban, the auth jail (20 401s) and the rate-limit jail (120 429s),
    and either may be first."""
    rules = fail2ban_rules(key_flood.ruleset, key_flood.flooder)
    print(f"\nfail2ban's rules for the flooder: {rules}")
    assert AUTH_JAIL in rules
    assert all(rule.endswith(" reject") for rule in rules.values())
    assert sum(int(rule.split("counter packets ", 1)[1].split()[0]) for rule in rules.values()) > 0
    assert fail2ban_rules(key_flood.ruleset, WELL_BEHAVED_ADDRESS) == {}


def test_fail2ban_bans_the_flooding_address_in_its_auth_jail(key_flood: KeyFlood) -> None:
    """The jail that reads nginx's 401s banned the flooding address, and only that one."""
    assert key_flood.jail_status.split("Banned IP list:", 1)[1].split() == [key_flood.flooder]


@pytest.mark.parametrize("key_flood", ["rest"], indirect=True)
def test_a_key_guesser_is_rate_limited_then_banned(booted: BootedHost, key_flood: KeyFlood) -> None:
    """Issue 13's brute force, for real: nginx answers the burst (its 401s are the guesses Qdrant
    judged), then holds the guesser to the rate limit with 429s, and fail2ban bans it (its auth jail
    once 20 guesses failed). Nothing but 401 and 429 comes back before the ban. The 429s come first
    because fail2ban reacts to the log (in about a second here) far slower than a flood's 22nd
    request follows its first."""
    answered = outcomes(key_flood.flood.answers)
    before_ban = [outcome for outcome in answered if outcome not in (REFUSED, DROPPED)]
    first_limited = answered.index("429")
    print(
        f"\nkey guesser: {answered.count('401')} guesses judged, {answered.count('429')} rate-limited "
        f"from request {first_limited + 1} on, then cut off"
    )
    assert set(before_ban) == {"401", "429"}
    assert answered[:first_limited] == ["401"] * first_limited
    assert first_limited > booted.host.limits.rest_burst
    assert answered[-1] == REFUSED


# The publisher's timer fires on every minute; a run after the first one that found a certificate.
METRICS_WAIT_SECONDS = 150


def test_the_host_publishes_its_metrics_to_cloudwatch(booted: BootedHost) -> None:
    """The alarms watch what the host itself sends each minute: its timer, its boto3 and the
    instance role's credentials on a real host, with moto as CloudWatch. The certificate's days
    left are those of the certificate nginx serves, Qdrant is reported up, the data volume's use
    is what df says of it."""
    host = booted.host
    dimension = ("Host", host.name)

    def published() -> dict[str, float]:
        return booted.ssm.metric_maxima(METRICS_NAMESPACE, dimension)

    deadline = time.monotonic() + METRICS_WAIT_SECONDS
    while "CertificateDaysLeft" not in (metrics := published()):
        assert time.monotonic() < deadline, (
            f"nothing published in {METRICS_WAIT_SECONDS} s: {metrics}"
        )
        time.sleep(5)
    certificate, _ = certificate_paths(host)
    enddate = booted.guest.run("openssl", "x509", "-enddate", "-noout", "-in", certificate)
    not_after = ssl.cert_time_to_seconds(enddate.strip().removeprefix("notAfter="))
    days_left = (not_after - dt.datetime.now(dt.UTC).timestamp()) / 86400
    print(f"\npublished: {metrics}; certificate: {days_left:.2f} days left")
    assert days_left - 1 <= metrics["CertificateDaysLeft"] <= days_left
    assert metrics["QdrantUp"] == 1
    assert metrics["EdgeServes"] == 1
    # df rounds its percentage up to a whole number; the metric keeps one decimal.
    df_percent = int(
        booted.guest.run("df", "--output=pcent", host.paths.data_mount).split()[-1].rstrip("%")
    )
    assert df_percent - 1 <= metrics["DataVolumeUsedPercent"] <= df_percent
    assert {"Unauthorized401", "RateLimited429"} <= metrics.keys()
    assert metrics["ConfigRejected"] == 0


# --- Qdrant's audit log, off the host (its shipper's timer, moto as CloudWatch Logs) --------------

# The shipper's timer fires each minute; a run after the requests, with room for one that failed.
AUDIT_SHIPPED_WAIT_SECONDS = 150


def test_who_did_what_from_where_reaches_cloudwatch_logs(
    booted: BootedHost, lab_network: Outside
) -> None:
    """The three questions after an incident, answered off the host: a token's read, a write that
    token may not make, and a token forged with another key, each sent from a client's own address
    on the lab network, reach CloudWatch Logs as Qdrant's audit lines, with the token's application
    as the subject and the client's true address, by the host's own shipper (its timer, its boto3,
    the instance's credentials). Each request carries a request id of its own, which Qdrant writes
    as the line's tracing id."""
    host, client = booted.host, lab_network.outsider
    target = outside_target(booted, lab_network)
    reads_only = TokenSpec("search-api", (AccessRule(DEMO_COLLECTION, "r"),))
    token = mint_token(token_claims(reads_only), booted.api_key)
    forged = mint_token(token_claims(reads_only), secrets.token_hex(24))
    master = {"api-key": booted.api_key}
    if (
        https_request(
            booted.verify_target(), "GET", f"/collections/{DEMO_COLLECTION}", master
        ).status
        != 200
    ):
        create_collection(booted, DEMO_COLLECTION, DEMO_VECTORS)
    point = json.dumps({"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}]})
    requests = {
        "read": ("GET", f"/collections/{DEMO_COLLECTION}", token, None),
        "refused-write": ("PUT", f"/collections/{DEMO_COLLECTION}/points", token, point),
        "forged": ("GET", f"/collections/{DEMO_COLLECTION}", forged, None),
    }
    ids = {name: f"audit-{name}-{secrets.token_hex(6)}" for name in requests}

    def send() -> dict[str, int]:
        return {
            name: https_request(
                target, method, path,
                {"Authorization": f"Bearer {bearer}", "X-Request-Id": ids[name],
                 "Content-Type": "application/json"},
                body,
            ).status
            for name, (method, path, bearer, body) in requests.items()
        }  # fmt: skip

    statuses = client.call(send)
    sent = time.monotonic()
    group, stream = audit_log_group_name(host.name), audit_log_stream_name(host.name)

    def shipped() -> dict[str, dict[str, object]]:
        lines = [json.loads(message) for message in booted.ssm.log_messages(group, stream)]
        return {name: line for line in lines for name in ids if line.get("tracing_id") == ids[name]}

    deadline = time.monotonic() + AUDIT_SHIPPED_WAIT_SECONDS
    while len(found := shipped()) < len(ids):
        assert time.monotonic() < deadline, f"shipped in {AUDIT_SHIPPED_WAIT_SECONDS} s: {found}"
        time.sleep(2)
    print(
        f"\naudit lines in CloudWatch Logs {time.monotonic() - sent:.1f} s after the requests: {found}"
    )
    # Qdrant refuses a token with a bad signature as Forbidden, 403 (src/common/auth/mod.rs).
    assert statuses == {"read": 200, "refused-write": 403, "forged": 403}
    assert {
        name: (line.get("subject"), line["remote"], line["result"]) for name, line in found.items()
    } == {
        "read": ("search-api", client.address, "ok"),
        "refused-write": ("search-api", client.address, "denied"),
        "forged": (None, client.address, "denied"),
    }
    assert found["forged"]["auth_type"] == "none"
    # What left the host is what Qdrant wrote on it, on the data volume.
    on_host = [
        json.loads(line)
        for written in sorted(booted.guest.path(audit_dir(host)).glob("audit.*.log"))
        for line in written.read_text().splitlines()
    ]
    assert {
        name: line for line in on_host for name in ids if line.get("tracing_id") == ids[name]
    } == found
    for secret in (booted.api_key, token, forged):
        assert secret not in json.dumps(found)


# --- The edge down, as the host reports it (its metrics timer, moto as CloudWatch) ----------------


def test_an_edge_that_stops_serving_is_published_as_not_serving(booted: BootedHost) -> None:
    """QdrantUp probes Qdrant on loopback, so nginx down left the public endpoint down in silence.
    With nginx stopped, the first publisher run after it sends EdgeServes 0 while Qdrant is still
    reported up, and once nginx runs again a run sends 1."""
    serving = run_publishing(booted, last_publisher_run(booted), "EdgeServes", 1)
    booted.guest.run("systemctl", "stop", "nginx.service")
    try:
        stopped_at = dt.datetime.now(dt.UTC)
        down = next_publisher_run(booted, serving)
        while down.started <= stopped_at:
            down = next_publisher_run(booted, down)
        edge, qdrant = (published(booted, name, down) for name in ("EdgeServes", "QdrantUp"))
    finally:
        booted.guest.run("systemctl", "start", "nginx.service")
        started_at = dt.datetime.now(dt.UTC)
    back = run_publishing(booted, down, "EdgeServes", 1)
    print(
        f"\nnginx stopped: EdgeServes {edge} (values, sum) from the run that ended "
        f"{(down.exited - stopped_at).total_seconds():.1f} s later, QdrantUp {qdrant}; "
        f"nginx started: EdgeServes 1 from the run that ended "
        f"{(back.exited - started_at).total_seconds():.1f} s later"
    )
    assert edge == (1, 0)
    assert qdrant == (1, 1)


# --- fail2ban's ban, proven by the bootstrap at every boot ---------------------------------------

PROBED_JAILS = ("sshd", "secure-qdrant-auth", "secure-qdrant-rate-limit")
BAN_TOOL = "/usr/sbin/iptables"
FAIL2BAN_LOG = "/var/log/fail2ban.log"


def test_the_bootstrap_proved_a_ban_reaches_netfilter_in_every_jail(booted: BootedHost) -> None:
    """fail2ban's config test only parses: each jail banned the documentation address, the kernel
    held the rule, and the ban was lifted."""
    assert f"bans reach netfilter: {' '.join(PROBED_JAILS)}" in booted.bootstrap_log().splitlines()


def fail2ban_step(booted: BootedHost) -> subprocess.CompletedProcess[str]:
    """The bootstrap's fail2ban step alone, as its unit runs it (its settings, its journal tag)."""
    bootstrap = (booted.host.paths.bootstrap, settings_env_path(booted.host))
    command = booted.guest.command("env", "BOOTSTRAP_STEPS=fail2ban", *bootstrap)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@contextmanager
def converge_timer_stopped(booted: BootedHost) -> Iterator[None]:
    """Its minutely run of the bootstrap's secrets step takes the bootstrap's lock."""
    booted.guest.run("systemctl", "stop", CONVERGE_TIMER)
    try:
        wait_until(
            lambda: (
                booted.guest.run(
                    "systemctl", "show", "--property=ActiveState", "--value", CONVERGE_UNIT
                ).strip()
                != "activating"
            ),
            "the converge service's run to end",
        )
        yield
    finally:
        booted.guest.run("systemctl", "start", CONVERGE_TIMER)


def test_the_ban_self_test_fails_when_the_ban_actions_tool_is_missing(booted: BootedHost) -> None:
    """What Ubuntu 24.04 did with its nftables default and no `nft`: every ban fails, only logged,
    with fail2ban running on. With the ban action's tool hidden the fail2ban step fails, naming the
    ban that never reached netfilter, while fail2ban's log shows the action failing; with the tool
    back the same step passes."""
    hidden = booted.guest.path(f"{BAN_TOOL}.hidden-by-test")
    log_before = booted.guest.path(FAIL2BAN_LOG).stat().st_size
    with converge_timer_stopped(booted):
        booted.guest.path(BAN_TOOL).rename(hidden)
        try:
            started = time.monotonic()
            failed = fail2ban_step(booted)
            failed_after = time.monotonic() - started
        finally:
            hidden.rename(booted.guest.path(BAN_TOOL))
        restored = fail2ban_step(booted)
    with booted.guest.path(FAIL2BAN_LOG).open(errors="replace") as log:
        log.seek(log_before)
        fail2ban_said = log.read()
    print(
        f"\nwithout {BAN_TOOL}: exit {failed.returncode} after {failed_after:.1f} s: "
        f"{failed.stderr.strip().splitlines()[-2:]}"
    )
    assert failed.returncode == 1
    assert "waiting for a ban in sshd to reach netfilter" in failed.stderr
    assert "iptables: not found" in fail2ban_said
    assert restored.returncode == 0, restored.stderr
    assert f"bans reach netfilter: {' '.join(PROBED_JAILS)}" in restored.stderr


# --- converging in place (issue 19): last in the module, each change builds on the one before ---

# Outside the lab network's addresses (lab/booted/outside.py): no client there gains SSH.
SECOND_ADMIN_CIDR = "203.0.113.0/28"
# The lab's image under a second tag: what a newer Qdrant release is to the host (no registry).
NEXT_QDRANT_VERSION = "v1.18.99"


@dataclass(frozen=True)
class Applied:
    seconds: float
    """From publishing to the host reporting the version."""
    failed: list[str]
    """What a client sending steadily through the edge, each request on a new connection, got
    meanwhile other than a 200."""
    requests: int
    keep_alive_failed: list[str]
    """The same for a client on one kept-alive connection: a graceful reload closes the old
    workers' idle connections, and a request sent as one closes fails unless the client retries
    it (RFC 9112, 9.3.1, lets it retry an idempotent request): reported, not asserted."""
    keep_alive_requests: int


def apply_in_place(booted: BootedHost, changed: HostSettings) -> Applied:
    """`changed` published as `pulumi up` would, and the converge unit started as its timer's
    next minute would (the timer adds up to a minute before this), until the host reports the
    version, while two clients send through the edge twice a second each (under the rate
    limit)."""
    target = booted.verify_target()
    stop = threading.Event()
    token = jwt.encode({"access": "r"}, booted.api_key)
    keep_alive = Hammering(target, token, clients=1, pause=0.5)
    epoch = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        ask = partial(rest_answer, target, booted.api_key)
        fresh = pool.submit(steadily, ask, epoch, 0.5, stop)
        try:
            time.sleep(2)
            started = time.monotonic()
            version = booted.store.publish(changed, booted.volume_id)
            subprocess.run(booted.guest.command("systemctl", "start", CONVERGE_UNIT), check=False)
            wait_until(
                lambda: booted.store.status().get("version") == version,
                f"the host to report {version}",
                timeout=600,
            )
            seconds = time.monotonic() - started
            time.sleep(2)
        finally:
            stop.set()
            keep_alive.stop()
        answers = fresh.result()
    kept = [outcome for _, outcome in keep_alive.outcomes.since(epoch)]
    return Applied(
        seconds,
        [a.outcome for a in answers if a.outcome != "200"],
        len(answers),
        [outcome for outcome in kept if outcome != "200"],
        len(kept),
    )


def report(change: str, applied: Applied) -> None:
    print(
        f"\n  {change}: applied {applied.seconds:.1f} s after publishing; failed meanwhile: "
        f"{len(applied.failed)} of {applied.requests} requests on new connections "
        f"{applied.failed[:5]}, {len(applied.keep_alive_failed)} of {applied.keep_alive_requests} "
        f"on a kept-alive one {applied.keep_alive_failed[:5]}"
    )


def _with_limits(host: HostSettings) -> HostSettings:
    return replace(host, limits=replace(host.limits, rate_limit_rps=10, max_body_size_mb=64))


def _with_admin(host: HostSettings) -> HostSettings:
    return replace(_with_limits(host), admin_cidrs=(*host.admin_cidrs, SECOND_ADMIN_CIDR))


def _with_qdrant(host: HostSettings) -> HostSettings:
    return replace(_with_admin(host), qdrant_version=NEXT_QDRANT_VERSION)


def _with_name(host: HostSettings) -> HostSettings:
    return replace(_with_qdrant(host), certificate_names=(f"www.{host.domain}",))


def test_an_edge_limit_change_is_applied_in_place_without_a_failed_request(
    booted: BootedHost,
) -> None:
    """Tuning the edge is a graceful nginx reload on the running host, not a new instance."""
    applied = apply_in_place(booted, _with_limits(booted.host))
    report("edge limits", applied)

    site = booted.guest.path(f"{booted.host.paths.nginx_conf_dir}/conf.d/secure-qdrant.conf")
    assert "rate=10r/s" in site.read_text()
    assert applied.failed == []


def ufw_rules(booted: BootedHost) -> str:
    return booted.guest.run("ufw", "show", "added")


def test_an_admin_cidr_is_added_to_the_running_firewall_without_a_failed_request(
    booted: BootedHost,
) -> None:
    """ufw takes the new SSH rule in place: established connections never see a reset firewall."""
    applied = apply_in_place(booted, _with_admin(booted.host))
    report("admin CIDR added", applied)

    assert SECOND_ADMIN_CIDR in ufw_rules(booted)
    assert applied.failed == []


def test_a_new_qdrant_version_restarts_qdrant_alone_on_the_running_host(
    booted: BootedHost,
) -> None:
    """The one change that restarts Qdrant: the container runs the new image; the failed
    requests of the restart are reported, not asserted."""
    current = booted.host.qdrant_image
    booted.guest.run("docker", "tag", current, _with_qdrant(booted.host).qdrant_image)

    applied = apply_in_place(booted, _with_qdrant(booted.host))
    report("Qdrant version", applied)

    image = booted.guest.run("docker", "inspect", "--format", "{{.Config.Image}}", "qdrant").strip()
    assert image == _with_qdrant(booted.host).qdrant_image


def test_a_certificate_name_is_added_in_place_without_a_failed_request(booted: BootedHost) -> None:
    """certbot issues the new certificate and its deploy hook reloads nginx gracefully."""
    applied = apply_in_place(booted, _with_name(booted.host))
    report("certificate name", applied)

    fullchain, _ = certificate_paths(booted.host)
    names = booted.guest.run(
        "openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", fullchain
    )
    assert f"www.{booted.host.domain}" in names
    assert applied.failed == []


def test_a_dropped_admin_cidr_leaves_the_running_firewall(booted: BootedHost) -> None:
    """Reconciled, not only added to: an address no longer trusted loses SSH at once."""
    dropped = replace(_with_name(booted.host), admin_cidrs=booted.host.admin_cidrs)
    applied = apply_in_place(booted, dropped)
    report("admin CIDR dropped", applied)

    assert SECOND_ADMIN_CIDR not in ufw_rules(booted)
    assert ADMIN_CIDR in ufw_rules(booted)
    assert applied.failed == []


def test_a_version_nginx_rejects_leaves_the_host_serving_the_last_good_one(
    booted: BootedHost,
) -> None:
    """A bad `pulumi up` must not reach the edge: the host keeps its version, keeps serving, and
    says so (its status, and ConfigRejected, whose alarm tells the team)."""
    served = booted.store.status()["version"]
    good = replace(_with_name(booted.host), admin_cidrs=booted.host.admin_cidrs)
    tls_site = staged_site_path(good, "tls")
    files = tuple(
        replace(f, content=f.content + "not_a_directive on;\n") if f.path == tls_site else f
        for f in render_host_config(good, booted.volume_id).files
    )
    bad = HostConfig(files)
    booted.store.publish_text(host_config_document(bad))
    subprocess.run(booted.guest.command("systemctl", "start", CONVERGE_UNIT), check=False)

    status = booted.store.status()
    state = json.loads(booted.guest.path(state_path(good, CONVERGE_STATE)).read_text())
    print(f"\n  rejected version: status {status}")
    assert (status["version"], status.get("rejected")) == (served, bad.version)
    assert "nginx -t" in status["error"]
    assert state["rejected"] == bad.version
    assert "not_a_directive" not in booted.guest.path(tls_site).read_text()
    assert rest_answer(booted.verify_target(), booted.api_key, 10) == "200"
    booted.guest.run("systemctl", "start", METRICS_UNIT)
    published = booted.ssm.metric_maxima(METRICS_NAMESPACE, ("Host", booted.host.name))
    assert published["ConfigRejected"] == 1
