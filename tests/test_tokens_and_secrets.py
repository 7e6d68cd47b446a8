"""Keys and tokens: generated, secret everywhere, scoped exactly as configured, never in user data."""

import datetime as dt

import jwt
import pytest
import yaml
from pulumi.runtime import rpc

from model.settings import AccessRule, TokenSpec
from model.tokens import mint_token, token_claims
from tests.program import MINIMAL_CONFIG, deploy

TOKENS = [
    {"name": "search", "access": [{"collection": "products", "access": "r"}]},
    {
        "name": "ingest",
        "access": [
            {"collection": "products", "access": "rw"},
            {"collection": "events", "access": "prw"},
        ],
        "expiresAt": "2099-01-01",
    },
    {"name": "auditor", "access": "r", "expiresAt": "2098-06-30T12:00:00Z"},
    {"name": "admin-ci", "access": "m"},
    {
        "name": "revocable",
        "access": "r",
        "valueExists": {"collection": "tokens", "matches": [{"key": "id", "value": 7}]},
    },
]


def epoch(*date_and_time):
    return int(dt.datetime(*date_and_time, tzinfo=dt.UTC).timestamp())


EXPECTED_CLAIMS = {
    "search": {"access": [{"collection": "products", "access": "r"}], "subject": "search"},
    "ingest": {
        "access": [
            {"collection": "products", "access": "rw"},
            {"collection": "events", "access": "prw"},
        ],
        "exp": epoch(2099, 1, 1),
        "subject": "ingest",
    },
    "auditor": {"access": "r", "exp": epoch(2098, 6, 30, 12), "subject": "auditor"},
    "admin-ci": {"access": "m", "subject": "admin-ci"},
    "revocable": {
        "access": "r",
        "value_exists": {"collection": "tokens", "matches": [{"key": "id", "value": 7}]},
        "subject": "revocable",
    },
}
CONFIG = dict(MINIMAL_CONFIG, tokens=TOKENS, adminCidrs=["203.0.113.0/24"])


@pytest.fixture(scope="module")
def deployment():
    return deploy(CONFIG)


@pytest.mark.parametrize("output", ["apiKey", "readOnlyApiKey", "tokens", "sshPrivateKey"])
def test_credentials_are_exported_as_secrets(deployment, output):
    """Secret outputs are encrypted in state and masked in `pulumi up` and `stack output`."""
    assert deployment.outputs[output].value
    assert deployment.outputs[output].secret is True


def test_token_scopes_are_plain_for_audit(deployment):
    """Scopes are not secret: reviewers can see who may do what without seeing a credential."""
    scopes = deployment.outputs["tokenScopes"]
    assert scopes.secret is False
    assert scopes.value == EXPECTED_CLAIMS


def test_every_token_verifies_under_the_master_key_with_exactly_the_configured_claims(deployment):
    """Qdrant accepts HS256 signed with the raw master key; any extra or missing claim changes
    what the token may do."""
    key = deployment.outputs["apiKey"].value
    tokens = deployment.outputs["tokens"].value

    assert set(tokens) == set(EXPECTED_CLAIMS)
    for name, token in tokens.items():
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
        assert claims == EXPECTED_CLAIMS[name], name


def test_every_minted_token_names_its_application_in_subject(deployment):
    """Qdrant's audit log records a JWT's `subject` claim (a string, `src/common/auth/claims.rs`;
    not `sub`) as the line's `subject`: without it an incident cannot say which application's
    token did what."""
    key = deployment.outputs["apiKey"].value
    for name, token in deployment.outputs["tokens"].value.items():
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
        assert claims["subject"] == name, name
        assert "access" in claims, name
        assert "sub" not in claims, f"{name}: `sub` is the inference token's, not the audit's"


def test_tokens_do_not_verify_under_the_read_only_key(deployment):
    """Qdrant never signs with the read-only key; a token that did would be refused."""
    read_only_key = deployment.outputs["readOnlyApiKey"].value
    for token in deployment.outputs["tokens"].value.values():
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, read_only_key, algorithms=["HS256"])


