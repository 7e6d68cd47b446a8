"""The instance role as IAM evaluates it: every policy the program gives the role, judged by an IAM
evaluator this project did not write.

The policies are the inline document the program registers and the AWS managed policies it attaches,
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
import subprocess
from pathlib import Path
from typing import Any

import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, Deployment, deploy

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


def role_policies(deployment: Deployment) -> list[dict[str, Any]]:
    """Every identity policy of the (one) instance role, inline and managed, as the evaluator takes
    them."""
    inline = [
        {"name": p.name, "policy": json.loads(p.inputs["policy"])}
        for p in deployment.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    managed = [
        {"name": a.inputs["policyArn"], "policy": managed_policy_document(a.inputs["policyArn"])}
        for a in deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert inline and managed, "the role should carry both its inline and its managed policy"
    return inline + managed


@pytest.fixture(scope="module")
def role() -> dict[str, Any]:
    deployment = deploy(MINIMAL_CONFIG)
    [role] = deployment.of_type("aws:iam/role:Role")
    assert sorted(p.inputs["name"] for p in deployment.of_type("aws:ssm/parameter:Parameter")) == [
        arn.split(":parameter")[1] for arn in KEY_PARAMETERS
    ]
    return {
        "policies": role_policies(deployment),
        # What the instance's credentials are: a session of the role, named for the instance.
        "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/i-0123456789abcdef0",
        "accountId": ACCOUNT,
    }


def decide(role: dict[str, Any], action: str, resource: str) -> str:
    """IAM's decision for one request by the instance: Allowed, ImplicitlyDenied or ExplicitlyDenied."""
    request = dict(role, requests=[{"action": action, "resource": resource}])
    result = subprocess.run(
        ["node", str(SIMULATOR / "simulate.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [decision] = json.loads(result.stdout)
    return str(decision)


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
        ("ec2messages:GetMessages", "*"),
    ],
)
def test_session_manager_still_reaches_the_instance(role, action, resource):
    """Session Manager is the way in when `adminCidrs` is empty: the Deny must not cost the agent
    its registration or its channels."""
    assert decide(role, action, resource) == "Allowed"
