"""Revoking one token under mocks: what a revocable token carries, what the stack exports about
revocations, and the deploy-time command that keeps Qdrant's allowlist in step with the config."""

import json

import jwt
import pytest
from pulumi.runtime import rpc

from tests.program import MINIMAL_CONFIG, Deployment, deploy

COMMAND = "command:local:Command"
ALLOWLIST = "secure-qdrant-tokens"
TOKENS = [
    {"name": "search", "access": [{"collection": "products", "access": "r"}], "revocable": True},
    {"name": "leaked", "access": "r", "revocable": True, "revoked": True},
    {"name": "batch", "access": [{"collection": "products", "access": "rw"}]},
]
CONFIG = dict(MINIMAL_CONFIG, hostedZone="example.com", tokens=TOKENS)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deploy(CONFIG)


def command(deployment: Deployment, suffix: str):
    [found] = [c for c in deployment.of_type(COMMAND) if c.name.endswith(suffix)]
    return found


def test_a_revocable_token_is_valid_only_while_the_allowlist_holds_its_name(deployment):
    """Qdrant checks `value_exists` on every request: deleting the point refuses this token alone."""
    tokens = deployment.outputs["tokens"].value
    claims = jwt.decode(tokens["search"], deployment.outputs["apiKey"].value, algorithms=["HS256"])

    assert claims == {
        "access": [{"collection": "products", "access": "r"}],
        "value_exists": {
            "collection": ALLOWLIST,
            "matches": [{"key": "token_id", "value": "search"}],
        },
        "subject": "search",
    }
    assert deployment.outputs["tokenScopes"].value["search"] == claims


def test_a_token_not_marked_revocable_carries_no_allowlist_claim(deployment):
    """An allowlist lookup on every request is a cost only revocable tokens pay."""
    assert "value_exists" not in deployment.outputs["tokenScopes"].value["batch"]


def test_revoked_tokens_are_exported_by_name_for_verify_and_review(deployment):
    """The token stays in the secret `tokens` output so that `verify` can prove Qdrant refuses it."""
    assert deployment.outputs["revokedTokens"].value == ["leaked"]
    assert deployment.outputs["revokedTokens"].secret is False
    assert "leaked" in deployment.outputs["tokens"].value


def test_the_allowlist_is_synced_after_the_host_and_its_dns_record(deployment):
    """Syncing needs Qdrant answering through the edge, with the current master key."""
    sync = command(deployment, "-allowlist-sync")

    assert " -m verify.allowlist " in sync.inputs["create"] + " "
    assert "--wait 900" in sync.inputs["create"]
    dependencies = set(sync.options.dependencies)
    for resource in ("qdrant-test-vm", "qdrant-test-ip-association", "qdrant-test-dns-a"):
        assert any(urn.endswith(f"::{resource}") for urn in dependencies), resource


def test_the_gate_runs_after_the_allowlist_is_in_step(deployment):
    """Otherwise the gate would judge a revoked token before its point is gone."""
    gate = command(deployment, "-verify-checks")

    assert any(urn.endswith("::qdrant-test-allowlist-sync") for urn in gate.options.dependencies)


def test_the_allowlist_sync_gets_the_master_key_and_the_revocations_by_environment_only(deployment):
    sync = command(deployment, "-allowlist-sync")

    environment = sync.inputs["environment"]
    assert environment[rpc._special_sig_key] == rpc._special_secret_sig
    outputs = json.loads(environment["value"]["SECURE_QDRANT_OUTPUTS"])
    assert outputs["apiKey"] == deployment.outputs["apiKey"].value
    assert outputs["revokedTokens"] == ["leaked"]
    assert deployment.outputs["apiKey"].value not in sync.inputs["create"]


def test_the_allowlist_syncs_even_with_the_gate_off():
    """Revocation must not depend on the security checks being switched on."""
    deployment = deploy(dict(CONFIG, verifyOnDeploy=False))

    assert [c.name for c in deployment.of_type(COMMAND)] == ["qdrant-test-allowlist-sync"]


def test_no_allowlist_command_without_revocable_tokens():
    deployment = deploy(dict(MINIMAL_CONFIG, tokens=[{"name": "batch", "access": "r"}]))

    assert not [c for c in deployment.of_type(COMMAND) if c.name.endswith("-allowlist-sync")]
