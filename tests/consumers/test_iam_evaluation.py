"""The instance role and the backups' DLM role as IAM evaluates them: every policy the program gives
each role, judged by an IAM evaluator this project did not write.

The policies are the inline documents the program registers and the AWS managed policies it attaches,
the latter as AWS publishes them (moto ships the published documents; AmazonSSMManagedInstanceCore
is v2 there and on AWS's managed policy reference). The judge is @cloud-copilot/iam-simulate
(`iam_simulate/`, pinned in its package-lock.json): it implements IAM's identity-policy evaluation
(explicit Deny over Allow, NotResource, wildcards) and refuses a request whose action does not exist
or whose resource is not a type that action takes, so a misspelt question cannot pass as "denied".
moto's own evaluator cannot judge this role: moto authorizes every SSM call against the resource
"*", and it takes a statement without `Resource` (one with NotResource) as a match whatever its
Effect, so it would read the Deny below as an Allow.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from components.backups import SNAPSHOT_TAG, STACK_TAG
from components.deployer_policy import DeployerScope, permissions_boundary
from components.host import SSM_CORE_ACTIONS
from components.host import SSM_CORE_POLICY as SSM_CORE
from model.settings import METRICS_NAMESPACE
from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, Deployment, Registered, deploy

SIMULATOR = Path(__file__).resolve().parent / "iam_simulate"
PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter"
KEY_PARAMETERS = [
    f"{PARAMETER}/secure-qdrant/test/api-key",
    f"{PARAMETER}/secure-qdrant/test/previous-api-key",
    f"{PARAMETER}/secure-qdrant/test/read-only-api-key",
]
OTHER_PARAMETER = f"{PARAMETER}/billing/prod/database-password"
INSTANCE = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
VALUE_READS = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParameterHistory",
    "ssm:GetParametersByPath",
]


def managed_policy_document(arn: str) -> dict[str, Any]:
    """AWS's published document for a managed policy ARN (`arn:aws:iam::aws:policy/<path><name>`)."""
    name = arn.rsplit("/", 1)[1]
    published = json.loads(aws_managed_policies_data)[name]
    assert arn == f"arn:aws:iam::aws:policy{published['Path']}{name}", arn
    document: dict[str, Any] = published["Document"]
    return document


def role_policies(deployment: Deployment, role: Registered) -> list[dict[str, Any]]:
    """Every identity policy of `role`, inline and managed, as the evaluator takes them (inline
    policies name the role by id, attachments by name)."""
    names = (role.name, role.resource_id)
    inline = [
        {"name": p.name, "policy": json.loads(p.inputs["policy"])}
        for p in deployment.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] in names
    ]
    managed = [
        {"name": a.inputs["policyArn"], "policy": managed_policy_document(a.inputs["policyArn"])}
        for a in deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] in names
    ]
    return inline + managed


def session(
    deployment: Deployment, role_name: str, session_name: str, scope: DeployerScope | None = None
) -> dict[str, Any]:
    """The role's policies, the permissions boundary it carries if any (the stack's, rendered for
    `scope`), and a principal that is a session of it: every decision below is the role's as
    deployed, under its boundary when it has one."""
    [role] = [r for r in deployment.of_type("aws:iam/role:Role") if r.name == role_name]
    scope = scope or DeployerScope("test", REGION, ACCOUNT, MINIMAL_CONFIG["domain"])
    carried = role.inputs.get("permissionsBoundary")
    assert carried in (None, scope.boundary)
    boundary = {"name": "boundary", "policy": permissions_boundary(scope)}
    return {
        "policies": role_policies(deployment, role),
        "boundaries": [boundary] if carried else [],
        "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/{session_name}",
        "accountId": ACCOUNT,
    }


# The roles with the stack's permissions boundary on them (the least-privilege deployer's setting).
BOUNDARY_ON = {"rolePermissionsBoundary": True}


