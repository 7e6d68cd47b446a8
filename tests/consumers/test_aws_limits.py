"""Every input the program hands EC2, IAM, SSM and Route53, against the limits those APIs enforce.

The program runs under mocks with the largest configuration it accepts (a 253-character domain,
the largest volume, dozens of admin networks and tokens, a long stack name); each rule below is
one test, and a failure names the resource and the limit. Enums and lengths that AWS's API model
declares are read from botocore's service model (the model AWS's SDKs validate against, pinned with
boto3); the quotas the model does not carry are written out with the AWS page that documents them.
Names the engine generates (no explicit name input) are the logical name plus a dash and 7 random
characters, so the limit applies to the logical name plus 8.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest

from model.audit_log import RETENTION_DAYS
from model.config import MAX_CERTIFICATE_NAMES_CHARACTERS, MAX_STACK_NAME_LENGTH
from tests.host.test_audit_shipper import shipper
from tests.program import MINIMAL_CONFIG, Deployment, Registered, deploy

AUTONAME_SUFFIX = 8
SECRET_SIG = "4dabf18193072939515e22adb298388d"
_MODELS = botocore.session.get_session()


def model_shape(service: str, shape: str, member: str) -> Any:
    return _MODELS.get_service_model(service).shape_for(shape).members[member]


def enum(service: str, shape: str, member: str) -> list[str]:
    return list(model_shape(service, shape, member).enum)


def max_length(service: str, shape: str, member: str) -> int:
    return int(model_shape(service, shape, member).metadata["max"])


def plain(value: Any) -> Any:
    """An input as AWS receives it: the mocks hand secrets over wrapped in Pulumi's secret envelope."""
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def name_of(resource: Registered, key: str = "name") -> str:
    """The name AWS will see: the explicit input, or the longest name the engine can generate."""
    return str(resource.inputs.get(key) or resource.name + "x" * AUTONAME_SUFFIX)


def user_data_bytes(inputs: dict[str, Any]) -> bytes:
    """User data as EC2 counts it: raw, before base64 (userDataBase64 is decoded, gzip or not)."""
    if "userDataBase64" in inputs:
        return base64.b64decode(plain(inputs["userDataBase64"]), validate=True)
    return str(plain(inputs["userData"])).encode()


Check = Callable[[Registered], "str | None"]


@dataclass(frozen=True)
class Rule:
    id: str
    typ: str
    check: Check
    """None when the resource satisfies the rule, else what is wrong."""


def at_most(limit: int, what: str, measure: Callable[[Registered], int]) -> Check:
    def check(resource: Registered) -> str | None:
        size = measure(resource)
        return None if size <= limit else f"{what} is {size}, the limit is {limit}"

    return check


def within(low: int, high: int, what: str, value: Callable[[Registered], Any]) -> Check:
    def check(resource: Registered) -> str | None:
        number = value(resource)
        return None if low <= number <= high else f"{what} {number} is outside {low}..{high}"

    return check


def one_of(allowed: list[str], what: str, value: Callable[[Registered], Any]) -> Check:
    def check(resource: Registered) -> str | None:
        found = value(resource)
        return None if found in allowed else f"{what} {found!r} is not one of {allowed}"

    return check


def matches(pattern: str, what: str, value: Callable[[Registered], str]) -> Check:
    def check(resource: Registered) -> str | None:
        found = value(resource)
        return (
            None if re.fullmatch(pattern, found) else f"{what} {found!r} does not match {pattern}"
        )

    return check


def documented_values(service: str, shape: str, member: str) -> list[int]:
    """The values a member's documentation lists ("Possible values are: 1, 3, ..."), where the
    model declares no enum (CloudWatch Logs' retention)."""
    text = model_shape(service, shape, member).documentation
    found = re.search(r"Possible values are: ([\d, and]+)\.", text)
    assert found, f"{service} {shape}.{member}: no documented values"
    return [int(value) for value in re.findall(r"\d+", found[1])]


def no_whitespace_length(document: Any) -> int:
    # IAM does not count white space against its policy size quotas.
    return len(re.sub(r"\s", "", str(plain(document))))


