"""secure-qdrant: a Qdrant host on AWS that is never reachable in cleartext or without credentials."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.alarms import HostAlarms, HostAlarmsArgs
from components.allowlist import TokenAllowlist, TokenAllowlistArgs
from components.api_keys import ApiKeys, ApiKeysArgs, grace_end_text
from components.audit_alarms import AuditAlarms, AuditAlarmsArgs
from components.audit_log import AuditLog, AuditLogArgs
from components.backups import DataVolumeBackups, DataVolumeBackupsArgs, stack_tags
from components.config_store import ConfigStore, ConfigStoreArgs
from components.deployer_policy import permissions_boundary_arn
from components.dns import DnsRecord, DnsRecordArgs
from components.host import QdrantHost, QdrantHostArgs
from components.network import QdrantSecurityGroup, QdrantSecurityGroupArgs
from components.placement import resolve_placement
from components.restore import resolve_restore
from components.ssh import AdminSshKey
from components.stack_config import raw_config
from components.verify_gate import VerifyGate, VerifyGateArgs
from model.config import NAMESPACE, ConfigError, load_settings
from model.gate_credentials import gate_aws_environment
from model.settings import PORTS, HostSettings
from model.tokens import mint_tokens, token_claims

try:
    settings = load_settings(raw_config(NAMESPACE), stack=pulumi.get_stack())
    # The gate audits as the stack's AWS provider signs in: read before anything is created.
    gate_environment = gate_aws_environment(raw_config("aws")) if settings.verify_on_deploy else {}
except ConfigError as error:
    # Raised before any resource exists: a bad value never leaves a half-built stack behind.
    raise pulumi.RunError(str(error)) from None

name = f"qdrant-{pulumi.get_stack()}"
region = aws.get_region().region
# Opt-in: the boundary must exist (an administrator creates it once, docs/deployer-policy.md) before
# AWS creates a role with it. Unset, the roles are as before it: no boundary, no diff on them.
roles_boundary = (
    aws.get_caller_identity_output().account_id.apply(
        lambda account: permissions_boundary_arn(account, pulumi.get_stack())
    )
    if settings.role_permissions_boundary
    else None
)
# Looked up before any resource: a subnet or zone that cannot host the instance type stops here.
placement = resolve_placement(settings.subnet_id, settings.instance_type)
durability = settings.durability
# Looked up before any resource too: a snapshot of another region or account stops here.
restore = (
    resolve_restore(durability.restore_from_snapshot_id, region, settings.data_volume_size_gb)
    if durability.restore_from_snapshot_id
    else None
)
keys = ApiKeys(
    f"{name}-keys",
    ApiKeysArgs(
        parameter_prefix=f"/{pulumi.get_project()}/{pulumi.get_stack()}",
        version=settings.api_key_version,
        grace_hours=settings.key_grace_hours,
    ),
)
firewall = QdrantSecurityGroup(
    f"{name}-firewall",
    QdrantSecurityGroupArgs(
        vpc_id=placement.vpc_id,
        admin_cidrs=settings.admin_cidrs,
        public_ports=PORTS.public_for(settings.acme_challenge),
        tags=stack_tags(name),
    ),
)
config_store = ConfigStore(
    f"{name}-config",
    ConfigStoreArgs(
        stack=pulumi.get_stack(),
        region=region,
        deployer_arn=aws.get_caller_identity_output().arn,
    ),
)
config_source = config_store.source(name)
audit_log = AuditLog(
    f"{name}-audit",
    AuditLogArgs(
        host_name=name, retention_days=settings.audit_log_retention_days, tags=stack_tags(name)
    ),
)
ssh_key = AdminSshKey(f"{name}-admin", stack_tags(name)) if settings.ssh_enabled else None
host = QdrantHost(
    name,
    QdrantHostArgs(
        host=HostSettings(
            domain=settings.domain,
            acme_email=settings.acme_email,
            acme_server=settings.acme_server,
            qdrant_version=settings.qdrant_version,
            limits=settings.limits,
            admin_cidrs=settings.admin_cidrs,
            region=region,
            api_key_parameter=keys.api_key_parameter_name,
            read_only_api_key_parameter=keys.read_only_api_key_parameter_name,
            previous_api_key_parameter=keys.previous_api_key_parameter_name,
            data_volume_size_gb=settings.data_volume_size_gb,
            name=name,
            acme_challenge=settings.acme_challenge,
            certificate_names=settings.certificate_names,
            audit=settings.audit,
        ),
        instance_type=settings.instance_type,
        architecture=settings.architecture,
        host_os=settings.host_os,
        image_release=settings.image_release,
        subnet_id=placement.subnet_id,
        availability_zone=placement.availability_zone,
        security_group_id=firewall.group_id,
        secret_parameter_arns=keys.parameter_arns,
        audit_log_group_arn=audit_log.group_arn,
        config_source=config_source,
        publish_config=lambda document, role_arn: config_store.publish(
            name, document, config_store.restrict({name: role_arn})
        ),
        key_name=ssh_key.key_name if ssh_key else None,
        acme_dns_zone_id=(
            aws.route53.get_zone_output(name=settings.hosted_zone, private_zone=False).zone_id
            if settings.acme_challenge == "dns-01"
            else None
        ),
        boot_dependencies=keys.parameters,
        restore=restore,
        permissions_boundary=roles_boundary,
        stack_tags=stack_tags(name),
    ),
)
backups = (
    DataVolumeBackups(
        f"{name}-dlm",
        DataVolumeBackupsArgs(
            region=region,
            target_tags=stack_tags(name),
            retention_days=durability.backup_retention_days,
            permissions_boundary=roles_boundary,
        ),
    )
    if durability.backup_schedule
    else None
)
alarms = HostAlarms(
    f"{name}-alarms",
    HostAlarmsArgs(
        region=region,
        host_name=name,
        instance_id=host.instance_id,
        instance_type=settings.instance_type,
        thresholds=durability.thresholds,
        alert_email=durability.alert_email,
        backup_policy_id=backups.policy_id if backups else None,
        tags=stack_tags(name),
    ),
)
# Named under the host's alarms: the deployer may create alarms by that prefix only.
audit_alarms = AuditAlarms(
    f"{name}-alarms-audit",
    AuditAlarmsArgs(
        log_group_name=audit_log.group_name,
        topic_arn=alarms.topic_arn,
        subjects=tuple(token.name for token in settings.tokens),
        denied_per_minute=durability.thresholds.denied_per_minute,
        tags=stack_tags(name),
    ),
)
dns = (
    DnsRecord(
        f"{name}-dns",
        DnsRecordArgs(
            zone_name=settings.hosted_zone, domain=settings.domain, address=host.public_ip
        ),
    )
    if settings.hosted_zone
    else None
)

outputs: dict[str, Any] = {
    "restUrl": f"https://{settings.domain}",
    "grpcHost": settings.domain,
    "grpcPort": PORTS.grpc_tls,
    "publicIp": host.public_ip,
    "instanceId": host.instance_id,
    "dataVolumeId": host.data_volume_id,
    # What the deploy gate waits for the host to report serving (verify/config_status.py).
    "configVersion": host.config_version,
    "configBucket": config_source.apply(lambda source: source.bucket),
    "configStatusKey": config_source.apply(lambda source: source.status_key),
    "alertTopicArn": alarms.topic_arn,
    # Where the host ships Qdrant's audit lines, one stream per host named for it.
    "auditLogGroup": audit_log.group_name,
    "apiKeyParameter": keys.api_key_parameter,
    "adminCidrs": list(settings.admin_cidrs),
    "acmeChallenge": settings.acme_challenge,
    "certificateNames": list(settings.all_certificate_names),
    "apiKey": pulumi.Output.secret(keys.api_key),
    "readOnlyApiKey": pulumi.Output.secret(keys.read_only_api_key),
    "tokens": pulumi.Output.secret(
        keys.api_key.apply(lambda key: mint_tokens(settings.tokens, key))
    ),
    "tokenScopes": {spec.name: token_claims(spec) for spec in settings.tokens},
    "keyGraceEndsAt": keys.grace_ends_at.apply(grace_end_text),
    "revokedTokens": [spec.name for spec in settings.tokens if spec.revoked],
}
if ssh_key:
    outputs["sshPrivateKey"] = ssh_key.private_key_openssh
if backups:
    outputs["backupPolicyId"] = backups.policy_id
for output_name, value in outputs.items():
    pulumi.export(output_name, value)

reachable = [host, *([dns] if dns else [])]
allowlist = (
    TokenAllowlist(
        f"{name}-allowlist",
        TokenAllowlistArgs(outputs=outputs, triggers=[host.instance_id], depends_on=reachable),
    )
    if any(spec.revocable for spec in settings.tokens)
    else None
)
if settings.verify_on_deploy:
    VerifyGate(
        f"{name}-verify",
        VerifyGateArgs(
            outputs=outputs,
            region=region,
            aws_environment=gate_environment,
            # A new configuration version is applied in place: check the host again once it
            # serves it, as after a replacement.
            triggers=[host.instance_id, host.config_version],
            # The audit looks for the backup policy and the alarms too, and the gate judges
            # revoked tokens: the allowlist must be in step first.
            depends_on=[
                *reachable,
                alarms,
                *([backups] if backups else []),
                *([allowlist.sync] if allowlist else []),
            ],
        ),
    )
