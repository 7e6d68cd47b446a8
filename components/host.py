"""One Qdrant VM: instance, its own data volume, a stable address and the least-privilege role.

Nothing here assumes a single host: every name derives from the component name, and shared pieces
(security group, key parameters, SSH key) come in through the args, so a cluster is several of these.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config_store import config_access_policy
from components.restore import RestoreSnapshot
from model.acme_dns import acme_dns_policy
from model.audit_log import ship_audit_log_policy
from model.host_config import ConfigSource, host_config_document, render_host_config
from model.images import HOST_IMAGES
from model.settings import (
    DATA_VOLUME_DEVICE,
    METRICS_NAMESPACE,
    Architecture,
    HostOs,
    HostSettings,
)
from model.user_data import ec2_user_data

ROOT_VOLUME_SIZE_GB = 16
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# Its actions as AWS publishes it (tests/consumers/test_iam_evaluation.py holds them to that): what
# the roles' permissions boundary leaves the attachment (components/deployer_policy.py).
SSM_CORE_ACTIONS = (
    *(
        f"ssm:{action}"
        for action in (
            "DescribeAssociation",
            "DescribeDocument",
            "GetDeployablePatchSnapshotForInstance",
            "GetDocument",
            "GetManifest",
            "GetParameter",
            "GetParameters",
            "ListAssociations",
            "ListInstanceAssociations",
            "PutComplianceItems",
            "PutConfigurePackageResult",
            "PutInventory",
            "UpdateAssociationStatus",
            "UpdateInstanceAssociationStatus",
            "UpdateInstanceInformation",
        )
    ),
    *(
        f"ssmmessages:{action}"
        for action in (
            "CreateControlChannel",
            "CreateDataChannel",
            "OpenControlChannel",
            "OpenDataChannel",
        )
    ),
    *(
        f"ec2messages:{action}"
        for action in (
            "AcknowledgeMessage",
            "DeleteMessage",
            "FailMessage",
            "GetEndpoint",
            "GetMessages",
            "SendReply",
        )
    ),
)


@dataclass
class QdrantHostArgs:
    host: HostSettings
    instance_type: str
    architecture: Architecture
    subnet_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    host_os: HostOs
    image_release: str
    secret_parameter_arns: pulumi.Input[Sequence[str]]
    """The only SSM parameters the instance may read: the API keys it fetches at boot and on its
    rotation timer."""
    audit_log_group_arn: pulumi.Input[str]
    """The CloudWatch Logs group (components/audit_log.py) the instance ships Qdrant's audit lines
    to: the only one whose streams it may write."""
    config_source: pulumi.Output[ConfigSource]
    """Where the host fetches its configuration document and reports the version it serves
    (`ConfigStore.source`): the one object it may read and the one it may write."""
    publish_config: Callable[[pulumi.Output[str], pulumi.Output[str]], pulumi.Resource]
    """Publishes the host's document, given the instance role's ARN (`ConfigStore.publish` for
    this host, after the bucket policy): the instance launches only once it exists."""
    key_name: pulumi.Input[str] | None = None
    acme_dns_zone_id: pulumi.Input[str] | None = None
    """With DNS-01: the Route 53 zone whose challenge records for the certificate's names the
    instance may write (and nothing else there)."""
    boot_dependencies: Sequence[pulumi.Resource] = ()
    """What the first boot reads (the key parameters): the instance is launched only after them."""
    restore: RestoreSnapshot | None = None
    """The snapshot the data volume is made from: setting or changing it replaces the volume, which
    the engine does only once the operator has unprotected it."""
    permissions_boundary: pulumi.Input[str] | None = None
    """The instance role's permissions boundary, if any: the stack's, which caps what a deployer can
    ever write into the role (components/deployer_policy.py)."""
    stack_tags: Mapping[str, str] = field(default_factory=dict)
    """Beside its Name, on every EC2 resource here: the backup policy finds the data volume by it,
    the deployer policy (components/deployer_policy.py) lets a deployer touch only what carries it."""


class QdrantHost(pulumi.ComponentResource):
    """An Ubuntu 24.04 or Debian 12 instance (IMDSv2, encrypted root), a protected encrypted data
    volume, an EIP."""

    instance_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    data_volume_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    config_version: pulumi.Output[str]

    def __init__(
        self, name: str, args: QdrantHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:host:QdrantHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role, profile, permissions = self._instance_profile(
            name, args.secret_parameter_arns, args.permissions_boundary, child
        )
        permissions.append(
            aws.iam.RolePolicy(
                f"{name}-config-access",
                role=role.id,
                policy=args.config_source.apply(config_access_policy),
                opts=child,
            )
        )
        permissions.append(
            aws.iam.RolePolicy(
                f"{name}-ship-audit-log",
                role=role.id,
                policy=pulumi.Output.from_input(args.audit_log_group_arn).apply(
                    ship_audit_log_policy
                ),
                opts=child,
            )
        )
        if args.acme_dns_zone_id is not None:
            names = (args.host.domain, *args.host.certificate_names)
            permissions.append(
                aws.iam.RolePolicy(
                    f"{name}-acme-dns",
                    role=profile.role,
                    policy=pulumi.Output.from_input(args.acme_dns_zone_id).apply(
                        lambda zone_id: acme_dns_policy(zone_id, names)
                    ),
                    opts=child,
                )
            )
        volume_name = f"{name}-data"
        data_volume = aws.ebs.Volume(
            volume_name,
            availability_zone=args.availability_zone,
            size=args.host.data_volume_size_gb,
            # Another snapshot replaces the volume (the provider's ForceNew), which the engine
            # refuses while the volume is protected. Removing it changes nothing: the attribute is
            # Optional and Computed, so the provider keeps the snapshot the volume was made from.
            snapshot_id=args.restore.snapshot_id if args.restore else None,
            type="gp3",
            # A volume made from a snapshot is encrypted too, whether the snapshot was or not.
            encrypted=True,
            tags={**args.stack_tags, "Name": volume_name},
            opts=child.merge(data_volume_options(volume_name, args.restore)),
        )
        # Rendered after the volume's size is applied, as the user data is.
        config = pulumi.Output.all(data_volume.id, data_volume.size).apply(
            lambda volume: render_host_config(args.host, volume[0])
        )
        document = args.publish_config(config.apply(host_config_document), role.arn)
        image = HOST_IMAGES[args.host_os]
        ami = aws.ec2.get_ami_output(
            owners=[image.owner],
            most_recent=True,
            # Public images are deprecated after two years at most; a pinned release must keep
            # resolving all the same.
            include_deprecated=True,
            filters=[
                {"name": "name", "values": [image.ami_name(args.architecture, args.image_release)]},
                {"name": "architecture", "values": [args.architecture]},
            ],
        )
        instance = aws.ec2.Instance(
            f"{name}-vm",
            ami=ami.id,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[args.security_group_id],
            iam_instance_profile=profile.name,
            key_name=args.key_name,
            # Only what fetches the configuration document: it names no setting the host converges
            # to, so a changed setting leaves the instance as it is.
            user_data_base64=pulumi.Output.all(data_volume.id, args.config_source).apply(
                lambda values: ec2_user_data(args.host, values[0], values[1])
            ),
            # cloud-init runs on first boot only: new user data (another machine image, another
            # data volume) must mean a new instance.
            user_data_replace_on_change=True,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                # One hop: containers on the host cannot reach IMDS and steal the role's credentials.
                "http_put_response_hop_limit": 1,
            },
            root_block_device={
                "encrypted": True,
                "volume_type": "gp3",
                "volume_size": ROOT_VOLUME_SIZE_GB,
                "delete_on_termination": True,
            },
            tags={**args.stack_tags, "Name": name},
            # The first boot reads the keys and the configuration document, and IAM is eventually
            # consistent: launch only once they and the permissions to read them exist.
            opts=child.merge(
                pulumi.ResourceOptions(depends_on=[*permissions, document, *args.boot_dependencies])
            ),
        )
        aws.ec2.VolumeAttachment(
            f"{name}-data-attachment",
            device_name=DATA_VOLUME_DEVICE,
            volume_id=data_volume.id,
            instance_id=instance.id,
            # Stop the old instance before detaching so Qdrant's files are flushed and unmounted.
            stop_instance_before_detaching=True,
            # A volume attaches to one instance at a time: detach from the old one first.
            opts=child.merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )
        address = aws.ec2.Eip(
            f"{name}-ip", domain="vpc", tags={**args.stack_tags, "Name": name}, opts=child
        )
        aws.ec2.EipAssociation(
            f"{name}-ip-association",
            allocation_id=address.allocation_id,
            instance_id=instance.id,
            opts=child.merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )

        self.instance_id = instance.id
        self.public_ip = address.public_ip
        self.data_volume_id = data_volume.id
        self.role_arn = role.arn
        self.config_version = config.apply(lambda rendered: rendered.version)
        self.register_outputs(
            {
                "instanceId": self.instance_id,
                "publicIp": self.public_ip,
                "dataVolumeId": self.data_volume_id,
                "roleArn": self.role_arn,
                "configVersion": self.config_version,
            }
        )

    @staticmethod
    def _instance_profile(
        name: str,
        secret_parameter_arns: pulumi.Input[Sequence[str]],
        permissions_boundary: pulumi.Input[str] | None,
        child: pulumi.ResourceOptions,
    ) -> tuple[aws.iam.Role, aws.iam.InstanceProfile, list[pulumi.Resource]]:
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            permissions_boundary=permissions_boundary,
            opts=child,
        )
        session_manager = aws.iam.RolePolicyAttachment(
            f"{name}-ssm-core", role=role.name, policy_arn=SSM_CORE_POLICY, opts=child
        )
        read_keys = aws.iam.RolePolicy(
            f"{name}-read-api-keys",
            role=role.id,
            policy=pulumi.Output.from_input(secret_parameter_arns).apply(read_parameters_policy),
            opts=child,
        )
        # The publisher's timer starts during the first boot too.
        put_metrics = aws.iam.RolePolicy(
            f"{name}-put-metrics",
            role=role.id,
            policy=put_metrics_policy(METRICS_NAMESPACE),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)
        return role, profile, [session_manager, read_keys, put_metrics]


def data_volume_options(
    volume_name: str, restore: RestoreSnapshot | None
) -> pulumi.ResourceOptions:
    """The volume is the database: protected, so that neither `pulumi destroy` nor a replacement
    (a restore over it, another snapshot) can happen before the operator unprotects it, and retained
    on delete, so that the replaced volume only leaves the stack's state, never the account.
    Replacement stays create-before-delete (no `delete_before_replace`): the restored volume exists
    before anything lets go of the current one.

    Releases before this one registered a restored volume under `<volume_name>-<snapshot id>`; the
    alias lets such a stack adopt it under the stable name instead of replacing it."""
    aliases = [pulumi.Alias(name=f"{volume_name}-{restore.snapshot_id}")] if restore else None
    return pulumi.ResourceOptions(protect=True, retain_on_delete=True, aliases=aliases)


def put_metrics_policy(namespace: str) -> str:
    """The host publishes its own metrics, to its namespace only: a compromised host cannot write
    into another namespace (another service's metrics and the alarms on them). PutMetricData has
    no resource type, so `cloudwatch:namespace` is the only thing that narrows it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublishTheHostsMetrics",
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
                }
            ],
        }
    )


def read_parameters_policy(parameter_arns: Sequence[str]) -> str:
    """IAM policy under which the role reads these parameters' values and no other parameter's.

    `AmazonSSMManagedInstanceCore` allows `ssm:GetParameter(s)` on every parameter in the account, so
    an Allow alone would leave them all readable: the Deny overrides it. `ssm:GetParameter*` is every
    action that returns a value (GetParameter, GetParameters, GetParameterHistory and
    GetParametersByPath, which AWS authorizes against the requested path, so it is denied on every
    path). Nothing grants history or path reads of the keys themselves, nor `ssm:DescribeParameters`
    (names of other parameters). SecureStrings under the AWS managed `aws/ssm` key need no KMS grant:
    that key's policy lets every principal in the account decrypt through Parameter Store.
    """
    arns = sorted(parameter_arns)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadTheApiKeys",
                    "Effect": "Allow",
                    "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                    "Resource": arns,
                },
                {
                    "Sid": "NoOtherParameter",
                    "Effect": "Deny",
                    "Action": "ssm:GetParameter*",
                    "NotResource": arns,
                },
            ],
        }
    )
