"""The AWS audit sees a deployed host through EC2's Describe calls and names every way it drifted.

Each test builds, in moto, the host the program builds (IMDSv2 at one hop, encrypted root and data
volumes, the program's own ingress rules), changes one thing, and reads the audit's verdict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sts.models import sts_backends

import verify.cli as verify_cli
from components.network import ingress_rules
from model.gate_credentials import gate_aws_environment
from model.gate_environment import OUTPUTS_VARIABLE
from model.settings import DATA_VOLUME_DEVICE, PORTS
from verify.aws_audit import IMDS, INGRESS, VOLUMES, audit_instance, unverifiable
from verify.cli import aws_checks
from verify.result import CheckResult, Status
from verify.target import Target

REGION = "eu-west-1"
ZONE = f"{REGION}a"
ADMIN_CIDRS = ("203.0.113.0/24", "2001:db8:1234::/48")
UNLISTED_CIDR = "198.51.100.0/24"
# moto does not validate image ids, and the audit never looks at the image.
IMAGE_ID = "ami-12c6146b"
METADATA_OPTIONS = {
    "HttpEndpoint": "enabled",
    "HttpTokens": "required",
    "HttpPutResponseHopLimit": 1,
}


@dataclass(frozen=True)
class Host:
    instance_id: str
    group_id: str
    vpc_id: str


@pytest.fixture(scope="module")
def ec2() -> Iterator[Any]:
    # One mocked account per module: starting it costs a second, and every test builds its own VPC.
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def host(ec2) -> Host:
    return build_host(ec2)


def build_host(ec2, public_ports: tuple[int, ...] = PORTS.public) -> Host:
    """A host exactly as `pulumi up` leaves it."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24", AvailabilityZone=ZONE)[
        "Subnet"
    ]["SubnetId"]
    group_id = ec2.create_security_group(
        GroupName="qdrant", Description="Qdrant behind Nginx", VpcId=vpc_id
    )["GroupId"]
    for rule in ingress_rules(ADMIN_CIDRS, public_ports):
        allow(ec2, group_id, tcp(rule.port), cidr=rule.cidr)
    instance_id = ec2.run_instances(
        ImageId=IMAGE_ID,
        InstanceType="t3.medium",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[group_id],
        MetadataOptions=METADATA_OPTIONS,
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/sda1",
                "Ebs": {"Encrypted": True, "VolumeType": "gp3", "VolumeSize": 16},
            }
        ],
    )["Instances"][0]["InstanceId"]
    attach_volume(ec2, instance_id, DATA_VOLUME_DEVICE, encrypted=True)
    return Host(instance_id, group_id, vpc_id)


def audit(ec2, host: Host) -> dict[str, CheckResult]:
    return {result.name: result for result in audit_instance(ec2, host.instance_id, ADMIN_CIDRS)}


def tcp(low: int, high: int | None = None) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": low, "ToPort": low if high is None else high}


def allow(ec2, group_id: str, ports: dict[str, Any], cidr: str) -> None:
    ranges = (
        {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    )
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{**ports, **ranges}])


def attach_volume(ec2, instance_id: str, device: str, encrypted: bool) -> str:
    volume_id = ec2.create_volume(
        AvailabilityZone=ZONE, Size=20, VolumeType="gp3", Encrypted=encrypted
    )["VolumeId"]
    ec2.attach_volume(Device=device, InstanceId=instance_id, VolumeId=volume_id)
    return volume_id


def change_metadata_options(ec2, host: Host, **changes: Any) -> None:
    # AWS keeps the options a call leaves out; moto 5.2.5 drops them, so always send the full set.
    options = {**METADATA_OPTIONS, **changes}
    ec2.modify_instance_metadata_options(InstanceId=host.instance_id, **options)


def assert_fails(result: CheckResult, *evidence: str) -> None:
    assert result.status is Status.FAIL, result
    for text in evidence:
        assert text in result.detail, result.detail


# The host as deployed


def test_the_programs_host_passes_every_check(ec2, host):
    """What `pulumi up` builds is the hardened baseline: anything else here is drift from it."""
    results = audit_instance(ec2, host.instance_id, ADMIN_CIDRS)

    assert [result.name for result in results] == [IMDS, VOLUMES, INGRESS]
    assert all(result.status is Status.PASS for result in results), results


