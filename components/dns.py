"""The public name of the endpoint: an A record in an existing Route53 zone."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Short, so that a replaced address (a new stack, a restored EIP) propagates within a minute.
RECORD_TTL = 60


@dataclass
class DnsRecordArgs:
    zone_name: str
    domain: str
    address: pulumi.Input[str]


class DnsRecord(pulumi.ComponentResource):
    """An A record for `domain` in the public zone `zone_name`, pointing at the host's Elastic IP."""

    fqdn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DnsRecordArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:dns:DnsRecord", name, None, opts)
        zone = aws.route53.get_zone_output(name=args.zone_name, private_zone=False)
        record = aws.route53.Record(
            f"{name}-a",
            zone_id=zone.zone_id,
            name=args.domain,
            type="A",
            ttl=RECORD_TTL,
            records=[args.address],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.fqdn = record.fqdn
        self.register_outputs({"fqdn": self.fqdn})
