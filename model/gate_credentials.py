"""How the stack's AWS provider signs in, as the environment that makes boto3 sign in the same way.

The deploy gate audits the account the stack deployed to, so `verify` must authenticate as
pulumi-aws does (hashicorp/aws-sdk-go-base): static keys in `aws:` config win over everything; a
configured profile wins over keys in the shell, where botocore would let the shell's keys win; the
configured roles are then assumed in order, each with the previous one's credentials. Everything
else in `aws:` (endpoints, proxies, tags, ...) does not change who the gate is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from model.config import ConfigError
from model.gate_environment import ASSUME_ROLES_VARIABLE

NAMESPACE = "aws"
STATIC_KEYS = {
    "accessKey": "AWS_ACCESS_KEY_ID",
    "secretKey": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
}
# boto3 reads one file of each kind; the provider merges a list of them.
SHARED_FILES = {
    "sharedCredentialsFiles": "AWS_SHARED_CREDENTIALS_FILE",
    "sharedConfigFiles": "AWS_CONFIG_FILE",
}
# STS requires a session name; the provider's SDK makes one up when the config has none.
DEFAULT_SESSION_NAME = "secure-qdrant-verify"
# Go's time.ParseDuration units, which the provider uses for `duration`.
DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}
DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
# Go holds a duration in an int64 of nanoseconds and refuses a longer one.
GO_MAX_DURATION_SECONDS = (2**63 - 1) / 1e9


def gate_aws_environment(aws_config: Mapping[str, str]) -> dict[str, str]:
    """Environment variables for `verify` from the raw `aws:` config (values as Pulumi passes them).

    Raises ConfigError for sign-in the gate cannot reproduce, rather than auditing as someone else.
    """
    problems: list[str] = []
    environment = _credentials(aws_config)
    for key, variable in SHARED_FILES.items():
        paths = _json_list(aws_config, key, problems)
        if len(paths) > 1:
            problems.append(f"{NAMESPACE}:{key}: the deploy gate reads one file, not {len(paths)}")
        elif paths:
            environment[variable] = paths[0]
    if aws_config.get("skipMetadataApiCheck") == "true":
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
    if aws_config.get("assumeRoleWithWebIdentity"):
        problems.append(f"{NAMESPACE}:assumeRoleWithWebIdentity: the deploy gate cannot sign in so")
    roles = _json_list(aws_config, "assumeRoles", problems)
    requests = [_assume_role_request(role, index, problems) for index, role in enumerate(roles)]
    if requests:
        environment[ASSUME_ROLES_VARIABLE] = json.dumps(requests)
    if problems:
        problems.append("secure-qdrant:verifyOnDeploy: set it to false to deploy without the gate")
        raise ConfigError(problems)
    return environment


def _credentials(aws_config: Mapping[str, str]) -> dict[str, str]:
    """Keys or profile, ranked as the provider ranks them over what the shell holds."""
    environment: dict[str, str] = {}
    if any(aws_config.get(key) for key in STATIC_KEYS):
        # Blank, not absent: a session token left in the shell must not pair with configured keys.
        environment.update({var: aws_config.get(key, "") for key, var in STATIC_KEYS.items()})
    elif aws_config.get("profile"):
        # botocore skips empty variables and goes on to the profile, as the provider does.
        environment.update({var: "" for var in STATIC_KEYS.values()})
    if aws_config.get("profile"):
        environment["AWS_PROFILE"] = aws_config["profile"]
    return environment


def _json_list(aws_config: Mapping[str, str], key: str, problems: list[str]) -> list[Any]:
    try:
        value = json.loads(aws_config.get(key) or "[]")
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        problems.append(f"{NAMESPACE}:{key}: expected a list")
        return []
    return value


def _assume_role_request(
    role: Mapping[str, Any], index: int, problems: list[str]
) -> dict[str, Any]:
    """The STS AssumeRole parameters for one `aws:assumeRoles` entry, as the provider sends them."""
    key = f"{NAMESPACE}:assumeRoles[{index}]"
    if not role.get("roleArn"):
        problems.append(f"{key}.roleArn: required")
    request: dict[str, Any] = {
        "RoleArn": role.get("roleArn"),
        "RoleSessionName": role.get("sessionName") or DEFAULT_SESSION_NAME,
    }
    if role.get("duration"):
        try:
            request["DurationSeconds"] = go_duration_seconds(role["duration"])
        except ValueError as error:
            problems.append(f"{key}.duration: {error}")
    optional = {
        "ExternalId": role.get("externalId"),
        "Policy": role.get("policy"),
        "PolicyArns": [{"arn": arn} for arn in role.get("policyArns") or []],
        "Tags": [{"Key": k, "Value": v} for k, v in sorted((role.get("tags") or {}).items())],
        "TransitiveTagKeys": role.get("transitiveTagKeys"),
        "SourceIdentity": role.get("sourceIdentity"),
    }
    return request | {name: value for name, value in optional.items() if value}


def go_duration_seconds(text: str) -> int:
    """Whole seconds in a Go duration such as `1h30m`: STS takes whole seconds, Go truncates too."""
    if not text or DURATION_PART.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration such as 15m or 1h30m")
    parts = DURATION_PART.findall(text)
    seconds = sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)
    # float() reads any number of digits, to infinity at worst: no int() limit on the way.
    if seconds > GO_MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is not a duration Go can hold (at most 2562047h)")
    return int(seconds)
