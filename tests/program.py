"""Runs `__main__.py` against Pulumi mocks and hands back what it registered and exported.

Each `deploy()` is a fresh program run: a new root stack, new config, new mocks. The mocks behave like
AWS where the program depends on it (ids, ARNs, the EIP's address, invokes), and `RandomPassword`
derives its result from its name and keepers, as a real one keeps its value until a keeper changes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import runpy
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import grpc
import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "secure-qdrant"
MAIN = str(Path(__file__).resolve().parent.parent / "__main__.py")
REGION = "eu-central-1"
ACCOUNT = "123456789012"
PUBLIC_IP = "198.51.100.7"
# The region's default subnets and their zones; subnet ids sort in another order than their zones.
DEFAULT_SUBNET_ZONES = {
    "subnet-0aaaaaaaaaaaaaaaa": f"{REGION}b",
    "subnet-0bbbbbbbbbbbbbbbb": f"{REGION}a",
    "subnet-0cccccccccccccccc": f"{REGION}c",
}
CONFIGURED_SUBNET_ZONE = f"{REGION}b"
# Zones offering each instance type (DescribeInstanceTypeOfferings); types not listed are everywhere.
INSTANCE_TYPE_ZONES = {
    "m8i.large": [f"{REGION}c"],
    "c7gn.large": [],
}

# What the rotation clock (a local command, components/api_keys.py) prints when it runs: the
# deploy's time, in Unix seconds.
DEPLOY_TIME = 1_900_000_000
OTHER_ACCOUNT = "210987654321"
OTHER_REGION = "us-east-1"


@dataclass(frozen=True)
class Snapshot:
    region: str
    owner: str
    volume_size: int


# The EBS snapshots DescribeSnapshots knows of: each is visible only from its own region.
SNAPSHOTS = {
    "snap-0123456789abcdef0": Snapshot(REGION, ACCOUNT, 20),
    "snap-01234567": Snapshot(REGION, ACCOUNT, 8),
    "snap-0aaaaaaaaaaaaaaa1": Snapshot(OTHER_REGION, ACCOUNT, 20),
    "snap-0bbbbbbbbbbbbbbb2": Snapshot(REGION, OTHER_ACCOUNT, 20),
    "snap-0ccccccccccccccc3": Snapshot(REGION, ACCOUNT, 500),
}

MINIMAL_CONFIG: dict[str, Any] = {
    "domain": "qdrant.example.com",
    "acmeEmail": "ops@example.com",
}


def _digest(*parts: Any, length: int = 17) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:length]


def _password(name: str, inputs: dict[str, Any]) -> str:
    alphabet = string.ascii_letters + string.digits
    seed = hashlib.sha256(repr((name, sorted(inputs.get("keepers", {}).items()))).encode()).digest()
    stream = hashlib.shake_256(seed).digest(int(inputs["length"]))
    return "".join(alphabet[b % len(alphabet)] for b in stream)


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    resource_id: str = ""
    options: Any = None
    """The RegisterResourceRequest: protect, deleteBeforeReplace, ignoreChanges, parent, ..."""


class AwsMocks(pulumi.runtime.Mocks):
    def __init__(self, stack_references: Mapping[str, dict[str, Exported]] | None = None) -> None:
        self.registered: dict[tuple[str, str], Registered] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stack_references = stack_references or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.registered[(args.typ, args.name)] = Registered(args.typ, args.name, inputs)
        state = dict(inputs)
        resource_id = f"{args.name}-{_digest(args.typ, args.name, length=8)}"
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = _password(args.name, inputs)
        elif args.typ == "aws:ssm/parameter:Parameter":
            state["arn"] = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{inputs['name']}"
        elif args.typ == "aws:ec2/eip:Eip":
            resource_id = f"eipalloc-{_digest(args.name)}"
            state.update(allocationId=resource_id, publicIp=PUBLIC_IP)
        elif args.typ == "aws:ebs/volume:Volume":
            # A volume from another snapshot is a replacement (ForceNew), so another volume.
            resource_id = f"vol-{_digest(args.name, inputs.get('snapshotId'))}"
        elif args.typ == "aws:ec2/instance:Instance":
            resource_id = f"i-{_digest(args.name)}"
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            resource_id = f"sg-{_digest(args.name)}"
        elif args.typ == "aws:s3/bucket:Bucket":
            # The provider's PrefixedUniqueId: the prefix and 26 characters.
            resource_id = f"{inputs['bucketPrefix']}{_digest(args.name, length=26)}"
            state.update(bucket=resource_id, arn=f"arn:aws:s3:::{resource_id}")
        elif args.typ == "aws:iam/role:Role":
            state.update(name=args.name, arn=f"arn:aws:iam::{ACCOUNT}:role/{args.name}")
        elif args.typ == "aws:iam/instanceProfile:InstanceProfile":
            state["name"] = args.name
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state["keyName"] = args.name
        elif args.typ == "tls:index/privateKey:PrivateKey":
            key = _digest(args.name, length=32)
            state.update(
                publicKeyOpenssh=f"ssh-ed25519 AAAA{key}",
                privateKeyOpenssh=f"-----BEGIN OPENSSH PRIVATE KEY-----\n{key}\n",
            )
        elif args.typ == "command:local:Command" and args.name.endswith("-rotated-at"):
            state["stdout"] = f"{DEPLOY_TIME}\n"
        elif args.typ == "aws:sns/topic:Topic":
            state["arn"] = (
                f"arn:aws:sns:{REGION}:{ACCOUNT}:{inputs['namePrefix']}{_digest(args.name)}"
            )
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            # The provider's ARN of a group, without the `:*` its API adds.
            state["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{inputs['name']}"
        elif args.typ == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
            resource_id = f"policy-{_digest(args.name)}"
        elif args.typ == "aws:route53/record:Record":
            state["fqdn"] = inputs["name"]
        elif args.typ == "pulumi:pulumi:StackReference":
            # What the engine reads from the other stack's state: its outputs and which are secret.
            exported = self.stack_references[args.name]
            state.update(
                outputs={name: output.value for name, output in exported.items()},
                secretOutputNames=[name for name, output in exported.items() if output.secret],
            )
        self.registered[(args.typ, args.name)].resource_id = resource_id
        return resource_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        return self._invoke(args), []

    def _invoke(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION}
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": f"ami-{_digest(repr(args.args))}", "architecture": "x86_64"}
        if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            [instance_type] = _filter(args.args, "instance-type")
            zones = INSTANCE_TYPE_ZONES.get(instance_type, sorted(DEFAULT_SUBNET_ZONES.values()))
            return {"locations": zones, "locationTypes": ["availability-zone"] * len(zones)}
        if args.token == "aws:ec2/getSubnets:getSubnets":
            assert _filter(args.args, "default-for-az") == ["true"]
            zones = _filter(args.args, "availability-zone")
            return {"ids": [id_ for id_, zone in DEFAULT_SUBNET_ZONES.items() if zone in zones]}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            zone = DEFAULT_SUBNET_ZONES.get(args.args["id"], CONFIGURED_SUBNET_ZONE)
            return {"id": args.args["id"], "vpcId": "vpc-0123", "availabilityZone": zone}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ops", "id": ACCOUNT}
        if args.token == "aws:ebs/getSnapshot:getSnapshot":
            [snapshot_id] = args.args["snapshotIds"]
            snapshot = SNAPSHOTS.get(snapshot_id)
            if snapshot is None or snapshot.region != REGION:
                # What the provider answers when DescribeSnapshots finds nothing in its region.
                raise EngineError(
                    "Your query returned no results. Please change your search criteria and try again."
                )
            return {
                "id": snapshot_id,
                "snapshotId": snapshot_id,
                "arn": f"arn:aws:ec2:{snapshot.region}::snapshot/{snapshot_id}",
                "ownerId": snapshot.owner,
                "volumeSize": snapshot.volume_size,
                "encrypted": True,
            }
        if args.token == "aws:route53/getZone:getZone":
            return {"zoneId": "Z0123456789ABC", "name": args.args["name"]}
        raise NotImplementedError(f"no mock for invoke {args.token}")


class EngineError(grpc.RpcError):
    """A failed invoke as the engine reports it to the program: a gRPC error with details."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details