def test_two_runs_mint_identical_tokens():
    """No `iat` and no randomness: an unchanged config shows no diff on `pulumi up`."""
    first, second = deploy(CONFIG), deploy(CONFIG)

    assert first.outputs["tokens"].value == second.outputs["tokens"].value


def test_bumping_api_key_version_rotates_both_keys_and_every_token():
    """Rotation is one config change; every token signed by the old key stops working."""
    before, after = deploy(CONFIG), deploy(dict(CONFIG, apiKeyVersion=2))

    assert after.outputs["apiKey"].value != before.outputs["apiKey"].value
    assert after.outputs["readOnlyApiKey"].value != before.outputs["readOnlyApiKey"].value
    for name, token in after.outputs["tokens"].value.items():
        assert token != before.outputs["tokens"].value[name], name
        jwt.decode(token, after.outputs["apiKey"].value, algorithms=["HS256"])


def test_api_keys_are_long_random_alphanumerics(deployment):
    """Qdrant warns below 32 bytes; alphanumerics survive headers, env files and shells unquoted."""
    for password in deployment.of_type("random:index/randomPassword:RandomPassword"):
        assert password.inputs["length"] >= 40
        assert password.inputs["special"] is False
    assert deployment.outputs["apiKey"].value.isalnum()
    assert deployment.outputs["apiKey"].value != deployment.outputs["readOnlyApiKey"].value


def test_keys_are_stored_as_ssm_securestrings(deployment):
    """The VM fetches its keys from Parameter Store at boot, encrypted at rest with KMS."""
    parameters = {p.inputs["name"]: p for p in deployment.of_type("aws:ssm/parameter:Parameter")}

    assert set(parameters) == {
        "/secure-qdrant/test/api-key",
        "/secure-qdrant/test/read-only-api-key",
        "/secure-qdrant/test/previous-api-key",
    }
    assert all(p.inputs["type"] == "SecureString" for p in parameters.values())
    stored = parameters["/secure-qdrant/test/api-key"].inputs["value"]
    assert stored == {
        rpc._special_sig_key: rpc._special_secret_sig,
        "value": deployment.outputs["apiKey"].value,
    }
    assert deployment.outputs["apiKeyParameter"].value == "/secure-qdrant/test/api-key"


def test_user_data_is_cloud_config_yaml(deployment):
    user_data = deployment.user_data

    assert user_data.startswith("#cloud-config\n")
    assert isinstance(yaml.safe_load(user_data), dict)


def test_user_data_and_host_document_carry_no_key_token_or_private_key(deployment):
    """User data is readable through the EC2 API and by any process via IMDS, the host's document
    by its role: they may name secrets, never contain them."""
    user_data = deployment.user_data + deployment.host_document
    secrets = [
        deployment.outputs["apiKey"].value,
        deployment.outputs["readOnlyApiKey"].value,
        deployment.outputs["sshPrivateKey"].value.splitlines()[1],
        *deployment.outputs["tokens"].value.values(),
    ]
    for secret in secrets:
        assert secret not in user_data
    assert "/secure-qdrant/test/api-key" in user_data, "the VM must know where to fetch its key"


def test_minting_refuses_claims_without_access():
    """A token without `access` gets full manage rights in Qdrant: never mint one."""
    with pytest.raises(ValueError, match="access"):
        mint_token({"exp": 4070908800}, "k" * 48)


def test_claims_of_a_collection_token_keep_rule_order():
    spec = TokenSpec(
        name="x",
        access=(AccessRule("b", "r"), AccessRule("a", "rw")),
        expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )

    assert token_claims(spec) == {
        "access": [{"collection": "b", "access": "r"}, {"collection": "a", "access": "rw"}],
        "exp": epoch(2099, 1, 1),
        "subject": "x",
    }
