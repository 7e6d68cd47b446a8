"""`python -m verify`: check a deployed secure-qdrant stack's security posture.

Credentials come from the stack's outputs (`--stack`, read with `pulumi stack output`) or from the
environment variable SECURE_QDRANT_OUTPUTS (the same JSON), never from the command line, and are
never printed. The AWS audit uses boto3's credentials, then assumes the roles the deploy gate lists
in SECURE_QDRANT_AWS_ASSUME_ROLES. Exit status 1 when any check fails, 2 when the target cannot be
described; a WARN (a token expiring within 30 days) never changes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Mapping, Sequence

from botocore.exceptions import InvalidRegionError
from botocore.utils import validate_region_name

from verify.arguments import OneLineParser, add_stack_arguments, one_line, port
from verify.audit_log import check_audit_logged
from verify.aws_audit import (
    AWS_ERRORS,
    NOT_CONFIGURED,
    audit_durability,
    audit_instance,
    unverifiable,
)
from verify.aws_session import aws_session
from verify.checks import endpoint_checks
from verify.config_status import CONFIG, wait_for_config
from verify.expiry import grace_window_warnings, token_expiry_warnings
from verify.report import as_json, failed, table
from verify.result import CheckResult, Status
from verify.stack import stack_outputs, wait_until_serving
from verify.target import (
    Target,
    TargetError,
    host_name,
    target_from_outputs,
)


def aws_checks(target: Target, region: str | None, environ: Mapping[str, str]) -> list[CheckResult]:
    if not target.instance_id:
        return [CheckResult("aws", Status.SKIP, "no instanceId output")]
    try:
        session = aws_session(region, environ)
        client = session.client("ec2")
    except AWS_ERRORS as error:
        return unverifiable("cannot authenticate to AWS", error)
    results = audit_instance(client, target.instance_id, target.admin_cidrs, target.public_ports)
    if target.durability:
        results += audit_durability(
            client,
            session.client("dlm"),
            session.client("cloudwatch"),
            target.instance_id,
            target.durability,
        )
    return results


def audit_log_check(target: Target, region: str | None, environ: Mapping[str, str]) -> CheckResult:
    """Whether a request of verify's reaches the audit log group, read with the deployer's
    credentials (and the gate's roles)."""
    return check_audit_logged(target, lambda: aws_session(region, environ).client("logs"))


def config_checks(
    target: Target, region: str | None, environ: Mapping[str, str], seconds: float
) -> list[CheckResult]:
    """Whether the host serves the outputs' configuration version, waiting up to `seconds` for
    its report."""
    if target.config is None:
        return []
    try:
        s3 = aws_session(region, environ).client("s3")
        return [wait_for_config(s3, target.config, seconds)]
    except NOT_CONFIGURED as error:
        return [CheckResult(CONFIG, Status.SKIP, f"not verified: {error}")]
    except AWS_ERRORS as error:
        return [CheckResult(CONFIG, Status.FAIL, f"cannot ask S3 for the host's status: {error}")]


def aws_region(text: str) -> str:
    """Checked by botocore's own rule now, rather than as three FAILs after the endpoint checks."""
    try:
        validate_region_name(text)
    except InvalidRegionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m verify", description=__doc__)
    add_stack_arguments(parser)
    parser.add_argument("--address", help="connect here instead of the publicIp output")
    parser.add_argument("--ca-file", help="trust these CAs instead of the system's")
    parser.add_argument("--http-port", type=port, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.add_argument(
        "--rate-limit", action="store_true", help="also check for 429 (spends the burst budget)"
    )
    parser.add_argument("--no-aws", action="store_true", help="skip the boto3 audit")
    parser.add_argument(
        "--region", type=aws_region, help="AWS region of the instance (default: the AWS config)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = parse_args(argv)
    try:
        outputs = stack_outputs(args.stack, environ)
        overrides = {"http_port": args.http_port} if args.http_port else {}
        address = host_name(args.address, "--address") if args.address is not None else None
        if args.ca_file is not None and not os.path.isfile(args.ca_file):
            raise TargetError(f"--ca-file {args.ca_file!r} is not a file")
        target = target_from_outputs(outputs, address, args.ca_file, **overrides)
    except TargetError as error:
        print(f"verify: {one_line(str(error))}", file=sys.stderr)
        return 2
    # One bound for both waits: the host reports the new version once it applied it, then serves.
    deadline = time.monotonic() + args.wait
    results = [] if args.no_aws else config_checks(target, args.region, environ, args.wait)
    if args.wait:
        wait_until_serving(target, max(0.0, deadline - time.monotonic()))
    results += endpoint_checks(target, rate_limit=args.rate_limit)
    if not args.no_aws:
        results += aws_checks(target, args.region, environ)
        results.append(audit_log_check(target, args.region, environ))
    # Read from the outputs and the tokens: no server is asked.
    now = dt.datetime.now(dt.UTC)
    results += token_expiry_warnings(target.tokens, now) + grace_window_warnings(
        target.key_grace_ends_at, now
    )
    print(as_json(results, target.secrets) if args.json else table(results, target.secrets))
    return 1 if failed(results) else 0
