"""Which config changes replace the host: the table's declaration (model/config_keys.py),
held to preview-equivalent mock runs (tests/preview.py applies the AWS provider's ForceNew rules and
the engine's) and to the README and docs/configuration.md generated from it.

A key marked "in place" that in fact replaces the host takes the database down for a full first
boot when an operator only meant to tune it; the table and the docs must say so beforehand.
"""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace
from typing import Any

import pytest

from model.config_keys import (
    BY_NAME,
    IN_PLACE,
    KNOWN_KEYS,
    REPLACES_THE_HOST_AND_THE_DATA_VOLUME,
    REPO,
)
from tests.preview import (
    INSTANCE,
    KEY_PAIR,
    REPLACES_THE_HOST,
    VOLUME,
    NoRule,
    Preview,
)
from tests.program import MINIMAL_CONFIG, Deployment, Registered, deploy
from tests.readme import section_table

# Every key set, so each example below is a change of a value, not only a first setting.
BASE = {
    **MINIMAL_CONFIG,
    "hostedZone": "example.com",
    "acmeChallenge": "dns-01",
    "adminCidrs": ["203.0.113.0/24"],
}
# For each key, a valid change from BASE (`architecture` needs a type of the other architecture).
EXAMPLE_CHANGES: dict[str, dict[str, Any]] = {
    "domain": {"domain": "vectors.example.com"},
    "hostedZone": {"hostedZone": "qdrant.example.com"},
    "acmeEmail": {"acmeEmail": "admin@example.com"},
    "acmeServer": {"acmeServer": "https://acme.example.net/directory"},
    "acmeChallenge": {"acmeChallenge": "http-01"},
    "certificateNames": {"certificateNames": ["api.example.com"]},
    "adminCidrs": {"adminCidrs": ["203.0.113.0/24", "198.51.100.0/24"]},
    "allowSshFromAnywhere": {"allowSshFromAnywhere": True},
    "instanceType": {"instanceType": "t3.large"},
    "architecture": {"architecture": "arm64", "instanceType": "t4g.medium"},
    "hostOs": {"hostOs": "debian-12"},
    "imageRelease": {"imageRelease": "20250115"},
    "subnetId": {"subnetId": "subnet-0cccccccccccccccc"},
    "dataVolumeSizeGb": {"dataVolumeSizeGb": 40},
    "qdrantVersion": {"qdrantVersion": "v1.19.0"},
    "rateLimitRps": {"rateLimitRps": 10},
    "restBurst": {"restBurst": 40},
    "grpcBurst": {"grpcBurst": 80},
    "maxBodySizeMb": {"maxBodySizeMb": 64},
    "credentialRateLimitRps": {"credentialRateLimitRps": 200},
    "credentialBurst": {"credentialBurst": 800},
    "tokens": {"tokens": [{"name": "app", "access": "r"}]},
    "apiKeyVersion": {"apiKeyVersion": 2},
    "keyGraceHours": {"keyGraceHours": 48},
    "verifyOnDeploy": {"verifyOnDeploy": False},
    "rolePermissionsBoundary": {"rolePermissionsBoundary": True},
    "backupSchedule": {"backupSchedule": False},
    "backupRetentionDays": {"backupRetentionDays": 14},
    "restoreFromSnapshotId": {"restoreFromSnapshotId": "snap-0123456789abcdef0"},
    "alertEmail": {"alertEmail": "oncall@example.com"},
    "alarmCertificateDaysLeft": {"alarmCertificateDaysLeft": 21},
    "alarmQdrantDownMinutes": {"alarmQdrantDownMinutes": 10},
    "alarmUnauthorizedPerMinute": {"alarmUnauthorizedPerMinute": 120},
    "alarmDataVolumeUsedPercent": {"alarmDataVolumeUsedPercent": 90},
    "alarmDeniedPerMinute": {"alarmDeniedPerMinute": 20},
    "auditRotation": {"auditRotation": "hourly"},
    "auditMaxLogFiles": {"auditMaxLogFiles": 90},
    "auditLogRetentionDays": {"auditLogRetentionDays": 90},
}


@functools.cache
def _base() -> Deployment:
    return deploy(BASE)