@pytest.fixture(scope="module", params=[{}, BOUNDARY_ON], ids=["default", "boundary-on"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """Each role is judged as each setting deploys it: by default its own policies alone must hold
    (no boundary), and the boundary must not cut off a call the role makes."""
    return deploy({**MINIMAL_CONFIG, **request.param})


@pytest.fixture(scope="module")
def role(deployment: Deployment) -> dict[str, Any]:
    assert sorted(p.inputs["name"] for p in deployment.of_type("aws:ssm/parameter:Parameter")) == [
        arn.split(":parameter")[1] for arn in KEY_PARAMETERS
    ]
    # What the instance's credentials are: a session of the role, named for the instance.
    instance = session(deployment, "qdrant-test-role", "i-0123456789abcdef0")
    names = [p["name"] for p in instance["policies"]]
    assert SSM_CORE in names and len(names) > 1, (
        "the role should carry its inline and managed policies"
    )
    return instance


@pytest.fixture(scope="module")
def dlm(deployment: Deployment) -> dict[str, Any]:
    return session(deployment, "qdrant-test-dlm", "dlm-session")


@pytest.fixture(scope="module")
def bounded_role() -> dict[str, Any]:
    """The instance role with the boundary on: what caps a role the deployer has rewritten."""
    deployment = deploy({**MINIMAL_CONFIG, **BOUNDARY_ON})
    instance = session(deployment, "qdrant-test-role", "i-0123456789abcdef0")
    assert instance["boundaries"], "the role should carry the stack's boundary"
    return instance


def decide(
    role: dict[str, Any], action: str, resource: str, context: dict[str, Any] | None = None
) -> str:
    """IAM's decision for one request by the role: Allowed, ImplicitlyDenied or ExplicitlyDenied.
    `context` holds the request's condition keys (a list for a multi-valued one)."""
    [decision] = decide_all(role, [(action, resource, context or {})])
    return decision


def decide_all(role: dict[str, Any], requests: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """`decide` for many (action, resource, context) requests, in one run of the evaluator."""
    questions = [{"action": a, "resource": r, "context": c} for a, r, c in requests]
    result = subprocess.run(
        ["node", str(SIMULATOR / "simulate.mjs")],
        input=json.dumps(dict(role, requests=questions)),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    decisions = json.loads(result.stdout)
    assert len(decisions) == len(requests)
    return [str(decision) for decision in decisions]


@pytest.mark.parametrize("action", ["ssm:GetParameter", "ssm:GetParameters"])
@pytest.mark.parametrize("parameter", KEY_PARAMETERS)
def test_instance_reads_every_key_parameter(role, action, parameter):
    """The bootstrap (and its rotation timer) fetches the master, read-only and previous master key
    with one GetParameters call; GetParameter serves a single key."""
    assert decide(role, action, parameter) == "Allowed"


@pytest.mark.parametrize("parameter", KEY_PARAMETERS)
def test_key_reads_are_granted_by_the_roles_own_policy(role, parameter):
    """The bootstrap's GetParameters call must not hang on a grant in a managed policy AWS may narrow
    (and that the Deny overrides for every other parameter)."""
    own = dict(role, policies=[p for p in role["policies"] if not p["name"].startswith("arn:")])

    assert decide(own, "ssm:GetParameters", parameter) == "Allowed"


ANOTHER_STACKS_KEY = f"{PARAMETER}/secure-qdrant/prod/api-key"


def own_allows(role: dict[str, Any]) -> dict[str, Any]:
    """The role's own inline policies with their Allow statements only: what they grant without the
    Deny that covers them, nor the boundary's."""

    def allows(document: dict[str, Any]) -> dict[str, Any]:
        return dict(
            document, Statement=[s for s in document["Statement"] if s["Effect"] == "Allow"]
        )

    own = [p for p in role["policies"] if not p["name"].startswith("arn:")]
    unbounded = {key: value for key, value in role.items() if key != "boundaries"}
    return dict(unbounded, policies=[dict(p, policy=allows(p["policy"])) for p in own])


@pytest.mark.parametrize("action", ["ssm:GetParameter", "ssm:GetParameters"])
@pytest.mark.parametrize("parameter", [ANOTHER_STACKS_KEY, OTHER_PARAMETER])
def test_the_roles_own_grant_names_only_its_keys(role, action, parameter):
    """Two layers, each holding on its own: the Deny takes back the managed policy's read-any grant,
    and the role's own Allow names this stack's keys only. An Allow widened to `*` would pass every
    other test here (the Deny masks it) and would read every parameter the day the Deny is dropped or
    narrowed."""
    assert decide(own_allows(role), action, parameter) == "ImplicitlyDenied"


@pytest.mark.parametrize("action", VALUE_READS)
def test_instance_reads_no_other_parameter_in_the_account(role, action):
    """A compromised host must not turn into a reader of every secret in Parameter Store: the
    managed Session Manager policy allows GetParameter(s) on `*`, the inline Deny takes that back.
    """
    assert decide(role, action, OTHER_PARAMETER) == "ExplicitlyDenied"


@pytest.mark.parametrize("path", ["/secure-qdrant", "/secure-qdrant/test", "/billing"])
def test_instance_cannot_read_by_path(role, path):
    """AWS authorizes GetParametersByPath against the path, not the parameters it returns: allowed
    on any ancestor of the keys, it would return them and their neighbours."""
    assert decide(role, "ssm:GetParametersByPath", f"{PARAMETER}{path}") == "ExplicitlyDenied"


@pytest.mark.parametrize("parameter", KEY_PARAMETERS)
def test_instance_cannot_read_the_keys_history(role, parameter):
    """A parameter's history returns its earlier values: the keys rotated away must stay unreadable."""
    assert decide(role, "ssm:GetParameterHistory", parameter) != "Allowed"


def test_instance_cannot_list_parameter_names(role):
    """DescribeParameters returns no values, but the bootstrap never needs it and names tell an
    intruder where the account's secrets are."""
    assert decide(role, "ssm:DescribeParameters", "*") != "Allowed"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ssm:UpdateInstanceInformation", INSTANCE),
        ("ssmmessages:CreateControlChannel", "*"),
        ("ssmmessages:CreateDataChannel", "*"),
        ("ssmmessages:OpenControlChannel", "*"),
        ("ssmmessages:OpenDataChannel", "*"),
        *(
            ("ec2messages:" + action, "*")
            for action in ("GetMessages", "AcknowledgeMessage", "SendReply", "GetEndpoint")
        ),
        *(
            ("ssm:" + action, "*")
            for action in (
                "ListInstanceAssociations",
                "PutInventory",
                "UpdateInstanceAssociationStatus",
                "GetDocument",
            )
        ),
    ],
)
def test_session_manager_still_reaches_the_instance(role, action, resource):
    """Session Manager is the way in when `adminCidrs` is empty: the Deny must not cost the agent
    its registration or its channels."""
    assert decide(role, action, resource) == "Allowed"


def test_the_boundary_leaves_the_managed_policy_every_action_aws_publishes_in_it():
    """Session Manager's agent uses what AWS's policy grants: a boundary missing one of its actions
    would cut the agent off, one with more would cap nothing."""
    published = managed_policy_document(SSM_CORE)["Statement"]

    assert sorted(SSM_CORE_ACTIONS) == sorted(a for s in published for a in s["Action"])


# The escalation a boundary stops: the deployer writes `*:*` into a role it can assume.
EVERYTHING = {"name": "everything", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/intruder"),
        ("iam:AttachUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/deployer"),
        ("ssm:GetParameter", OTHER_PARAMETER),
        ("ec2:TerminateInstances", INSTANCE),
        ("s3:GetObject", "arn:aws:s3:::billing/report.csv"),
    ],
    ids=["create-user", "attach-admin", "other-parameter", "terminate", "read-s3"],
)
def test_a_role_given_everything_still_gets_no_more_than_its_boundary(
    bounded_role, action, resource
):
    """The deployer writes the roles' inline policies (the Deny among them too) and could create a
    role that trusts it: what caps such a role is the stack's boundary, which it cannot remove
    (docs/deployer-policy.md)."""
    widened = dict(bounded_role, policies=[EVERYTHING])

    assert decide(widened, action, resource) != "Allowed"


# ------------------------------------------------------------------------- the host's metrics


def test_instance_publishes_metrics_to_its_own_namespace(role):
    """The publisher's PutMetricData, with the namespace it sends (cloud-init/metrics.py)."""
    decision = decide(
        role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": METRICS_NAMESPACE}
    )

    assert decision == "Allowed"


@pytest.mark.parametrize("namespace", ["AWS/EBS", "AWS/EC2", "SecureQdrantX", "Billing"])
def test_instance_cannot_publish_into_another_namespace(role, namespace):
    """A compromised host must not write into metrics it does not own: zeros into DLM's
    SnapshotsCreateFailed (AWS/EBS) would hide failed backups from their alarm."""
    assert (
        decide(role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace})
        != "Allowed"
    )


