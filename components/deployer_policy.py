"""The IAM policy a least-privilege deployer needs for `pulumi up`, `refresh` and `destroy` of one
stack: pure, so the tests judge the very document an operator attaches.

Scoped to the stack wherever IAM can tell one stack's resources from another's:
- by name, where the resource has one: the roles, instance profile, alarms and topic all begin with
  `qdrant-<stack>-` (Pulumi's auto-naming appends `-` and 7 hexadecimal characters), the key
  parameters live under `/secure-qdrant/<stack>/`;
- by the stack tag (`SecureQdrantStack`) where EC2 and DLM name resources by a random id: a create
  call must carry the tag (`aws:RequestTag`), every later call needs it on the resource
  (`aws:ResourceTag`), and tags can be written only in the creating call or onto what carries it;
- by condition keys where a call names no resource of the stack: the roles may be passed only to
  the service that assumes them, only the Session Manager policy may be attached, the only
  service-linked role is CloudWatch's for EC2 alarm actions, instances launch only the distributions'
  official images, an alarm's actions go only to the stack's topic, recover and reboot;
- by the roles' permissions boundary: a role is created, and its permissions written, only with
  the stack's boundary on it (`permissions_boundary`, which the program sets with
  `rolePermissionsBoundary: true`), which caps both roles, and whatever the deployer writes into
  them, at what the program gives them.
What IAM cannot scope is granted on `*`: EC2's Describe calls (no resource-level permissions), and
the calls that name resources the stack uses but does not own (the subnet, the VPC, the image).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.alarms import topic_name_prefix
from components.backups import STACK_TAG, dlm_execution_policy, stack_tags
from components.config_store import config_access_policy, config_bucket_prefix
from components.host import (
    SSM_CORE_ACTIONS,
    SSM_CORE_POLICY,
    put_metrics_policy,
    read_parameters_policy,
)
from model.acme_dns import acme_dns_policy
from model.audit_log import audit_log_group_name, log_group_arn, ship_audit_log_policy
from model.host_config import config_source
from model.images import HOST_IMAGES
from model.settings import METRICS_NAMESPACE

PROJECT = "secure-qdrant"
# AWS's service-linked role for alarm EC2 actions (CloudWatch User Guide, "Using service-linked roles
# for CloudWatch"): PutMetricAlarm creates it the first time an alarm with an EC2 action is made.
ALARM_ACTIONS_SERVICE = "events.amazonaws.com"
ALARM_ACTIONS_ROLE = "AWSServiceRoleForCloudWatchEvents"
# Pulumi's auto-naming: `<logical name>-` and 7 hexadecimal characters, one `?` each, so that a
# stack whose name begins with this one's (`<stack>-role`) does not match.
AUTO_NAME_SUFFIX = "-" + "?" * 7
# The provider's `name_prefix`: the prefix and a 26-digit unique id (PrefixedUniqueId).
NAME_PREFIX_SUFFIX = "?" * 26
# The calls that create a tagged EC2 resource; CreateTags in the same call carries ec2:CreateAction.
EC2_CREATE_ACTIONS = (
    "ec2:RunInstances",
    "ec2:CreateVolume",
    "ec2:CreateSecurityGroup",
    "ec2:AllocateAddress",
    "ec2:ImportKeyPair",
)
EC2_TAGGED = ("instance", "volume", "security-group", "elastic-ip", "key-pair")


@dataclass(frozen=True)
class DeployerScope:
    stack: str
    region: str
    account: str
    domain: str
    """The endpoint's name: the one record the deployer may write in Route 53."""
    certificate_names: tuple[str, ...] = ()
    """`certificateNames`: with DNS-01, the instance writes their challenge records too."""

    @property
    def name(self) -> str:
        """The program's name for the stack's resources (`__main__.py`)."""
        return f"qdrant-{self.stack}"

    def ec2(self, resource: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account}:{resource}"

    def ssm(self, resource: str) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account}:{resource}"

    def iam(self, resource: str) -> str:
        return f"arn:aws:iam::{self.account}:{resource}"

    def role(self, logical: str) -> str:
        return self.iam(f"role/{self.name}-{logical}{AUTO_NAME_SUFFIX}")

    @property
    def audit_log_group(self) -> str:
        """The stack's audit log group (components/audit_log.py), by its exact name."""
        return log_group_arn(self.region, self.account, audit_log_group_name(self.name))

    @property
    def boundary(self) -> str:
        return permissions_boundary_arn(self.account, self.stack)

    @property
    def config_bucket(self) -> str:
        """The configuration bucket's name as an ARN pattern matches it: its prefix and the
        provider's unique id (components/config_store.py)."""
        return config_bucket_prefix(self.stack) + NAME_PREFIX_SUFFIX


