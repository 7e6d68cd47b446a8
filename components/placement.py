"""Where the host goes: the configured subnet, or a default-VPC subnet, and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class Placement:
    subnet_id: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    availability_zone: pulumi.Output[str]
    """The data volume must live here: EBS volumes attach only within their own zone."""


def resolve_placement(subnet_id: str | None) -> Placement:
    chosen = pulumi.Output.from_input(subnet_id) if subnet_id else _default_subnet()
    subnet = aws.ec2.get_subnet_output(id=chosen)
    return Placement(subnet_id=subnet.id, vpc_id=subnet.vpc_id, availability_zone=subnet.availability_zone)


def _default_subnet() -> pulumi.Output[str]:
    subnets = aws.ec2.get_subnets_output(filters=[{"name": "default-for-az", "values": ["true"]}])
    return subnets.ids.apply(_first_subnet)


def _first_subnet(ids: list[str]) -> str:
    if not ids:
        raise pulumi.RunError(
            "this region has no default VPC subnet: set secure-qdrant:subnetId to a public subnet"
        )
    # Sorted, so the choice is stable between runs and does not move the host around.
    return sorted(ids)[0]