def tags_fit(resource: Registered) -> str | None:
    # EC2 tag restrictions (Amazon EC2 User Guide, "Tag your Amazon EC2 resources"): at most 50
    # tags, keys up to 128 and values up to 256 Unicode characters, no "aws:" prefix.
    tags = resource.inputs.get("tags") or {}
    problems = [f"{len(tags)} tags"] if len(tags) > 50 else []
    for key, value in tags.items():
        if len(key) > 128 or key.lower().startswith("aws:"):
            problems.append(f"tag key {key!r}")
        if len(str(value)) > 256:
            problems.append(f"tag {key} value of {len(str(value))} characters")
    return "; ".join(problems) or None


def alarm_period_is_valid(resource: Registered) -> str | None:
    period = int(resource.inputs["period"])
    if period in (10, 20, 30) or (period > 0 and period % 60 == 0):
        return None
    return f"period is {period}, not 10, 20, 30 or a multiple of 60"


def alarm_evaluation_window_fits(resource: Registered) -> str | None:
    period = int(resource.inputs["period"])
    window = period * int(resource.inputs["evaluationPeriods"])
    limit = 86400 if period < 3600 else 604800
    if window <= limit:
        return None
    return f"evaluation seconds are {window}, the limit is {limit} for a {period}-second period"


INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PARAMETER = "aws:ssm/parameter:Parameter"
RECORD = "aws:route53/record:Record"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULES = [
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
]
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
DLM_POLICY = "aws:dlm/lifecyclePolicy:LifecyclePolicy"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
# Terraform's PrefixedUniqueId, which pulumi-aws uses for `name_prefix`: a 26-character suffix.
NAME_PREFIX_SUFFIX = 26
IAM_NAME = r"[\w+=,.@-]+"  # botocore iam: roleNameType, instanceProfileNameType, policyNameType
GP3_SIZE_GIB = (1, 16384)  # Amazon EBS User Guide, "Amazon EBS volume types": gp3 is 1 GiB - 16 TiB

