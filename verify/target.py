"""What `verify` checks: one deployed endpoint, the credentials it hands out, and how to reach it.

Built from the stack's outputs (the same JSON `pulumi stack output --json --show-secrets` prints),
so the CLI, the deploy-time gate and the tests all describe a deployment the same way.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from model.settings import PORTS, AcmeChallenge
from verify.arguments import HIGHEST_PORT

T = TypeVar("T")
# What both an HTTP header and gRPC metadata carry: printable ASCII. http.client refuses CR, LF and
# what Latin-1 cannot encode only when it builds the request, with an error naming no output.
_CREDENTIAL = re.compile(r"[\x21-\x7e]+")
# Python's int() reads at most 4,300 digits.
_MAX_INTEGER_DIGITS = 4300
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class TargetError(ValueError):
    """The outputs do not describe a deployment (a missing or malformed output)."""


@dataclass(frozen=True)
class Durability:
    """The stack's backups and alarms, as its outputs name them."""

    data_volume_id: str
    alert_topic_arn: str
    backup_policy_id: str | None
    """None when the stack takes no scheduled backups (`backupSchedule: false`)."""


@dataclass(frozen=True)
class ExpectedConfig:
    """The configuration version the outputs say the host serves, and where the host reports the
    version it does (verify/config_status.py)."""

    version: str
    bucket: str
    status_key: str


@dataclass(frozen=True)
class Token:
    name: str
    jwt: str = field(repr=False)
    claims: Mapping[str, Any]
    revoked: bool = False
    """Named in the `revokedTokens` output: Qdrant must refuse it."""

    def expired(self, now: dt.datetime) -> bool:
        exp = self.claims.get("exp")
        return exp is not None and exp <= now.timestamp()

    def own_expiry(self) -> dt.datetime | None:
        """The token's own `exp`, read from its claims part without the signature checked (only
        the date is taken from it); None if it has none or it cannot be read as one."""
        parts = self.jwt.split(".")
        if len(parts) != 3:
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            exp = claims["exp"]
            if isinstance(exp, bool) or not isinstance(exp, (int, float)):
                return None
            return dt.datetime.fromtimestamp(exp, dt.UTC)
        except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, OSError):
            return None
        except RecursionError:
            raise TargetError(
                f"the stack output tokens.{self.name} has a claims part nested too deeply to read"
            ) from None


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
    durability: Durability | None = None
    """What the backup and alarm audit looks for; None for a stack from before they existed."""
    acme_challenge: AcmeChallenge = "http-01"
    """How the stack gets its certificate; with `dns-01` it has no port 80."""
    certificate_names: tuple[str, ...] = ()
    """Every name the certificate must carry; empty means the domain alone."""
    key_grace_ends_at: dt.datetime | None = None
    """Until when the master key a rotation replaced still works; None when no window is set."""
    audit_log_group: str | None = None
    """The CloudWatch Logs group Qdrant's audit lines are shipped to; None for a stack from before
    it existed."""
    config: ExpectedConfig | None = None
    """The configuration version the host must serve, and where it reports; None for a stack from
    before the host converged to published configuration."""

    @property
    def public_ports(self) -> tuple[int, ...]:
        """What the stack opens to the world (the audit's yardstick)."""
        return PORTS.public_for(self.acme_challenge)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential, so that reports can prove they print none of them."""
        values = [self.api_key, self.read_only_api_key, *(t.jwt for t in self.tokens)]
        return tuple(v for v in values if v)


def parse_outputs(text: str, source: str) -> dict[str, Any]:
    """The stack outputs from JSON text (`source` names where it came from, for the message)."""
    if not text.strip():
        raise TargetError(f"{source} is empty: it should hold the stack outputs as a JSON object")
    try:
        outputs = json.loads(text, parse_int=_json_integer)
    except json.JSONDecodeError as error:
        raise TargetError(f"{source} is not JSON ({error})") from None
    except RecursionError:
        raise TargetError(f"{source} is nested too deeply to be stack outputs") from None
    if not isinstance(outputs, dict):
        raise TargetError(
            f"{source} must be a JSON object of stack outputs, not {_json_type(outputs)}"
        )
    return outputs


def _json_integer(digits: str) -> int | float:
    # An integer too long for int() reads as a float does past its range: infinite. The output
    # holding it is then refused by name if verify reads it, instead of the whole text unread.
    if len(digits) > _MAX_INTEGER_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


def host_name(text: str, what: str) -> str:
    """`text` if it is an IP address or a DNS name: anything else would reach the socket or TLS
    layer and fail there with an error about neither."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if len(text) > 253 or not _HOST_NAME.fullmatch(text):
        raise TargetError(f"{what} {text!r} is neither an IP address nor a host name")
    return text


