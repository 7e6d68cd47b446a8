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

from model.gate_environment import OUTPUTS_VARIABLE

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


def module_command(module: str, *arguments: str) -> str:
    """This project's `python -m MODULE`, waiting for the host first, as a local command line."""
    return shlex.join(
        [sys.executable, "-m", module, "--wait", str(READY_TIMEOUT_SECONDS), *arguments]
    )


def verify_command(region: str) -> str:
    return module_command("verify", "--region", region)


def outputs_command(
    name: str,
    create: str,
    outputs: Mapping[str, pulumi.Input[Any]],
    environment: Mapping[str, str],
    triggers: Sequence[pulumi.Input[Any]],
    opts: pulumi.ResourceOptions,
) -> command.local.Command:
    """A local command handed the stack outputs, secrets included, by environment only."""
    outputs_json: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(**outputs).apply(json.dumps)
    )
    return command.local.Command(
        name,
        create=create,
        dir=str(PROJECT_DIR),
        # Secret as a whole: it carries API keys, tokens and possibly the stack's AWS keys.
        environment=pulumi.Output.secret({**environment, OUTPUTS_VARIABLE: outputs_json}),
        triggers=list(triggers),
        opts=opts,
    )


class VerifyGate(pulumi.ComponentResource):
    """A local command that fails `pulumi up` when any security check fails."""

    report: pulumi.Output[str]

    def __init__(
        self, name: str, args: VerifyGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:verify_gate:VerifyGate", name, None, opts)
        check = outputs_command(
            f"{name}-checks",
            verify_command(args.region),
            args.outputs,
            args.aws_environment,
            args.triggers,
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.report = check.stdout
        self.register_outputs({"report": self.report})
