"""The deploy-time gate: `pulumi up` runs `python -m verify` against what it just built.

A wrong security posture fails the deployment with the check table, instead of being found later.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command

from verify.target import OUTPUTS_VARIABLE

PROJECT_DIR = Path(__file__).resolve().parent.parent
# cloud-init installs packages, pulls the image and waits for DNS before asking for a certificate.
READY_TIMEOUT_SECONDS = 900


@dataclass
class VerifyGateArgs:
    outputs: Mapping[str, pulumi.Input[Any]]
    """The stack outputs `verify` reads, secrets included; they reach it by environment only."""
    region: str
    aws_environment: Mapping[str, str]
    """How the stack signs in to AWS (`gate_credentials.gate_aws_environment`), keys included."""
    triggers: Sequence[pulumi.Input[Any]]
    """Values whose change means a new deployment to check (e.g. the instance id)."""
    depends_on: Sequence[pulumi.Resource]


def verify_command(region: str) -> str:
    return " ".join(
        shlex.quote(part)
        for part in (
            sys.executable, "-m", "verify", "--wait", str(READY_TIMEOUT_SECONDS), "--region", region
        )
    )


class VerifyGate(pulumi.ComponentResource):
    """A local command that fails `pulumi up` when any security check fails."""

    report: pulumi.Output[str]

    def __init__(
        self, name: str, args: VerifyGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:verify_gate:VerifyGate", name, None, opts)
        outputs_json: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(**args.outputs).apply(json.dumps)
        )
        check = command.local.Command(
            f"{name}-checks",
            create=verify_command(args.region),
            dir=str(PROJECT_DIR),
            # Secret as a whole: it carries API keys, tokens and possibly the stack's AWS keys.
            environment=pulumi.Output.secret(
                {**args.aws_environment, OUTPUTS_VARIABLE: outputs_json}
            ),
            triggers=list(args.triggers),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.report = check.stdout
        self.register_outputs({"report": self.report})
