"""Where the host goes: the configured subnet, or a default-VPC subnet, in a zone offering its type.

Resolved with plain (blocking) lookups before any resource is registered, so a placement that
cannot work stops `pulumi up` with a message instead of a half-built stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Placement:
    subnet_id: str
    vpc_id: str
    availability_zone: str
    """The data volume must live here: EBS volumes attach only within their own zone."""


class PlacementError(pulumi.RunError):
    """No subnet can host this instance type; the message says what to change."""


def resolve_placement(subnet_id: str | None, instance_type: str) -> Placement:
    offered = aws.ec2.get_instance_type_offerings(
        location_type="availability-zone",
        filters=[{"name": "instance-type", "values": [instance_type]}],
    ).locations
    if not offered:
        raise PlacementError(
            f"secure-qdrant:instanceType: {instance_type} is not offered in any availability zone "
            "of this region"
        )
    subnet: aws.ec2.GetSubnetResult
    if subnet_id:
        subnet = aws.ec2.get_subnet(id=subnet_id)
        if subnet.availability_zone not in offered:
            raise PlacementError(
                f"secure-qdrant:subnetId: {subnet_id} is in {subnet.availability_zone}, where "
                f"{instance_type} is not offered (offered in: {', '.join(sorted(offered))}); "
                "choose a subnet in one of those zones or another instance type"
            )
    else:
        subnet = _default_subnet(instance_type, offered)
    return Placement(
        subnet_id=subnet.id, vpc_id=subnet.vpc_id, availability_zone=subnet.availability_zone
    )


def _default_subnet(instance_type: str, offered: Sequence[str]) -> aws.ec2.GetSubnetResult:
    candidates = aws.ec2.get_subnets(
        filters=[
            {"name": "default-for-az", "values": ["true"]},
            {"name": "availability-zone", "values": sorted(offered)},
        ]
    ).ids
    if not candidates:
        raise PlacementError(
            f"this region has no default VPC subnet in a zone offering {instance_type}: "
            "set secure-qdrant:subnetId to a public subnet"
        )
    subnets = [aws.ec2.get_subnet(id=candidate) for candidate in candidates]
    # The first zone by name: zones a region adds later sort after the existing ones, so the choice
    # does not move. Should it ever move, the data volume is protected and `pulumi up` stops instead
    # of replacing it.
    return min(subnets, key=lambda subnet: (subnet.availability_zone, subnet.id))