RULES = [
    # Amazon EC2 User Guide, "Work with instance user data": 16 KB in raw form, before base64.
    Rule(
        "user-data-16KB",
        INSTANCE,
        at_most(16384, "user data bytes", lambda r: len(user_data_bytes(r.inputs))),
    ),
    Rule(
        "instance-type-in-model",
        INSTANCE,
        one_of(
            enum("ec2", "RunInstancesRequest", "InstanceType"),
            "instance type",
            lambda r: r.inputs["instanceType"],
        ),
    ),
    Rule(
        "imds-http-tokens",
        INSTANCE,
        one_of(
            enum("ec2", "InstanceMetadataOptionsRequest", "HttpTokens"),
            "httpTokens",
            lambda r: r.inputs["metadataOptions"]["httpTokens"],
        ),
    ),
    Rule(
        "imds-http-endpoint",
        INSTANCE,
        one_of(
            enum("ec2", "InstanceMetadataOptionsRequest", "HttpEndpoint"),
            "httpEndpoint",
            lambda r: r.inputs["metadataOptions"]["httpEndpoint"],
        ),
    ),
    # EC2 API Reference, InstanceMetadataOptionsRequest.HttpPutResponseHopLimit: integers 1 to 64.
    Rule(
        "imds-hop-limit",
        INSTANCE,
        within(
            1, 64, "hop limit", lambda r: r.inputs["metadataOptions"]["httpPutResponseHopLimit"]
        ),
    ),
    Rule(
        "root-volume-type",
        INSTANCE,
        one_of(
            enum("ec2", "EbsBlockDevice", "VolumeType"),
            "root volume type",
            lambda r: r.inputs["rootBlockDevice"]["volumeType"],
        ),
    ),
    Rule(
        "root-volume-size",
        INSTANCE,
        within(*GP3_SIZE_GIB, "root GiB", lambda r: r.inputs["rootBlockDevice"]["volumeSize"]),
    ),
    Rule(
        "data-volume-type",
        VOLUME,
        one_of(
            enum("ec2", "CreateVolumeRequest", "VolumeType"), "type", lambda r: r.inputs["type"]
        ),
    ),
    Rule("data-volume-size", VOLUME, within(*GP3_SIZE_GIB, "GiB", lambda r: r.inputs["size"])),
    Rule(
        "eip-domain",
        "aws:ec2/eip:Eip",
        one_of(
            enum("ec2", "AllocateAddressRequest", "Domain"), "domain", lambda r: r.inputs["domain"]
        ),
    ),
    # EC2 API Reference, CreateKeyPair.KeyName: up to 255 ASCII characters.
    Rule(
        "key-pair-name",
        "aws:ec2/keyPair:KeyPair",
        at_most(255, "key name length", lambda r: len(name_of(r, "keyName"))),
    ),
    # EC2 API Reference, CreateSecurityGroup: GroupName and Description up to 255 characters.
    Rule("security-group-name", SG, at_most(255, "group name length", lambda r: len(name_of(r)))),
    Rule(
        "security-group-description",
        SG,
        at_most(255, "description length", lambda r: len(r.inputs["description"])),
    ),
    *[
        rule
        for typ in SG_RULES
        for rule in (
            # EC2 API Reference, SecurityGroupRuleRequest.Description: up to 255 characters.
            Rule(
                "sg-rule-description",
                typ,
                at_most(255, "description length", lambda r: len(r.inputs.get("description", ""))),
            ),
            Rule(
                "sg-rule-from-port",
                typ,
                within(0, 65535, "fromPort", lambda r: r.inputs["fromPort"]),
            ),
            Rule("sg-rule-to-port", typ, within(0, 65535, "toPort", lambda r: r.inputs["toPort"])),
        )
    ],
    Rule(
        "role-name",
        ROLE,
        at_most(
            max_length("iam", "CreateRoleRequest", "RoleName"),
            "role name length",
            lambda r: len(name_of(r)),
        ),
    ),
    Rule("role-name-characters", ROLE, matches(IAM_NAME, "role name", name_of)),
    # IAM User Guide, "IAM and AWS STS quotas": role trust policy length 2,048 characters.
    Rule(
        "trust-policy-size",
        ROLE,
        at_most(
            2048,
            "trust policy characters",
            lambda r: no_whitespace_length(r.inputs["assumeRolePolicy"]),
        ),
    ),
    Rule(
        "instance-profile-name",
        "aws:iam/instanceProfile:InstanceProfile",
        at_most(
            max_length("iam", "CreateInstanceProfileRequest", "InstanceProfileName"),
            "profile name length",
            lambda r: len(name_of(r)),
        ),
    ),
    Rule(
        "role-policy-name",
        ROLE_POLICY,
        at_most(
            max_length("iam", "PutRolePolicyRequest", "PolicyName"),
            "policy name length",
            lambda r: len(name_of(r)),
        ),
    ),
    # IAM User Guide, "IAM and AWS STS quotas": role policy size 10,240 characters (all inline
    # policies of the role together, white space not counted); only U+0009/000A/000D/0020-00FF.
    Rule(
        "role-policy-size",
        ROLE_POLICY,
        at_most(
            10240, "inline policy characters", lambda r: no_whitespace_length(r.inputs["policy"])
        ),
    ),
    Rule(
        "role-policy-characters",
        ROLE_POLICY,
        matches(
            r"[\u0009\u000A\u000D\u0020-\u00FF]+",
            "policy document",
            lambda r: str(plain(r.inputs["policy"])),
        ),
    ),
    # Systems Manager API Reference, PutParameter.Name: "The maximum length for a parameter name
    # that you specify is 1011 characters"; a-zA-Z0-9_.- and / for hierarchy, at most 15 levels,
    # no aws/ssm prefix.
    Rule(
        "parameter-name-length",
        PARAMETER,
        at_most(1011, "name length", lambda r: len(r.inputs["name"])),
    ),
    Rule(
        "parameter-name-characters",
        PARAMETER,
        matches(r"(?!/?(aws|ssm))[A-Za-z0-9_.\-/]+", "name", lambda r: r.inputs["name"]),
    ),
    Rule(
        "parameter-name-depth",
        PARAMETER,
        at_most(15, "hierarchy levels", lambda r: r.inputs["name"].strip("/").count("/") + 1),
    ),
    # Systems Manager User Guide, "Managing parameter tiers": Standard parameter values up to 4 KB.
    Rule(
        "parameter-value-size",
        PARAMETER,
        at_most(4096, "value bytes", lambda r: len(str(plain(r.inputs["value"])).encode())),
    ),
    Rule(
        "parameter-type",
        PARAMETER,
        one_of(enum("ssm", "PutParameterRequest", "Type"), "type", lambda r: r.inputs["type"]),
    ),
    Rule(
        "parameter-description",
        PARAMETER,
        at_most(
            max_length("ssm", "PutParameterRequest", "Description"),
            "description length",
            lambda r: len(r.inputs.get("description", "")),
        ),
    ),
    Rule(
        "record-type",
        RECORD,
        one_of(enum("route53", "ResourceRecordSet", "Type"), "type", lambda r: r.inputs["type"]),
    ),
    Rule(
        "record-ttl",
        RECORD,
        within(
            int(model_shape("route53", "ResourceRecordSet", "TTL").metadata["min"]),
            int(model_shape("route53", "ResourceRecordSet", "TTL").metadata["max"]),
            "TTL",
            lambda r: r.inputs["ttl"],
        ),
    ),
    Rule(
        "record-name",
        RECORD,
        at_most(
            max_length("route53", "ResourceRecordSet", "Name"),
            "name length",
            lambda r: len(r.inputs["name"]),
        ),
    ),
    # DLM API Reference (botocore's dlm model): description and schedule name patterns and
    # lengths, retention count, the one daily time, the target tags.
    Rule(
        "dlm-description",
        DLM_POLICY,
        matches(
            model_shape("dlm", "CreateLifecyclePolicyRequest", "Description").metadata["pattern"],
            "description",
            lambda r: r.inputs["description"],
        ),
    ),
    Rule(
        "dlm-description-length",
        DLM_POLICY,
        at_most(
            max_length("dlm", "CreateLifecyclePolicyRequest", "Description"),
            "description length",
            lambda r: len(r.inputs["description"]),
        ),
    ),
    Rule(
        "dlm-schedule-name",
        DLM_POLICY,
        matches(
            r"[0-9A-Za-z _-]{1,120}",  # dlm ScheduleName: pattern and max 120
            "schedule name",
            lambda r: r.inputs["policyDetails"]["schedules"][0]["name"],
        ),
    ),
    Rule(
        "dlm-retain-count",
        DLM_POLICY,
        within(
            1,
            1000,
            "retain count",
            lambda r: r.inputs["policyDetails"]["schedules"][0]["retainRule"]["count"],
        ),
    ),
    Rule(
        "dlm-create-time",
        DLM_POLICY,
        matches(
            r"(0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]",  # dlm Time
            "time",
            lambda r: r.inputs["policyDetails"]["schedules"][0]["createRule"]["times"],
        ),
    ),
    Rule(
        "dlm-target-tags",
        DLM_POLICY,
        matches(
            r"(?!aws:)[a-zA-Z+\-=._:/]{1,128}",  # dlm TagKey
            "target tag keys",
            lambda r: "".join(r.inputs["policyDetails"]["targetTags"]),
        ),
    ),
    Rule(
        "alarm-name",
        ALARM,
        at_most(
            max_length("cloudwatch", "PutMetricAlarmInput", "AlarmName"),
            "alarm name length",
            lambda r: len(name_of(r)),
        ),
    ),
    Rule(
        "alarm-description",
        ALARM,
        at_most(
            max_length("cloudwatch", "PutMetricAlarmInput", "AlarmDescription"),
            "description length",
            lambda r: len(r.inputs["alarmDescription"]),
        ),
    ),
    Rule(
        "alarm-namespace",
        ALARM,
        matches(r"[^:].{0,254}", "namespace", lambda r: r.inputs["namespace"]),
    ),
    Rule(
        "alarm-statistic",
        ALARM,
        one_of(
            enum("cloudwatch", "PutMetricAlarmInput", "Statistic"),
            "statistic",
            lambda r: r.inputs["statistic"],
        ),
    ),
    Rule(
        "alarm-comparison",
        ALARM,
        one_of(
            enum("cloudwatch", "PutMetricAlarmInput", "ComparisonOperator"),
            "comparison",
            lambda r: r.inputs["comparisonOperator"],
        ),
    ),
    # CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data".
    Rule(
        "alarm-missing-data",
        ALARM,
        one_of(
            ["breaching", "notBreaching", "ignore", "missing"],
            "treatMissingData",
            lambda r: r.inputs["treatMissingData"],
        ),
    ),
    Rule(
        "alarm-actions",
        ALARM,
        at_most(
            int(model_shape("cloudwatch", "PutMetricAlarmInput", "AlarmActions").metadata["max"]),
            "alarm actions",
            lambda r: len(r.inputs["alarmActions"]),
        ),
    ),
    # CloudWatch API Reference, PutMetricAlarm.Period (botocore's cloudwatch model): "Valid values
    # are 10, 20, 30, and any multiple of 60"; "Period multiplied by EvaluationPeriods can't be
    # more than 604,800 seconds. For alarms with a period of less than one hour (3,600 seconds),
    # the total evaluation period can't be longer than one day (86,400 seconds)."
    Rule("alarm-period", ALARM, alarm_period_is_valid),
    Rule("alarm-evaluation-window", ALARM, alarm_evaluation_window_fits),
    # Amazon SNS API Reference, CreateTopic.Name: up to 256 letters, digits, '-' and '_'.
    Rule(
        "topic-name",
        TOPIC,
        matches(
            r"[A-Za-z0-9_-]{1,256}",
            "topic name",
            lambda r: r.inputs["namePrefix"] + "x" * NAME_PREFIX_SUFFIX,
        ),
    ),
    # The provider's aws_s3_bucket: `bucket_prefix` up to 37 characters (it appends 26).
    Rule(
        "bucket-prefix",
        BUCKET,
        at_most(37, "bucket prefix characters", lambda r: len(r.inputs["bucketPrefix"])),
    ),
    # Amazon S3 User Guide, "General purpose bucket naming rules": 3 to 63 lowercase letters,
    # digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent dots.
    Rule(
        "bucket-name",
        BUCKET,
        matches(
            r"(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
            "bucket name",
            lambda r: r.inputs["bucketPrefix"] + "0" * NAME_PREFIX_SUFFIX,
        ),
    ),
    # Amazon S3 User Guide, "Naming Amazon S3 objects": a key is up to 1,024 bytes of UTF-8.
    Rule(
        "object-key",
        BUCKET_OBJECT,
        at_most(1024, "object key bytes", lambda r: len(r.inputs["key"].encode())),
    ),
    # Amazon S3 User Guide, "Bucket policies for Amazon S3": a bucket policy is up to 20 KB.
    Rule(
        "bucket-policy-size",
        BUCKET_POLICY,
        at_most(20 * 1024, "bucket policy bytes", lambda r: len(r.inputs["policy"].encode())),
    ),
    Rule(
        "object-ownership",
        OWNERSHIP,
        one_of(
            enum("s3", "OwnershipControlsRule", "ObjectOwnership"),
            "object ownership",
            lambda r: r.inputs["rule"]["objectOwnership"],
        ),
    ),
    Rule(
        "versioning-status",
        VERSIONING,
        one_of(
            enum("s3", "VersioningConfiguration", "Status"),
            "versioning status",
            lambda r: r.inputs["versioningConfiguration"]["status"],
        ),
    ),
    # Amazon S3 API Reference, NoncurrentVersionExpiration.NewerNoncurrentVersions: up to 100.
    Rule(
        "newer-noncurrent-versions",
        LIFECYCLE,
        within(
            1,
            100,
            "noncurrent versions kept",
            lambda r: r.inputs["rules"][0]["noncurrentVersionExpiration"][
                "newerNoncurrentVersions"
            ],
        ),
    ),
    Rule(
        "sse-algorithm",
        ENCRYPTION,
        one_of(
            enum("s3", "ServerSideEncryptionByDefault", "SSEAlgorithm"),
            "SSE algorithm",
            lambda r: r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"],
        ),
    ),
    Rule(
        "log-group-name",
        LOG_GROUP,
        matches(
            # The model's character class (`[...]+`), as many times as its length allows.
            model_shape("logs", "CreateLogGroupRequest", "logGroupName").metadata["pattern"][:-1]
            + f"{{1,{max_length('logs', 'CreateLogGroupRequest', 'logGroupName')}}}",
            "log group name",
            lambda r: r.inputs["name"],
        ),
    ),
    Rule(
        "log-group-retention",
        LOG_GROUP,
        one_of(
            documented_values("logs", "PutRetentionPolicyRequest", "retentionInDays"),
            "retention in days",
            lambda r: r.inputs["retentionInDays"],
        ),
    ),
    Rule(
        "metric-filter-name",
        METRIC_FILTER,
        matches(
            # Pulumi auto-names a filter: the resource's name, a dash and seven random characters.
            model_shape("logs", "PutMetricFilterRequest", "filterName").metadata["pattern"][:-1]
            + f"{{1,{max_length('logs', 'PutMetricFilterRequest', 'filterName')}}}",
            "metric filter name",
            lambda r: f"{r.name}-abcdefg",
        ),
    ),
    Rule(
        "metric-filter-pattern",
        METRIC_FILTER,
        at_most(
            max_length("logs", "PutMetricFilterRequest", "filterPattern"),
            "filter pattern length",
            lambda r: len(r.inputs["pattern"]),
        ),
    ),
    *[
        Rule(
            f"metric-filter-{member}",
            METRIC_FILTER,
            matches(
                model_shape("logs", "MetricTransformation", member).metadata["pattern"][:-1]
                + f"{{1,{max_length('logs', 'MetricTransformation', member)}}}",
                member,
                lambda r, field=field: r.inputs["metricTransformation"][field],
            ),
        )
        for member, field in (("metricName", "name"), ("metricNamespace", "namespace"))
    ],
    *[
        Rule(f"tags:{typ.rsplit(':', 1)[1]}", typ, tags_fit)
        for typ in (INSTANCE, VOLUME, "aws:ec2/eip:Eip", SG, ALARM, TOPIC, DLM_POLICY, LOG_GROUP)
    ],
]