@functools.cache
def preview_of(key: str) -> Preview:
    return Preview(_base(), deploy({**BASE, **EXAMPLE_CHANGES[key]}))


def test_every_key_has_an_example_change():
    """Each entry is checked by a mock run, not taken on trust."""
    assert set(EXAMPLE_CHANGES) == KNOWN_KEYS


@pytest.mark.parametrize("key", sorted(EXAMPLE_CHANGES))
def test_changing_the_key_does_what_the_table_declares(key):
    """The declared verdict is what the engine would plan: a key marked in place must not launch a
    new instance (a full first boot without the database)."""
    declared = BY_NAME[key].changing
    assert preview_of(key).verdict() == (IN_PLACE if declared == IN_PLACE else REPLACES_THE_HOST)


@pytest.mark.parametrize("key", sorted(EXAMPLE_CHANGES))
def test_only_the_declared_keys_replace_the_data_volume_and_none_the_address(key):
    """A new data volume is a restore (the protected volume stops `pulumi up` until the operator
    unprotects it); a new address would break every client's DNS. Neither may come unannounced."""
    beside_the_host = preview_of(key).replaced_stateful() - {"host"}
    declared = BY_NAME[key].changing == REPLACES_THE_HOST_AND_THE_DATA_VOLUME
    assert beside_the_host == ({"data volume"} if declared else set())


def test_the_readme_says_what_changing_each_key_does():
    """The operator reads the README, not the tests: its column must be the declared table."""
    rows = section_table("Configuration")
    assert "changing it" in rows[0], 'the configuration table has no column "changing it"'
    column = {row["key"].strip("`"): row["changing it"] for row in rows}
    assert column == {key: declared.changing for key, declared in BY_NAME.items()}


def test_the_configuration_docs_say_what_changing_each_key_does():
    """docs/configuration.md is the fuller table an operator is sent to: the same column."""
    text = (REPO / "docs" / "configuration.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \|.*\| ([a-z ]+) \| [^|]+ \|$", text, flags=re.M)
    assert dict(rows) == {key: declared.changing for key, declared in BY_NAME.items()}


def test_a_new_instance_type_resizes_the_same_instance():
    """The in-place verdict is the provider's stop, modify and start of this instance, not a change
    that never reaches it: the type is the one instance input that changes."""
    resized = deploy({**BASE, **EXAMPLE_CHANGES["instanceType"]}).one(INSTANCE)
    current = _base().one(INSTANCE)
    names = current.inputs.keys() | resized.inputs.keys()
    changed = {name for name in names if current.inputs.get(name) != resized.inputs.get(name)}
    assert changed == {"instanceType"}
    assert resized.inputs["instanceType"] == "t3.large"


def test_an_instance_type_the_hosts_zone_does_not_offer_moves_the_host_and_its_volume():
    """EC2 cannot resize an instance into a type its zone does not offer, so the default placement
    moves to a zone that does: a new host and a new data volume, which the volume's protection
    stops before anything is replaced. Only a type the zone offers is the in-place resize."""
    preview = Preview(_base(), deploy({**BASE, "instanceType": "m8i.large"}))
    assert preview.replaced_stateful() == {"host", "data volume"}
    assert deploy({**BASE, "instanceType": "m8i.large"}).one(VOLUME).options.protect


def test_unsetting_the_restore_snapshot_changes_nothing():
    """The README promises that unsetting `restoreFromSnapshotId` after a restore changes nothing:
    the provider keeps a Computed attribute the config no longer sets."""
    restored = deploy({**BASE, "restoreFromSnapshotId": "snap-0123456789abcdef0"})
    assert Preview(restored, _base()).replaced_stateful() == frozenset()


# The classifier's own rules, on hand-made requests.


def _resource(typ: str, name: str, inputs: dict[str, Any], **options: Any) -> Registered:
    request = SimpleNamespace(
        replaceOnChanges=options.get("replace_on_changes", []),
        ignoreChanges=options.get("ignore_changes", []),
        propertyDependencies={
            prop: SimpleNamespace(urns=urns) for prop, urns in options.get("feeds", {}).items()
        },
        dependencies=[urn for urns in options.get("feeds", {}).values() for urn in urns],
    )
    return Registered(typ, name, inputs, resource_id=f"{name}-id", options=request)