def permissions_boundary_arn(account: str, stack: str) -> str:
    """The managed policy an administrator creates once per stack (`--part boundary`), that the
    program sets as both roles' permissions boundary with `rolePermissionsBoundary: true`: a
    deterministic name, so that the program finds it from the account it deploys to, and the
    policy's `iam:PermissionsBoundary` condition names exactly what the program sets."""
    return f"arn:aws:iam::{account}:policy/{PROJECT}-{stack}-boundary"


def _statement(
    sid: str, actions: Sequence[str], resources: str | Sequence[str], **condition: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _ec2_statements(scope: DeployerScope) -> list[dict[str, Any]]:
    tagged = {f"aws:ResourceTag/{STACK_TAG}": scope.name}
    creating = {f"aws:RequestTag/{STACK_TAG}": scope.name}
    ours = [scope.ec2(f"{kind}/*") for kind in EC2_TAGGED]
    owners = sorted({image.owner for image in HOST_IMAGES.values()})
    return [
        _statement(
            # No resource-level permissions: `*` or nothing. Read by the provider, its lookups and
            # the deploy gate (verify/aws_audit.py).
            "ReadEc2",
            [
                "ec2:DescribeAddresses",
                "ec2:DescribeAddressesAttribute",
                "ec2:DescribeIamInstanceProfileAssociations",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceCreditSpecifications",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
                "ec2:DescribeKeyPairs",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroupRules",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSnapshots",
                "ec2:DescribeSubnets",
                "ec2:DescribeVolumes",
                "ec2:DescribeVolumesModifications",
            ],
            "*",
        ),
        _statement(
            "CreateTheStacksEc2Resources",
            EC2_CREATE_ACTIONS,
            ours,
            StringEquals=creating,
        ),
        _statement(
            "TagThemInTheCallThatCreatesThem",
            ["ec2:CreateTags"],
            ours,
            StringEquals={**creating, "ec2:CreateAction": list(EC2_CREATE_ACTIONS)},
        ),
        _statement(
            # What the launch also names: the network it joins, the volumes and interface it
            # creates (attached to the tagged instance, deleted with it).
            "LaunchIntoTheChosenNetwork",
            ["ec2:RunInstances"],
            [scope.ec2(f"{kind}/*") for kind in ("subnet", "network-interface", "volume")],
        ),
        _statement(
            "LaunchOnlyTheDistributionsImages",
            ["ec2:RunInstances"],
            f"arn:aws:ec2:{scope.region}::image/*",
            StringEquals={"ec2:Owner": owners},
        ),
        _statement(
            "LaunchWithTheStacksGroupAndKey",
            ["ec2:RunInstances"],
            [scope.ec2("security-group/*"), scope.ec2("key-pair/*")],
            StringEquals=tagged,
        ),
        _statement("CreateTheGroupInTheChosenVpc", ["ec2:CreateSecurityGroup"], scope.ec2("vpc/*")),
        _statement(
            # Authorized on the group as well, whose tag decides: the rules carry none.
            "ModifyTheGroupsRules",
            ["ec2:ModifySecurityGroupRules"],
            scope.ec2("security-group-rule/*"),
        ),
        _statement(
            # The instance's interface, when EC2 names it beside the tagged address.
            "MoveTheAddress",
            ["ec2:AssociateAddress", "ec2:DisassociateAddress"],
            scope.ec2("network-interface/*"),
        ),
        _statement(
            # A restore makes the data volume from one of the stack's own snapshots (DLM's carry
            # the volume's tags), never from another stack's data.
            "RestoreFromTheStacksSnapshots",
            ["ec2:CreateVolume"],
            f"arn:aws:ec2:{scope.region}::snapshot/*",
            StringEquals={"ec2:Owner": scope.account, **tagged},
        ),
        _statement(
            # No DeleteVolume: the data volume is retained on delete, so no deploy ever needs it
            # and no deployer key can destroy the database.
            "ManageTheStacksEc2Resources",
            [
                "ec2:AssociateAddress",
                "ec2:AssociateIamInstanceProfile",
                "ec2:AttachVolume",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateTags",
                "ec2:DeleteKeyPair",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteTags",
                "ec2:DescribeInstanceAttribute",
                "ec2:DetachVolume",
                "ec2:DisassociateAddress",
                "ec2:DisassociateIamInstanceProfile",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifyInstanceMetadataOptions",
                "ec2:ModifySecurityGroupRules",
                "ec2:ModifyVolume",
                "ec2:ReleaseAddress",
                "ec2:ReplaceIamInstanceProfileAssociation",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:StartInstances",
                "ec2:StopInstances",
                "ec2:TerminateInstances",
            ],
            ours,
            StringEquals=tagged,
        ),
    ]


def _iam_statements(scope: DeployerScope) -> list[dict[str, Any]]:
    instance_role, dlm_role = scope.role("role"), scope.role("dlm")
    # What a role may do is written only onto a role capped by the stack's boundary: a role the
    # deployer creates to trust itself, with `*:*` inline, still gets no more than the boundary.
    # IAM sends `iam:PermissionsBoundary` with these actions (Service Authorization Reference).
    bounded = {"iam:PermissionsBoundary": scope.boundary}
    return [
        _statement(
            "WriteTheStacksRolesUnderTheBoundary",
            ["iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy"],
            [instance_role, dlm_role],
            StringEquals=bounded,
        ),
        _statement(
            # No UpdateAssumeRolePolicy (the trust policies are constants of the program), no
            # Put/DeleteRolePermissionsBoundary: the boundary is set only when a role is created.
            "ManageTheStacksRoles",
            [
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ],
            [instance_role, dlm_role],
        ),
        _statement(
            # AdministratorAccess on its own role would make the instance an administrator.
            "AttachOnlySessionManager",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            instance_role,
            StringEquals=bounded,
            ArnEquals={"iam:PolicyARN": SSM_CORE_POLICY},
        ),
        _statement(
            "ManageTheStacksInstanceProfile",
            [
                "iam:AddRoleToInstanceProfile",
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:UntagInstanceProfile",
            ],
            scope.iam(f"instance-profile/{scope.name}-profile{AUTO_NAME_SUFFIX}"),
        ),
        _statement(
            "PassTheInstanceRoleToEc2",
            ["iam:PassRole"],
            instance_role,
            StringEquals={"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        _statement(
            # AddRoleToInstanceProfile checks PassRole too (IAM API Reference), naming no service
            # but, as `iam:AssociatedResourceArn`, every instance of the caller's account.
            "PutTheInstanceRoleInItsProfile",
            ["iam:PassRole"],
            instance_role,
            Null={"iam:PassedToService": "true"},
            ArnLike={"iam:AssociatedResourceArn": f"arn:aws:ec2:*:{scope.account}:instance/*"},
        ),
        _statement(
            "PassTheBackupRoleToDlm",
            ["iam:PassRole"],
            dlm_role,
            StringEquals={"iam:PassedToService": "dlm.amazonaws.com"},
        ),
        _statement(
            "LetCloudWatchRunEc2AlarmActions",
            ["iam:CreateServiceLinkedRole"],
            scope.iam(f"role/aws-service-role/{ALARM_ACTIONS_SERVICE}/{ALARM_ACTIONS_ROLE}"),
            StringEquals={"iam:AWSServiceName": ALARM_ACTIONS_SERVICE},
        ),
    ]


def _service_statements(scope: DeployerScope) -> list[dict[str, Any]]:
    alarms = f"{scope.name}-alarms"
    topic = f"arn:aws:sns:{scope.region}:{scope.account}:{topic_name_prefix(alarms)}"
    # A subscription's ARN is its topic's and `:<id>`.
    topics = [f"{topic}{NAME_PREFIX_SUFFIX}", f"{topic}{NAME_PREFIX_SUFFIX}:*"]
    tagged = {f"aws:ResourceTag/{STACK_TAG}": scope.name}
    return [
        _statement(
            "ManageTheStacksKeyParameters",
            [
                "ssm:AddTagsToResource",
                "ssm:DeleteParameter",
                "ssm:GetParameter",
                "ssm:ListTagsForResource",
                "ssm:PutParameter",
                "ssm:RemoveTagsFromResource",
            ],
            scope.ssm(f"parameter/{PROJECT}/{scope.stack}/*"),
        ),
        # Names and metadata only, no values: the provider reads a parameter's description here.
        _statement("ReadParameterMetadata", ["ssm:DescribeParameters"], "*"),
        _statement(
            # The alarm's actions, EC2's included, act on the instance its dimension names, which
            # IAM cannot see: only the stack's topic, recover and reboot.
            "WriteTheStacksAlarms",
            ["cloudwatch:PutMetricAlarm"],
            f"arn:aws:cloudwatch:{scope.region}:{scope.account}:alarm:{alarms}-*",
            **{
                "ForAllValues:StringLike": {
                    "cloudwatch:AlarmActions": [
                        topics[0],
                        f"arn:aws:automate:{scope.region}:ec2:recover",
                        f"arn:aws:automate:{scope.region}:ec2:reboot",
                    ]
                }
            },
        ),
        _statement(
            "ManageTheStacksAlarms",
            [
                "cloudwatch:DeleteAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            f"arn:aws:cloudwatch:{scope.region}:{scope.account}:alarm:{alarms}-*",
        ),
        # The deploy gate lists the region's alarms to find the stack's (verify/aws_audit.py).
        _statement(
            "ReadAlarms",
            ["cloudwatch:DescribeAlarms"],
            f"arn:aws:cloudwatch:{scope.region}:{scope.account}:alarm:*",
        ),
        _statement(
            "ManageTheStacksTopic",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetSubscriptionAttributes",
                "sns:GetTopicAttributes",
                "sns:ListTagsForResource",
                "sns:SetSubscriptionAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:TagResource",
                "sns:Unsubscribe",
                "sns:UntagResource",
            ],
            topics,
        ),
        _statement(
            "CreateTheStacksBackupPolicy",
            ["dlm:CreateLifecyclePolicy"],
            "*",
            StringEquals={f"aws:RequestTag/{STACK_TAG}": scope.name},
        ),
        _statement(
            "ManageTheStacksBackupPolicy",
            [
                "dlm:DeleteLifecyclePolicy",
                "dlm:GetLifecyclePolicy",
                "dlm:ListTagsForResource",
                "dlm:TagResource",
                "dlm:UntagResource",
                "dlm:UpdateLifecyclePolicy",
            ],
            f"arn:aws:dlm:{scope.region}:{scope.account}:policy/*",
            StringEquals=tagged,
        ),
        _statement(
            # Route 53 names records in the request, not the resource: the zone is any zone,
            # the change only the endpoint's A record.
            "WriteTheEndpointsRecord",
            ["route53:ChangeResourceRecordSets"],
            "arn:aws:route53:::hostedzone/*",
            **{
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                        scope.domain.lower().rstrip(".")
                    ],
                    "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
                },
                "Null": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": "false"},
            },
        ),
        _statement(
            "ReadTheZone",
            [
                "route53:GetHostedZone",
                "route53:ListResourceRecordSets",
                "route53:ListTagsForResource",
            ],
            "arn:aws:route53:::hostedzone/*",
        ),
        _statement("FollowRecordChanges", ["route53:GetChange"], "arn:aws:route53:::change/*"),
        _statement("FindTheZone", ["route53:ListHostedZones"], "*"),
        _statement(
            # No PutLogEvents or GetLogEvents: the deployer manages the group and the metric filters
            # that count its denials (components/audit_alarms.py), it neither forges audit lines
            # nor reads them.
            "ManageTheStacksAuditLogGroup",
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:DeleteMetricFilter",
                "logs:DeleteRetentionPolicy",
                "logs:DescribeMetricFilters",
                "logs:ListTagsForResource",
                "logs:PutMetricFilter",
                "logs:PutRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            scope.audit_log_group,
        ),
        # The provider reads a group back by listing the groups with its name as a prefix: names
        # and settings, no events. No resource-level permission.
        _statement("ReadLogGroups", ["logs:DescribeLogGroups"], "*"),
        *_config_bucket_statements(scope),
    ]