# A 253-character name (the DNS maximum) in labels of at most 63.
LONGEST_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 49, "example", "com"])
# The longest stack name the config accepts: every name derived from it must still fit.
MAXIMAL_STACK = "production-eu-central-1-blue-green-canary-xy"
assert len(MAXIMAL_STACK) == MAX_STACK_NAME_LENGTH
MAXIMAL_CONFIG = dict(
    MINIMAL_CONFIG,
    domain=LONGEST_DOMAIN,
    hostedZone="example.com",
    dataVolumeSizeGb=GP3_SIZE_GIB[1],
    instanceType="m7g.16xlarge",
    architecture="arm64",
    # Up to the 60 rules per security group and IP family (below) with the 3 public ports.
    adminCidrs=[f"198.51.{n}.0/24" for n in range(57)]
    + [f"2001:db8:{n + 1:x}::/48" for n in range(57)],
    tokens=[
        {"name": f"service-{n:02d}", "access": [{"collection": f"c{n}", "access": "rw"}]}
        for n in range(50)
    ],
    # The longest volume name (a restore appends the snapshot id), every alarm and resource.
    restoreFromSnapshotId="snap-0123456789abcdef0",
    alertEmail="platform-team@example.com",
    backupRetentionDays=1000,
    alarmQdrantDownMinutes=24 * 60,
)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    assert len(LONGEST_DOMAIN) == 253
    return deploy(MAXIMAL_CONFIG, stack=MAXIMAL_STACK)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.id}:{rule.typ.rsplit(':', 1)[1]}")
