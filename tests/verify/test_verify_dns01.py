"""`verify` on a DNS-01 stack: no port 80 to judge, and a certificate that must carry every name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from lab.edge import EdgeLab, running_edge_lab
from lab.processes import LabUnavailable, free_port
from verify.checks import check_certificate, check_http_redirect
from verify.result import Status
from verify.target import Target, TargetError, target_from_outputs

OUTPUTS = {"restUrl": "https://qdrant.example.com", "publicIp": "192.0.2.10", "apiKey": "k"}


def test_http_redirect_is_skipped_with_the_reason_when_the_stack_has_no_port_80():
    """A DNS-01 stack opens no port 80: there is no redirect to check, and a refused connection is
    what it should see, not a failure."""
    target = Target(
        domain="localhost",
        address="::1",
        api_key="k",
        http_port=free_port(),
        acme_challenge="dns-01",
    )

    result = check_http_redirect(target)

    assert result.status is Status.SKIP, result
    assert result.detail == "the stack opens no port 80 (acmeChallenge dns-01)"


def test_outputs_carry_the_challenge_and_the_names_into_the_target():
    outputs = {
        **OUTPUTS,
        "acmeChallenge": "dns-01",
        "certificateNames": ["qdrant.example.com", "*.example.com"],
    }

    target = target_from_outputs(outputs)

    assert target.acme_challenge == "dns-01"
    assert target.public_ports == (443, 6334)
    assert target.certificate_names == ("qdrant.example.com", "*.example.com")


def test_a_stack_from_before_dns01_is_an_http01_stack():
    """Its outputs have no acmeChallenge; its port 80 is still judged."""
    assert target_from_outputs(OUTPUTS).public_ports == (80, 443, 6334)


def test_an_unknown_challenge_output_is_refused():
    with pytest.raises(TargetError, match="acmeChallenge 'tls-alpn-01' is not http-01 or dns-01"):
        target_from_outputs({**OUTPUTS, "acmeChallenge": "tls-alpn-01"})


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    try:
        with running_edge_lab() as edge:
            yield edge
    except LabUnavailable as missing:
        pytest.skip(f"loopback lab unavailable: {missing}")


def test_the_certificate_check_passes_when_it_carries_every_name(lab):
    target = dataclasses.replace(lab.verify_target(), certificate_names=(lab.domain,))

    result = check_certificate(target)

    assert result.status is Status.PASS, result
    assert f"verifies for {lab.domain}," in result.detail


def test_the_certificate_check_fails_naming_a_name_the_certificate_lacks(lab):
    """A certificate that verifies for the domain but lacks a configured name breaks every client of
    that name: the check must say which."""
    target = dataclasses.replace(
        lab.verify_target(), certificate_names=(lab.domain, "api.localhost", "*.localhost")
    )

    result = check_certificate(target)

    assert result.status is Status.FAIL, result
    assert result.detail.startswith("does not carry api.localhost, *.localhost (it has localhost)")
