"""The host's metrics publisher (cloud-init/metrics.py), run here on what the host has: a real
certificate made by openssl, access-log lines in the edge's own LOG_FORMAT, a real file system, an
HTTP server answering /readyz, and moto's CloudWatch receiving what it sends.

Under its systemd timer, on a booted host: tests/booted/test_first_boot.py.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.alarms import AlarmTargets, alarm_specs
from model.nginx_config import LOG_FORMAT, NAME
from model.settings import METRICS_NAMESPACE, AlarmThresholds, HostSettings, Limits
from model.user_data import (
    METRICS_TIMER,
    METRICS_UNIT,
    host_files,
    render_settings_env,
    settings_env,
    settings_env_path,
)
from tests.host.test_bootstrap import require_systemd_tools, systemd_dependencies, systemd_verify
from tests.host_programs import load_host_program

REGION = "eu-central-1"
HOST = "qdrant-test"
DOMAIN = "qdrant.example.com"
# The real time: the certificates made below are valid from it on.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# Where NOW's clock minute began: each run counts the minute before its own.
MINUTE = NOW.replace(second=0)


metrics = load_host_program("metrics.py", "host_metrics")


def access_line(when: dt.datetime, status: int, grpc_status: str = "-") -> str:
    """One line as nginx writes it with the edge's log_format."""
    values = {
        "remote_addr": "203.0.113.9",
        "time_local": when.strftime("%d/%b/%Y:%H:%M:%S %z"),
        "request": "POST /collections/products/points/search HTTP/2.0",
        "status": str(status),
        "body_bytes_sent": "42",
        "http_referer": "-",
        "http_user_agent": "python-httpx/0.28",
        "server_port": "443",
        f"{NAME}_grpc_status": grpc_status,
        "request_time": "0.004",
    }
    line = LOG_FORMAT
    # Longest names first: `$status` must not eat the start of `$..._grpc_status`.
    for name in sorted(values, key=len, reverse=True):
        line = line.replace(f"${name}", values[name])
    assert "$" not in line, line
    return line


def certificate(directory: Path, days: int) -> Path:
    """A certificate for DOMAIN (its key beside it, key.pem), as the lineage's fullchain.pem."""
    path = directory / "fullchain.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(directory / "key.pem"), "-out", str(path), "-days", str(days),
         "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


class QdrantHealth(http.server.BaseHTTPRequestHandler):
    """Qdrant's health checks answered 200 (/readyz once its collections are loaded), nothing
    else."""

    def do_GET(self) -> None:  # noqa: N802 (the handler's API)
        self.send_response(200 if self.path in ("/readyz", "/healthz") else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    """`server` answering on a thread of its own until the block ends: its port."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def ready_port() -> Iterator[int]:
    """A loopback server answering /readyz with 200, like Qdrant once its collections are loaded."""
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), QdrantHealth)) as port:
        yield port


@contextmanager
def tls_edge(directory: Path) -> Iterator[int]:
    """A TLS server on loopback serving the lineage's certificate (`certificate(directory)`) and
    passing Qdrant's health check, as the edge does: its port."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(directory / "fullchain.pem", directory / "key.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QdrantHealth)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    with serving(server) as port:
        yield port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def host_env(
    tmp_path: Path, port: int, cert_days: int = 20, https_port: int | None = None
) -> dict[str, str]:
    """The settings the publisher reads; nothing listens on the edge's port unless given."""
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            access_line(when, status, grpc) + "\n"
            for when, status, grpc in [
                (MINUTE - dt.timedelta(seconds=61), 401, "-"),  # before the minute: not counted
                (MINUTE - dt.timedelta(seconds=60), 401, "-"),
                (MINUTE - dt.timedelta(seconds=20), 401, "-"),
                (MINUTE - dt.timedelta(seconds=10), 200, "16"),  # gRPC UNAUTHENTICATED
                (MINUTE - dt.timedelta(seconds=5), 429, "-"),
                (MINUTE - dt.timedelta(seconds=1), 200, "0"),
                (MINUTE, 401, "-"),  # NOW's own minute: the next run's
            ]
        )
    )
    return {
        "NGINX_ACCESS_LOG": str(log),
        "CONFIG_STATE_FILE": str(tmp_path / "converge.json"),
        "CERTIFICATE": str(certificate(tmp_path, cert_days)),
        "DATA_MOUNT": str(tmp_path),
        "QDRANT_REST_PORT": str(port),
        "DOMAIN": DOMAIN,
        "HTTPS_PORT": str(https_port or free_port()),
        "METRICS_NAMESPACE": METRICS_NAMESPACE,
        "METRICS_HOST": HOST,
        "AWS_REGION": REGION,
    }


