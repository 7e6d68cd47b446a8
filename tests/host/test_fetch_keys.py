"""The key fetcher's pure half (cloud-init/fetch_keys.py): which alt key Qdrant keeps through a
rotation's grace window, how long it waits for SSM, what it refuses as a key. What it does on a host
(SSM through moto, the real bootstrap's secrets step): tests/host/test_rotation_on_host.py."""

from __future__ import annotations

import pytest

from tests.host_programs import load_host_program

fetch_keys = load_host_program("fetch_keys.py", "fetch_keys")
MASTER, ALT = fetch_keys.MASTER, fetch_keys.ALT
UNTIL = 2_000_000_000
BEFORE, AFTER = UNTIL - 60, UNTIL + 1


def test_a_first_boot_in_a_grace_window_keeps_the_parameters_replaced_key() -> None:
    """A replacement host knows no running key: the previous-key parameter's is the one clients may
    still hold, so it stays accepted until the window ends."""
    assert fetch_keys.grace_key("new", ("old", UNTIL), {}, None, BEFORE) == "old"


def test_no_alt_key_once_the_window_has_ended() -> None:
    """After validUntil the replaced key must stop opening Qdrant: that is what ends the window."""
    assert fetch_keys.grace_key("new", ("old", UNTIL), {}, None, AFTER) is None


def test_a_switch_keeps_the_key_qdrant_ran_with_not_the_parameters() -> None:
    """A version jump of two regenerates both slots: the parameter's key never ran anywhere, the env
    file's is what clients hold."""
    running = {MASTER: "ran", ALT: "older"}
    assert fetch_keys.grace_key("new", ("never-ran", UNTIL), running, None, BEFORE) == "ran"


def test_a_rerun_keeps_the_alt_key_while_the_deadline_is_the_one_it_was_taken_under() -> None:
    """Every converge run re-runs the secrets step: it must not drop the alt key mid-window."""
    running = {MASTER: "new", ALT: "ran"}
    assert fetch_keys.grace_key("new", ("x", UNTIL), running, f"{UNTIL}\n", BEFORE) == "ran"


def test_a_new_deadline_ends_the_older_alt_keys_window() -> None:
    """A next rotation under way: the key replaced two rotations ago must stop working now."""
    running = {MASTER: "new", ALT: "ran"}
    assert fetch_keys.grace_key("new", ("x", UNTIL), running, f"{UNTIL - 1}\n", BEFORE) is None
    assert fetch_keys.grace_key("new", ("x", UNTIL), running, None, BEFORE) is None


def test_the_master_key_is_never_its_own_alt_key() -> None:
    """A rollback to the replaced key must not list one key twice (nor extend a window)."""
    assert fetch_keys.grace_key("same", ("same", UNTIL), {}, None, BEFORE) is None


@pytest.mark.parametrize("value", [None, 7, "", " padded", "trailing\n", "two\nlines"])
def test_an_empty_or_malformed_key_stops_the_fetch_naming_the_parameter(value: object) -> None:
    """Qdrant 1.18 takes "" as a valid key (open to anyone), and an env file cannot carry a line
    break: such a value must fail the step, naming the parameter and never the value."""
    with pytest.raises(SystemExit, match="^secure-qdrant: SSM parameter /p is empty or malformed$"):
        fetch_keys.key(value, "/p")


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        '{"apiKey": "k"}',
        '{"validUntil": 1}',
        '{"apiKey": "k", "validUntil": "soon"}',
    ],
)
def test_a_malformed_previous_key_document_stops_the_fetch(document: str) -> None:
    """A half-read window would keep a key alive for an unknown time, or not at all."""
    with pytest.raises(SystemExit, match="^secure-qdrant: SSM parameter /prev is malformed$"):
        fetch_keys.previous_key(document, "/prev")


def test_the_env_file_round_trips_values_holding_equals_signs() -> None:
    """Keys are compared with what Qdrant runs with: a value cut at its first `=` would look
    rotated on every run and restart Qdrant every minute."""
    keys = {MASTER: "a=b==", ALT: "c"}
    assert fetch_keys.parse_env(fetch_keys.render_env(keys)) == keys


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_waiting_for_ssm_backs_off_to_the_cap_then_gives_up_naming_the_problem() -> None:
    """IAM is eventually consistent: a fresh instance retries a denied read, but a host that
    never gets its keys must fail loudly, not wait forever."""
    clock = _Clock()
    with pytest.raises(SystemExit, match=r"gave up after 20s .*\(AccessDeniedException\)"):
        fetch_keys.wait_for(
            lambda: ({}, "AccessDeniedException"), 20, 4, clock=lambda: clock.now, sleep=clock.sleep
        )
    assert clock.slept == [1, 2, 4, 4, 4, 4]


def test_waiting_for_ssm_returns_the_values_once_nothing_is_missing() -> None:
    """Parameters created after the instance are picked up on the next try."""
    answers = iter([({}, "ParameterNotFound: /m"), ({"/m": "k"}, "")])
    clock = _Clock()
    values = fetch_keys.wait_for(
        lambda: next(answers), 60, 60, clock=lambda: clock.now, sleep=clock.sleep
    )
    assert values == {"/m": "k"}
    assert clock.slept == [1]


def test_a_missing_parameter_is_named() -> None:
    """The bootstrap's failure must say which parameter to create."""
    wanted = {MASTER: "/m", "R": "/r"}
    assert fetch_keys.missing_problem({"/m": "k"}, wanted) == "ParameterNotFound: /r"
    assert fetch_keys.missing_problem({"/m": "k", "/r": "k"}, wanted) == ""
