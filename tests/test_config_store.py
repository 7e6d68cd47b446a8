"""The host's configuration as published data (issue 19): the bucket, the document, who may read it,
and that the instance waits for it, under mocks.

What IAM decides on these policies is judged by the IAM evaluator in
tests/consumers/test_iam_evaluation.py; the deployer's side in tests/consumers/test_iam_deployer.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.config_store import (
    BUCKET_PREFIX_LENGTH,
    config_access_policy,
    config_bucket_prefix,
    principal_patterns,
)
from model.config import MAX_STACK_NAME_LENGTH
from model.host_config import CONFIG_SCHEMA, config_source, config_version
from model.user_data import HostFile
from tests.preview import Preview
from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, Deployment, Registered, deploy
from tests.readme import section_table

BUCKET = "aws:s3/bucket:Bucket"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
INSTANCE = "aws:ec2/instance:Instance"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
HOST = "qdrant-test"
TOKENS = [{"name": "search", "access": "r"}, {"name": "ops", "access": "m"}]
CONFIG = {**MINIMAL_CONFIG, "tokens": TOKENS, "adminCidrs": ["203.0.113.0/24"]}


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deploy(CONFIG)


def bucket_name(deployment: Deployment) -> str:
    return deployment.one(BUCKET).resource_id


def document(deployment: Deployment) -> dict[str, Any]:
    published: dict[str, Any] = json.loads(deployment.one(OBJECT).inputs["content"])
    return published


def of(deployment: Deployment, typ: str) -> Registered:
    """The one resource of `typ`, checked to configure the stack's bucket."""
    resource = deployment.one(typ)
    assert resource.inputs["bucket"] == bucket_name(deployment), resource.name
    return resource


def test_the_bucket_is_named_for_the_stack_and_emptied_on_destroy(deployment):
    """Nothing in it is precious (`pulumi up` writes it again), and the versions bucket
    versioning keeps would otherwise make `pulumi destroy` fail on a bucket that is not empty."""
    bucket = deployment.one(BUCKET)

    assert bucket.inputs["bucketPrefix"] == config_bucket_prefix("test")
    assert bucket.inputs["forceDestroy"] is True


def test_every_published_version_is_kept(deployment):
    """A bad `pulumi up` can be rolled back from the bucket's own history of documents."""
    versioning = of(deployment, "aws:s3/bucketVersioning:BucketVersioning")

    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_old_versions_are_trimmed_to_the_latest_hundred(deployment):
    """The host rewrites its status every run: kept forever, its versions would grow by tens of
    thousands a month. The hundred newest versions of each object (documents to roll back to)
    stay; older ones go a day after they were replaced."""
    lifecycle = of(deployment, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")

    [rule] = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {}
    assert rule["noncurrentVersionExpiration"] == {
        "noncurrentDays": 1,
        "newerNoncurrentVersions": 100,
    }
    assert "expiration" not in rule, "the current document must never expire"


def test_the_documents_are_encrypted_at_rest(deployment):
    """SSE-S3: the document holds no secret (the keys stay in SSM), so no KMS key is needed."""
    encryption = of(
        deployment,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )

    assert encryption.inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]


def test_the_bucket_can_never_be_made_public(deployment):
    """All four blocks: no public ACL or policy can be added, nor take effect if present."""
    block = of(deployment, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")

    assert {key: block.inputs.get(key) for key in (
        "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"
    )} == dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                         "restrictPublicBuckets"), True)  # fmt: skip


