"""The audit log's shipper (cloud-init/audit_shipper.py): its batches against PutLogEvents' limits,
its position across runs, and the whole program run as the host runs it, against moto's
CloudWatch Logs, through rotation and an outage. Qdrant's files are written by the lab's double
(lab/qdrant_double/audit.py), which names and rotates them as Qdrant does.

On a booted host, under its timer: tests/booted/test_audit_shipping.py.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from lab.booted.ssm import log_messages
from lab.processes import LOOPBACK, free_port
from lab.qdrant_double.audit import AuditConfig, AuditLog, Caller
from model.audit_log import audit_log_group_name, audit_log_stream_name
from model.settings import HostSettings, Limits
from model.user_data import (
    AUDIT_SHIPPER_TIMER,
    AUDIT_SHIPPER_UNIT,
    CLOUD_INIT_DIR,
    audit_shipper_path,
    host_files,
    render_settings_env,
    settings_env,
    settings_env_path,
)
from tests.host.test_bootstrap import require_systemd_tools, systemd_dependencies, systemd_verify

REGION = "eu-central-1"
HOST = "qdrant-test"
GROUP, STREAM = audit_log_group_name(HOST), audit_log_stream_name(HOST)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
NOW_MS = int(NOW.timestamp() * 1000)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_shipper", CLOUD_INIT_DIR / "audit_shipper.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


shipper = _load()


def line(n: int, moment: dt.datetime = NOW, pad: int = 0) -> str:
    return json.dumps(
        {"timestamp": moment.isoformat().replace("+00:00", "Z"), "n": n, "pad": "x" * pad}
    )


def batch_bytes(events: list[dict[str, Any]]) -> int:
    return sum(len(e["message"].encode()) + shipper.EVENT_OVERHEAD for e in events)


# ------------------------------------------------------------------------------ batches (pure)


def test_a_batch_holds_at_most_ten_thousand_lines():
    """PutLogEvents refuses a batch of more than 10,000 events: the whole call fails, so one
    oversized batch would stop shipping for good."""
    lines = [(line(n), n + 1) for n in range(10_001)]

    found = shipper.batches(lines, NOW_MS)

    assert [len(events) for events, _ in found] == [10_000, 1]
    assert [end for _, end in found] == [10_000, 10_001]


def test_a_batch_stays_within_a_megabyte_counting_26_bytes_an_event():
    lines = [(line(n, pad=100_000), n + 1) for n in range(12)]

    found = shipper.batches(lines, NOW_MS)

    assert len(found) == 2
    assert all(batch_bytes(events) <= shipper.MAX_BATCH_BYTES for events, _ in found)
    assert sum(len(events) for events, _ in found) == 12


def test_a_batch_never_spans_more_than_24_hours():
    """A backlog after a long outage holds lines days apart: one batch across them is refused."""
    start = NOW - dt.timedelta(days=2)
    lines = [(line(n, start + dt.timedelta(hours=6 * n)), n + 1) for n in range(9)]

    found = shipper.batches(lines, NOW_MS)

    for events, _ in found:
        assert events[-1]["timestamp"] - events[0]["timestamp"] <= shipper.MAX_BATCH_SPAN_MS
    assert [e["message"] for events, _ in found for e in events] == [text for text, _ in lines]


def test_timestamps_never_go_back_within_the_order_of_the_file():
    """Qdrant's request threads may append a line a millisecond older than the one before it;
    CloudWatch refuses a batch out of chronological order, so the file's order wins."""
    later, earlier = NOW, NOW - dt.timedelta(milliseconds=5)
    [(events, _)] = shipper.batches([(line(0, later), 1), (line(1, earlier), 2)], NOW_MS)

    assert [e["timestamp"] for e in events] == [NOW_MS, NOW_MS]


def test_an_oversized_line_is_cut_not_dropped():
    [(events, end)] = shipper.batches([(line(0, pad=400_000), 7)], NOW_MS)

    assert len(events[0]["message"].encode()) + shipper.EVENT_OVERHEAD <= shipper.MAX_EVENT_BYTES
    assert end == 7


def test_a_line_still_being_written_waits_for_the_next_run():
    """Qdrant may be half-way through a line: sending the half would lose the rest."""
    data = b'{"a":1}\n{"b":2}\n{"c":'

    assert shipper.complete_lines(data, 100, finished=False) == [('{"a":1}', 108), ('{"b":2}', 116)]


def test_a_finished_files_last_line_is_sent_even_without_its_newline():
    """Once a newer file exists Qdrant writes no more here: its last bytes are a whole line."""
    assert shipper.complete_lines(b'{"a":1}\n{"b":2}', 0, finished=True)[-1] == ('{"b":2}', 15)


# ------------------------------------------------------------------------------ position (pure)

FILES = [
    ("audit.2026-12-07-10.log", 11),
    ("audit.2026-12-07-11.log", 12),
    ("audit.2026-12-07-12.log", 13),
]


def test_files_are_sent_oldest_first_from_the_recorded_offset():
    position = {"file": "audit.2026-12-07-11.log", "inode": 12, "offset": 40}

    assert shipper.pending(list(reversed(FILES)), position) == [
        ("audit.2026-12-07-11.log", 12, 40),
        ("audit.2026-12-07-12.log", 13, 0),
    ]


