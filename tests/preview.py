"""What `pulumi preview` would plan for a config change, decided from two mock runs of the program.

The engine asks each provider to diff a resource's old inputs against its new ones; a bridged
provider answers "replace" when a changed attribute is ForceNew (or a CustomizeDiff forces it), and
the engine adds the `replaceOnChanges` option's properties and drops `ignoreChanges` ones. In a
preview, a replaced resource's outputs are unknown, so an input that carries one (the request's
`propertyDependencies`) is unknown too, and an unknown ForceNew input is a replacement: replacement
spreads along ForceNew inputs only, never along `dependsOn` or updatable inputs.

The mocks' ids are no guide to replacement (most keep their id whatever changes; the data volume's
follows its snapshot even where the provider sees no diff), so the spreading is computed here, not
read off the inputs, and where a dependency the engine keeps got another id from the mocks, its old
id is put back before the dependent's inputs are compared. The ForceNew attributes are the
provider's, for the resource types the host hangs on; a resource of another type that changes and
feeds a ForceNew input stops the classifier rather than being guessed at.

Sources (hashicorp/terraform-provider-aws, which pulumi-aws bridges):
- `internal/service/ec2/ec2_instance.go`, aws_instance: `ami`, `availability_zone`, `key_name`,
  `subnet_id`, `private_ip`, `placement_group`, `tenancy`, `root_block_device.encrypted` and
  `.kms_key_id` ... are ForceNew; `user_data` and `user_data_base64` are ForceNew when
  `user_data_replace_on_change` is true (`customdiff.ForceNewIf`). `instance_type`,
  `vpc_security_group_ids`, `iam_instance_profile`, `metadata_options`,
  `root_block_device.volume_size` and tags are not: `resourceInstanceUpdate` changes the type in
  place by stopping the instance, `ModifyInstanceAttribute` and starting it again
  (`modifyInstanceAttributeWithStopStart`).
- `internal/service/ec2/ebs_volume.go`, aws_ebs_volume: `availability_zone`, `encrypted`,
  `kms_key_id`, `multi_attach_enabled`, `outpost_arn`, `snapshot_id` are ForceNew; `size`, `type`,
  `iops` and `throughput` change in place (`ModifyVolume`).
- `internal/service/ec2/ec2_key_pair.go`, aws_key_pair: `key_name`, `key_name_prefix`,
  `public_key` are ForceNew.
- `internal/service/ec2/ec2_eip.go`, aws_eip: `address`, `domain`, `ipam_pool_id`,
  `network_border_group` and `public_ipv4_pool` are ForceNew.
- `internal/service/s3/object.go`, aws_s3_object (pulumi-aws BucketObjectv2): `bucket` and `key`
  are ForceNew; `content` and the rest are updated in place (`resourceObjectUpdate` uploads a new
  version of the same object).
- `internal/service/s3/bucket.go`, aws_s3_bucket: `bucket` and `bucket_prefix` are ForceNew.
- terraform-plugin-sdk `helper/schema/schema.go`, `diffString`: an Optional and Computed attribute
  the new config no longer sets is no diff (the old value stays).
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tests.program import Deployment, Registered

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
EIP = "aws:ec2/eip:Eip"
KEY_PAIR = "aws:ec2/keyPair:KeyPair"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"

Verdict = Literal["in place", "replaces the host"]
IN_PLACE: Verdict = "in place"
REPLACES_THE_HOST: Verdict = "replaces the host"

# The stateful resources whose replacement costs data, address or uptime, by what they are.
STATEFUL = {INSTANCE: "host", VOLUME: "data volume", EIP: "address"}


@dataclass(frozen=True)
class ReplacementRule:
    force_new: frozenset[str]
    """Input paths (camelCase, nested with `.`) whose change replaces the resource."""
    computed: frozenset[str] = frozenset()
    """Those of them that are Optional and Computed: no longer setting one is no diff."""
    force_new_when: Mapping[str, str] | None = None
    """Paths that are ForceNew only while the named boolean input is true."""


def _rule(
    force_new: str, computed: str = "", force_new_when: Mapping[str, str] | None = None
) -> ReplacementRule:
    return ReplacementRule(
        frozenset(force_new.split()), frozenset(computed.split()), force_new_when
    )


RULES: dict[str, ReplacementRule] = {
    INSTANCE: _rule(
        "ami associatePublicIpAddress availabilityZone keyName subnetId privateIp placementGroup "
        "tenancy hostId ipv6AddressCount ipv6Addresses securityGroups ebsOptimized hibernation "
        "launchTemplate ephemeralBlockDevices privateDnsNameOptions rootBlockDevice.encrypted "
        "rootBlockDevice.kmsKeyId",
        computed="ami associatePublicIpAddress availabilityZone keyName subnetId privateIp "
        "placementGroup tenancy hostId ipv6AddressCount ipv6Addresses securityGroups ebsOptimized "
        "ephemeralBlockDevices privateDnsNameOptions rootBlockDevice.encrypted "
        "rootBlockDevice.kmsKeyId",
        force_new_when={
            "userData": "userDataReplaceOnChange",
            "userDataBase64": "userDataReplaceOnChange",
        },
    ),
    VOLUME: _rule(
        "availabilityZone encrypted kmsKeyId multiAttachEnabled outpostArn snapshotId",
        computed="encrypted kmsKeyId snapshotId",
    ),
    KEY_PAIR: _rule("keyName keyNamePrefix publicKey", computed="keyName keyNamePrefix"),
    BUCKET: _rule("bucket bucketPrefix", computed="bucket bucketPrefix"),
    BUCKET_OBJECT: _rule("bucket key"),
    EIP: _rule(
        "address domain ipamPoolId networkBorderGroup publicIpv4Pool",
        computed="domain ipamPoolId networkBorderGroup publicIpv4Pool",
    ),
}


class NoRule(AssertionError):
    """A changed resource of a type without a declared rule feeds a ForceNew input."""


Key = tuple[str, str]
_ABSENT = object()


def _paths(before: Any, after: Any, prefix: str = "") -> Iterator[tuple[str, bool]]:
    """Each changed input path, with whether the new inputs dropped it."""
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted(set(before) | set(after)):
            yield from _paths(
                before.get(name, _ABSENT), after.get(name, _ABSENT), f"{prefix}{name}."
            )
    elif before != after:
        yield prefix.rstrip("."), after is _ABSENT


def _readable(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs with the compressed user data as its text (gzip with mtime 0 is deterministic:
    equal text is equal bytes)."""
    if "userDataBase64" not in inputs:
        return inputs
    text = gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()
    return {**inputs, "userDataBase64": text}