@pytest.mark.parametrize(
    "action",
    ["cloudwatch:DeleteAlarms", "cloudwatch:DisableAlarmActions", "cloudwatch:PutMetricAlarm"],
)
def test_instance_cannot_silence_its_alarms(role, action):
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:qdrant-test-alarms-qdrant-down-0123456"

    assert decide(role, action, alarm) != "Allowed"


# --------------------------------------------------------------------------------- DLM's role

VOLUME = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0123456789abcdef0"
SNAPSHOT = f"arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0"


def tagged(tags: dict[str, str]) -> dict[str, str]:
    """The request's context for a resource carrying `tags`."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


THE_STACKS = tagged({STACK_TAG: "qdrant-test"})
THE_STACKS_BACKUP = tagged({STACK_TAG: "qdrant-test", **SNAPSHOT_TAG})
ANOTHER_STACKS_BACKUP = tagged({STACK_TAG: "qdrant-billing", **SNAPSHOT_TAG})


def test_dlm_snapshots_the_stacks_volume(dlm):
    """EC2 authorizes CreateSnapshot on the volume and on the snapshot it creates: both must pass."""
    assert decide(dlm, "ec2:CreateSnapshot", VOLUME, THE_STACKS) == "Allowed"
    assert decide(dlm, "ec2:CreateSnapshot", SNAPSHOT) == "Allowed"


@pytest.mark.parametrize(
    "volume_tags",
    [tagged({STACK_TAG: "qdrant-billing"}), tagged({"Name": "qdrant-test"}), {}],
    ids=["another-stacks-volume", "without-the-stack-tag", "untagged"],
)
def test_dlm_cannot_snapshot_another_volume(dlm, volume_tags):
    """A snapshot is a full copy of a volume's data: the backup role of this stack must not be able
    to copy out another stack's database or any other volume of the account."""
    assert decide(dlm, "ec2:CreateSnapshot", VOLUME, volume_tags) != "Allowed"


