"""Who may write the audit log's group in CloudWatch Logs, as IAM evaluates it: the instance role
into its own group's streams and nowhere else, and no other principal the program makes (the
backups' role, the deployer) nor an unrelated one.

CloudWatch Logs has no resource policy that could keep a principal out of a group: what writes is
decided by each principal's own policies, so "only the instance role" is proved on every policy the
program writes, judged by the evaluator of `test_iam_evaluation`.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.deployer_policy import DeployerScope, deployer_policies
from model.audit_log import audit_log_group_name, log_group_arn
from tests.consumers.test_iam_evaluation import BOUNDARY_ON, decide, session
from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, Deployment, deploy

GROUP = log_group_arn(REGION, ACCOUNT, audit_log_group_name("qdrant-test"))
STREAM = f"{GROUP}:log-stream:qdrant-test"
OTHER_GROUPS = [
    log_group_arn(REGION, ACCOUNT, audit_log_group_name("qdrant-billing")),
    log_group_arn(REGION, ACCOUNT, audit_log_group_name("qdrant-test-2")),
    log_group_arn(REGION, ACCOUNT, "/aws/lambda/payments"),
]
WRITES = ["logs:CreateLogStream", "logs:PutLogEvents"]


@pytest.fixture(scope="module", params=[{}, BOUNDARY_ON], ids=["default", "boundary-on"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return deploy({**MINIMAL_CONFIG, **request.param})


@pytest.fixture(scope="module")
def role(deployment: Deployment) -> dict[str, Any]:
    return session(deployment, "qdrant-test-role", "i-0123456789abcdef0")


def test_the_program_names_the_group_the_role_writes(deployment):
    """The grant below is for the group the program creates, not one of the same pattern."""
    [group] = deployment.of_type("aws:cloudwatch/logGroup:LogGroup")

    assert log_group_arn(REGION, ACCOUNT, group.inputs["name"]) == GROUP


@pytest.mark.parametrize("action", WRITES)
def test_the_instance_ships_into_its_own_stream(role, action):
    """The shipper's two calls (cloud-init/audit_shipper.py), at first boot and every minute."""
    assert decide(role, action, STREAM) == "Allowed"


@pytest.mark.parametrize("action", WRITES)
@pytest.mark.parametrize("group", OTHER_GROUPS)
def test_the_instance_writes_into_no_other_group(role, action, group):
    """A compromised host must not write into another stack's audit log (or a prefix-sharing
    stack's) nor into other services' logs, where forged lines would mislead their readers."""
    assert decide(role, action, f"{group}:log-stream:qdrant-test") != "Allowed"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("logs:DeleteLogGroup", GROUP),
        ("logs:DeleteLogStream", STREAM),
        ("logs:PutRetentionPolicy", GROUP),
        ("logs:DeleteRetentionPolicy", GROUP),
        ("logs:GetLogEvents", STREAM),
        ("logs:FilterLogEvents", GROUP),
        ("logs:PutSubscriptionFilter", GROUP),
    ],
)
def test_the_instance_can_neither_erase_nor_expire_nor_read_what_it_shipped(role, action, resource):
    """Root on the host adds lines and nothing more: the record of how it was broken into stays
    (no delete, no shorter retention, no copy elsewhere), and it learns nothing from the log."""
    assert decide(role, action, resource) != "Allowed"


@pytest.mark.parametrize("action", WRITES)
def test_the_backups_role_cannot_write_the_audit_log(deployment, action):
    dlm = session(deployment, "qdrant-test-dlm", "dlm-session")

    assert decide(dlm, action, STREAM) == "ImplicitlyDenied"


@pytest.mark.parametrize("action", WRITES)
def test_the_deployer_manages_the_group_but_cannot_forge_its_lines(action):
    """A leaked deployer key can delete the stack, and says so in CloudTrail; it cannot write audit
    lines in the host's name."""
    scope = DeployerScope("test", REGION, ACCOUNT, MINIMAL_CONFIG["domain"])
    deployer = {
        "policies": [
            {"name": part, "policy": doc} for part, doc in deployer_policies(scope).items()
        ],
        "principal": f"arn:aws:iam::{ACCOUNT}:user/deployer",
        "accountId": ACCOUNT,
    }

    assert decide(deployer, "logs:PutRetentionPolicy", GROUP) == "Allowed"
    assert decide(deployer, action, STREAM) == "ImplicitlyDenied"


@pytest.mark.parametrize("action", WRITES)
def test_an_unrelated_principal_of_the_account_cannot_write(action):
    """Another workload's role, with its own logs grant on its own groups."""
    other = {
        "policies": [
            {
                "name": "its-own-logs",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/*",
                        }
                    ],
                },
            }
        ],
        "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/payments/lambda",
        "accountId": ACCOUNT,
    }

    assert decide(other, action, STREAM) == "ImplicitlyDenied"