# What the provider reads of a bucket (aws_s3_bucket's read: HeadBucket, then each of its
# settings, asked whether set or not) and of its settings' own resources.
BUCKET_READS = (
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
    "s3:ListBucketVersions",
)


def _config_bucket_statements(scope: DeployerScope) -> list[dict[str, Any]]:
    """The configuration bucket (components/config_store.py), by its name: the stack's prefix and
    the provider's unique id. Its objects are the hosts' documents, which the deployer writes and
    reads back, and their status reports, which the deploy gate reads."""
    bucket = f"arn:aws:s3:::{scope.config_bucket}"
    return [
        _statement(
            "ManageTheStacksConfigurationBucket",
            [
                *BUCKET_READS,
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:DeleteBucketPolicy",
                "s3:PutBucketOwnershipControls",
                "s3:PutBucketPolicy",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutBucketVersioning",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            bucket,
        ),
        _statement(
            # The versions too: the provider deletes every version of a deleted object, and
            # `force_destroy` every version in the bucket.
            "WriteTheStacksConfiguration",
            [
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
                "s3:GetObject",
                "s3:GetObjectTagging",
                "s3:PutObject",
            ],
            f"{bucket}/*",
        ),
    ]


def permissions_boundary(scope: DeployerScope) -> dict[str, Any]:
    """The most either role of the stack may ever do, whatever the deployer writes into them: the
    statements of the very documents the program gives the roles (components/host.py,
    model/acme_dns.py, model/audit_log.py, components/config_store.py, components/backups.py), rendered for the
    whole stack (any of its parameters, any zone for its challenge records, any host's keys in its
    configuration bucket) and the actions of the one managed policy
    attached. Its Deny keeps Session Manager's `ssm:GetParameter` off other parameters."""
    parameters = scope.ssm(f"parameter/{PROJECT}/{scope.stack}/*")
    documents = [
        read_parameters_policy([parameters]),
        put_metrics_policy(METRICS_NAMESPACE),
        acme_dns_policy("*", (scope.domain, *scope.certificate_names)),
        config_access_policy(config_source(scope.region, scope.config_bucket, "*")),
        dlm_execution_policy(scope.region, stack_tags(scope.name)),
        ship_audit_log_policy(scope.audit_log_group),
    ]
    session_manager = _statement("SessionManager", SSM_CORE_ACTIONS, "*")
    statements = [s for document in documents for s in json.loads(document)["Statement"]]
    return {"Version": "2012-10-17", "Statement": [session_manager, *statements]}


BOUNDARY = "boundary"
# Three documents: at the longest stack name two would exceed the 6,144 characters IAM allows a
# managed policy.
PARTS: Mapping[str, Callable[[DeployerScope], list[dict[str, Any]]]] = {
    "ec2": _ec2_statements,
    "iam": _iam_statements,
    "services": _service_statements,
}


def rendered(scope: DeployerScope, part: str) -> dict[str, Any]:
    """One part as `--part` prints it: a deployer policy part, or the roles' boundary."""
    return permissions_boundary(scope) if part == BOUNDARY else deployer_policies(scope)[part]


def deployer_policies(scope: DeployerScope) -> dict[str, dict[str, Any]]:
    """Every permission `pulumi up`, `refresh` and `destroy` of this one stack need, as managed
    policy documents by part name."""
    return {
        part: {"Version": "2012-10-17", "Statement": statements(scope)}
        for part, statements in PARTS.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m components.deployer_policy",
        description="Print one part of the IAM policy a deployer of one secure-qdrant stack needs.",
    )
    parser.add_argument("--stack", required=True, help="the Pulumi stack's name, e.g. dev")
    parser.add_argument("--region", required=True, help="the stack's aws:region")
    parser.add_argument("--account", required=True, help="the AWS account id")
    parser.add_argument("--domain", required=True, help="the stack's secure-qdrant:domain")
    parser.add_argument(
        "--certificate-name",
        action="append",
        default=[],
        help="each of the stack's secure-qdrant:certificateNames (DNS-01)",
    )
    parser.add_argument(
        "--part",
        required=True,
        choices=sorted([*PARTS, BOUNDARY]),
        help=f"a part of the deployer's policy, or `{BOUNDARY}`: the roles' permissions boundary",
    )
    args = parser.parse_args(argv)
    scope = DeployerScope(
        args.stack, args.region, args.account, args.domain, tuple(args.certificate_name)
    )
    json.dump(rendered(scope, args.part), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
