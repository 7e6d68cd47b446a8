"""The deploy-time gate: every `pulumi up` ends with the security checks, fed secrets by environment."""

import json
import subprocess

import botocore.session
import pytest
from botocore.validate import validate_parameters
from pulumi.runtime import rpc

from model.gate_credentials import (
    DEFAULT_SESSION_NAME,
    gate_aws_environment,
    go_duration_seconds,
)
from model.gate_environment import ASSUME_ROLES_VARIABLE
from tests.program import MINIMAL_CONFIG, Failed, deploy
from tests.readme import stated

COMMAND = "command:local:Command"
CONFIG = dict(
    MINIMAL_CONFIG,
    hostedZone="example.com",
    tokens=[{"name": "search", "access": [{"collection": "products", "access": "r"}]}],
)


def test_gate_runs_verify_with_a_bounded_wait():
    gate = deploy(CONFIG).one(COMMAND)

    command = gate.inputs["create"]
    assert " -m verify " in command
    assert "--wait 900" in command
    assert "--region eu-central-1" in command


def test_gate_runs_after_the_host_and_the_dns_record_exist():
    """Checking before DNS points at the host would test nothing, or an old host."""
    deployment = deploy(CONFIG)

    dependencies = set(deployment.one(COMMAND).options.dependencies)
    for resource in (
        "qdrant-test-vm",
        "qdrant-test-ip-association",
        "qdrant-test-data-attachment",
        "qdrant-test-dns-a",
    ):
        assert any(urn.endswith(f"::{resource}") for urn in dependencies), resource


def test_gate_receives_every_credential_by_environment_as_a_secret():
    """Command lines show up in `ps`, diffs and logs; the environment of one process does not."""
    deployment = deploy(CONFIG)
    gate = deployment.one(COMMAND)

    environment = gate.inputs["environment"]
    assert environment[rpc._special_sig_key] == rpc._special_secret_sig
    outputs = json.loads(environment["value"]["SECURE_QDRANT_OUTPUTS"])
    assert outputs["apiKey"] == deployment.outputs["apiKey"].value
    assert outputs["tokens"] == deployment.outputs["tokens"].value
    assert outputs["publicIp"] == deployment.outputs["publicIp"].value
    for secret in (outputs["apiKey"], outputs["readOnlyApiKey"], *outputs["tokens"].values()):
        assert secret not in gate.inputs["create"]


def test_gate_runs_again_when_the_instance_is_replaced():
    deployment = deploy(CONFIG)

    assert deployment.outputs["instanceId"].value in deployment.one(COMMAND).inputs["triggers"]


def test_gate_runs_again_for_each_new_configuration_version():
    """A setting changed in place replaces nothing: the host converges to the new document, and
    the gate must wait for it and check the host again, as after a replacement."""
    before, after = deploy(CONFIG), deploy({**CONFIG, "rateLimitRps": 10})

    assert before.one(COMMAND).inputs["triggers"] == [
        before.outputs["instanceId"].value,
        before.outputs["configVersion"].value,
    ]
    assert after.one(COMMAND).inputs["triggers"] != before.one(COMMAND).inputs["triggers"]


def test_verify_on_deploy_false_turns_the_gate_off():
    deployment = deploy(dict(CONFIG, verifyOnDeploy=False))

    assert deployment.of_type(COMMAND) == []


# Signing in to AWS as the stack does


def with_aws(aws_config: dict, **config) -> dict:
    """The test stack's config plus these `aws:` provider settings."""
    return dict(CONFIG, **config, **{f"aws:{key}": value for key, value in aws_config.items()})


def gate_of(aws_config: dict) -> tuple[dict, str]:
    """The gate's environment (checked to be secret as a whole) and its command line."""
    gate = deploy(with_aws(aws_config)).one(COMMAND)
    environment = gate.inputs["environment"]
    assert environment[rpc._special_sig_key] == rpc._special_secret_sig
    return environment["value"], gate.inputs["create"]