def _filter(invoke_args: dict[str, Any], name: str) -> list[str]:
    """The values of one filter of a Describe* invoke (an absent filter is a test bug)."""
    [values] = [f["values"] for f in invoke_args["filters"] if f["name"] == name]
    return list(values)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps every RegisterResource request: resource options never reach `Mocks.new_resource`."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.requests: list[Any] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.requests.append(request)
        return super().RegisterResource(request)


@dataclass
class Exported:
    value: Any
    secret: bool


@dataclass
class Deployment:
    resources: list[Registered]
    outputs: dict[str, Exported]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]

    @property
    def user_data(self) -> str:
        """The cloud-config text, from the compressed bytes the instance is given."""
        encoded = self.one("aws:ec2/instance:Instance").inputs["userDataBase64"]
        return gzip.decompress(base64.b64decode(encoded)).decode()

    @property
    def host_document(self) -> str:
        """The configuration document published for the host (model/host_config.py)."""
        content: str = self.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["content"]
        return content


class Failed(Exception):
    """The program refused to run; `registered` is what it had registered by then."""

    def __init__(self, error: BaseException, registered: list[Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.registered = registered


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def deploy(config: dict[str, Any], stack: str = "test") -> Deployment:
    """Run the program once with `secure-qdrant:` config (keys with a namespace, e.g. `aws:profile`,
    go in as they are); raise `Failed` if the program fails."""
    raw = {
        key if ":" in key else f"{PROJECT}:{key}": _config_value(value)
        for key, value in config.items()
    }
    return _run(stack, raw, [])


def deploy_from_environment(environment: Mapping[str, str], stack: str) -> Deployment:
    """Run the program with its config only in `environment` (PULUMI_CONFIG and
    PULUMI_CONFIG_SECRET_KEYS), read the way `pulumi-language-python-exec` reads it."""
    with mock.patch.dict(os.environ, environment):
        return _run(
            stack, runtime_config.get_config_env(), runtime_config.get_config_secret_keys_env()
        )


def run_consumer(
    source: str, stack_references: Mapping[str, dict[str, Exported]], stack: str = "app"
) -> dict[str, Exported]:
    """Run `source` as another project's Pulumi program whose `StackReference`s read the given
    stacks' outputs. Returns what its top-level Outputs resolve to, a dict's entries as
    `name.key`, each with whether it stayed secret."""

    def program() -> None:
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        for name, value in namespace.items():
            entries = value.items() if isinstance(value, dict) else [(None, value)]
            for key, entry in entries:
                if isinstance(entry, pulumi.Output):
                    pulumi.export(name if key is None else f"{name}.{key}", entry)

    return _run(stack, {}, [], program, stack_references).outputs


def _run_main() -> None:
    runpy.run_path(MAIN, run_name="__main__")


def _run(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    program: Callable[[], None] = _run_main,
    stack_references: Mapping[str, dict[str, Exported]] | None = None,
) -> Deployment:
    mocks = AwsMocks(stack_references)
    monitor = RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, secret_keys)
    outputs: dict[str, Exported] = {}

    async def run() -> None:
        program()
        root = pulumi_settings.get_root_resource()
        for name, value in root.outputs.items():  # type: ignore[union-attr]
            output = pulumi.Output.from_input(value)
            outputs[name] = Exported(await output.future(), await output.is_secret())

    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    try:
        # What `pulumi.runtime.test` does: run, then wait for every registration to finish.
        _sync_await(run_pulumi_func(lambda: _sync_await(run())))
    except Exception as error:
        registered = [r for r in monitor.requests if r.type != "pulumi:pulumi:Stack"]
        raise Failed(error, registered) from error

    resources = []
    for request in monitor.requests:
        if request.type == "pulumi:pulumi:Stack":
            continue
        recorded = mocks.registered[(request.type, request.name)]
        recorded.options = request
        resources.append(recorded)
    return Deployment(resources=resources, outputs=outputs, calls=mocks.calls)
