"""The AWS side of a deployed host, checked with read-only EC2 `Describe*` calls.

The client comes in from outside: a client of `verify.aws_session` in real use, moto in tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from model.instance_types import system_check_action
from model.settings import HOST_METRICS, METRICS_NAMESPACE, PORTS
from verify.result import CheckResult, Status
from verify.target import Durability

IMDS = "imdsv2-required"
VOLUMES = "volumes-encrypted"
INGRESS = "security-group-ingress"
BACKUPS = "backup-policy"
ALARMS = "alarms"

# At one hop, IMDS replies die before they reach a container's network namespace.
MAX_HOP_LIMIT = 1
# Denied calls, throttling, missing credentials, no network: none of them is a traceback.
AWS_ERRORS = (ClientError, BotoCoreError)
# Nothing to authenticate with (or nowhere to ask): the audit cannot run at all, which is not a
# finding about the host. Any other error, such as a denied call or a role that cannot be assumed,
# means credentials exist and something is wrong with them.
NOT_CONFIGURED = (NoCredentialsError, ProfileNotFound, NoRegionError)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resource = Mapping[str, Any]


def audit_instance(
    ec2_client: BaseClient,
    instance_id: str,
    admin_cidrs: Sequence[str],
    public_ports: Sequence[int] = PORTS.public,
) -> list[CheckResult]:
    """Check the instance's metadata service, its volumes and its security groups, which may open
    only `public_ports` to the world (no 80 on a DNS-01 stack).

    An instance that cannot be described fails every check: a gate must not pass what it cannot see;
    without any credentials to describe it with, every check is skipped instead. An AWS error in a later call skips only the check that needed it, with the error as the reason.
    """
    try:
        instance = _describe_instance(ec2_client, instance_id)
    except AWS_ERRORS as error:
        return unverifiable(f"cannot describe {instance_id}", error)
    # A terminated instance lingers in the API for a while with no groups and no volumes; and an
    # empty GroupIds would make DescribeSecurityGroups return every group in the region.
    if instance["State"]["Name"] == "terminated":
        return _all(Status.FAIL, f"{instance_id} is terminated")

    admin_networks = [ipaddress.ip_network(cidr, strict=False) for cidr in admin_cidrs]
    return [
        check_imds(instance),
        _skip_on_aws_error(VOLUMES, lambda: check_volumes(ec2_client, instance_id)),
        _skip_on_aws_error(
            INGRESS,
            lambda: check_ingress(ec2_client, _group_ids(instance), admin_networks, public_ports),
        ),
    ]


def check_imds(instance: Resource) -> CheckResult:
    options = instance["MetadataOptions"]
    tokens, hops = options["HttpTokens"], options["HttpPutResponseHopLimit"]
    seen = f"HttpTokens={tokens}, HttpPutResponseHopLimit={hops}"
    problems = []
    if tokens != "required":
        problems.append("IMDSv1 is on: one SSRF'd GET reads the instance role's credentials")
    if hops > MAX_HOP_LIMIT:
        problems.append(
            f"hop limit above {MAX_HOP_LIMIT}: containers can reach the role's credentials"
        )
    if problems:
        return CheckResult(IMDS, Status.FAIL, f"{seen}; " + "; ".join(problems))
    return CheckResult(IMDS, Status.PASS, seen)


def check_volumes(ec2_client: BaseClient, instance_id: str) -> CheckResult:
    pages = ec2_client.get_paginator("describe_volumes").paginate(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )
    volumes = [volume for page in pages for volume in page["Volumes"]]
    if not volumes:
        return CheckResult(VOLUMES, Status.SKIP, f"{instance_id} has no EBS volume attached")
    plain = [_volume_label(v, instance_id) for v in volumes if not v["Encrypted"]]
    if plain:
        return CheckResult(VOLUMES, Status.FAIL, "unencrypted: " + ", ".join(plain))
    return CheckResult(
        VOLUMES,
        Status.PASS,
        "encrypted: " + ", ".join(_volume_label(v, instance_id) for v in volumes),
    )


def check_ingress(
    ec2_client: BaseClient,
    group_ids: Sequence[str],
    admin_networks: Sequence[Network],
    public_ports: Sequence[int] = PORTS.public,
) -> CheckResult:
    """Every rule of every group may open only SSH to admin networks and the public ports to anyone."""
    pages = ec2_client.get_paginator("describe_security_groups").paginate(GroupIds=list(group_ids))
    groups = [group for page in pages for group in page["SecurityGroups"]]
    violations = [
        violation
        for group in groups
        for permission in group["IpPermissions"]
        for violation in _violations(group["GroupId"], permission, admin_networks, public_ports)
    ]
    if violations:
        return CheckResult(INGRESS, Status.FAIL, "; ".join(violations))
    return CheckResult(
        INGRESS,
        Status.PASS,
        f"{', '.join(group_ids)}: tcp {_ports_text(public_ports)} from anywhere, "
        f"tcp {PORTS.ssh} from admin networks only",
    )


def _describe_instance(ec2_client: BaseClient, instance_id: str) -> Resource:
    # An unknown id raises InvalidInstanceID.NotFound rather than returning nothing.
    response = ec2_client.describe_instances(InstanceIds=[instance_id])
    instance: Resource = response["Reservations"][0]["Instances"][0]
    return instance


def unverifiable(action: str, error: Exception) -> list[CheckResult]:
    """Every check, when AWS could not be asked: SKIP without credentials, FAIL with broken ones."""
    if isinstance(error, NOT_CONFIGURED):
        return _all(Status.SKIP, f"not verified, {action}: {error}")
    return _all(Status.FAIL, f"{action}: {error}")


def _all(status: Status, detail: str) -> list[CheckResult]:
    return [CheckResult(name, status, detail) for name in (IMDS, VOLUMES, INGRESS)]


def _skip_on_aws_error(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except AWS_ERRORS as error:
        return CheckResult(name, Status.SKIP, f"not verified: {error}")


def _group_ids(instance: Resource) -> list[str]:
    # Each network interface carries its own groups; the instance-level list can miss a second ENI's.
    groups = list(instance["SecurityGroups"])
    groups += [group for eni in instance["NetworkInterfaces"] for group in eni["Groups"]]
    return sorted({group["GroupId"] for group in groups})


def _volume_label(volume: Resource, instance_id: str) -> str:
    devices = [a["Device"] for a in volume["Attachments"] if a["InstanceId"] == instance_id]
    return f"{volume['VolumeId']} ({', '.join(devices)})"


def _violations(
    group_id: str,
    permission: Resource,
    admin_networks: Sequence[Network],
    public_ports: Sequence[int],
) -> Iterator[str]:
    for source, network in _sources(permission):
        allowed = _allowed_ports(network, admin_networks, public_ports)
        if not _opens_only(permission, allowed):
            yield (
                f"{group_id} allows {_rule_text(permission)} from {source} "
                f"(that source may reach only tcp {_ports_text(allowed)})"
            )


def _sources(permission: Resource) -> Iterator[tuple[str, Network | None]]:
    """Every source of one permission; prefix lists and groups have no network we could compare."""
    for ipv4 in permission.get("IpRanges", []):
        yield ipv4["CidrIp"], ipaddress.ip_network(ipv4["CidrIp"], strict=False)
    for ipv6 in permission.get("Ipv6Ranges", []):
        yield ipv6["CidrIpv6"], ipaddress.ip_network(ipv6["CidrIpv6"], strict=False)
    for prefix_list in permission.get("PrefixListIds", []):
        yield f"prefix list {prefix_list['PrefixListId']}", None
    for pair in permission.get("UserIdGroupPairs", []):
        yield f"security group {pair['GroupId']}", None


def _allowed_ports(
    network: Network | None, admin_networks: Sequence[Network], public_ports: Sequence[int]
) -> tuple[int, ...]:
    # Narrower than an admin network opens nothing beyond it; an opaque source is never an admin.
    # (mypy cannot see that the version test makes the two networks the same type.)
    is_admin = network is not None and any(
        network.version == admin.version and network.subnet_of(admin)  # type: ignore[arg-type]
        for admin in admin_networks
    )
    return (PORTS.ssh, *public_ports) if is_admin else tuple(public_ports)


def _opens_only(permission: Resource, allowed: tuple[int, ...]) -> bool:
    """True if the permission is TCP and its whole port range is within `allowed`."""
    # AWS reports TCP by name, even for a rule created as protocol 6.
    if permission["IpProtocol"] != "tcp":
        return False
    ports = range(permission["FromPort"], permission["ToPort"] + 1)
    # Stops at the first port not allowed, so even 0-65535 costs a handful of steps.
    return all(port in allowed for port in ports)


def _rule_text(permission: Resource) -> str:
    protocol = permission["IpProtocol"]
    if protocol == "-1":
        return "all traffic"
    # Only TCP and UDP have port ranges; ICMP reuses the fields for type and code, others leave them out.
    if protocol not in ("tcp", "udp"):
        return f"protocol {protocol}"
    low, high = permission["FromPort"], permission["ToPort"]
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _ports_text(ports: Sequence[int]) -> str:
    return ", ".join(str(port) for port in ports)


# --- backups and alarms ----------------------------------------------------------------------------

# The host's metrics that carry an alarm (components/alarms.py); RateLimited429 is only published.
ALARMED_HOST_METRICS = (
    HOST_METRICS.certificate_days_left,
    HOST_METRICS.qdrant_up,
    HOST_METRICS.edge_serves,
    HOST_METRICS.unauthorized,
    HOST_METRICS.data_volume_used_percent,
    HOST_METRICS.config_rejected,
)
# What an alarm watches: namespace, metric name and its sorted dimensions.
Watched = tuple[str, str, tuple[tuple[str, str], ...]]


def audit_durability(
    ec2_client: BaseClient,
    dlm_client: BaseClient,
    cloudwatch_client: BaseClient,
    instance_id: str,
    durability: Durability,
) -> list[CheckResult]:
    """The backup policy snapshots the stack's data volume, and the alarms watch the instance and
    the host: read with Describe/Get calls only. An AWS error skips the check that needed it."""
    return [
        _skip_on_aws_error(BACKUPS, lambda: check_backups(ec2_client, dlm_client, durability)),
        _skip_on_aws_error(
            ALARMS, lambda: check_alarms(ec2_client, cloudwatch_client, instance_id, durability)
        ),
    ]


def check_backups(
    ec2_client: BaseClient, dlm_client: BaseClient, durability: Durability
) -> CheckResult:
    policy_id, volume_id = durability.backup_policy_id, durability.data_volume_id
    if policy_id is None:
        return CheckResult(BACKUPS, Status.SKIP, "no scheduled backups (backupSchedule false)")
    try:
        policy = dlm_client.get_lifecycle_policy(PolicyId=policy_id)["Policy"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        gone = f"{policy_id} does not exist: nothing backs up {volume_id}"
        return CheckResult(BACKUPS, Status.FAIL, gone)
    [volume] = ec2_client.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    volume_tags = {(tag["Key"], tag["Value"]) for tag in volume.get("Tags", [])}
    details = policy["PolicyDetails"]
    # DLM targets a resource that carries any one of the policy's target tags.
    targets = [
        f"{tag['Key']}={tag['Value']}"
        for tag in details.get("TargetTags", [])
        if (tag["Key"], tag["Value"]) in volume_tags
    ]
    problems = []
    if policy["State"] != "ENABLED":
        problems.append(f"{policy_id} is {policy['State']}")
    if "VOLUME" not in details.get("ResourceTypes", []) or not targets:
        problems.append(f"{policy_id} does not target {volume_id}")
    if problems:
        return CheckResult(BACKUPS, Status.FAIL, "; ".join(problems))
    kept = ", ".join(str(s["RetainRule"].get("Count")) for s in details.get("Schedules", []))
    found = f"{policy_id} snapshots {volume_id} ({', '.join(targets)}), keeps {kept}"
    return CheckResult(BACKUPS, Status.PASS, found)


def check_alarms(
    ec2_client: BaseClient, cloudwatch_client: BaseClient, instance_id: str, durability: Durability
) -> CheckResult:
    """Every alarm the program creates exists, has its actions on and notifies the stack's topic;
    the status-check ones also recover (or, a type with instance store, reboot) and reboot the
    instance."""
    instance = _describe_instance(ec2_client, instance_id)
    wanted = _wanted_alarms(_name_tag(instance), instance_id, instance["InstanceType"], durability)
    pages = cloudwatch_client.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
    actions = {
        _watched(alarm): alarm["AlarmActions"]
        for page in pages
        for alarm in page["MetricAlarms"]
        if alarm["ActionsEnabled"] and durability.alert_topic_arn in alarm["AlarmActions"]
    }
    missing = [
        _alarm_text(watched, ec2_action)
        for watched, ec2_action in wanted.items()
        if watched not in actions
        or (ec2_action and not any(a.endswith(f":ec2:{ec2_action}") for a in actions[watched]))
    ]
    if missing:
        return CheckResult(
            ALARMS,
            Status.FAIL,
            f"no enabled alarm notifying {durability.alert_topic_arn} on " + "; ".join(missing),
        )
    return CheckResult(
        ALARMS, Status.PASS, f"{len(wanted)} alarms notify {durability.alert_topic_arn}"
    )


def _wanted_alarms(
    host: str, instance_id: str, instance_type: str, durability: Durability
) -> dict[Watched, str | None]:
    """What each alarm of the program watches, and the EC2 action it takes, if any."""
    instance = (("InstanceId", instance_id),)
    wanted: dict[Watched, str | None] = {
        ("AWS/EC2", "StatusCheckFailed_System", instance): system_check_action(instance_type),
        ("AWS/EC2", "StatusCheckFailed_Instance", instance): "reboot",
    }
    for metric in ALARMED_HOST_METRICS:
        wanted[(METRICS_NAMESPACE, metric, ((HOST_METRICS.dimension, host),))] = None
    if durability.backup_policy_id:
        policy = (("DLMPolicyId", durability.backup_policy_id),)
        wanted[("AWS/EBS", "SnapshotsCreateFailed", policy)] = None
        wanted[("AWS/EBS", "SnapshotsCreateCompleted", policy)] = None
    return wanted


def _watched(alarm: Resource) -> Watched:
    dimensions = tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])))
    return alarm.get("Namespace", ""), alarm.get("MetricName", ""), dimensions


def _alarm_text(watched: Watched, ec2_action: str | None) -> str:
    namespace, metric, dimensions = watched
    where = ", ".join(f"{name}={value}" for name, value in dimensions)
    return f"{namespace} {metric} ({where})" + (f" with {ec2_action}" if ec2_action else "")


def _name_tag(instance: Resource) -> str:
    """The host's name: the dimension its metrics are published under."""
    tags = instance.get("Tags", [])
    return next((tag["Value"] for tag in tags if tag["Key"] == "Name"), "")