def test_every_input_fits_its_api(deployment, rule):
    resources = deployment.of_type(rule.typ)
    problems = {r.name: problem for r in resources if (problem := rule.check(r))}
    assert not problems, f"{rule.id}: {problems}"


def test_every_registered_aws_resource_type_is_checked(deployment):
    """A resource type the table does not know would reach AWS unchecked."""
    checked = {rule.typ for rule in RULES} | {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",  # counted below
        "aws:ec2/volumeAttachment:VolumeAttachment",  # ids and a device name the program fixes
        "aws:ec2/eipAssociation:EipAssociation",  # ids only
        "aws:sns/topicSubscription:TopicSubscription",  # the topic's ARN, `email`, the address
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",  # the bucket and four booleans
    }
    registered = {r.typ for r in deployment.resources if r.typ.startswith("aws:")}
    assert registered <= checked, registered - checked


def test_role_stays_within_the_managed_policy_quota(deployment):
    # IAM User Guide, "IAM and AWS STS quotas": managed policies attached to an IAM role, default 10.
    attached = Counter(
        a.inputs["role"]
        for a in deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    )
    assert attached and max(attached.values()) <= 10, attached


def test_each_roles_inline_policies_together_fit_iam_with_dns01():
    """IAM User Guide, "IAM and AWS STS quotas": 10,240 characters for all inline policies of a
    role together. DNS-01 adds the Route 53 policy beside the others (keys, metrics): with the longest
    domain DNS-01 takes (its `_acme-challenge` record within DNS's 253), the most name characters
    the config accepts and the longest stack name, both must still fit. The backups' role has its
    own, counted apart."""
    domain = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 33, "example", "com"])
    names, size = [], 0
    while size + 64 + len(".example.com") <= MAX_CERTIFICATE_NAMES_CHARACTERS:
        names.append(f"{len(names):063d}.example.com")
        size += len(names[-1])
    deployment = deploy(
        {**MAXIMAL_CONFIG, "domain": domain, "acmeChallenge": "dns-01", "certificateNames": names},
        stack=MAXIMAL_STACK,
    )
    policies = deployment.of_type(ROLE_POLICY)
    # A policy names its role by name or by id.
    roles = {key: r.name for r in deployment.of_type(ROLE) for key in (r.name, r.resource_id)}
    totals = Counter[str]()
    for policy in policies:
        totals[roles[policy.inputs["role"]]] += no_whitespace_length(policy.inputs["policy"])
    print(f"inline policy characters per role: {dict(totals)}")

    assert any(p.name.endswith("-acme-dns") for p in policies)
    assert any(p.name.endswith("-dlm-snapshots") for p in policies)
    assert max(totals.values()) <= 10240, totals


