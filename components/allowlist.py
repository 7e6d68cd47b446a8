"""The token allowlist, kept in step with the config at every `pulumi up` that changes a credential.

A local command (`python -m verify.allowlist`, as the deploy gate runs `verify`) waits for the host
to take the current master key, then leaves one point per active revocable token in the allowlist
collection and deletes the rest: a token marked `revoked` is refused by Qdrant as soon as it ends.
It runs after the host and its DNS record, and the gate runs after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.verify_gate import module_command, outputs_command


@dataclass
class TokenAllowlistArgs:
    outputs: Mapping[str, pulumi.Input[Any]]
    """The stack outputs: the master key, the tokens' claims and `revokedTokens`."""
    triggers: Sequence[pulumi.Input[Any]]
    """Values whose change means the allowlist must be synced again (e.g. the instance id)."""
    depends_on: Sequence[pulumi.Resource]


class TokenAllowlist(pulumi.ComponentResource):
    """A local command that makes Qdrant's allowlist match the configured revocable tokens."""

    report: pulumi.Output[str]
    sync: pulumi.Resource

    def __init__(
        self, name: str, args: TokenAllowlistArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:allowlist:TokenAllowlist", name, None, opts)
        synced = outputs_command(
            f"{name}-sync",
            module_command("verify.allowlist"),
            args.outputs,
            {},
            args.triggers,
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.sync = synced
        self.report = synced.stdout
        self.register_outputs({"report": self.report})
