"""DNS-01 for real (`python -m lab.dns01`): the bootstrap's certificate step with Debian's certbot
Route 53 plugin against moto as Route 53, pebble validating the TXT records through its own DNS
server, nginx serving the result on the VM's ports, and a forced renewal by the same path, all in a
network namespace of the lab's own.

The lab runs once per module (about 25 seconds); each test reads one thing it saw. Needs root
(network namespace, loop device, mounts); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.dns01 import LAB_CERTIFICATE_NAMES, LAB_DNS01_DOMAIN
from model.acme_dns import acme_dns_policy, challenge_record_names
from tests.consumers.test_iam_evaluation import decide
from tests.program import ACCOUNT

PROJECT = Path(__file__).resolve().parents[2]
NAMES = sorted((LAB_DNS01_DOMAIN, *LAB_CERTIFICATE_NAMES))
UNAVAILABLE = 3


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("the DNS-01 lab needs root (network namespace, loop device, mounts)")
    ran = subprocess.run(
        [sys.executable, "-m", "lab.dns01", "--json"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if ran.returncode == UNAVAILABLE:
        pytest.skip(json.loads(ran.stdout)["unavailable"])
    assert ran.stdout, ran.stderr
    result: dict[str, Any] = json.loads(ran.stdout)
    assert result["bootstrap"]["returncode"] == 0, result["bootstrap"]["log"]
    return result


def test_the_bootstrap_gets_the_certificate_for_every_name_through_route53(report):
    """The lineage renews by the plugin too: a webroot lineage would fail on a host without 80."""
    assert report["authenticator"] == "dns-route53"
    assert report["issued"]["names"] == NAMES


def test_the_bootstrap_does_not_wait_for_the_name_to_point_at_the_host(report):
    """In the lab the domain resolves elsewhere, as behind NAT: HTTP-01's DNS wait would never end."""
    assert (
        "secure-qdrant: dns-01: the certificate needs no record pointing here"
        in report["bootstrap"]["log"]
    )


def test_verifys_certificate_check_passes_with_every_name(report):
    assert report["certificate_check"]["status"] == "PASS", report["certificate_check"]
    assert (
        f"verifies for {LAB_DNS01_DOMAIN}, {LAB_CERTIFICATE_NAMES[0]},"
        in report["certificate_check"]["detail"]
    )


def test_nginx_serves_the_dns01_certificate_and_nothing_on_port_80(report):
    """Before the bootstrap the distro's default site holds 80; after it, nothing listens there,
    while 443 and 6334 serve the certificate."""
    ports = report["ports"]

    assert ports["http"] in report["listening_before"]
    assert ports["http"] not in report["listening"]
    assert {ports["https"], ports["grpc_tls"]} <= set(report["listening"])


def test_renewal_takes_the_same_path_and_its_deploy_hook_reloads_nginx(report):
    """`certbot renew` (what certbot.timer runs) re-proves every name over DNS-01; nginx serves the
    new certificate without the lab reloading it."""
    assert report["renewed"]["names"] == NAMES
    assert report["renewed"]["serial"] != report["issued"]["serial"]


def test_a_rerun_reuses_the_certificate_it_got_by_dns01(report):
    """A reboot re-runs every step: the certificate, with all its names and its DNS-01 lineage,
    must be found current rather than asked for again (Let's Encrypt rate-limits)."""
    assert report["rerun"]["returncode"] == 0, report["rerun"]["log"]
    assert "secure-qdrant: reusing the certificate on the data volume" in report["rerun"]["log"]


def test_the_plugin_removes_its_challenge_records(report):
    assert report["records_after_issuance"] == {}
    assert report["records_after_renewal"] == {}


def test_every_route53_call_the_plugin_made_is_allowed_by_the_roles_policy(report):
    """The policy judged on what certbot really sends (names, types, actions of each change batch),
    not only on requests a test wrote: one call it denies would stop every issuance and renewal."""
    calls = report["route53_calls"]
    role = {
        "policies": [
            {"name": "acme-dns", "policy": json.loads(acme_dns_policy(report["zone_id"], NAMES))}
        ],
        "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/qdrant-lab-role/i-0123456789abcdef0",
        "accountId": ACCOUNT,
    }
    changed = {
        name
        for call in calls
        for name in call["context"].get("route53:ChangeResourceRecordSetsNormalizedRecordNames", [])
    }

    assert changed == set(challenge_record_names(NAMES))
    assert {call["action"] for call in calls} == {
        "route53:ListHostedZones",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
    }
    for call in calls:
        assert decide(role, call["action"], call["resource"], call["context"]) == "Allowed", call
