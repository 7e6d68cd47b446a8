"""The deploy-time gate: every `pulumi up` ends with the security checks, fed secrets by environment."""

import json

from pulumi.runtime import rpc

from tests.program import MINIMAL_CONFIG, deploy

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
    for resource in ("qdrant-test-vm", "qdrant-test-ip-association", "qdrant-test-data-attachment", "qdrant-test-dns-a"):
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

    assert deployment.one(COMMAND).inputs["triggers"] == [deployment.outputs["instanceId"].value]


def test_verify_on_deploy_false_turns_the_gate_off():
    deployment = deploy(dict(CONFIG, verifyOnDeploy=False))

    assert deployment.of_type(COMMAND) == []