# Instance metadata


DNS01_PORTS = PORTS.public_for("dns-01")


def test_the_programs_dns01_host_passes_ingress(ec2):
    """A DNS-01 stack's group opens 443 and 6334 and nothing on 80: exactly what the audit wants."""
    dns01_host = build_host(ec2, DNS01_PORTS)

    [*_, ingress] = audit_instance(ec2, dns01_host.instance_id, ADMIN_CIDRS, DNS01_PORTS)

    assert ingress.status is Status.PASS, ingress
    assert f"tcp {PORTS.https}, {PORTS.grpc_tls} from anywhere" in ingress.detail


def test_port_80_open_on_a_dns01_stack_fails_ingress(ec2, host):
    """A DNS-01 host needs no port 80; a rule opening it anyway (left from HTTP-01, or added by hand)
    is a cleartext listener the stack does not account for."""
    [*_, ingress] = audit_instance(ec2, host.instance_id, ADMIN_CIDRS, DNS01_PORTS)

    assert_fails(ingress, f"allows tcp {PORTS.http} from 0.0.0.0/0", f"tcp {PORTS.http} from ::/0")


def test_imdsv1_fails_imds(ec2, host):
    """With IMDSv1 a single server-side request forgery reads the role's credentials; v2 needs a PUT."""
    change_metadata_options(ec2, host, HttpTokens="optional")

    assert_fails(audit(ec2, host)[IMDS], "HttpTokens=optional")


def test_hop_limit_above_one_fails_imds(ec2, host):
    """At two hops, IMDS answers reach Docker containers, which could then take the role's keys."""
    change_metadata_options(ec2, host, HttpPutResponseHopLimit=2)

    assert_fails(audit(ec2, host)[IMDS], "HttpPutResponseHopLimit=2")


# Volumes


def test_unencrypted_attached_volume_fails_volumes(ec2, host):
    """Every disk holds vectors, keys or certificates: a plain one leaks them through a snapshot."""
    plain = attach_volume(ec2, host.instance_id, "/dev/sdg", encrypted=False)

    result = audit(ec2, host)[VOLUMES]

    assert_fails(result, f"{plain} (/dev/sdg)")
    assert result.detail.count("vol-") == 1, "only the unencrypted volume is evidence"


# Security groups


def test_rule_opening_qdrant_rest_port_fails_ingress(ec2, host):
    """6333 is Qdrant's own plaintext listener; only Nginx on loopback may reach it."""
    allow(ec2, host.group_id, tcp(PORTS.qdrant_rest), cidr="0.0.0.0/0")

    assert_fails(
        audit(ec2, host)[INGRESS], host.group_id, f"tcp {PORTS.qdrant_rest} from 0.0.0.0/0"
    )


def test_port_range_covering_a_loopback_port_fails_ingress(ec2, host):
    """A range that starts on a public port still opens every port up to its end."""
    allow(ec2, host.group_id, tcp(PORTS.grpc_tls, PORTS.qdrant_grpc), cidr="::/0")

    assert_fails(audit(ec2, host)[INGRESS], f"tcp {PORTS.grpc_tls}-{PORTS.qdrant_grpc} from ::/0")


def test_all_traffic_rule_fails_ingress(ec2, host):
    """Protocol -1 opens every port, Qdrant's included, even if only to the VPC."""
    ec2.authorize_security_group_ingress(
        GroupId=host.group_id,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )

    assert_fails(audit(ec2, host)[INGRESS], "all traffic from 10.0.0.0/16")