def test_a_file_pruned_since_the_last_run_is_passed_over():
    position = {"file": "audit.2026-12-07-09.log", "inode": 10, "offset": 999}

    assert [name for name, _, _ in shipper.pending(FILES, position)] == [f for f, _ in FILES]


def test_another_file_under_the_recorded_name_is_sent_from_its_start():
    """A restored volume may hold a different file of the same hour: the offset is not its."""
    position = {"file": "audit.2026-12-07-12.log", "inode": 99, "offset": 500}

    assert shipper.pending(FILES, position) == [("audit.2026-12-07-12.log", 13, 0)]


def test_a_daily_file_comes_before_the_same_days_hourly_files():
    names = ["audit.2026-12-07-13.log", "audit.2026-12-07.log", "audit.2026-12-06.log", "other.log"]

    assert shipper.audit_files(names) == [
        "audit.2026-12-06.log", "audit.2026-12-07.log", "audit.2026-12-07-13.log"
    ]  # fmt: skip


# ------------------------------------------------------------- against moto's CloudWatch Logs


def settings(tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_REGION": REGION,
        "AUDIT_DIR": str(tmp_path / "audit"),
        "AUDIT_SHIPPER_STATE": str(tmp_path / "audit-shipper.json"),
        "AUDIT_LOG_GROUP": GROUP,
        "AUDIT_LOG_STREAM": STREAM,
    }


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


def writer(tmp_path: Path, clock: Clock) -> Callable[[int], list[str]]:
    """Qdrant's audit log as the double writes it, hourly: `write(n)` appends n requests' lines."""
    audit = AuditLog(
        AuditConfig(enabled=True, dir=str(tmp_path / "audit"), rotation="hourly", max_log_files=24),
        clock,
    )
    written: list[str] = []

    def write(count: int) -> list[str]:
        for _ in range(count):
            caller = Caller(
                remote="203.0.113.7", api=f"/collections/c{len(written)}", tracing_id=None
            )
            audit.checked(caller.authenticated("jwt", "search-app"), "search_points", "c", None)
            written.append(audit_lines(tmp_path)[-1])
        return written

    return write


def audit_lines(tmp_path: Path) -> list[str]:
    files = sorted((tmp_path / "audit").glob("audit.*.log"))
    return [text for path in files for text in path.read_text().splitlines()]


@pytest.fixture
def moto_logs() -> Iterator[tuple[ThreadedMotoServer, int]]:
    """moto's CloudWatch Logs in this process, so that it keeps its state across a stop and a
    start on the same port: an outage, not a new service."""
    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    reset = f"http://{LOOPBACK}:{port}/moto-api/reset"
    # Its state is this process's: another test's group and stream must not be seen here.
    urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=10).close()
    client(port).create_log_group(logGroupName=GROUP)
    try:
        yield server, port
    finally:
        urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=10).close()
        server.stop()


def client(port: int) -> Any:
    return boto3.client(
        "logs", region_name=REGION, endpoint_url=f"http://{LOOPBACK}:{port}",
        aws_access_key_id="lab", aws_secret_access_key="lab",
    )  # fmt: skip


def received(logs: Any) -> list[str]:
    return log_messages(logs, GROUP, STREAM)


