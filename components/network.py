"""The security group: SSH from admin CIDRs only, 443/6334 (and 80 for HTTP-01) from the world,
Qdrant's ports never."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from model.settings import PORTS, Ports

WORLD = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Rule:
    port: int
    cidr: str
    description: str

    @property
    def is_ipv6(self) -> bool:
        return ipaddress.ip_network(self.cidr).version == 6

    @property
    def slug(self) -> str:
        """A resource-name-safe, unique form of port and CIDR (`443-0-0-0-0-0`, `443-v6-0`)."""
        family = "v6-" if self.is_ipv6 else ""
        return f"{self.port}-{family}" + re.sub(r"[^0-9a-f]+", "-", self.cidr).strip("-")


def ingress_rules(
    admin_cidrs: tuple[str, ...], public_ports: tuple[int, ...] = PORTS.public, ports: Ports = PORTS
) -> list[Rule]:
    """Every inbound rule of the host: one per port and CIDR, nothing else.

    Qdrant's own ports (`ports.loopback_only`) appear in no rule: Nginx is the only way in.
    """
    rules = [Rule(ports.ssh, cidr, "SSH from an admin network") for cidr in admin_cidrs]
    rules += [Rule(port, cidr, "public TLS edge") for port in public_ports for cidr in WORLD]
    return rules


def egress_rules(ports: Ports = PORTS) -> list[Rule]:
    """Outbound HTTP(S) only: apt, Docker Hub, Let's Encrypt and the SSM endpoints need nothing else.

    DNS and NTP go to the VPC's link-local resolvers, which security groups do not filter.
    """
    return [
        Rule(port, cidr, "package, image, ACME and AWS API traffic")
        for port in (ports.http, ports.https)
        for cidr in WORLD
    ]


@dataclass
class QdrantSecurityGroupArgs:
    vpc_id: pulumi.Input[str]
    admin_cidrs: tuple[str, ...]
    public_ports: tuple[int, ...] = PORTS.public
    """What the world may reach: `Ports.public_for` the stack's ACME challenge."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Beside its Name: the stack tag the deployer policy scopes the group's calls by."""


class QdrantSecurityGroup(pulumi.ComponentResource):
    """A security group and one ingress/egress rule resource per port and CIDR."""

    group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: QdrantSecurityGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:network:QdrantSecurityGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Qdrant behind Nginx: TLS edge ports only",
            tags={**args.tags, "Name": name},
            opts=child,
        )
        for rule_type, direction, rules in (
            (
                aws.vpc.SecurityGroupIngressRule,
                "in",
                ingress_rules(args.admin_cidrs, args.public_ports),
            ),
            (aws.vpc.SecurityGroupEgressRule, "out", egress_rules()),
        ):
            for rule in rules:
                rule_type(
                    f"{name}-{direction}-{rule.slug}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=rule.port,
                    to_port=rule.port,
                    description=rule.description,
                    cidr_ipv4=None if rule.is_ipv6 else rule.cidr,
                    cidr_ipv6=rule.cidr if rule.is_ipv6 else None,
                    opts=child,
                )
        self.group_id = group.id
        self.register_outputs({"groupId": group.id})
