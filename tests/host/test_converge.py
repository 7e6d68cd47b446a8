"""The converge program on a host: the real bootstrap's edge (nginx, pebble's certificate, the data
volume, SSM's keys in moto) built as on the VM, then new configurations published to the lab's S3
and applied by the converge unit's command, as its timer runs it every minute.

What it decides (pure): tests/host/test_converge_plan.py. Needs root, nginx and fail2ban; skipped
with the reason otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab.bootstrap import EDGE_STEPS, EdgeBootstrap, edge_bootstrap_lab, require_root_lab
from lab.edge import LAB_VOLUME_ID, UNTHROTTLED, unthrottled
from lab.moto import Ssm, moto_ssm
from lab.processes import LOOPBACK, LabUnavailable, free_port
from model.host_config import HostConfig, host_config_document, render_host_config
from model.settings import HostSettings, Ports
from model.user_data import CONVERGE_STATE, staged_site_path, state_path
from tests.host.test_bootstrap import succeed
from tests.host.test_metrics_publisher import metrics


class _Upstream(BaseHTTPRequestHandler):
    """Qdrant's place behind the edge: answers every request at once."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextmanager
def upstream(port: int) -> Iterator[None]:
    server = ThreadingHTTPServer((LOOPBACK, port), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def edge() -> Iterator[EdgeBootstrap]:
    """One host built to ready, its edge in front of an upstream that always answers."""
    with ExitStack() as stack:
        try:
            require_root_lab()
            moto: Ssm = stack.enter_context(moto_ssm(Path(tempfile.mkdtemp(prefix="moto-"))))
        except LabUnavailable as reason:
            pytest.skip(str(reason))
        workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-converge-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        workdir.chmod(0o755)
        ports = Ports(
            http=free_port(), https=free_port(), grpc_tls=free_port(),
            qdrant_rest=free_port(), qdrant_grpc=free_port(),
        )  # fmt: skip
        stack.enter_context(upstream(ports.qdrant_rest))
        lab = stack.enter_context(edge_bootstrap_lab(workdir, moto, ports, limits=UNTHROTTLED))
        succeed(lab.lab, EDGE_STEPS)
        yield lab


def publish(edge: EdgeBootstrap, host: HostSettings) -> str:
    return edge.lab.store.publish(host, LAB_VOLUME_ID)


def converged(edge: EdgeBootstrap) -> str:
    """One converge run that must succeed; its log."""
    result = edge.lab.converge()
    assert result.returncode == 0, result.stderr
    return result.stderr


def get(edge: EdgeBootstrap) -> int:
    """One request through the edge on a new connection: its status, 0 when it failed outright."""
    host = edge.lab.host
    context = ssl.create_default_context(cafile=str(edge.client_ca))
    request = urllib.request.Request(f"https://{host.domain}:{host.ports.https}/healthz")
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@contextmanager
def steady_client(edge: EdgeBootstrap) -> Iterator[list[int]]:
    """Requests one after another, each on a new connection, until the block ends: their
    statuses."""
    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            statuses.append(get(edge))

    thread = threading.Thread(target=send)
    thread.start()
    try:
        time.sleep(0.5)
        yield statuses
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()


def test_an_edge_limit_change_applies_by_a_graceful_reload_without_a_failed_request(
    edge: EdgeBootstrap,
) -> None:
    """Tuning a limit must not take the database off the network: the new site goes live by
    nginx's graceful reload while a client keeps sending, and the host reports the version."""
    converged(edge)
    changed = dataclasses.replace(edge.lab.host, limits=unthrottled(9_000))
    version = publish(edge, changed)
    workers = edge.nginx_workers()

    with steady_client(edge) as statuses:
        started = time.monotonic()
        log = converged(edge)
        applied = time.monotonic() - started

    failed = [status for status in statuses if status != 200]
    print(
        f"\n  edge limit change: applied in {applied:.2f} s; {len(failed)} of {len(statuses)} "
        "requests failed meanwhile"
    )
    assert failed == []
    assert "9000r/s" in Path(staged_site_path(edge.lab.host, "tls")).read_text()
    assert "Qdrant restarts" not in log
    assert not edge.nginx_workers() & workers, "nginx was not reloaded"
    assert edge.lab.store.status() == {"version": version, "error": None}


def rejected_by_nginx(host: HostSettings) -> str:
    """The host's document with a TLS site nginx refuses, sealed as `pulumi up` would seal it."""
    tls_site = staged_site_path(host, "tls")
    files = tuple(
        dataclasses.replace(f, content=f.content + "not_a_directive on;\n")
        if f.path == tls_site
        else f
        for f in render_host_config(host, LAB_VOLUME_ID).files
    )
    return host_config_document(HostConfig(files))


def test_a_document_nginx_rejects_writes_nothing_and_the_edge_keeps_serving(
    edge: EdgeBootstrap,
) -> None:
    """A bad `pulumi up` must not take the edge down or leave half a configuration behind: the
    host keeps the last good version, serves it, and says so (status, ConfigRejected)."""
    served = publish(edge, edge.lab.host)
    converged(edge)
    tls_site = Path(staged_site_path(edge.lab.host, "tls"))
    before = tls_site.read_text()
    bad = rejected_by_nginx(dataclasses.replace(edge.lab.host, limits=unthrottled(7_000)))
    edge.lab.store.publish_text(bad)

    result = edge.lab.converge()

    status = edge.lab.store.status()
    assert result.returncode != 0
    assert f"config {json.loads(bad)['version']} rejected: nginx -t" in result.stderr
    assert (status["version"], status["rejected"]) == (served, json.loads(bad)["version"])
    assert "not_a_directive" in status["error"]
    assert tls_site.read_text() == before
    assert metrics.config_rejected(state_path(edge.lab.host, CONVERGE_STATE)) == 1
    assert get(edge) == 200

    publish(edge, edge.lab.host)
    converged(edge)
    assert metrics.config_rejected(state_path(edge.lab.host, CONVERGE_STATE)) == 0


def test_a_hand_edited_managed_file_is_undone_at_the_next_run(edge: EdgeBootstrap) -> None:
    """Drift repair: what runs on the host is what was published, whatever an operator (or an
    intruder) edited."""
    publish(edge, edge.lab.host)
    converged(edge)
    expected = {
        f.path: f.content
        for f in render_host_config(edge.lab.host, LAB_VOLUME_ID).files
        if f.path in (staged_site_path(edge.lab.host, "tls"), edge.lab.host.paths.bootstrap)
    }
    for path in expected:
        with open(path, "a") as edited:
            edited.write("# edited by hand\n")

    converged(edge)

    assert {path: Path(path).read_text() for path in expected} == expected


def test_an_unchanged_document_reloads_nothing_and_restarts_nothing(edge: EdgeBootstrap) -> None:
    """A run every minute must be free: no nginx reload (its workers are the same processes),
    no Qdrant restart, only the key check."""
    publish(edge, edge.lab.host)
    converged(edge)
    workers = edge.nginx_workers()

    log = converged(edge)

    assert edge.nginx_workers() == workers
    assert "running steps: secrets\n" in log and "Qdrant restarts" not in log
    assert "wrote" not in log


def test_the_tls_step_reloads_nginx_only_when_its_site_changed(edge: EdgeBootstrap) -> None:
    """The converge program runs the TLS step for a certificate change too: a site nginx already
    serves is left alone, its workers and their connections with it."""
    publish(edge, edge.lab.host)
    converged(edge)
    workers = edge.nginx_workers()

    succeed(edge.lab, ["nginx_tls"])

    assert edge.nginx_workers() == workers


def test_a_document_that_cannot_be_fetched_changes_nothing_and_keys_still_apply(
    edge: EdgeBootstrap,
) -> None:
    """S3 unreachable or the object gone: the host keeps serving what it has, says why, and its
    minutely key check (a rotation's grace window ending) does not wait for S3."""
    served = publish(edge, edge.lab.host)
    converged(edge)
    source = edge.lab.store.source
    edge.lab.ssm.client("s3").delete_object(Bucket=source.bucket, Key=source.config_key)

    result = edge.lab.converge()

    status = edge.lab.store.status()
    assert result.returncode != 0
    assert (status["version"], status.get("rejected")) == (served, None)
    assert "fetch failed" in status["error"]
    assert "running steps: secrets\n" in result.stderr
    assert get(edge) == 200
    publish(edge, edge.lab.host)