def test_gate_signs_in_with_the_stacks_aws_profile():
    """pulumi-aws signs in with `aws:profile` even when the shell holds keys; boto3 would prefer the
    keys and audit another account: the gate hands over the profile and blanks the shell's keys."""
    environment, _ = gate_of({"profile": "prod-deployer"})

    assert environment["AWS_PROFILE"] == "prod-deployer"
    assert environment["AWS_ACCESS_KEY_ID"] == environment["AWS_SECRET_ACCESS_KEY"] == ""
    assert environment["AWS_SESSION_TOKEN"] == ""


def test_gate_assumes_the_stacks_roles_in_order():
    """With `aws:assumeRoles` the stack lives in the last role's account: the audit looks there."""
    environment, command = gate_of(
        {
            "assumeRoles": [
                {"roleArn": "arn:aws:iam::111111111111:role/hop"},
                {
                    "roleArn": "arn:aws:iam::222222222222:role/deploy",
                    "sessionName": "ci",
                    "externalId": "tenant-7",
                    "duration": "1h30m",
                },
            ]
        }
    )

    assert json.loads(environment[ASSUME_ROLES_VARIABLE]) == [
        {"RoleArn": "arn:aws:iam::111111111111:role/hop", "RoleSessionName": DEFAULT_SESSION_NAME},
        {
            "RoleArn": "arn:aws:iam::222222222222:role/deploy",
            "RoleSessionName": "ci",
            "ExternalId": "tenant-7",
            "DurationSeconds": 5400,
        },
    ]
    assert "222222222222" not in command


def test_gate_receives_static_aws_keys_as_secrets_never_on_its_command_line():
    """Keys in `aws:` config win over every other source in pulumi-aws, so they must reach the
    audit; a command line would show them in `ps` and in the diff."""
    keys = {"accessKey": "AKIAEXAMPLE", "secretKey": "example/secret+key", "token": "example-token"}

    environment, command = gate_of(keys)

    assert environment["AWS_ACCESS_KEY_ID"] == keys["accessKey"]
    assert environment["AWS_SECRET_ACCESS_KEY"] == keys["secretKey"]
    assert environment["AWS_SESSION_TOKEN"] == keys["token"]
    for value in keys.values():
        assert value not in command


def test_configured_keys_without_a_token_blank_the_shells_token():
    """A session token left in the shell would pair with the configured keys and break signing."""
    environment = gate_aws_environment({"accessKey": "AKIAEXAMPLEKEY", "secretKey": "secret"})

    assert environment["AWS_SESSION_TOKEN"] == ""


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("sharedCredentialsFiles", "AWS_SHARED_CREDENTIALS_FILE"),
        ("sharedConfigFiles", "AWS_CONFIG_FILE"),
    ],
)
def test_the_stacks_shared_file_reaches_the_audit(key, variable):
    """The profile the stack names may exist only in the files the stack names."""
    environment = gate_aws_environment({"profile": "audit", key: '["/srv/ci/aws"]'})

    assert environment[variable] == "/srv/ci/aws"


def test_a_roles_policies_tags_and_source_identity_reach_sts():
    """They narrow or label the session the provider works with; the audit's session is the same."""
    role = {
        "roleArn": "arn:aws:iam::222222222222:role/deploy",
        "policy": '{"Version": "2012-10-17"}',
        "policyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "tags": {"team": "search", "env": "prod"},
        "transitiveTagKeys": ["team"],
        "sourceIdentity": "ci-bot",
    }

    environment = gate_aws_environment({"assumeRoles": json.dumps([role])})

    [request] = json.loads(environment[ASSUME_ROLES_VARIABLE])
    assert request == {
        "RoleArn": role["roleArn"],
        "RoleSessionName": DEFAULT_SESSION_NAME,
        "Policy": role["policy"],
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "search"}],
        "TransitiveTagKeys": ["team"],
        "SourceIdentity": "ci-bot",
    }
    # STS's own request model, as botocore validates before sending.
    sts_model = botocore.session.get_session().get_service_model("sts")
    validate_parameters(request, sts_model.operation_model("AssumeRole").input_shape)


