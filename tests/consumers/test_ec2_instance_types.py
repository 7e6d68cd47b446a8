"""The instance family table (model/instance_types.py) against EC2's own answers: every
instance type of a family the table knows, as DescribeInstanceTypes describes it (moto serves AWS's
recorded answers).

EC2 recovers only EBS-only instances (EC2 User Guide, "Recover your instance", requirements: "Use
EBS volumes only (do not configure instance store volumes)"); a recover action on any other type
cannot act, so the program must never attach one there.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from model.instance_types import (
    _ARM64_FAMILIES,
    _X86_64_FAMILIES,
    architecture_of,
    has_instance_store,
    supports_recovery,
)

TABLE = _ARM64_FAMILIES | _X86_64_FAMILIES


@pytest.fixture(scope="module")
def described() -> dict[str, dict[str, Any]]:
    """Every instance type of the table's families, as DescribeInstanceTypes answers."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        pages = ec2.get_paginator("describe_instance_types").paginate()
        types = (t for page in pages for t in page["InstanceTypes"])
        return {t["InstanceType"]: t for t in types if t["InstanceType"].split(".")[0] in TABLE}


def family(instance_type: str) -> str:
    return instance_type.partition(".")[0]


def test_ec2_describes_every_family_of_the_table(described):
    """Otherwise the checks below would leave a family unjudged."""
    assert {family(t) for t in described} == TABLE


def test_instance_store_is_derived_as_ec2_describes_it(described):
    """The family name decides whether the recover action is attached: it must say what EC2 says
    of every size (InstanceStorageSupported)."""
    wrong = {
        t: d["InstanceStorageSupported"]
        for t, d in described.items()
        if has_instance_store(family(t)) != d["InstanceStorageSupported"]
    }
    assert not wrong


def test_no_type_ec2_cannot_recover_is_given_the_recover_action(described):
    """x2idn and x2iedn are the only types with instance store that EC2 reports as recoverable;
    the program follows the User Guide's rule for them too and reboots (a reboot never fails)."""
    wrong = [
        t for t, d in described.items() if supports_recovery(t) and not d["AutoRecoverySupported"]
    ]
    assert not wrong


def test_every_type_ec2_recovers_with_ebs_only_keeps_the_recover_action(described):
    """Metal sizes included: EC2 reports every EBS-only type of the table as recoverable."""
    lost = [
        t
        for t, d in described.items()
        if d["AutoRecoverySupported"]
        and not d["InstanceStorageSupported"]
        and not supports_recovery(t)
    ]
    assert not lost
    assert supports_recovery("m7g.metal") and described["m7g.metal"]["AutoRecoverySupported"]


def test_the_architecture_of_each_type_is_one_ec2_supports(described):
    """An AMI of another architecture would fail the launch minutes into `pulumi up`."""
    wrong = {
        t: d["ProcessorInfo"]["SupportedArchitectures"]
        for t, d in described.items()
        if architecture_of(t) not in d["ProcessorInfo"]["SupportedArchitectures"]
    }
    assert not wrong