@pytest.mark.parametrize("typ", SG_RULES)
def test_security_group_stays_within_the_rules_quota(deployment, typ):
    """Amazon VPC User Guide, "Amazon VPC quotas": 60 inbound and 60 outbound rules per security
    group, counted separately for IPv4 and IPv6."""
    families = Counter(
        (r.inputs["securityGroupId"], "ipv6" if "cidrIpv6" in r.inputs else "ipv4")
        for r in deployment.of_type(typ)
    )
    assert families and max(families.values()) <= 60, families


def _with(typ: str, inputs: dict[str, Any], name: str = "qdrant-x") -> Registered:
    return Registered(typ, name, inputs)


@pytest.mark.parametrize(
    ("rule_id", "resource"),
    [
        ("user-data-16KB", _with(INSTANCE, {"userData": "#" * 16385})),
        (
            "user-data-16KB",
            _with(INSTANCE, {"userDataBase64": base64.b64encode(b"\0" * 16385).decode()}),
        ),
        ("instance-type-in-model", _with(INSTANCE, {"instanceType": "t3medium"})),
        ("imds-hop-limit", _with(INSTANCE, {"metadataOptions": {"httpPutResponseHopLimit": 65}})),
        ("data-volume-size", _with(VOLUME, {"size": 16385})),
        ("role-name", _with(ROLE, {}, name="r" * 57)),
        ("role-policy-size", _with(ROLE_POLICY, {"policy": json.dumps({"Sid": "x" * 10240})})),
        ("parameter-name-characters", _with(PARAMETER, {"name": "/aws/reserved"})),
        ("parameter-name-depth", _with(PARAMETER, {"name": "/a" * 16})),
        (
            "parameter-value-size",
            _with(PARAMETER, {"value": {SECRET_SIG: "1", "value": "k" * 4097}}),
        ),
        ("record-ttl", _with(RECORD, {"ttl": -1})),
        ("tags:Instance", _with(INSTANCE, {"tags": {"Name": "n" * 257}})),
        ("dlm-description", _with(DLM_POLICY, {"description": "Snapshots of qdrant-eu.prod"})),
        ("alarm-evaluation-window", _with(ALARM, {"period": 60, "evaluationPeriods": 1441})),
        ("alarm-evaluation-window", _with(ALARM, {"period": 1800, "evaluationPeriods": 49})),
        ("alarm-evaluation-window", _with(ALARM, {"period": 3600, "evaluationPeriods": 169})),
        ("alarm-period", _with(ALARM, {"period": 90})),
        ("alarm-name", _with(ALARM, {}, name="a" * 248)),
        ("topic-name", _with(TOPIC, {"namePrefix": "qdrant-eu.prod-"})),
        ("bucket-prefix", _with(BUCKET, {"bucketPrefix": "q" * 38})),
        ("bucket-name", _with(BUCKET, {"bucketPrefix": "qdrant-Prod-"})),
        ("bucket-name", _with(BUCKET, {"bucketPrefix": "qdrant..prod-"})),
        ("object-key", _with(BUCKET_OBJECT, {"key": "k" * 1025})),
        ("bucket-policy-size", _with(BUCKET_POLICY, {"policy": "p" * 20481})),
        ("object-ownership", _with(OWNERSHIP, {"rule": {"objectOwnership": "Enforced"}})),
        ("versioning-status", _with(VERSIONING, {"versioningConfiguration": {"status": "On"}})),
        (
            "newer-noncurrent-versions",
            _with(
                LIFECYCLE,
                {"rules": [{"noncurrentVersionExpiration": {"newerNoncurrentVersions": 101}}]},
            ),
        ),
        (
            "sse-algorithm",
            _with(
                ENCRYPTION,
                {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "SSE-S3"}}]},
            ),
        ),
        ("log-group-name", _with(LOG_GROUP, {"name": "/secure-qdrant/qdrant prod/audit"})),
        ("log-group-name", _with(LOG_GROUP, {"name": "/" + "g" * 512})),
        ("log-group-retention", _with(LOG_GROUP, {"retentionInDays": 31})),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_limit_refuses_a_value_past_it(rule_id, resource):
    """The checks above prove something only if they can fail."""
    [rule] = [r for r in RULES if r.id == rule_id and r.typ == resource.typ]

    assert rule.check(resource)