def test_acls_are_disabled(deployment):
    """BucketOwnerEnforced: access is decided by the policies alone, never by an object ACL."""
    ownership = of(deployment, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")

    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_the_document_is_published_at_the_hosts_config_key(deployment):
    published = deployment.one(OBJECT)

    assert published.inputs["bucket"] == bucket_name(deployment)
    assert published.inputs["key"] == f"hosts/{HOST}/config.json"
    assert published.inputs["contentType"] == "application/json"


def test_the_document_is_the_hosts_rendered_configuration(deployment):
    """The host checks the version against a digest of the files: a document whose version does
    not match its files would be refused."""
    published = document(deployment)
    files = tuple(HostFile(f["path"], f["content"], f["permissions"]) for f in published["files"])

    assert published["schema"] == CONFIG_SCHEMA
    assert published["version"] == config_version(files)
    assert any(f["path"].endswith("settings.env") for f in published["files"])
    assert "203.0.113.0/24" in deployment.one(OBJECT).inputs["content"]


def test_the_document_names_the_data_volume_the_host_runs_on(deployment):
    """Rendered from the volume's id once it exists, not a placeholder."""
    assert deployment.outputs["dataVolumeId"].value in deployment.one(OBJECT).inputs["content"]


def test_the_instance_launches_only_once_its_document_exists(deployment):
    """The first boot fetches the document: launched before it exists, the host would start with
    nothing to apply."""
    instance = deployment.one(INSTANCE)
    published = deployment.one(OBJECT)

    assert any(urn.endswith(f"::{published.name}") for urn in instance.options.dependencies)


def test_the_instance_launches_only_once_it_may_read_its_document(deployment):
    """IAM is eventually consistent: the permission must exist before the first boot asks."""
    instance = deployment.one(INSTANCE)

    assert any(urn.endswith(f"::{HOST}-config-access") for urn in instance.options.dependencies)


def test_the_document_is_written_only_once_the_bucket_policy_admits_the_deployer(deployment):
    """The policy denies reading the documents to everyone but the roles and the deployer it
    names, and the provider reads the object back after writing it: a new deployer's write raced
    by the policy update that admits it would fail."""
    published = deployment.one(OBJECT)
    policy = deployment.one(BUCKET_POLICY)

    assert any(urn.endswith(f"::{policy.name}") for urn in published.options.dependencies)


def test_the_instance_role_gets_its_own_keys_only(deployment):
    [access] = [p for p in deployment.of_type(ROLE_POLICY) if p.name == f"{HOST}-config-access"]
    source = config_source(REGION, bucket_name(deployment), HOST)

    assert access.inputs["policy"] == config_access_policy(source)


def test_the_bucket_policy_admits_the_instance_role_and_the_deployer(deployment):
    """The deployer is who ran `pulumi up` (the mocks' caller identity)."""
    policy = json.loads(of(deployment, BUCKET_POLICY).inputs["policy"])
    reads = next(s for s in policy["Statement"] if s["Sid"] == "ReadOnlyByTheHostsAndTheDeployer")

    assert reads["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == sorted(
        [f"arn:aws:iam::{ACCOUNT}:role/{HOST}-role", f"arn:aws:iam::{ACCOUNT}:user/ops"]
    )


def test_the_outputs_tell_the_gate_what_to_wait_for(deployment):
    """The deploy gate polls the status object until the host reports this version."""
    outputs = deployment.outputs

    assert outputs["configVersion"].value == document(deployment)["version"]
    assert outputs["configBucket"].value == bucket_name(deployment)
    assert outputs["configStatusKey"].value == f"hosts/{HOST}/status.json"
    assert not any(outputs[name].secret for name in ("configVersion", "configBucket",
                                                     "configStatusKey"))  # fmt: skip


def secret_values(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in secret_values(item)]
    if isinstance(value, list):
        return [s for item in value for s in secret_values(item)]
    return [value] if isinstance(value, str) else []


def test_no_secret_output_appears_in_the_document(deployment):
    """The document is readable by the host's role and kept in every version: the API keys and
    tokens stay in their SecureString parameters and the outputs, never in it."""
    secrets = [
        value
        for exported in deployment.outputs.values()
        if exported.secret
        for value in secret_values(exported.value)
    ]
    content = deployment.one(OBJECT).inputs["content"]

    assert len(secrets) >= 4, "the scan should cover the keys and both tokens"
    assert [s for s in secrets if s in content] == []


def test_a_setting_change_updates_the_document_in_place(deployment):
    """A new document is a new version of the same object (only bucket and key are ForceNew in the
    provider's aws_s3_object): the host converges to it, nothing is recreated."""
    changed = deploy({**CONFIG, "rateLimitRps": 10})
    preview = Preview(deployment, changed)
    key = (OBJECT, deployment.one(OBJECT).name)

    assert changed.one(OBJECT).inputs["content"] != deployment.one(OBJECT).inputs["content"]
    assert preview.replaces(key) is False
    assert changed.outputs["configVersion"].value != deployment.outputs["configVersion"].value


@pytest.mark.parametrize(
    "stack",
    [
        "dev",
        "Prod.EU_1",
        "x" * MAX_STACK_NAME_LENGTH,
        "production-eu-central-1-blue-green-canary-xy",
    ],
)
def test_the_bucket_prefix_is_one_s3_accepts(stack):
    """S3: lowercase letters, digits and `-`, beginning and ending with a letter or digit once
    the provider's 26 characters are appended; the provider's prefix limit is 37."""
    prefix = config_bucket_prefix(stack)

    assert len(prefix) <= BUCKET_PREFIX_LENGTH
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*-", prefix), prefix
    assert "--" not in prefix


@pytest.mark.parametrize(
    ("one", "other"),
    [("dev", "Dev"), ("eu.prod", "eu_prod"), ("a" * 40 + "1", "a" * 40 + "2"), ("dev", "dev-1")],
)
def test_no_two_stacks_share_a_bucket_prefix(one, other):
    """The deployer policy scopes the bucket by its prefix: two stacks sharing one would let a
    deployer of one rewrite the other's hosts' configuration."""
    assert config_bucket_prefix(one) != config_bucket_prefix(other)


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (f"arn:aws:iam::{ACCOUNT}:user/ops", [f"arn:aws:iam::{ACCOUNT}:user/ops"]),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run-7",
            [f"arn:aws:iam::{ACCOUNT}:role/deployer", f"arn:aws:iam::{ACCOUNT}:role/*/deployer"],
        ),
    ],
)
def test_the_deployer_is_named_as_iam_sees_its_requests(caller, expected):
    """`aws:PrincipalArn` of a role session is the role (with its path), not the session: a
    policy naming the session would shut out the very deployer that wrote it at its next run."""
    assert principal_patterns(caller) == expected


def test_the_readme_lists_every_output_and_whether_it_is_secret():
    """The outputs table is what an operator (and another stack's StackReference) reads: an output
    missing from it, or marked not secret while it is, misleads both."""
    deployment = deploy({**CONFIG, "adminCidrs": ["203.0.113.0/24"], "backupSchedule": True})
    listed = {
        name: row["secret"]
        for row in section_table("Outputs")
        for name in re.findall(r"`([A-Za-z]+)`", row["output"])
    }

    assert {name: listed.get(name) for name in deployment.outputs} == {
        name: "yes" if exported.secret else "no" for name, exported in deployment.outputs.items()
    }
