"""The DNS-01 instance role as IAM evaluates it: it may write its own ACME challenge records in its
one Route 53 zone, follow those changes and list zones, and nothing else in Route 53.

Judged by the same evaluator as the rest of the role (`test_iam_evaluation`). A ChangeResourceRecordSets
request carries, as multi-valued condition keys, every record name (normalized: lowercase, no trailing
dot), record type and action of its change batch (Route 53 Developer Guide, "Using IAM policy
conditions for fine-grained access control"); the evaluator takes them as lists (the key type it knows
them by is ArrayOfString). What certbot's Route 53 plugin sends is read from its source
(certbot-dns-route53 `_change_txt_record`): one change per batch, UPSERT to add, DELETE or UPSERT to
clean up, type TXT, then GetChange until INSYNC; it finds the zone with ListHostedZones.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.deployer_policy import DeployerScope
from tests.consumers.test_iam_evaluation import BOUNDARY_ON, decide, session
from tests.program import ACCOUNT, MINIMAL_CONFIG, REGION, deploy

ZONE = "arn:aws:route53:::hostedzone/Z0123456789ABC"
OTHER_ZONE = "arn:aws:route53:::hostedzone/Z9999999999XYZ"
CHANGE = "arn:aws:route53:::change/C2682N5HXP0BZ4"
CHALLENGE = "_acme-challenge.qdrant.example.com"
WILDCARD_CHALLENGE = "_acme-challenge.example.com"
CHANGE_RECORDS = "route53:ChangeResourceRecordSets"


def batch(names: list[str], types: list[str], actions: list[str]) -> dict[str, list[str]]:
    """The condition keys of one ChangeResourceRecordSets request."""
    return {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
        "route53:ChangeResourceRecordSetsRecordTypes": types,
        "route53:ChangeResourceRecordSetsActions": actions,
    }


@pytest.fixture(scope="module", params=[{}, BOUNDARY_ON], ids=["default", "boundary-on"])
def role(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The role as each setting deploys it: its own policies alone, or under the boundary, which
    must leave it the challenge records of every name on the certificate."""
    deployment = deploy(
        {
            **MINIMAL_CONFIG,
            "hostedZone": "example.com",
            "acmeChallenge": "dns-01",
            "certificateNames": ["*.example.com"],
            **request.param,
        }
    )
    scope = DeployerScope("test", REGION, ACCOUNT, MINIMAL_CONFIG["domain"], ("*.example.com",))
    return session(deployment, "qdrant-test-role", "i-0123456789abcdef0", scope)


@pytest.mark.parametrize("action", ["UPSERT", "DELETE"])
@pytest.mark.parametrize("name", [CHALLENGE, WILDCARD_CHALLENGE])
def test_certbot_writes_and_cleans_up_each_challenge_record(role, name, action):
    assert decide(role, CHANGE_RECORDS, ZONE, batch([name], ["TXT"], [action])) == "Allowed"


def test_a_batch_of_challenge_records_is_allowed(role):
    context = batch([CHALLENGE, WILDCARD_CHALLENGE], ["TXT"], ["UPSERT"])

    assert decide(role, CHANGE_RECORDS, ZONE, context) == "Allowed"


@pytest.mark.parametrize(
    "context",
    [
        batch(["_acme-challenge.other.example.com"], ["TXT"], ["UPSERT"]),
        batch(["qdrant.example.com"], ["TXT"], ["UPSERT"]),
        batch([CHALLENGE, "_acme-challenge.other.example.com"], ["TXT"], ["UPSERT"]),
    ],
    ids=["challenge-of-another-name", "the-domain-itself", "one-foreign-name-in-the-batch"],
)
def test_a_txt_record_for_another_name_is_denied(role, context):
    """A host that could write `_acme-challenge` of any name could get certificates for them all."""
    assert decide(role, CHANGE_RECORDS, ZONE, context) == "ImplicitlyDenied"


@pytest.mark.parametrize("types", [["A"], ["CNAME"], ["NS"], ["TXT", "A"]], ids=str)
def test_another_record_type_is_denied(role, types):
    """An A, CNAME or NS record at the challenge name would redirect or delegate it, and with a TXT
    change in the same batch it must not slip through either."""
    assert (
        decide(role, CHANGE_RECORDS, ZONE, batch([CHALLENGE], types, ["UPSERT"]))
        == "ImplicitlyDenied"
    )


def test_the_domains_own_address_record_is_denied(role):
    """Pulumi owns the A record; the host rewriting it would hijack its own name."""
    context = batch(["qdrant.example.com"], ["A"], ["UPSERT"])

    assert decide(role, CHANGE_RECORDS, ZONE, context) == "ImplicitlyDenied"


def test_create_is_denied(role):
    """The plugin never sends CREATE; nothing needs it."""
    assert (
        decide(role, CHANGE_RECORDS, ZONE, batch([CHALLENGE], ["TXT"], ["CREATE"]))
        == "ImplicitlyDenied"
    )


def test_another_zone_is_denied(role):
    """The same name in a zone the stack does not use (a private zone, another account's delegation)."""
    context = batch([CHALLENGE], ["TXT"], ["UPSERT"])

    assert decide(role, CHANGE_RECORDS, OTHER_ZONE, context) == "ImplicitlyDenied"


def test_a_request_without_the_record_keys_is_denied(role):
    """`ForAllValues` holds for a key the request lacks; the `Null` test keeps such a request out."""
    assert decide(role, CHANGE_RECORDS, ZONE) == "ImplicitlyDenied"


@pytest.mark.parametrize(
    ("action", "resource"),
    [("route53:GetChange", CHANGE), ("route53:ListHostedZones", "*")],
)
def test_certbot_follows_its_change_and_finds_the_zone(role, action, resource):
    assert decide(role, action, resource) == "Allowed"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("route53:ListResourceRecordSets", ZONE),
        ("route53:GetHostedZone", ZONE),
        ("route53:DeleteHostedZone", ZONE),
        ("route53:ChangeTagsForResource", ZONE),
        ("route53:CreateHostedZone", "*"),
        ("route53:ListHostedZonesByName", "*"),
    ],
)
def test_nothing_else_in_route53_is_allowed(role, action, resource):
    assert decide(role, action, resource) == "ImplicitlyDenied"