def test_user_data_base64_must_decode():
    with pytest.raises(binascii.Error):
        user_data_bytes({"userDataBase64": "not base64!"})


def test_the_audit_shippers_batches_are_within_put_log_events_limits():
    """CloudWatch Logs API Reference, PutLogEvents, as botocore's model documents it: a batch over
    any of these is refused whole, and the shipper would retry it every minute forever. The event
    size the shipper keeps to is the 256 KB AWS documented before it raised it: within both."""
    text = re.sub(
        r"<[^>]+>",
        "",
        _MODELS.get_service_model("logs").operation_model("PutLogEvents").documentation,
    )

    batch = re.search(
        r"maximum batch size is ([\d,]+) bytes.*plus (\d+) bytes for each log event", text
    )
    events = re.search(r"maximum number of log events in a batch is ([\d,]+)", text)
    span = re.search(r"time span in a single batch cannot exceed (\d+) hours", text)
    event = re.search(r"Each log event can be no larger than (\d+) (MB|KB)", text)
    assert batch and events and span and event, text
    assert shipper.MAX_BATCH_BYTES <= int(batch[1].replace(",", ""))
    assert shipper.EVENT_OVERHEAD == int(batch[2])
    assert shipper.MAX_BATCH_EVENTS <= int(events[1].replace(",", ""))
    assert shipper.MAX_BATCH_SPAN_MS <= int(span[1]) * 3600 * 1000
    assert shipper.MAX_EVENT_BYTES <= int(event[1]) * {"KB": 1024, "MB": 1024 * 1024}[event[2]]


def test_the_programs_retention_values_are_cloudwatchs():
    """The retention a stack may choose (model/audit_log.py) is exactly what PutRetentionPolicy
    takes: a value outside it fails `pulumi up` half-way, a missing one refuses a valid choice."""
    assert list(RETENTION_DAYS) == documented_values(
        "logs", "PutRetentionPolicyRequest", "retentionInDays"
    )
