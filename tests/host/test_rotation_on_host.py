"""Key rotation on the running host: the real bootstrap's secrets step (what the rotation timer
runs) against moto's SSM, and the old credentials through the real edge during and after the
grace window.

The lab has no systemd: `lab.rotation.systemd_stand_in` records the restart the step asks for, and
the test restarts the Qdrant double from the env file the step wrote, as systemd restarts Qdrant.
"""

from __future__ import annotations

import http.client
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import jwt
import pytest

from components.api_keys import previous_key_document
from lab.bootstrap import EDGE_STEPS, BootstrapLab, EdgeBootstrap, Ssm, bootstrap_lab
from lab.processes import wait_until
from lab.rotation import (
    RestartableQdrant,
    RotatedKeys,
    SystemdStandIn,
    jump,
    rotate,
    systemd_stand_in,
)
from model.settings import HostSettings
from model.user_data import CONVERGE_TIMER, CONVERGE_UNIT, QDRANT_UNIT, loader_command
from tests.host.test_bootstrap import (  # noqa: F401 (the module's moto server fixture)
    fresh_edge,
    require_systemd_tools,
    ssm,
    succeed,
    systemd_dependencies,
    systemd_verify,
)

SECRETS = ("secrets",)
ALT = "QDRANT__SERVICE__ALT_API_KEY"
# Short, so a test watches the window close; the host's real one is keyGraceHours.
GRACE_SECONDS = 4
# What `pulumi up` writes for a version bump, given the master key the host runs with and the grace.
Rotation = Callable[[Ssm, HostSettings, str, int], RotatedKeys]
# A jump of two regenerates both of the master key's slots: the previous-key parameter then names a
# key that was never live, and only the host knows the one in use.
ROTATIONS: dict[str, Rotation] = {
    "bump by one": rotate,
    "jump of two": lambda ssm, host, running_key, grace: jump(ssm, host, grace),
}


def forget_rotations(ssm: Ssm, lab: BootstrapLab) -> None:  # noqa: F811
    """moto is the module's: an earlier test's previous key must not be this one's."""
    ssm.client().delete_parameters(Names=[lab.host.previous_api_key_parameter])


@pytest.fixture
def lab(ssm: Ssm, tmp_path: Path) -> Iterator[BootstrapLab]:  # noqa: F811
    """A bootstrapped lab (data volume, keys, ready) before any rotation."""
    with bootstrap_lab(tmp_path, ssm) as bootstrap:
        forget_rotations(ssm, bootstrap)
        succeed(bootstrap)
        yield bootstrap


@pytest.fixture
def systemd(lab: BootstrapLab, tmp_path: Path) -> SystemdStandIn:
    return systemd_stand_in(lab, tmp_path / "systemd")


def env_file(lab: BootstrapLab) -> dict[str, str]:
    lines = Path(lab.secrets_file).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("rotation", ROTATIONS.values(), ids=ROTATIONS.keys())
def test_a_rotation_writes_the_new_keys_with_the_old_master_as_alt_and_restarts_qdrant_once(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,
    rotation: Rotation,  # noqa: F811
) -> None:
    """The grace window: Qdrant takes the master key it ran with (and tokens it signed) as its
    alt_api_key, by any version bump; the keys apply only with a restart, and a run that finds
    nothing new (the timer runs every minute) restarts nothing and keeps that alt key."""
    keys = rotation(ssm, lab.host, lab.api_key, 3600)

    succeed(systemd.lab, SECRETS)

    assert env_file(lab) == {
        "QDRANT__SERVICE__API_KEY": keys.api_key,
        "QDRANT__SERVICE__READ_ONLY_API_KEY": keys.read_only_api_key,
        ALT: lab.api_key,
    }
    assert systemd.restarts(QDRANT_UNIT) == 1
    assert "API keys unchanged" in succeed(systemd.lab, SECRETS)
    assert systemd.restarts(QDRANT_UNIT) == 1