def test_skipping_the_metadata_api_check_keeps_the_audit_off_imds_too():
    """The provider never takes the instance role's credentials then; neither may the audit."""
    environment = gate_aws_environment({"skipMetadataApiCheck": "true"})

    assert environment["AWS_EC2_METADATA_DISABLED"] == "true"


def test_an_empty_aws_config_leaves_the_shells_credentials_alone():
    assert gate_aws_environment({"region": "eu-west-1"}) == {}


@pytest.mark.parametrize(
    ("aws_config", "problem"),
    [
        ({"sharedCredentialsFiles": '["/a", "/b"]'}, "aws:sharedCredentialsFiles"),
        ({"assumeRoleWithWebIdentity": '{"roleArn": "arn"}'}, "aws:assumeRoleWithWebIdentity"),
        ({"assumeRoles": '[{"sessionName": "x"}]'}, "aws:assumeRoles[0].roleArn"),
        ({"assumeRoles": '[{"roleArn": "a", "duration": "1 hour"}]'}, "assumeRoles[0].duration"),
        ({"assumeRoles": '{"roleArn": "arn"}'}, "aws:assumeRoles: expected a list"),
    ],
)
def test_sign_in_the_gate_cannot_reproduce_stops_the_deployment_first(aws_config, problem):
    """Auditing with other credentials than the stack's would judge another account."""
    with pytest.raises(Failed) as failure:
        deploy(with_aws(aws_config))

    assert problem in str(failure.value)
    assert "verifyOnDeploy: set it to false" in str(failure.value)
    assert failure.value.registered == []


def test_a_gate_turned_off_ignores_the_aws_sign_in_config():
    """Turning the gate off is the way out for sign-in it cannot reproduce."""
    web_identity = {"assumeRoleWithWebIdentity": '{"roleArn": "arn"}'}

    assert deploy(with_aws(web_identity, verifyOnDeploy=False)).of_type(COMMAND) == []


@pytest.mark.parametrize(
    ("duration", "seconds"), [("15m", 900), ("1h30m", 5400), ("1.5h", 5400), ("3600s", 3600)]
)
def test_role_durations_are_read_as_go_durations(duration, seconds):
    """The provider parses `duration` with Go's time.ParseDuration; STS takes whole seconds."""
    assert go_duration_seconds(duration) == seconds


@pytest.mark.parametrize("duration", ["9" * 400 + "h", "9" * 5000 + "s", "2562048h", "\u0661h"])
def test_a_duration_go_refuses_is_refused_by_name(duration):
    """Go's ParseDuration reads ASCII digits into an int64 of nanoseconds and refuses more; the gate
    must refuse it in a line naming the key, not with a traceback."""
    with pytest.raises(ValueError, match="is not a duration"):
        go_duration_seconds(duration)


@pytest.mark.debian  # shellcheck
def test_the_readme_tells_the_deployer_the_posix_shell_every_local_command_needs():
    """pulumi-command runs a local command with `/bin/sh -c` on Linux and macOS and `cmd /C` on
    Windows (its provider/pkg/provider/local/base.go, `interpreter`). The gate's command line is
    quoted for sh and the rotation clock is `date +%s` and `${VAR:?}`: a deployer on Windows
    outside WSL would fail its first deploy, so the README must say so before it."""
    commands = deploy(dict(CONFIG, apiKeyVersion=2)).of_type(COMMAND)
    scripts = [
        c.inputs[step] for c in commands for step in ("create", "update") if step in c.inputs
    ]

    assert len(commands) == 2 and not any("interpreter" in c.inputs for c in commands)
    for script in scripts:
        checked = subprocess.run(
            ["shellcheck", "--shell=sh", "-"],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout
    assert stated(r"deployer runs on (Linux or macOS) \(or WSL\)[^.]*? under (`/bin/sh`)") == (
        "Linux or macOS",
        "`/bin/sh`",
    )