def test_settings_are_read_as_the_bootstrap_reads_them():
    """The publisher reads the same settings.env the program renders for the bootstrap."""
    host = HostSettings(
        domain=DOMAIN, acme_email="ops@example.com", acme_server="https://acme.test/d",
        qdrant_version="v1.18.3", limits=Limits(), admin_cidrs=("203.0.113.0/24", "2001:db8::/32"),
        region=REGION, api_key_parameter="/p/k", read_only_api_key_parameter="/p/r",
        previous_api_key_parameter="/p/p", name=HOST,
    )  # fmt: skip
    values = settings_env(host, "vol-0123456789abcdef0")

    assert metrics.read_settings(render_settings_env(values)) == values


def test_certificate_days_left_come_from_the_certificate_file(tmp_path):
    """A real certificate valid for 20 days from now: 19 whole days left (the first is started)."""
    path = certificate(tmp_path, 20)
    enddate = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert metrics.days_left(enddate, dt.datetime.now(dt.UTC)) == 19


def test_refused_requests_of_the_last_minute_are_counted_from_the_access_log(tmp_path):
    """REST 401s and gRPC UNAUTHENTICATED are the credential guessing the alarm is for; lines
    of an earlier minute were counted by the previous run, lines of this one are the next run's."""
    lines = host_env(tmp_path, 1)["NGINX_ACCESS_LOG"]

    counts = metrics.refused_last_minute(Path(lines).read_text().splitlines(), NOW)

    assert counts == {"401": 3, "429": 1}


@pytest.mark.parametrize("first_late, next_late", [(2.5, 0.4), (0.4, 2.5)])
def test_a_refusal_is_counted_by_one_run_however_late_the_runs_start(first_late, next_late):
    """The timer starts a run on each minute, and Python and boto3 load for a varying second or
    two before it reads the clock. A refusal logged at second 1, between a run and the next, is
    counted once: a window of the 60 s before each run counted it twice when the first run came
    late enough to read it and the next early (59.4 s before it), and never in the other case."""
    minute = dt.datetime(2026, 11, 30, 4, 1, tzinfo=dt.UTC)
    refused_at = minute + dt.timedelta(seconds=1)
    first = minute + dt.timedelta(seconds=first_late)
    after_it = minute + dt.timedelta(minutes=1, seconds=next_late)
    log = [access_line(refused_at, 401)]
    read_by_first = log if refused_at < first else []

    counted = [
        metrics.refused_last_minute(read_by_first, first)["401"],
        metrics.refused_last_minute(log, after_it)["401"],
    ]

    assert sum(counted) == 1