def test_udp_on_a_public_port_fails_ingress(ec2, host):
    """Nothing on the host serves UDP: an open UDP port is a listener nobody hardened."""
    ec2.authorize_security_group_ingress(
        GroupId=host.group_id,
        IpPermissions=[
            {
                "IpProtocol": "udp",
                "FromPort": PORTS.https,
                "ToPort": PORTS.https,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )

    assert_fails(audit(ec2, host)[INGRESS], f"udp {PORTS.https} from 0.0.0.0/0")


def test_ssh_from_an_unlisted_cidr_fails_ingress(ec2, host):
    """SSH is for the admin networks alone; any other source is a brute-force target."""
    allow(ec2, host.group_id, tcp(PORTS.ssh), cidr=UNLISTED_CIDR)

    assert_fails(audit(ec2, host)[INGRESS], f"tcp {PORTS.ssh} from {UNLISTED_CIDR}")


def test_ssh_from_inside_an_admin_network_passes_ingress(ec2, host):
    """One address of an admin network opens less than the network itself, so nothing beyond it."""
    allow(ec2, host.group_id, tcp(PORTS.ssh), cidr="203.0.113.7/32")

    assert audit(ec2, host)[INGRESS].status is Status.PASS


def test_ssh_from_a_referenced_security_group_fails_ingress(ec2, host):
    """A group's members are not admin networks: anything in it could become an SSH client."""
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=host.vpc_id)
    ec2.authorize_security_group_ingress(
        GroupId=host.group_id,
        IpPermissions=[{**tcp(PORTS.ssh), "UserIdGroupPairs": [{"GroupId": other["GroupId"]}]}],
    )

    assert_fails(audit(ec2, host)[INGRESS], f"from security group {other['GroupId']}")


def test_a_second_attached_group_is_audited_too(ec2, host):
    """Groups add up: a permissive group attached beside the program's opens the host all the same."""
    extra = ec2.create_security_group(GroupName="extra", Description="extra", VpcId=host.vpc_id)
    allow(ec2, extra["GroupId"], tcp(PORTS.qdrant_grpc), cidr="0.0.0.0/0")
    ec2.modify_instance_attribute(
        InstanceId=host.instance_id, Groups=[host.group_id, extra["GroupId"]]
    )

    assert_fails(audit(ec2, host)[INGRESS], extra["GroupId"], f"tcp {PORTS.qdrant_grpc}")


# When AWS cannot answer


def test_missing_instance_fails_every_check_without_raising(ec2):
    """A gate pointed at the wrong instance, region or account must fail, not pass or crash."""
    results = audit_instance(ec2, "i-0123456789abcdef0", ADMIN_CIDRS)

    assert [result.name for result in results] == [IMDS, VOLUMES, INGRESS]
    for result in results:
        assert_fails(result, "InvalidInstanceID.NotFound")


def test_terminated_instance_fails_every_check(ec2, host):
    """A terminated instance still answers Describe calls, but it has nothing left to verify."""
    ec2.terminate_instances(InstanceIds=[host.instance_id])

    for result in audit(ec2, host).values():
        assert_fails(result, "terminated")


def test_denied_describe_call_skips_only_its_check(host):
    """Missing read permission proves nothing either way: the check says so, the others still run."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.meta.events.register("before-call.ec2.DescribeVolumes", deny)

    results = audit(ec2, host)

    assert results[VOLUMES].status is Status.SKIP
    assert "UnauthorizedOperation" in results[VOLUMES].detail
    assert results[IMDS].status is results[INGRESS].status is Status.PASS


def deny(**_: Any) -> None:
    raise ClientError(
        {"Error": {"Code": "UnauthorizedOperation", "Message": "not authorized"}}, "DescribeVolumes"
    )


# Whose credentials: the gate signs in as the stack's AWS provider does

# The stack's account; moto's default account (the shell's keys) is somebody else's.
STACK_ACCOUNT = "111111111111"
STACK_ROLE = f"arn:aws:iam::{STACK_ACCOUNT}:role/deployer"
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture
def stack_account(ec2) -> dict[str, str]:
    """Temporary keys for the stack's account, obtained the way moto hands out an account's keys."""
    sts = boto3.client("sts", region_name=REGION)
    return sts.assume_role(RoleArn=STACK_ROLE, RoleSessionName="setup")["Credentials"]


@pytest.fixture
def stack_host(stack_account) -> Host:
    """The host, deployed in the stack's account only: the shell's account has no such instance."""
    session = boto3.Session(
        aws_access_key_id=stack_account["AccessKeyId"],
        aws_secret_access_key=stack_account["SecretAccessKey"],
        aws_session_token=stack_account["SessionToken"],
        region_name=REGION,
    )
    return build_host(session.client("ec2"))


def gate_audit(host: Host, aws_config: dict[str, str], monkeypatch) -> list[CheckResult]:
    """What the gate's `verify` reports for `host`, run in the environment the gate builds.

    The shell still holds moto's keys for the default account, as a deployer's shell would hold
    keys for some account: the stack's config has to win over them.
    """
    for variable, value in gate_aws_environment(aws_config).items():
        monkeypatch.setenv(variable, value)
    target = Target(
        domain="qdrant.example.com",
        address="198.51.100.7",
        api_key="unused",
        instance_id=host.instance_id,
        admin_cidrs=ADMIN_CIDRS,
    )
    return aws_checks(target, REGION, os.environ)


def test_the_audit_signs_in_with_the_profile_the_stack_names(
    stack_account, stack_host, tmp_path, monkeypatch
):
    """With `aws:profile`, the stack deployed into that profile's account: auditing with the shell's
    keys instead would report a missing instance, or pass another account's host."""
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIADEFAULTACCOUNT\naws_secret_access_key = x\n"
        "[deployer]\n"
        f"aws_access_key_id = {stack_account['AccessKeyId']}\n"
        f"aws_secret_access_key = {stack_account['SecretAccessKey']}\n"
        f"aws_session_token = {stack_account['SessionToken']}\n"
    )

    results = gate_audit(
        stack_host,
        {"profile": "deployer", "sharedCredentialsFiles": json.dumps([str(credentials)])},
        monkeypatch,
    )

    assert [result.status for result in results] == [Status.PASS] * 3, results