def run_shipper(tmp_path: Path, port: int) -> subprocess.CompletedProcess[str]:
    """The program as its unit runs it: a new process each time (a reboot in between loses
    nothing but the process), its settings file as the argument."""
    settings_file = tmp_path / "settings.env"
    settings_file.write_text(render_settings_env(settings(tmp_path)))
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:{port}",
        "AWS_ACCESS_KEY_ID": "lab",
        "AWS_SECRET_ACCESS_KEY": "lab",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # One attempt: the timer is the retry.
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [sys.executable, str(CLOUD_INIT_DIR / "audit_shipper.py"), str(settings_file)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_every_line_arrives_once_in_order_across_rotation(tmp_path, moto_logs):
    """The three questions after an incident are answered from CloudWatch only if every line is
    there, once, in the order Qdrant wrote it, whichever hourly file it was in."""
    _, port = moto_logs
    clock = Clock(NOW - dt.timedelta(hours=2))
    write = writer(tmp_path, clock)
    write(5)
    clock.now += dt.timedelta(hours=1)
    write(5)
    clock.now += dt.timedelta(hours=1)
    lines = write(5)

    first = run_shipper(tmp_path, port)
    again = run_shipper(tmp_path, port)

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert len(list((tmp_path / "audit").glob("audit.*.log"))) == 3
    assert received(client(port)) == lines == audit_lines(tmp_path)
    assert "shipped 0 audit lines" in again.stdout


def test_an_outage_loses_no_line_and_sends_none_twice(tmp_path, moto_logs):
    """CloudWatch unreachable for a while (a network outage, the host rebooting): the runs in
    between fail and record nothing, and the first run after it sends exactly what is missing."""
    server, port = moto_logs
    clock = Clock(NOW - dt.timedelta(minutes=30))
    write = writer(tmp_path, clock)
    write(10)
    assert run_shipper(tmp_path, port).returncode == 0
    position = (tmp_path / "audit-shipper.json").read_text()

    server.stop()
    write(7)
    clock.now += dt.timedelta(hours=1)
    write(3)
    failed = run_shipper(tmp_path, port)
    position_after_failure = (tmp_path / "audit-shipper.json").read_text()
    server.start()
    write(4)
    resumed = run_shipper(tmp_path, port)

    assert failed.returncode != 0 and position_after_failure == position
    assert resumed.returncode == 0, resumed.stderr
    assert "shipped 14 audit lines" in resumed.stdout
    assert received(client(port)) == audit_lines(tmp_path)
    assert len(audit_lines(tmp_path)) == 24


class FailingOnce:
    """CloudWatch Logs going away in the middle of a run: the `fail_at`th PutLogEvents fails."""

    def __init__(self, logs: Any, fail_at: int) -> None:
        self.logs, self.calls, self.fail_at = logs, 0, fail_at
        self.exceptions = logs.exceptions

    def create_log_stream(self, **kwargs: Any) -> Any:
        return self.logs.create_log_stream(**kwargs)

    def put_log_events(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("CloudWatch Logs is unreachable")
        return self.logs.put_log_events(**kwargs)


@mock_aws
def test_a_run_cut_off_between_batches_resumes_after_the_last_accepted_one(tmp_path):
    """The position is written after each accepted batch, not at the end of the run: a run stopped
    half-way (timeout, reboot, outage) has recorded exactly what CloudWatch holds."""
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    clock = Clock(NOW - dt.timedelta(minutes=5))
    lines = writer(tmp_path, clock)(6000)

    with pytest.raises(ConnectionError):
        shipper.ship(FailingOnce(logs, fail_at=2), settings(tmp_path), NOW_MS)
    after_the_cut = received(logs)
    shipped = shipper.ship(logs, settings(tmp_path), NOW_MS)

    [(first_batch, _), *rest] = shipper.batches([(text, 0) for text in lines], NOW_MS)
    assert rest and after_the_cut == lines[: len(first_batch)]
    assert shipped == len(lines) - len(first_batch)
    assert received(logs) == lines


@mock_aws
def test_a_line_qdrant_is_still_writing_is_sent_whole_by_a_later_run(tmp_path):
    """The newest file is Qdrant's open one: a run that meets half a line sends the lines before
    it, and the next run the line whole, never its two halves as two events."""
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    (tmp_path / "audit").mkdir()
    current = tmp_path / "audit" / "audit.2026-12-07-23.log"
    whole, half = line(1), line(2)
    current.write_text(whole + "\n" + half[:20])

    first = shipper.ship(logs, settings(tmp_path), NOW_MS)
    with open(current, "a", encoding="utf-8") as audit:
        audit.write(half[20:] + "\n")
    second = shipper.ship(logs, settings(tmp_path), NOW_MS)

    assert (first, second) == (1, 1)
    assert received(logs) == [whole, half]


# ------------------------------------------------------------------------------ on the host


def test_the_shipper_runs_every_minute_once_the_data_volume_is_mounted(tmp_path):
    """Its files and its position are on the data volume: started without it, it would write a
    position onto the root disk that the next instance never sees."""
    require_systemd_tools()
    host = HostSettings(
        domain="qdrant.example.com", acme_email="ops@example.com",
        acme_server="https://acme-v02.api.letsencrypt.org/directory", qdrant_version="v1.18.3",
        limits=Limits(), admin_cidrs=(), region=REGION, api_key_parameter="/p/k",
        read_only_api_key_parameter="/p/r", previous_api_key_parameter="/p/p", name=HOST,
    )  # fmt: skip
    files = host_files(host, "vol-0123456789abcdef0")
    for file in files:
        if Path(file.path).name in (AUDIT_SHIPPER_UNIT, AUDIT_SHIPPER_TIMER):
            (tmp_path / Path(file.path).name).write_text(file.content)
    result = systemd_verify([AUDIT_SHIPPER_TIMER, AUDIT_SHIPPER_UNIT], [tmp_path])
    assert result.returncode == 0 and not result.stderr, result.stderr

    timer = systemd_dependencies(AUDIT_SHIPPER_TIMER, [tmp_path])
    service = systemd_dependencies(AUDIT_SHIPPER_UNIT, [tmp_path])
    env = settings_env(host, "vol-0123456789abcdef0")

    assert timer["Triggers"] == {AUDIT_SHIPPER_UNIT}
    assert service["Command Line"] == {
        f"/usr/bin/python3 {audit_shipper_path(host)} {settings_env_path(host)}"
    }
    assert host.paths.data_mount in service["RequiresMountsFor"]
    assert env["AUDIT_SHIPPER_STATE"].startswith(host.paths.data_mount + "/")
    assert env["AUDIT_DIR"].startswith(host.paths.qdrant_storage + "/")
    assert (env["AUDIT_LOG_GROUP"], env["AUDIT_LOG_STREAM"]) == (GROUP, STREAM)