def target_from_outputs(
    outputs: Mapping[str, Any],
    address: str | None = None,
    ca_file: str | None = None,
    http_port: int = PORTS.http,
) -> Target:
    """A Target from stack outputs; `address` overrides `publicIp` (e.g. to test via a tunnel).

    Every output is checked for its type first: a wrong one is a TargetError naming it, never an
    exception from deep inside a check."""
    rest_url = _required(outputs, "restUrl", str)
    try:
        rest = urlsplit(rest_url)
        rest_port = rest.port
    except ValueError as error:
        raise TargetError(f"restUrl {rest_url!r} is not a URL ({error})") from None
    if rest.scheme != "https" or not rest.hostname:
        raise TargetError(f"restUrl {rest_url!r} is not an https:// URL")
    if rest_port == 0:
        raise TargetError(f"restUrl {rest_url!r} has port 0, which no server listens on")
    domain = host_name(rest.hostname, "restUrl's host")
    jwts = _mapping_of(outputs, "tokens", str)
    scopes = _mapping_of(outputs, "tokenScopes", dict)
    revoked = set(_list_of(outputs, "revokedTokens", str))
    tokens = tuple(
        Token(
            name,
            _credential(f"tokens.{name}", jwt),
            _claims(name, scopes.get(name, {})),
            name in revoked,
        )
        for name, jwt in sorted(jwts.items())
    )
    for token in tokens:
        # Read now, so that a token whose claims cannot be read is refused by name here rather
        # than a traceback after every check has run.
        token.own_expiry()
    read_only_api_key = _optional(outputs, "readOnlyApiKey", str)
    return Target(
        domain=domain,
        address=host_name(address or _required(outputs, "publicIp", str), "publicIp"),
        api_key=_credential("apiKey", _required(outputs, "apiKey", str)),
        read_only_api_key=(
            _credential("readOnlyApiKey", read_only_api_key) if read_only_api_key else None
        ),
        tokens=tokens,
        https_port=PORTS.https if rest_port is None else rest_port,
        grpc_port=_grpc_port(outputs),
        http_port=http_port,
        ca_file=ca_file,
        instance_id=_optional(outputs, "instanceId", str),
        admin_cidrs=tuple(_list_of(outputs, "adminCidrs", str)),
        durability=_durability(outputs),
        acme_challenge=_acme_challenge(outputs),
        certificate_names=tuple(_list_of(outputs, "certificateNames", str)),
        key_grace_ends_at=_grace_end(outputs),
        config=_expected_config(outputs),
        audit_log_group=_optional(outputs, "auditLogGroup", str),
    )


def _expected_config(outputs: Mapping[str, Any]) -> ExpectedConfig | None:
    version = _optional(outputs, "configVersion", str)
    if version is None:
        return None
    return ExpectedConfig(
        version=version,
        bucket=_required(outputs, "configBucket", str),
        status_key=_required(outputs, "configStatusKey", str),
    )


def _credential(where: str, value: str) -> str:
    """`value` if a request can carry it; the message never quotes it: it is a secret."""
    if not _CREDENTIAL.fullmatch(value):
        raise TargetError(
            f"the stack output {where} holds characters a request header cannot carry "
            "(only printable ASCII without spaces)"
        )
    return value


def _durability(outputs: Mapping[str, Any]) -> Durability | None:
    topic = _optional(outputs, "alertTopicArn", str)
    volume = _optional(outputs, "dataVolumeId", str)
    if not (topic and volume):
        return None
    return Durability(
        data_volume_id=volume,
        alert_topic_arn=topic,
        backup_policy_id=_optional(outputs, "backupPolicyId", str),
    )


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _KINDS.get(type(value), "a number")