def test_used_percent_agrees_with_df(tmp_path):
    """df's Use% is what an operator compares the alarm with; df rounds up."""
    shown = subprocess.run(
        ["df", "--output=pcent", str(tmp_path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[1]

    used = metrics.used_percent(shutil.disk_usage(tmp_path))

    assert int(shown.strip().rstrip("%")) - 1 <= used <= int(shown.strip().rstrip("%"))


def _sent(cloudwatch: Any) -> dict[str, float]:
    """The latest value of each metric CloudWatch holds for the host."""
    queries = [
        {
            "Id": f"m{n}",
            "Label": metric["MetricName"],
            "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"},
        }
        for n, metric in enumerate(cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"])
    ]
    results = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=NOW - dt.timedelta(minutes=5),
        EndTime=NOW + dt.timedelta(minutes=5),
    )["MetricDataResults"]
    return {result["Label"]: result["Values"][0] for result in results}


@mock_aws
def test_published_values_reach_cloudwatch_under_the_hosts_dimension(tmp_path, ready_port):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    metrics.publish(cloudwatch, host_env(tmp_path, ready_port), NOW)

    listed = cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]
    assert {tuple((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed} == {
        (("Host", HOST),)
    }
    sent = _sent(cloudwatch)
    assert sent["QdrantUp"] == 1
    assert sent["Unauthorized401"] == 3
    assert sent["RateLimited429"] == 1
    assert 0 < sent["DataVolumeUsedPercent"] < 100
    # Made after NOW, valid for 20 days: 20 whole days left at NOW.
    assert sent["CertificateDaysLeft"] == 20


@mock_aws
def test_every_metric_an_alarm_watches_is_published(tmp_path, ready_port):
    """An alarm on a metric nobody sends would never fire (or, for QdrantUp, always)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    metrics.publish(cloudwatch, host_env(tmp_path, ready_port), NOW)

    targets = AlarmTargets(
        region=REGION, host_name=HOST, instance_id="i-0123", instance_type="t3.medium"
    )
    watched = {
        spec.metric_name
        for spec in alarm_specs(targets, AlarmThresholds())
        if spec.namespace == METRICS_NAMESPACE
    }
    published = {m["MetricName"] for m in cloudwatch.list_metrics()["Metrics"]}
    assert watched <= published, watched - published


@mock_aws
def test_qdrant_not_answering_is_published_as_down(tmp_path):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    metrics.publish(cloudwatch, host_env(tmp_path, free_port()), NOW)

    assert _sent(cloudwatch)["QdrantUp"] == 0


@mock_aws
@pytest.mark.parametrize(
    ("state", "published"),
    [
        (None, 0),
        ({"version": "a" * 64, "error": None}, 0),
        ({"version": "a" * 64, "rejected": "b" * 64, "error": "nginx -t: ..."}, 1),
    ],
    ids=["before-the-first-run", "serving-the-latest", "refusing-the-latest"],
)
def test_config_rejected_is_published_from_the_converge_programs_state(
    tmp_path, ready_port, state, published
):
    """ConfigRejected's alarm is how a team learns its `pulumi up` did not reach the host: 1
    exactly while the converge program refuses the latest document and serves an older one."""
    env = host_env(tmp_path, ready_port)
    if state is not None:
        Path(env["CONFIG_STATE_FILE"]).write_text(json.dumps(state))
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    metrics.publish(cloudwatch, env, NOW)

    assert _sent(cloudwatch)["ConfigRejected"] == published


def edge_serves_as_published(env: dict[str, str]) -> float:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    metrics.publish(cloudwatch, env, NOW)
    return _sent(cloudwatch)["EdgeServes"]


@mock_aws
def test_an_edge_serving_the_public_name_is_published_as_serving(tmp_path, ready_port):
    """A TLS request to this host's edge for the public name, on a certificate valid for it (the
    lineage's own, not necessarily one the system trusts: staging's must count too), answered."""
    env = host_env(tmp_path, ready_port)
    with tls_edge(tmp_path) as https_port:
        assert edge_serves_as_published(dict(env, HTTPS_PORT=str(https_port))) == 1


@mock_aws
def test_an_edge_not_listening_is_published_as_not_serving(tmp_path, ready_port):
    """nginx stopped or failed to start: Qdrant may be up on loopback, the endpoint is down."""
    assert edge_serves_as_published(host_env(tmp_path, ready_port)) == 0


@mock_aws
def test_an_edge_serving_a_certificate_not_for_the_public_name_is_not_serving(tmp_path, ready_port):
    """Clients refuse a certificate that does not name the host they asked for."""
    env = dict(host_env(tmp_path, ready_port), DOMAIN="other.example.com")
    with tls_edge(tmp_path) as https_port:
        assert edge_serves_as_published(dict(env, HTTPS_PORT=str(https_port))) == 0


@mock_aws
def test_an_unreadable_certificate_reads_as_not_serving(tmp_path, ready_port):
    """A running nginx keeps serving the certificate it loaded, but its next start or reload (a
    renewal's) fails on the file: no days left are published then, so this alarm must see it."""
    env = host_env(tmp_path, ready_port)
    with tls_edge(tmp_path) as https_port:
        Path(env["CERTIFICATE"]).write_text("")
        assert edge_serves_as_published(dict(env, HTTPS_PORT=str(https_port))) == 0


@mock_aws
def test_no_certificate_yet_sends_no_days_left(tmp_path, ready_port):
    """Before the first issuance there is no figure; a made-up one could raise or hide the alarm."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    env = dict(host_env(tmp_path, ready_port), CERTIFICATE=str(tmp_path / "missing.pem"))

    metrics.publish(cloudwatch, env, NOW)

    assert "CertificateDaysLeft" not in _sent(cloudwatch)


def test_timer_runs_the_publisher_every_minute_as_systemd_loads_it(tmp_path):
    """The units as the user data writes them, loaded by systemd: the timer triggers the publisher
    with the host's settings file, every minute."""
    require_systemd_tools()
    host = HostSettings(
        domain="qdrant.example.com", acme_email="ops@example.com", acme_server="https://acme.test/d",
        qdrant_version="v1.18.3", limits=Limits(), admin_cidrs=(), region=REGION,
        api_key_parameter="/p/k", read_only_api_key_parameter="/p/r",
        previous_api_key_parameter="/p/p", name=HOST,
    )  # fmt: skip
    for file in host_files(host, "vol-0123456789abcdef0"):
        if Path(file.path).name in (METRICS_UNIT, METRICS_TIMER):
            (tmp_path / Path(file.path).name).write_text(file.content)
    result = systemd_verify([METRICS_TIMER, METRICS_UNIT], [tmp_path])
    assert result.returncode == 0 and not result.stderr, result.stderr

    timer = systemd_dependencies(METRICS_TIMER, [tmp_path])
    service = systemd_dependencies(METRICS_UNIT, [tmp_path])

    assert timer["Triggers"] == {METRICS_UNIT}
    assert service["Type"] == {"oneshot"}
    assert service["Command Line"] == {
        f"/usr/bin/python3 {host.paths.metrics_publisher} {settings_env_path(host)}"
    }