def _urn(typ: str, name: str) -> str:
    return f"urn:pulumi:test::secure-qdrant::secure-qdrant:host:QdrantHost${typ}::{name}"


def _verdict(before: list[Registered], after: list[Registered]) -> str:
    return Preview(Deployment(before, {}), Deployment(after, {})).verdict()


def _host(**inputs: Any) -> dict[str, Any]:
    return {"ami": "ami-1", "instanceType": "t3.medium", **inputs}


def test_new_user_data_replaces_the_host_only_with_replace_on_change():
    """terraform-provider-aws forces a new instance for user data only under
    `user_data_replace_on_change`; otherwise it is an in-place update."""

    def host(text: str, replace_on_change: bool) -> Registered:
        inputs = _host(userData=text, userDataReplaceOnChange=replace_on_change)
        return _resource(INSTANCE, "vm", inputs)

    assert _verdict([host("a", True)], [host("b", True)]) == "replaces the host"
    assert _verdict([host("a", False)], [host("b", False)]) == "in place"


def test_a_new_instance_type_is_in_place_and_a_new_image_is_not():
    """`instance_type` is updated by stop, modify and start; `ami` is ForceNew."""

    def host(**inputs: Any) -> list[Registered]:
        return [_resource(INSTANCE, "vm", _host(**inputs))]

    assert _verdict(host(), host(instanceType="t3.large")) == "in place"
    assert _verdict(host(), host(ami="ami-2")) == "replaces the host"


def test_a_replaced_dependency_replaces_the_host_only_through_a_force_new_input():
    """A replaced key pair's name is unknown in a preview, and `key_name` is ForceNew; the same
    unknown in an updatable input (`vpcSecurityGroupIds`) is an update."""

    def world(public_key: str, prop: str) -> list[Registered]:
        pair = _resource(KEY_PAIR, "pair", {"publicKey": public_key})
        feeds = {prop: [_urn(KEY_PAIR, "pair")]}
        return [pair, _resource(INSTANCE, "vm", _host(), feeds=feeds)]

    assert _verdict(world("k1", "keyName"), world("k2", "keyName")) == "replaces the host"
    groups = "vpcSecurityGroupIds"
    assert _verdict(world("k1", groups), world("k2", groups)) == "in place"


def test_ignore_changes_and_replace_on_changes_are_the_engines():
    """The engine drops `ignoreChanges` paths from the diff and replaces on `replaceOnChanges`."""

    def host(ami: str, tags: str, **options: Any) -> Registered:
        return _resource(INSTANCE, "vm", _host(ami=ami, tags={"Name": tags}), **options)

    assert _verdict([host("a", "x")], [host("b", "x", ignore_changes=["ami"])]) == "in place"
    replace_on_tags = host("a", "y", replace_on_changes=["tags"])
    assert _verdict([host("a", "x")], [replace_on_tags]) == "replaces the host"


def test_an_option_naming_elements_covers_the_whole_list():
    """pulumi-command registers `replace_on_changes=["triggers[*]"]`: any changed element of the
    list is a replacement, and an ignored `[*]` path ignores the whole list."""

    def host(groups: list[str], **options: Any) -> Registered:
        return _resource(INSTANCE, "vm", _host(vpcSecurityGroupIds=groups), **options)

    every_group = ["vpcSecurityGroupIds[*]"]
    replace_on_groups = host(["sg-2"], replace_on_changes=every_group)
    assert _verdict([host(["sg-1"])], [replace_on_groups]) == "replaces the host"
    ignored_groups = host(["sg-2"], replace_on_changes=every_group, ignore_changes=every_group)
    assert _verdict([host(["sg-1"])], [ignored_groups]) == "in place"


def test_a_changed_resource_without_a_rule_feeding_a_force_new_input_is_not_guessed():
    """Without the provider's ForceNew attributes of a type, calling its change in place would be a
    guess that could hide an outage."""
    other = "aws:ec2/launchTemplate:LaunchTemplate"

    def world(version: str) -> list[Registered]:
        template = _resource(other, "template", {"version": version})
        feeds = {"ami": [_urn(other, "template")]}
        return [template, _resource(INSTANCE, "vm", _host(), feeds=feeds)]

    with pytest.raises(NoRule):
        _verdict(world("1"), world("2"))