def _with_ids(value: Any, kept: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for new_id, old_id in kept.items():
            value = value.replace(new_id, old_id)
        return value
    if isinstance(value, dict):
        return {name: _with_ids(item, kept) for name, item in value.items()}
    if isinstance(value, list):
        return [_with_ids(item, kept) for item in value]
    return value


def _covers(rule_path: str, path: str) -> bool:
    # Options name elements as `triggers[*]`; a changed list is compared whole, as `triggers`.
    rule_path = re.sub(r"\[[^]]*\]", "", rule_path)
    return rule_path == "*" or path == rule_path or path.startswith(rule_path + ".")


def _key_of_urn(urn: str) -> Key:
    qualified_type, name = urn.split("::")[-2:]
    return qualified_type.split("$")[-1], name


class Preview:
    """The replacements the engine would plan going from `before`'s inputs to `after`'s."""

    def __init__(self, before: Deployment, after: Deployment) -> None:
        self._before = {(r.typ, r.name): r for r in before.resources}
        self._after = {(r.typ, r.name): r for r in after.resources}
        self._decided: dict[Key, bool] = {}

    def _force_new(self, resource: Registered) -> tuple[set[str], frozenset[str]]:
        rule = RULES.get(resource.typ)
        paths = set(resource.options.replaceOnChanges)
        if rule is None:
            return paths, frozenset()
        paths |= rule.force_new
        for path, switch in (rule.force_new_when or {}).items():
            if resource.inputs.get(switch):
                paths.add(path)
        return paths, rule.computed

    def _kept_ids(self, resource: Registered) -> dict[str, str]:
        """New id to old id, for the dependencies the engine keeps that the mocks gave a new id."""
        kept: dict[str, str] = {}
        for urn in resource.options.dependencies:
            key = _key_of_urn(urn)
            old, new = self._before.get(key), self._after.get(key)
            if old and new and old.resource_id != new.resource_id and not self.replaces(key):
                kept[new.resource_id] = old.resource_id
        return kept

    def _changed(self, old: Registered, new: Registered) -> list[tuple[str, bool]]:
        ignored = list(new.options.ignoreChanges)
        new_inputs = _with_ids(_readable(new.inputs), self._kept_ids(new))
        return [
            (path, dropped)
            for path, dropped in _paths(_readable(old.inputs), new_inputs)
            if not any(_covers(rule_path, path) for rule_path in ignored)
        ]

    def replaces(self, key: Key) -> bool:
        """Whether the resource (type, name), present in both runs, is replaced."""
        if key not in self._decided:
            self._decided[key] = self._decide(key)
        return self._decided[key]

    def _decide(self, key: Key) -> bool:
        if key not in self._before or key not in self._after:
            return False
        old, new = self._before[key], self._after[key]
        force_new, computed = self._force_new(new)
        changed = self._changed(old, new)
        if key[0] not in RULES and not new.options.replaceOnChanges:
            if changed or self._any_dependency_replaced(new):
                raise NoRule(f"{key} changes and has no rule: declare its ForceNew inputs")
            return False
        for path, dropped in changed:
            kept_by_provider = dropped and any(_covers(p, path) for p in computed)
            if any(_covers(p, path) for p in force_new) and not kept_by_provider:
                return True
        return any(
            self._replaced_dependency(urns)
            for prop, urns in self._property_dependencies(new)
            if any(_covers(prop, p) or _covers(p, prop) for p in force_new)
        )

    @staticmethod
    def _property_dependencies(resource: Registered) -> list[tuple[str, list[str]]]:
        dependencies = resource.options.propertyDependencies
        return [(prop, list(deps.urns)) for prop, deps in dependencies.items()]

    def _replaced_dependency(self, urns: list[str]) -> bool:
        return any(self.replaces(_key_of_urn(urn)) for urn in urns)

    def _any_dependency_replaced(self, resource: Registered) -> bool:
        return any(
            self._replaced_dependency(urns) for _, urns in self._property_dependencies(resource)
        )

    def replaced_stateful(self) -> frozenset[str]:
        """Which of the host, its data volume and its address the change replaces."""
        return frozenset(
            what
            for (typ, name) in self._after
            if (what := STATEFUL.get(typ)) and self.replaces((typ, name))
        )

    def verdict(self) -> Verdict:
        return REPLACES_THE_HOST if "host" in self.replaced_stateful() else IN_PLACE
