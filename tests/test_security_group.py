"""The security group is the host's outer wall: only the TLS edge and admin SSH get through."""

import pytest

from model.settings import PORTS
from tests.program import MINIMAL_CONFIG, deploy

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORLD = {"0.0.0.0/0", "::/0"}


def rule_set(deployment, typ=INGRESS):
    return {
        (r.inputs["fromPort"], r.inputs["toPort"], r.inputs.get("cidrIpv4") or r.inputs["cidrIpv6"])
        for r in deployment.of_type(typ)
    }


def public_rules():
    return {(port, port, cidr) for port in (80, 443, 6334) for cidr in WORLD}


@pytest.mark.parametrize(
    "admin_cidrs",
    [[], ["203.0.113.7/32"], ["203.0.113.0/24", "198.51.100.0/28", "2001:db8:1234::/48"]],
    ids=["no-admins", "one-admin", "v4-and-v6-admins"],
)
def test_ingress_is_exactly_admin_ssh_plus_public_tls_ports(admin_cidrs):
    """SSH is reachable only from the configured admin networks, one rule per CIDR; the world sees
    only 80 (ACME and redirect), 443 (REST over TLS) and 6334 (gRPC over TLS)."""
    deployment = deploy(dict(MINIMAL_CONFIG, adminCidrs=admin_cidrs))

    expected = public_rules() | {(22, 22, cidr) for cidr in admin_cidrs}
    assert rule_set(deployment) == expected
    assert len(deployment.of_type(INGRESS)) == len(expected), "one rule resource per port and CIDR"


def test_no_rule_covers_qdrant_loopback_ports():
    """6333 and 16334 are Qdrant's own listeners (no TLS); no rule may open them, even by range."""
    deployment = deploy(dict(MINIMAL_CONFIG, adminCidrs=["203.0.113.0/24"]))

    rules = deployment.of_type(INGRESS)
    assert rules
    for rule in rules:
        assert rule.inputs["ipProtocol"] == "tcp", rule.name
        for port in PORTS.loopback_only:
            assert not rule.inputs["fromPort"] <= port <= rule.inputs["toPort"], rule.name


def test_egress_is_only_http_and_https():
    """AWS's default allow-all egress is replaced: a compromised host cannot reach arbitrary ports."""
    deployment = deploy(MINIMAL_CONFIG)

    assert rule_set(deployment, EGRESS) == {(p, p, c) for p in (80, 443) for c in WORLD}


def test_rules_belong_to_the_hosts_security_group():
    deployment = deploy(MINIMAL_CONFIG)

    group = deployment.one("aws:ec2/securityGroup:SecurityGroup")
    instance = deployment.one("aws:ec2/instance:Instance")
    assert group.inputs["vpcId"] == "vpc-0123"
    assert len(instance.inputs["vpcSecurityGroupIds"]) == 1
    group_ids = {
        r.inputs["securityGroupId"]
        for r in deployment.of_type(INGRESS) + deployment.of_type(EGRESS)
    }
    assert group_ids == set(instance.inputs["vpcSecurityGroupIds"])


def test_no_admin_cidrs_means_no_ssh_key_at_all():
    """Without admin networks SSH is closed, so no key pair exists to leak (Session Manager works)."""
    deployment = deploy(MINIMAL_CONFIG)

    assert deployment.of_type("aws:ec2/keyPair:KeyPair") == []
    assert "keyName" not in deployment.one("aws:ec2/instance:Instance").inputs
    assert "sshPrivateKey" not in deployment.outputs


def test_admin_cidrs_create_an_ed25519_key_pair_for_the_instance():
    deployment = deploy(dict(MINIMAL_CONFIG, adminCidrs=["203.0.113.0/24"]))

    key = deployment.one("tls:index/privateKey:PrivateKey")
    pair = deployment.one("aws:ec2/keyPair:KeyPair")
    assert key.inputs["algorithm"] == "ED25519"
    assert deployment.one("aws:ec2/instance:Instance").inputs["keyName"] == pair.name