def _checked(where: str, value: Any, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise TargetError(
            f"the stack output {where} should be {_KINDS[kind]}, not {_json_type(value)}"
        )
    if value == "":
        raise TargetError(f"the stack output {where} is empty")
    return value


def _optional(outputs: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    value = outputs.get(key)
    return None if value is None else _checked(key, value, kind)


def _required(outputs: Mapping[str, Any], key: str, kind: type[T]) -> T:
    value = _optional(outputs, key, kind)
    if value is None:
        raise TargetError(f"the stack outputs have no {key}")
    return value


def _mapping_of(outputs: Mapping[str, Any], key: str, kind: type) -> dict[str, Any]:
    mapping = _optional(outputs, key, dict) or {}
    for name, value in mapping.items():
        _checked(f"{key}.{name}", value, kind)
    return mapping


def _list_of(outputs: Mapping[str, Any], key: str, kind: type) -> list[Any]:
    items = _optional(outputs, key, list) or []
    for index, value in enumerate(items):
        _checked(f"{key}[{index}]", value, kind)
    return items


def _claims(name: str, claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """The parts of a token's scope the checks read, each of the type the program writes."""
    where = f"tokenScopes.{name}"
    exp = claims.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, (int, float))):
        raise TargetError(f"the stack output {where}.exp should be a number, not {_json_type(exp)}")
    if exp is not None and not math.isfinite(exp):
        raise TargetError(f"the stack output {where}.exp {exp!r} is not a finite number")
    access = claims.get("access")
    if isinstance(access, list):
        for index, rule in enumerate(access):
            rule = _checked(f"{where}.access[{index}]", rule, dict)
            _checked(f"{where}.access[{index}].collection", rule.get("collection"), str)
    elif access is not None and access not in ("r", "m"):
        raise TargetError(f"the stack output {where}.access should be r, m or a list of rules")
    if "value_exists" in claims:
        value_exists = _checked(f"{where}.value_exists", claims["value_exists"], dict)
        _checked(f"{where}.value_exists.collection", value_exists.get("collection"), str)
        matches = _checked(f"{where}.value_exists.matches", value_exists.get("matches"), list)
        for index, match in enumerate(matches):
            match = _checked(f"{where}.value_exists.matches[{index}]", match, dict)
            _checked(f"{where}.value_exists.matches[{index}].key", match.get("key"), str)
            if "value" not in match:
                raise TargetError(
                    f"the stack output {where}.value_exists.matches[{index}] has no value"
                )
    return claims


def _grace_end(outputs: Mapping[str, Any]) -> dt.datetime | None:
    # `keyGraceEndsAt` is "" until the first rotation, and absent from stacks that predate it.
    if outputs.get("keyGraceEndsAt") in (None, ""):
        return None
    text = _required(outputs, "keyGraceEndsAt", str)
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise TargetError(
            f"the stack output keyGraceEndsAt {text!r} is not a UTC time like 2030-03-18T17:46:40Z"
        ) from None


def _acme_challenge(outputs: Mapping[str, Any]) -> AcmeChallenge:
    # Stacks deployed before DNS-01 existed have no such output: they use HTTP-01.
    challenge = _optional(outputs, "acmeChallenge", str) or "http-01"
    if challenge not in ("http-01", "dns-01"):
        raise TargetError(f"the stack output acmeChallenge {challenge!r} is not http-01 or dns-01")
    return cast(AcmeChallenge, challenge)


def _grpc_port(outputs: Mapping[str, Any]) -> int:
    port = outputs.get("grpcPort", PORTS.grpc_tls)
    # Pulumi prints the number; a string of digits is what a hand-written JSON may hold (a port has
    # at most five: more would reach int()'s 4,300-digit limit).
    if isinstance(port, str) and re.fullmatch(r"[0-9]{1,5}", port):
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= HIGHEST_PORT:
        raise TargetError(f"the stack output grpcPort {port!r} is not a TCP port")
    return port