@pytest.mark.parametrize(
    "context", [{"ec2:CreateAction": "CreateSnapshot"}, THE_STACKS], ids=["at-creation", "after"]
)
def test_dlm_tags_its_snapshots_in_the_call_that_creates_them_or_after(dlm, context):
    """Which of the two DLM does is not documented: a role allowing only one could fail every
    backup."""
    assert decide(dlm, "ec2:CreateTags", SNAPSHOT, context) == "Allowed"


def test_dlm_expires_the_stacks_backups(dlm):
    assert decide(dlm, "ec2:DeleteSnapshot", SNAPSHOT, THE_STACKS_BACKUP) == "Allowed"


@pytest.mark.parametrize(
    "snapshot_tags",
    [ANOTHER_STACKS_BACKUP, THE_STACKS, {}],
    ids=["another-stacks-backup", "the-stacks-own-snapshot-not-the-schedules", "untagged"],
)
def test_dlm_cannot_delete_another_snapshot(dlm, snapshot_tags):
    """Only the schedule's snapshots of this stack expire: not another stack's backups, not a
    snapshot an operator took of this volume by hand (it has the stack tag, not the schedule's), not
    any other snapshot of the account."""
    assert decide(dlm, "ec2:DeleteSnapshot", SNAPSHOT, snapshot_tags) != "Allowed"


