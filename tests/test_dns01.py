"""DNS-01 through Route 53 (`acmeChallenge: dns-01`): what the stack builds and what it refuses.

A DNS-01 host proves its names by TXT records in its Route 53 zone, so the world needs no port 80
to reach it: none is opened, and the instance role gains only the right to write those records.
"""

import json

import pytest

from components.acme_dns import challenge_record_names
from components.settings import PORTS
from tests.program import MINIMAL_CONFIG, Failed, deploy

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
DNS01 = {**MINIMAL_CONFIG, "hostedZone": "example.com", "acmeChallenge": "dns-01"}


def dns01(**changes):
    return {**DNS01, **changes}


BAD_CONFIGS = {
    "unknown-challenge": (
        dns01(acmeChallenge="tls-alpn-01"),
        "secure-qdrant:acmeChallenge: 'tls-alpn-01' is not http-01 or dns-01",
    ),
    "dns01-without-zone": (
        {**MINIMAL_CONFIG, "acmeChallenge": "dns-01"},
        "secure-qdrant:acmeChallenge: dns-01 needs secure-qdrant:hostedZone",
    ),
    "names-with-http01": (
        {**MINIMAL_CONFIG, "certificateNames": ["api.example.com"]},
        "secure-qdrant:certificateNames: needs secure-qdrant:acmeChallenge dns-01",
    ),
    "name-outside-the-zone": (
        dns01(certificateNames=["api.example.org"]),
        "secure-qdrant:certificateNames: api.example.org not inside the zone 'example.com'",
    ),
    "wildcard-outside-the-zone": (
        dns01(certificateNames=["*.example.org"]),
        "secure-qdrant:certificateNames: *.example.org not inside the zone",
    ),
    "wildcard-not-leftmost": (
        dns01(certificateNames=["api.*.example.com"]),
        "secure-qdrant:certificateNames: 'api.*.example.com' is not a domain name or a wildcard",
    ),
    "names-not-a-list": (dns01(certificateNames="api.example.com"), "secure-qdrant:certificateNames:"),
    "name-listed-twice": (
        dns01(certificateNames=["api.example.com", "API.example.com."]),
        "secure-qdrant:certificateNames: lists api.example.com more than once",
    ),
    "domain-listed-again": (
        dns01(certificateNames=["qdrant.example.com"]),
        "secure-qdrant:certificateNames: lists 'qdrant.example.com', which is always on it",
    ),
    "more-names-than-a-certificate-holds": (
        dns01(certificateNames=[f"n{i}.example.com" for i in range(100)]),
        "secure-qdrant:certificateNames: 100 names and the domain exceed the 100",
    ),
    "names-beyond-the-user-data-budget": (
        dns01(certificateNames=[f"{'a' * 60}.{'b' * 60}.n{i}.example.com" for i in range(9)]),
        "secure-qdrant:certificateNames: 1224 characters of names exceed the 1024",
    ),
    "challenge-record-too-long": (
        dns01(domain=".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 40, "example.com"])),
        "secure-qdrant:domain: " + ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 40, "example.com"])
        + " too long for its _acme-challenge.<name> record",
    ),
}


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_dns01_config_fails_with_its_message_before_any_resource(config, message):
    """A combination certbot or IAM would refuse minutes into the first boot is refused up front."""
    with pytest.raises(Failed) as failure:
        deploy(config)

    assert message in str(failure.value)
    assert failure.value.registered == [], [r.type for r in failure.value.registered]


def public_ports(deployment):
    return {r.inputs["fromPort"] for r in deployment.of_type(INGRESS) if r.inputs["fromPort"] != 22}


def test_dns01_security_group_opens_no_port_80():
    """Nothing on the host needs port 80 with DNS-01: no rule opens it, in either address family."""
    deployment = deploy(dns01(adminCidrs=["203.0.113.7/32"]))

    assert public_ports(deployment) == {PORTS.https, PORTS.grpc_tls}
    assert all(r.inputs["toPort"] != PORTS.http for r in deployment.of_type(INGRESS))


def test_http01_security_group_still_opens_port_80():
    """The default stays what it was: HTTP-01 needs 80 for the challenge and the redirect."""
    assert public_ports(deploy(MINIMAL_CONFIG)) == {PORTS.http, PORTS.https, PORTS.grpc_tls}


def test_only_a_dns01_role_gets_a_route53_policy():
    """An HTTP-01 host has no business in Route 53 at all."""
    http01 = [json.loads(p.inputs["policy"]) for p in deploy(MINIMAL_CONFIG).of_type(ROLE_POLICY)]

    assert "route53" not in json.dumps(http01)


def test_dns01_policy_names_the_zone_looked_up_and_every_challenge_record():
    deployment = deploy(dns01(certificateNames=["*.example.com", "api.example.com"]))
    [policy] = [
        json.loads(p.inputs["policy"])
        for p in deployment.of_type(ROLE_POLICY)
        if "route53" in p.inputs["policy"]
    ]
    [write] = [s for s in policy["Statement"] if s["Action"] == "route53:ChangeResourceRecordSets"]

    assert write["Resource"] == "arn:aws:route53:::hostedzone/Z0123456789ABC"
    names = write["Condition"]["ForAllValues:StringEquals"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"
    ]
    assert names == [
        "_acme-challenge.api.example.com",
        "_acme-challenge.example.com",
        "_acme-challenge.qdrant.example.com",
    ]


def test_a_wildcard_is_proven_at_its_base_name():
    """RFC 8555 8.4: `*.example.com` is validated by `_acme-challenge.example.com`."""
    assert challenge_record_names(["*.example.com", "example.com"]) == ("_acme-challenge.example.com",)


def test_outputs_name_the_challenge_and_every_certificate_name():
    """`verify` reads these to know whether port 80 exists and which names the certificate needs."""
    deployment = deploy(dns01(certificateNames=["*.example.com"]))
    outputs = {name: output.value for name, output in deployment.outputs.items()}

    assert outputs["acmeChallenge"] == "dns-01"
    assert outputs["certificateNames"] == ["qdrant.example.com", "*.example.com"]
