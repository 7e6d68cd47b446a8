"""The VM's user data on a real Debian 12 host (systemd-nspawn), first boot: issue 9.

One guest for the module: booting it installs packages with apt, so each test reads the same host.
Everything it started (guest, slirp4netns, servers, loop device, cgroup folders) is gone afterwards,
also when a test fails: `booted_host` owns all of it. Needs root and the Debian tools scripts/test
installs; skips, saying what is missing, without them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.__main__ import DEMO_COLLECTION, DEMO_TOKENS, DEMO_VECTORS
from lab.booted.demo import verify_booted
from lab.booted.host import BootedHost, booted_host
from tests.booted import require_booted_lab
from verify.result import Status


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
            "renewal", "nginx_tls", "firewall", "fail2ban", "qdrant_health", "ready",
        )
    ]  # fmt: skip


def test_qdrant_runs_the_pinned_image_without_a_registry(booted: BootedHost) -> None:
    """No registry is reachable from the lab: Qdrant runs because the bootstrap uses the pinned tag
    that is present instead of pulling it (it pulled unconditionally before, and failed here)."""
    image = booted.guest.run("docker", "inspect", "--format", "{{.Config.Image}}", "qdrant")
    assert image.strip() == booted.host.qdrant_image


def test_every_verify_check_passes_through_the_published_ports(booted: BootedHost) -> None:
    """The security posture as `verify` sees a deployment, from outside the guest: TLS, redirect,
    headers, keys, tokens, gRPC, the rate limit and Qdrant's own ports closed."""
    results = verify_booted(booted, DEMO_TOKENS, DEMO_COLLECTION, DEMO_VECTORS)
    assert [(r.name, r.status) for r in results if r.status is not Status.PASS] == []
    assert {r.name for r in results} >= {"certificate", "grpc", "qdrant-ports-closed", "rate-limit"}
