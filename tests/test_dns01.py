"""DNS-01 through Route 53 (`acmeChallenge: dns-01`): what the stack builds (what it refuses is in
test_config).

A DNS-01 host proves its names by TXT records in its Route 53 zone, so the world needs no port 80
to reach it: none is opened, and the instance role gains only the right to write those records.
"""

import dataclasses
import json
import re

from model.acme_dns import challenge_record_names
from model.nginx_config import render_http_site, render_tls_site
from model.settings import PORTS
from tests.consumers.test_cloud_init import HOST
from tests.program import MINIMAL_CONFIG, deploy

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
DNS01 = {**MINIMAL_CONFIG, "hostedZone": "example.com", "acmeChallenge": "dns-01"}


def dns01(**changes):
    return {**DNS01, **changes}


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
    assert challenge_record_names(["*.example.com", "example.com"]) == (
        "_acme-challenge.example.com",
    )


def test_outputs_name_the_challenge_and_every_certificate_name():
    """`verify` reads these to know whether port 80 exists and which names the certificate needs."""
    deployment = deploy(dns01(certificateNames=["*.example.com"]))
    outputs = {name: output.value for name, output in deployment.outputs.items()}

    assert outputs["acmeChallenge"] == "dns-01"
    assert outputs["certificateNames"] == ["qdrant.example.com", "*.example.com"]


def test_a_dns01_hosts_nginx_sites_listen_on_no_port_80():
    """Neither the site before the certificate nor the TLS site has a plain-HTTP server (the
    lab checks the running nginx: `tests/lab/test_dns01_lab.py`)."""
    host = dataclasses.replace(HOST, acme_challenge="dns-01")
    sites = (render_http_site(host), render_tls_site(host, "/cert.pem", "/key.pem"))

    assert [re.findall(rf"listen \S+:{PORTS.http}\b", site) for site in sites] == [[], []]
    assert re.findall(rf"listen \S+:{PORTS.http}\b", render_http_site(HOST)), "the pattern finds 80"