def test_the_audit_assumes_the_role_the_stack_assumes(stack_host, monkeypatch):
    """With `aws:assumeRoles`, the stack lives in the role's account, reached with the role's
    session name and external id (a role's trust policy may require both)."""
    role = {"roleArn": STACK_ROLE, "sessionName": "gate", "externalId": "tenant-7"}

    results = gate_audit(stack_host, {"assumeRoles": json.dumps([role])}, monkeypatch)

    assert [result.status for result in results] == [Status.PASS] * 3, results
    session = sts_backends[STACK_ACCOUNT]["global"].assumed_roles[-1]
    assert (session.role_arn, session.session_name, session.external_id) == (
        STACK_ROLE,
        "gate",
        "tenant-7",
    )


@pytest.fixture
def no_credentials(tmp_path, monkeypatch) -> None:
    """A machine with no AWS credentials anywhere: no variables, no files, no instance role."""
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_without_credentials_every_audit_check_is_skipped_with_the_reason(
    host, no_credentials, monkeypatch
):
    """No credentials says nothing about the host: each check says it was not verified, and why."""
    results = gate_audit(host, {}, monkeypatch)

    assert [result.name for result in results] == [IMDS, VOLUMES, INGRESS]
    for result in results:
        assert result.status is Status.SKIP, result
        assert "Unable to locate credentials" in result.detail


def test_without_credentials_the_cli_does_not_fail(host, no_credentials, monkeypatch, capsys):
    """Skipped checks are reported, not counted as failures: exit status 0."""
    monkeypatch.setattr(verify_cli, "endpoint_checks", lambda target, rate_limit: [])
    outputs = {
        "restUrl": "https://qdrant.example.com",
        "publicIp": "198.51.100.7",
        "apiKey": "unused",
        "instanceId": host.instance_id,
    }

    status = verify_cli.main(["--region", REGION], {OUTPUTS_VARIABLE: json.dumps(outputs)})

    assert status == 0
    # The three instance checks, and the audit log check (no auditLogGroup output here).
    assert "verify: passed (0 PASS, 0 FAIL, 4 SKIP)" in capsys.readouterr().out


def test_a_profile_missing_from_the_files_skips_every_audit_check(
    host, no_credentials, monkeypatch
):
    results = gate_audit(host, {"profile": "nowhere"}, monkeypatch)

    for result in results:
        assert result.status is Status.SKIP, result
        assert "nowhere" in result.detail


def test_a_role_that_cannot_be_assumed_fails_every_audit_check():
    """Credentials exist but are refused: that is a broken deployment setup, not a missing one."""
    error = {"Error": {"Code": "AccessDenied", "Message": "not trusted"}}
    denied = ClientError(error, "AssumeRole")

    results = unverifiable("cannot authenticate to AWS", denied)

    assert [result.name for result in results] == [IMDS, VOLUMES, INGRESS]
    for result in results:
        assert_fails(result, "AccessDenied")