@pytest.mark.parametrize("action", ["ec2:ModifySnapshotAttribute", "ec2:CopySnapshot"])
def test_dlm_cannot_share_or_copy_the_backups(dlm, action):
    """ModifySnapshotAttribute shares a snapshot with another account or the public, CopySnapshot
    makes a copy that may be encrypted under another key, in another region: either takes the
    database where this stack's protections do not follow it, and the schedule asks for neither."""
    assert decide(dlm, action, SNAPSHOT, THE_STACKS_BACKUP) != "Allowed"


@pytest.mark.parametrize(
    "action",
    [
        "ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:DescribeInstances",
        "ec2:DescribeAvailabilityZones", "ec2:DescribeSnapshotAttribute",
        "ec2:DescribeFastSnapshotRestores", "ec2:DescribeSnapshotTierStatus",
    ],
)  # fmt: skip
def test_dlm_finds_the_volumes_and_its_snapshots(dlm, action):
    """DLM lists the volumes carrying its target tag and counts the snapshots it keeps. EC2's
    Describe actions take no resource-level permissions: they are granted on `*` or not at all."""
    assert decide(dlm, action, "*") == "Allowed"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ec2:DeleteVolume", VOLUME),
        ("ec2:DetachVolume", VOLUME),
        ("ec2:CreateTags", VOLUME),
        ("ec2:TerminateInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
        ("ssm:GetParameter", f"{PARAMETER}/secure-qdrant/test/api-key"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/qdrant-test-role"),
    ],
)
def test_dlm_cannot_touch_the_data_volume_the_instance_or_the_keys(dlm, action, resource):
    """The backup role can make and expire snapshots, never delete or detach the database, stop
    the host, read its keys or hand itself another role."""
    assert decide(dlm, action, resource) != "Allowed"


# ------------------------------------------------------------------- the configuration bucket

OTHER_HOST = "qdrant-billing"
# A principal of the same account with S3 wide open in its own policy (`s3:*` on `*` is common).
S3_EVERYTHING = {"name": "s3-everything", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}  # fmt: skip


def bucket_policy(deployment: Deployment) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(
        deployment.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    )
    return policy


def config_object(deployment: Deployment, host: str, what: str = "config") -> str:
    bucket = deployment.one("aws:s3/bucket:Bucket").resource_id
    return f"arn:aws:s3:::{bucket}/hosts/{host}/{what}.json"


@pytest.fixture(scope="module")
def host_in_bucket(deployment: Deployment, role: dict[str, Any]) -> dict[str, Any]:
    """The instance role's requests as S3 judges them: its policies and the bucket's."""
    return dict(role, resourcePolicy=bucket_policy(deployment))


@pytest.fixture(scope="module")
def stranger(deployment: Deployment) -> dict[str, Any]:
    """Another role of the account, allowed everything in S3 by its own policy."""
    return {
        "policies": [S3_EVERYTHING],
        "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/analytics/etl-job",
        "accountId": ACCOUNT,
        "resourcePolicy": bucket_policy(deployment),
    }


