"""The administrators' SSH key, created only when SSH is enabled at all."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls


class AdminSshKey(pulumi.ComponentResource):
    """An ED25519 key pair: the public half registered in EC2, the private half a stack secret."""

    key_name: pulumi.Output[str]
    private_key_openssh: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("secure-qdrant:ssh:AdminSshKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        private_key = tls.PrivateKey(f"{name}-key", algorithm="ED25519", opts=child)
        key_pair = aws.ec2.KeyPair(
            f"{name}-key-pair",
            public_key=private_key.public_key_openssh,
            # The stack tag the deployer policy scopes the key pair's calls by.
            tags=dict(tags),
            opts=child,
        )
        self.key_name = key_pair.key_name
        self.private_key_openssh = pulumi.Output.secret(private_key.private_key_openssh)
        self.register_outputs({"keyName": self.key_name})
