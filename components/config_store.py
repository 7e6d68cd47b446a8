"""Where `pulumi up` publishes each host's configuration document (model/host_config.py): one
S3 bucket per stack, readable only by the hosts' roles and the deployer, over TLS only.

The policies are pure (`config_bucket_policy`, `config_access_policy`), so the IAM evaluator judges
the very documents the program registers (tests/consumers/test_iam_evaluation.py).

Why S3 and not SSM parameters: the largest document is ~48 KB, an advanced parameter holds 8 KB;
bucket versioning keeps every version `pulumi up` published, and nothing in it is secret (the API
keys stay in their SecureString parameters), so SSE-S3 is enough.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from model.host_config import ConfigSource, config_source

# The provider's `bucket_prefix` allows 37 characters: it appends a 26-character unique id
# (PrefixedUniqueId) within S3's 63.
BUCKET_PREFIX_LENGTH = 37
BUCKET_SUFFIX_LENGTH = 26
_DIGEST_LENGTH = 8
# `qdrant-` + the stack (as much as fits) + `-` + digest + `-`.
_STACK_PART_LENGTH = BUCKET_PREFIX_LENGTH - len("qdrant-") - _DIGEST_LENGTH - 2
# What reads an object: GetObject (HeadObject too), its versions, tags, attributes and ACL.
OBJECT_READS = "s3:GetObject*"
OBJECT_WRITES = ("s3:PutObject*", "s3:DeleteObject*")
# Noncurrent versions kept per object: S3 allows at most 100 (NewerNoncurrentVersions).
KEPT_VERSIONS = 100


def config_bucket_prefix(stack: str) -> str:
    """The bucket's name before its unique id: the stack's name as S3 allows it (lowercase letters,
    digits, `-`) and a digest of the exact name, so that two stacks do not share a prefix (but for a
    one in 2**32 digest collision) even when their names differ only in case, punctuation or past
    the characters that fit. The deployer
    policy scopes the bucket by this prefix (components/deployer_policy.py)."""
    readable = re.sub(r"[^a-z0-9-]", "-", stack.lower())[:_STACK_PART_LENGTH].strip("-")
    digest = hashlib.sha256(stack.encode()).hexdigest()[:_DIGEST_LENGTH]
    return f"qdrant-{readable}-{digest}-" if readable else f"qdrant-{digest}-"


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def principal_patterns(caller_arn: str) -> list[str]:
    """What `aws:PrincipalArn` holds for requests by the identity `caller_arn` names (as STS
    GetCallerIdentity returns it): a role session is its role, whose path the session ARN omits;
    role names are unique in an account whatever their path, so the role with and without one."""
    session = re.fullmatch(r"arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
    if not session:
        return [caller_arn]
    partition, account, role = session.groups()
    return [
        f"arn:{partition}:iam::{account}:role/{role}",
        f"arn:{partition}:iam::{account}:role/*/{role}",
    ]


def config_bucket_policy(
    bucket: str, hosts: Sequence[ConfigSource], host_roles: Sequence[str], deployers: Sequence[str]
) -> str:
    """The bucket policy: TLS only, and whatever else an account principal's own policies allow
    (`s3:*` on `*` is common), objects are read only by the hosts' roles and the deployer, the
    configuration is written only by the deployer (the document carries the host's bootstrap and
    systemd units: writing it is running code as root on the host), and the status only by the
    hosts and the deployer. `deployers` are `principal_patterns`: the deployer's provider reads the
    object back after writing it (HeadObject needs s3:GetObject) and empties the bucket on destroy.
    """
    everything = [bucket_arn(bucket), object_arn(bucket, "*")]
    statuses = [object_arn(bucket, source.status_key) for source in hosts]

    def deny_unless(principals: Sequence[str], **scope: Any) -> dict[str, Any]:
        return {
            "Effect": "Deny",
            "Principal": "*",
            **scope,
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": sorted(principals)}},
        }

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": everything,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "ReadOnlyByTheHostsAndTheDeployer",
                    **deny_unless(
                        [*host_roles, *deployers],
                        Action=OBJECT_READS,
                        Resource=object_arn(bucket, "*"),
                    ),
                },
                {
                    "Sid": "ConfigurationWrittenOnlyByTheDeployer",
                    **deny_unless(deployers, Action=list(OBJECT_WRITES), NotResource=statuses),
                },
                {
                    "Sid": "StatusWrittenOnlyByTheHosts",
                    **deny_unless(
                        [*host_roles, *deployers], Action=list(OBJECT_WRITES), Resource=statuses
                    ),
                },
            ],
        }
    )


def config_access_policy(source: ConfigSource) -> str:
    """The host's role policy: it reads its own document and writes its own status, nothing else
    in the bucket (another host's document, an older version, its own document)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadItsConfiguration",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": object_arn(source.bucket, source.config_key),
                },
                {
                    "Sid": "ReportItsStatus",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": object_arn(source.bucket, source.status_key),
                },
            ],
        }
    )