def in_bucket(who: dict[str, Any], action: str, resource: str, tls: bool = True) -> str:
    """IAM's decision on a request to the bucket, with the keys AWS sets on every such request
    (the evaluator does not derive them): the transport, and `aws:PrincipalArn`, which for a role
    session is the role's ARN."""
    role = re.fullmatch(r"arn:aws:sts::(\d+):assumed-role/([^/]+)/.+", who["principal"])
    assert role, who["principal"]
    context = {
        "aws:SecureTransport": "true" if tls else "false",
        "aws:PrincipalArn": f"arn:aws:iam::{role[1]}:role/{role[2]}",
    }
    return decide(who, action, resource, context)


def test_the_host_reads_its_configuration(deployment, host_in_bucket):
    """The converge timer's GetObject, every minute and at first boot."""
    assert (
        in_bucket(host_in_bucket, "s3:GetObject", config_object(deployment, "qdrant-test"))
        == "Allowed"
    )


def test_the_host_reports_its_status(deployment, host_in_bucket):
    assert (
        in_bucket(
            host_in_bucket, "s3:PutObject", config_object(deployment, "qdrant-test", "status")
        )
        == "Allowed"
    )


@pytest.mark.parametrize(
    ("action", "host", "what"),
    [
        ("s3:GetObject", OTHER_HOST, "config"),
        ("s3:GetObject", "qdrant-test", "status"),
        ("s3:GetObjectVersion", "qdrant-test", "config"),
        ("s3:PutObject", OTHER_HOST, "status"),
    ],
    ids=["another-hosts-config", "status", "older-versions", "another-hosts-status"],
)
def test_the_host_touches_nothing_else_in_the_bucket(
    deployment, host_in_bucket, action, host, what
):
    """A compromised host learns no other host's configuration (their admin networks, names) and
    cannot fake another host's report to the deploy gate."""
    assert in_bucket(host_in_bucket, action, config_object(deployment, host, what)) != "Allowed"


@pytest.mark.parametrize("action", ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"])
def test_the_host_cannot_rewrite_its_configuration(deployment, host_in_bucket, action):
    """The document carries the bootstrap and the systemd units the host runs as root: a host that
    could rewrite it would make its compromise survive every `pulumi up`... until the next one, and
    could make itself refuse every later version."""
    assert (
        in_bucket(host_in_bucket, action, config_object(deployment, "qdrant-test"))
        == "ExplicitlyDenied"
    )


def test_the_hosts_own_policies_name_only_its_keys(deployment, role):
    """Without the bucket policy (deleted, or replaced by hand), the role's own grant must still
    stop at its two keys."""
    without_bucket = {key: value for key, value in role.items() if key != "resourcePolicy"}

    assert (
        decide(without_bucket, "s3:GetObject", config_object(deployment, OTHER_HOST))
        == "ImplicitlyDenied"
    )
    assert (
        decide(without_bucket, "s3:PutObject", config_object(deployment, "qdrant-test"))
        == "ImplicitlyDenied"
    )


def test_nothing_is_served_without_tls(deployment, host_in_bucket):
    """A request in cleartext would show the document (and the role's signature) on the path."""
    found = in_bucket(
        host_in_bucket, "s3:GetObject", config_object(deployment, "qdrant-test"), tls=False
    )

    assert found == "ExplicitlyDenied"


@pytest.mark.parametrize(
    ("action", "what"),
    [
        ("s3:GetObject", "config"),
        ("s3:GetObjectVersion", "config"),
        ("s3:PutObject", "config"),
        ("s3:DeleteObject", "config"),
        ("s3:GetObject", "status"),
        ("s3:PutObject", "status"),
    ],
)
def test_another_principal_of_the_account_can_neither_read_nor_write(
    deployment, stranger, action, what
):
    """Whatever S3 rights another principal's own policies give it, the bucket policy denies it
    the host's configuration: reading it maps the host's defences, writing it is root on the host."""
    assert (
        in_bucket(stranger, action, config_object(deployment, "qdrant-test", what))
        == "ExplicitlyDenied"
    )