def test_a_host_that_missed_a_rotation_keeps_the_key_it_runs_with_at_the_next(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """A host whose timer did not apply the last rotation never accepted that rotation's key: the
    applications that work at the next rotation are those on the key it still runs with."""
    missed = rotate(ssm, lab.host, lab.api_key, grace_seconds=3600)
    rotate(ssm, lab.host, missed.api_key, grace_seconds=3600)

    succeed(systemd.lab, SECRETS)

    assert env_file(lab)[ALT] == lab.api_key


def test_a_host_without_an_env_file_keeps_the_previous_key_of_the_parameter_in_the_window(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """A host replaced during a grace window (its first boot writes the env file) knows no running
    key: the previous-key parameter's is the one applications used after a bump by one."""
    keys = rotate(ssm, lab.host, lab.api_key, grace_seconds=3600)
    Path(lab.secrets_file).unlink()

    succeed(systemd.lab, SECRETS)

    assert env_file(lab)[ALT] == lab.api_key
    assert env_file(lab)["QDRANT__SERVICE__API_KEY"] == keys.api_key


@pytest.mark.parametrize("next_rotation", ROTATIONS.keys())
def test_a_next_rotation_under_way_ends_the_window_of_the_key_the_last_one_replaced(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,
    next_rotation: str,  # noqa: F811
) -> None:
    """`pulumi up` writes the previous key before the master key: a run in between (or a deploy
    that failed there) must not keep the key two rotations back alive under the new deadline,
    whether the next previous key is the running one (a bump by one) or one never live (a jump)."""
    keys = rotate(ssm, lab.host, lab.api_key, grace_seconds=3600)
    succeed(systemd.lab, SECRETS)
    next_previous = keys.api_key if next_rotation == "bump by one" else secrets.token_hex(24)
    next_deadline = int(time.time()) + 7200
    ssm.put(
        lab.host.previous_api_key_parameter, previous_key_document(next_previous, next_deadline)
    )

    succeed(systemd.lab, SECRETS)

    assert ALT not in env_file(lab)


def test_the_old_master_key_is_dropped_with_a_restart_once_the_grace_window_ends(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """After keyGraceHours nothing signed with the old key may work: the timer's first run past
    the deadline rewrites the env file without it and restarts Qdrant."""
    keys = rotate(ssm, lab.host, lab.api_key, GRACE_SECONDS)
    succeed(systemd.lab, SECRETS)
    assert ALT in env_file(lab)

    wait_until(lambda: time.time() > keys.valid_until, "the grace window to end", timeout=30)
    succeed(systemd.lab, SECRETS)

    assert ALT not in env_file(lab)
    assert env_file(lab)["QDRANT__SERVICE__API_KEY"] == keys.api_key
    assert systemd.restarts(QDRANT_UNIT) == 2


def test_a_previous_key_whose_window_is_over_is_never_set(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """A first deploy stores validUntil 0; a host replaced after the window must not revive it."""
    rotate(ssm, lab.host, lab.api_key, grace_seconds=-1)

    succeed(systemd.lab, SECRETS)

    assert ALT not in env_file(lab)


def test_a_malformed_previous_key_stops_the_step_and_keeps_the_running_keys(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """A hand-edited parameter must not take Qdrant's keys away: the step fails naming it, the env
    file and Qdrant stay as they are."""
    before = Path(lab.secrets_file).read_text()
    ssm.put(lab.host.previous_api_key_parameter, "not a key document")

    result = systemd.lab.run(SECRETS)

    assert result.returncode != 0
    assert f"SSM parameter {lab.host.previous_api_key_parameter} is malformed" in result.stderr
    assert Path(lab.secrets_file).read_text() == before
    assert systemd.restarts(QDRANT_UNIT) == 0


def test_rotated_keys_never_reach_the_output_even_under_xtrace(
    lab: BootstrapLab,
    ssm: Ssm,
    systemd: SystemdStandIn,  # noqa: F811
) -> None:
    """The timer's runs log to the journal: neither the new keys nor the old one may show."""
    keys = rotate(ssm, lab.host, lab.api_key, grace_seconds=3600)

    output = succeed(systemd.lab, SECRETS, trace=True)

    assert "+ " in output, "expected an xtrace"
    for key in (keys.api_key, keys.read_only_api_key, lab.api_key, lab.read_only_api_key):
        assert key not in output


def status(edge: EdgeBootstrap, headers: dict[str, str]) -> int:
    """GET /collections through the lab's TLS edge, as an application would."""
    context = ssl.create_default_context(cafile=str(edge.client_ca))
    connection = http.client.HTTPSConnection(
        edge.lab.host.domain, edge.lab.host.ports.https, context=context, timeout=10
    )
    try:
        connection.request("GET", "/collections", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("rotation", ROTATIONS.values(), ids=ROTATIONS.keys())
def test_old_credentials_work_through_the_edge_during_grace_and_are_refused_after(
    ssm: Ssm,
    rotation: Rotation,  # noqa: F811
) -> None:
    """The promise to applications: after `pulumi up` rotates the keys, by any version bump, the
    old master key and tokens signed with it keep working until keyGraceHours have passed, then
    Qdrant refuses them (401 for the key, 403 for a token: Qdrant's answers for an unknown key and
    a bad signature), while the new key and re-minted tokens work throughout."""
    with ExitStack() as stack:
        edge = fresh_edge(ssm, stack)
        forget_rotations(ssm, edge.lab)
        succeed(edge.lab, EDGE_STEPS)
        qdrant = RestartableQdrant(edge)
        stack.callback(qdrant.stop)
        systemd = systemd_stand_in(edge.lab, edge.lab.workdir / "systemd")
        old_key, old_token = edge.lab.api_key, jwt.encode({"access": "r"}, edge.lab.api_key)
        assert status(edge, {"api-key": old_key}) == 200

        keys = rotation(ssm, edge.lab.host, old_key, GRACE_SECONDS)
        succeed(systemd.lab, SECRETS)
        assert systemd.restarts(QDRANT_UNIT) == 1
        qdrant.restart()
        new_token = jwt.encode({"access": "r"}, keys.api_key)
        during = {
            "old key": status(edge, {"api-key": old_key}),
            "old token": status(edge, {"Authorization": f"Bearer {old_token}"}),
            "new key": status(edge, {"api-key": keys.api_key}),
            "new token": status(edge, {"Authorization": f"Bearer {new_token}"}),
            "new read-only key": status(edge, {"api-key": keys.read_only_api_key}),
        }

        wait_until(lambda: time.time() > keys.valid_until, "the grace window to end", timeout=30)
        succeed(systemd.lab, SECRETS)
        assert systemd.restarts(QDRANT_UNIT) == 2
        qdrant.restart()
        after = {
            "old key": status(edge, {"api-key": old_key}),
            "old token": status(edge, {"Authorization": f"Bearer {old_token}"}),
            "new key": status(edge, {"api-key": keys.api_key}),
            "new token": status(edge, {"Authorization": f"Bearer {new_token}"}),
        }

    assert during == dict.fromkeys(during, 200)
    assert after == {"old key": 401, "old token": 403, "new key": 200, "new token": 200}


def test_converge_timer_runs_the_loader_every_minute(lab: BootstrapLab) -> None:
    """systemd loads the timer and its service as rendered: the bound docs/operations.md gives for a
    rotation (a minute) is the timer's calendar; each run of the service runs the loader, whose
    converge program runs the secrets step every time (tests/host/test_converge.py)."""
    require_systemd_tools()
    unit_dir = lab.host.paths.systemd_unit_dir
    verified = systemd_verify([CONVERGE_TIMER, CONVERGE_UNIT], [unit_dir])
    assert verified.returncode == 0 and not verified.stderr, verified.stderr

    timer = systemd_dependencies(CONVERGE_TIMER, [unit_dir])
    service = systemd_dependencies(CONVERGE_UNIT, [unit_dir])

    assert CONVERGE_UNIT in timer["Triggers"]
    assert any("minutely" in line or "*-*-* *:*:00" in line for line in timer["OnCalendar"])
    assert service["Command Line"] == {" ".join(("/usr/bin/python3", *loader_command(lab.host)))}