@dataclass
class ConfigStoreArgs:
    stack: str
    region: str
    deployer_arn: pulumi.Input[str]
    """Who runs `pulumi up` (STS GetCallerIdentity): the one principal, beside the hosts, the
    bucket policy lets read and write."""


class ConfigStore(pulumi.ComponentResource):
    """A versioned (the latest hundred versions of each object kept), SSE-S3 encrypted bucket
    with every public access block on, ACLs disabled (BucketOwnerEnforced) and `force_destroy`
    (nothing in it is precious: `pulumi up` writes it again; its versions would otherwise block
    `pulumi destroy`); then, per host, once its role and data volume exist, the bucket policy
    (`restrict`) and after it the host's document (`publish`, called by the host)."""

    bucket_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ConfigStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:config_store:ConfigStore", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=config_bucket_prefix(args.stack),
            force_destroy=True,
            # Untagged: its name tells the stack (the deployer policy scopes it by that), and the
            # deployer then needs no S3 tagging permission, whose API the provider may change.
            opts=self._child,
        )
        self._settings: list[pulumi.Resource] = [
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access-block",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=self._child,
            ),
            aws.s3.BucketOwnershipControls(
                f"{name}-ownership",
                bucket=bucket.id,
                rule={"object_ownership": "BucketOwnerEnforced"},
                opts=self._child,
            ),
            versioning := aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=self._child,
            ),
            # The host rewrites its status every run: its versions, kept forever, would grow by
            # tens of thousands a month. The newest hundred of each object stay (documents to roll
            # back to; S3's most), older ones go a day after they were replaced.
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=bucket.id,
                rules=[
                    {
                        "id": "keep-the-latest-versions",
                        "status": "Enabled",
                        "filter": {},
                        "noncurrent_version_expiration": {
                            "noncurrent_days": 1,
                            "newer_noncurrent_versions": KEPT_VERSIONS,
                        },
                    }
                ],
                opts=self._child.merge(pulumi.ResourceOptions(depends_on=[versioning])),
            ),
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
                opts=self._child,
            ),
        ]
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucketName": self.bucket_name})

    def source(self, host_name: str) -> pulumi.Output[ConfigSource]:
        """Where the host named `host_name` fetches its document and reports its status."""
        region = self._args.region
        return self.bucket_name.apply(lambda bucket: config_source(region, bucket, host_name))

    def publish(
        self, host_name: str, document: pulumi.Input[str], policy: aws.s3.BucketPolicy
    ) -> aws.s3.BucketObjectv2:
        """The host's document at its `config_key`: a new document is a new version of the same
        object, updated in place (only `bucket` and `key` are ForceNew in the provider's
        aws_s3_object), and the instance launches after it (`QdrantHostArgs.publish_config`).
        Written after `policy` (`restrict`): the provider reads the object back, which the policy
        denies to a deployer it does not name yet."""
        return aws.s3.BucketObjectv2(
            f"{self._name}-{host_name}",
            bucket=self.bucket_name,
            # The key does not depend on the bucket's name: known before the bucket exists, so a
            # preview shows it.
            key=config_source(self._args.region, "", host_name).config_key,
            content=document,
            content_type="application/json",
            # Versioning and encryption first: the first version is kept and encrypted too.
            opts=self._child.merge(pulumi.ResourceOptions(depends_on=[*self._settings, policy])),
        )

    def restrict(self, hosts: Mapping[str, pulumi.Input[str]]) -> aws.s3.BucketPolicy:
        """The bucket policy, for the hosts (by name) and their roles' ARNs."""
        region, names = self._args.region, list(hosts)

        def policy(bucket: str, deployer: str, *roles: str) -> str:
            sources = [config_source(region, bucket, host_name) for host_name in names]
            return config_bucket_policy(bucket, sources, roles, principal_patterns(deployer))

        return aws.s3.BucketPolicy(
            f"{self._name}-policy",
            bucket=self.bucket_name,
            policy=pulumi.Output.all(
                self.bucket_name, self._args.deployer_arn, *hosts.values()
            ).apply(lambda values: policy(*values)),
            # A policy with Principal "*" is judged against the public access block: set it first.
            opts=self._child.merge(pulumi.ResourceOptions(depends_on=self._settings)),
        )
