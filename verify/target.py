"""What `verify` checks: one deployed endpoint, the credentials it hands out, and how to reach it.

Built from the stack's outputs (the same JSON `pulumi stack output --json --show-secrets` prints),
so the CLI, the deploy-time gate and the tests all describe a deployment the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from components.settings import PORTS

# The gate hands `verify` the stack outputs in this environment variable, never on a command line.
OUTPUTS_VARIABLE = "SECURE_QDRANT_OUTPUTS"


class TargetError(ValueError):
    """The outputs do not describe a deployment (a missing or malformed output)."""


@dataclass(frozen=True)
class Token:
    name: str
    jwt: str = field(repr=False)
    claims: Mapping[str, Any]

    def expired(self, now: dt.datetime) -> bool:
        exp = self.claims.get("exp")
        return exp is not None and exp <= now.timestamp()


@dataclass(frozen=True)
class Target:
    domain: str
    address: str
    """Where to connect: the public IP. TLS and `Host` still name the domain."""
    api_key: str = field(repr=False)
    read_only_api_key: str | None = field(default=None, repr=False)
    tokens: tuple[Token, ...] = ()
    https_port: int = PORTS.https
    grpc_port: int = PORTS.grpc_tls
    http_port: int = PORTS.http
    closed_ports: tuple[int, ...] = PORTS.loopback_only
    """Ports that must not answer on the public address: Qdrant's own, cleartext listeners."""
    ca_file: str | None = None
    """Trust anchors for the certificate; None means the system's (Let's Encrypt's roots)."""
    instance_id: str | None = None
    admin_cidrs: tuple[str, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential, so that reports can prove they print none of them."""
        values = [self.api_key, self.read_only_api_key, *(t.jwt for t in self.tokens)]
        return tuple(v for v in values if v)


def target_from_outputs(
    outputs: Mapping[str, Any],
    address: str | None = None,
    ca_file: str | None = None,
    http_port: int = PORTS.http,
) -> Target:
    """A Target from stack outputs; `address` overrides `publicIp` (e.g. to test via a tunnel)."""
    try:
        rest = urlsplit(outputs["restUrl"])
        if rest.scheme != "https" or not rest.hostname:
            raise TargetError(f"restUrl {outputs['restUrl']!r} is not an https:// URL")
        scopes = outputs.get("tokenScopes") or {}
        tokens = tuple(
            Token(name, jwt, scopes.get(name, {}))
            for name, jwt in sorted((outputs.get("tokens") or {}).items())
        )
        return Target(
            domain=rest.hostname,
            address=address or outputs["publicIp"],
            api_key=outputs["apiKey"],
            read_only_api_key=outputs.get("readOnlyApiKey"),
            tokens=tokens,
            https_port=rest.port or PORTS.https,
            grpc_port=int(outputs.get("grpcPort", PORTS.grpc_tls)),
            http_port=http_port,
            ca_file=ca_file,
            instance_id=outputs.get("instanceId"),
            admin_cidrs=tuple(outputs.get("adminCidrs") or ()),
        )
    except KeyError as missing:
        raise TargetError(f"the stack outputs have no {missing.args[0]}") from None
