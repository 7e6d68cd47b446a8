"""Every `secure-qdrant:` config key, declared once: its type, default, bounds, meaning, and what
changing it does to the running host.

The config reader takes its known keys, integer bounds and defaults from here; `Pulumi.yaml`'s
`config:` block and the configuration tables of the README and docs/configuration.md are rendered
from here (`python -m model.config_keys --write`), and tests fail when a file is stale. Pure:
data and text renderers, no Pulumi import.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from model.audit_log import RETENTION_DAYS as CLOUDWATCH_LOG_RETENTION_DAYS
from model.settings import (
    DEFAULT_IMAGE_RELEASES,
    PORTS,
    QDRANT_VERSION_FLOOR,
    AcmeChallenge,
    AlarmThresholds,
    Architecture,
    AuditRotation,
    Durability,
    HostOs,
    Limits,
    StackSettings,
)

ConfigType = Literal["string", "integer", "boolean", "array"]
# What changing a key does, held to preview-equivalent mock runs (tests/test_config_changes.py).
# "in place": `pulumi up` updates resources beside the host, or the instance itself without
# replacing it (a new instance type is a stop, modify and start), or publishes a new configuration
# document that the running host converges to within about a minute (cloud-init/converge.py), or
# changes nothing on it. "replaces the host": a new instance and a full first boot, during which the
# database is unreachable; the data volume, the address and the certificate stay. "... and the data
# volume": a new data volume too, which the old one's protection stops until an operator unprotects
# it.
Change = Literal["in place", "replaces the host", "replaces the host and the data volume"]
IN_PLACE: Change = "in place"
REPLACES_THE_HOST: Change = "replaces the host"
REPLACES_THE_HOST_AND_THE_DATA_VOLUME: Change = "replaces the host and the data volume"

# Pulumi carries every number as a double (protobuf's Value), as CloudWatch does its thresholds:
# past 2**53 - 1 an integer loses its exact value, and past a double's range Pulumi's serializer
# raises OverflowError with resources already registered.
MAX_PULUMI_INTEGER = 2**53 - 1
# nginx's limit_req keeps a rate in thousandths of a request a second, in a 64-bit integer it
# multiplies by the milliseconds since a client's last request (ngx_http_limit_req_module.c,
# ngx_http_limit_req_lookup). Up to a million a second that product holds for over 100 days of a
# client's silence; `nginx -t` takes any rate up to 2**63 - 1, and the arithmetic would then wrap.
NGINX_MAX_RATE_PER_SECOND = 1_000_000
# limit_req keeps the burst in thousandths too (`limit->burst = burst * 1000`, a 64-bit integer).
NGINX_MAX_BURST = (2**63 - 1) // 1000
# client_max_body_size is an off_t: ngx_parse_offset refuses more megabytes (`m`, 2**20 bytes) than
# 2**63 - 1 bytes hold, and `nginx -t` fails.
NGINX_MAX_BODY_SIZE_MB = (2**63 - 1) // 2**20
GP3_MAX_SIZE_GB = 16384
# DLM's RetainRule.Count: 1 to 1000 (Data Lifecycle Manager API Reference, RetainRule).
MAX_BACKUP_RETENTION = 1000
# Let's Encrypt certificates last 90 days: a threshold at or above that alarms from the first day.
CERTIFICATE_LIFETIME_DAYS = 90
# CloudWatch: evaluation periods times the period may not exceed one day (PutMetricAlarm).
MAX_ALARM_MINUTES = 24 * 60
# "Inbound rules per security group: 60, enforced separately for IPv4 and IPv6" (Amazon VPC quotas);
# each family also carries one rule per public port.
SECURITY_GROUP_RULES_PER_FAMILY = 60
MAX_ADMIN_CIDRS_PER_FAMILY = SECURITY_GROUP_RULES_PER_FAMILY - len(PORTS.public)
# Let's Encrypt's limit of names on one certificate.
MAX_CERTIFICATE_NAMES = 100
# The names travel in the user data, whose 16 KB (gzip'd) EC2 allows the largest configuration
# with little room to spare, and in the role's Route 53 policy (IAM's 10,240 characters, shared with
# the key-reading policy). A wildcard covers what many names would.
MAX_CERTIFICATE_NAMES_CHARACTERS = 1024
# RFC 5321 4.5.3.1: at most 64 octets before the @, and a path of 256 with its angle brackets.
MAX_EMAIL_LOCAL_PART = 64
MAX_EMAIL_ADDRESS = 254
# A year of hourly files: each one is an open directory entry Qdrant's appender lists at every
# rotation, and the history beyond the host lives in CloudWatch Logs.
MAX_AUDIT_LOG_FILES = 366 * 24
# A replaced master key stays a valid credential this long at most: a leaked one must not linger.
MAX_KEY_GRACE_HOURS = 30 * 24

REPO = Path(__file__).resolve().parent.parent
TABLE_BEGIN = "<!-- config-table:begin -->"
TABLE_END = "<!-- config-table:end -->"
WRITE_COMMAND = "venv/bin/python -m model.config_keys --write"


@dataclass(frozen=True)
class Key:
    name: str
    type: ConfigType
    description: str
    default: str | int | bool | tuple[()] | None = None
    """None: unset, the key's `unset` meaning applies (or the key is required)."""
    required: bool = False
    changing: Change = IN_PLACE
    items: Literal["string", "object"] | None = None
    bounds: tuple[int, int] | None = None
    unit: str = ""
    allowed: tuple[str, ...] = ()
    """The only values a string key takes, or an integer key's (written as text)."""
    unset: str = "unset"
    """What leaving an optional key without a default unset means, as the tables say it."""


_DEFAULTS = StackSettings(domain="", acme_email="")
_PINS = ", ".join(f"`{release}` ({os})" for os, release in DEFAULT_IMAGE_RELEASES.items())
_FLOOR = "v" + ".".join(map(str, QDRANT_VERSION_FLOOR))

KEYS: tuple[Key, ...] = (
    Key(
        "domain",
        "string",
        "Fully qualified domain name of the endpoint, e.g. `qdrant.example.com`",
        required=True,
        changing=REPLACES_THE_HOST,
    ),
    Key(
        "acmeEmail",
        "string",
        "E-mail address of the Let's Encrypt account",
        required=True,
    ),
    Key(
        "hostedZone",
        "string",
        "Route 53 public zone holding `domain`; unset means no DNS record is created",
    ),
    Key(
        "acmeChallenge",
        "string",
        "How Let's Encrypt checks the domain: `http-01` (port 80 open to the world for the "
        "challenge and the redirect) or `dns-01` (a TXT record certbot writes into `hostedZone`, "
        "which it needs; no port 80). Changing it gets the host a new certificate the new way",
        default=_DEFAULTS.acme_challenge,
        allowed=get_args(AcmeChallenge),
    ),
    Key(
        "certificateNames",
        "array",
        f"Further names on the certificate, `dns-01` only: each inside `hostedZone`, a wildcard as "
        f"`*.example.com`; at most {MAX_CERTIFICATE_NAMES - 1} names and "
        f"{MAX_CERTIFICATE_NAMES_CHARACTERS:,} characters together (the configuration document and "
        "the role's policy carry them)",
        default=(),
        items="string",
    ),
    Key(
        "acmeServer",
        "string",
        "ACME directory URL (https, RFC 3986 characters, no user part). A staging CA's "
        "certificates are trusted by no client, so with one (e.g. Let's Encrypt staging) set "
        "`verifyOnDeploy: false` too, or the config is refused",
        default=_DEFAULTS.acme_server,
    ),
    Key(
        "adminCidrs",
        "array",
        "CIDR blocks allowed to reach 22/tcp; empty means no SSH rule and no key pair (Session "
        "Manager still works on `ubuntu-24.04`, whose image ships its agent; set `adminCidrs` for "
        f"`debian-12`). At most {MAX_ADMIN_CIDRS_PER_FAMILY} blocks per IP family",
        default=(),
        items="string",
    ),
    Key(
        "allowSshFromAnywhere",
        "boolean",
        "Must be `true` for `0.0.0.0/0` or `::/0` in `adminCidrs`; almost never what you want",
        default=_DEFAULTS.allow_ssh_from_anywhere,
    ),
    Key(
        "instanceType",
        "string",
        "EC2 instance type; its architecture must match `architecture`. A type the host's zone "
        "offers resizes the same instance (stop, modify, start)",
        default=_DEFAULTS.instance_type,
    ),
    Key(
        "architecture",
        "string",
        "CPU architecture of the host; Graviton types (`t4g`, `m7g`, ...) are `arm64`",
        default=_DEFAULTS.architecture,
        changing=REPLACES_THE_HOST,
        allowed=get_args(Architecture),
    ),
    Key(
        "hostOs",
        "string",
        "The host's operating system, from its official image (Canonical's or Debian's)",
        default=_DEFAULTS.host_os,
        changing=REPLACES_THE_HOST,
        allowed=get_args(HostOs),
    ),
    Key(
        "imageRelease",
        "string",
        "Serial in the image's AMI name, starting with a real date: Canonical's `YYYYMMDD` "
        "(`ubuntu-noble-24.04-amd64-server-YYYYMMDD`) or Debian's `YYYYMMDD-NNNN` "
        "(`debian-12-amd64-YYYYMMDD-NNNN`)",
        changing=REPLACES_THE_HOST,
        unset=f"the OS's pin: {_PINS}",
    ),
    Key(
        "subnetId",
        "string",
        "Public subnet for the host (`subnet-` and 8 to 17 hex digits), in a zone that offers "
        "`instanceType`",
        changing=REPLACES_THE_HOST_AND_THE_DATA_VOLUME,
        unset="a default-VPC subnet in the first zone (by name) offering `instanceType`",
    ),
    Key(
        "dataVolumeSizeGb",
        "integer",
        "Size of the encrypted gp3 data volume (Qdrant storage, snapshots, certificate); growing "
        "it grows the volume in place, then the host grows the filesystem online",
        default=_DEFAULTS.data_volume_size_gb,
        bounds=(1, GP3_MAX_SIZE_GB),
        unit="GiB (a gp3 volume's largest)",
    ),
    Key(
        "qdrantVersion",
        "string",
        f"Qdrant image tag, {_FLOOR} or newer (older releases have an authentication bypass)",
        default=_DEFAULTS.qdrant_version,
    ),
    Key(
        "rateLimitRps",
        "integer",
        "Requests per second per client IP, REST and gRPC together; nginx's rate arithmetic "
        "holds no more than the bound",
        default=Limits.rate_limit_rps,
        bounds=(1, NGINX_MAX_RATE_PER_SECOND),
        unit="requests a second",
    ),
    Key(
        "restBurst",
        "integer",
        "Burst above the rate on REST before 429; the bound is what nginx stores",
        default=Limits.rest_burst,
        bounds=(1, NGINX_MAX_BURST),
        unit="requests",
    ),
    Key(
        "grpcBurst",
        "integer",
        "Burst above the rate on gRPC before 429",
        default=Limits.grpc_burst,
        bounds=(1, NGINX_MAX_BURST),
        unit="requests",
    ),
    Key(
        "maxBodySizeMb",
        "integer",
        "Largest request body nginx accepts (also the cap for gRPC and snapshot uploads, which "
        "Qdrant does not limit); the bound is nginx's largest",
        default=Limits.max_body_size_mb,
        bounds=(1, NGINX_MAX_BODY_SIZE_MB),
        unit="MB",
    ),
    Key(
        "credentialRateLimitRps",
        "integer",
        "Requests per second per credential (`api-key`, else `Authorization`) from all addresses "
        "together, REST and gRPC together",
        default=Limits.credential_rate_limit_rps,
        bounds=(1, NGINX_MAX_RATE_PER_SECOND),
        unit="requests a second",
    ),
    Key(
        "credentialBurst",
        "integer",
        "Burst above the per-credential rate before 429",
        default=Limits.credential_burst,
        bounds=(1, NGINX_MAX_BURST),
        unit="requests",
    ),
    Key(
        "apiKeyVersion",
        "integer",
        "Change it (bump by one) to rotate the master and read-only keys without replacing the "
        "host; every token is re-minted. The bound is 2^53 - 1, the largest integer Pulumi "
        "carries exactly",
        default=_DEFAULTS.api_key_version,
        bounds=(1, MAX_PULUMI_INTEGER),
    ),
    Key(
        "keyGraceHours",
        "integer",
        "After a rotation, hours the previous master key and the tokens it signed keep working",
        default=_DEFAULTS.key_grace_hours,
        bounds=(0, MAX_KEY_GRACE_HOURS),
        unit="hours",
    ),
    Key(
        "verifyOnDeploy",
        "boolean",
        "Run the security checks (`python -m verify`) at the end of every `pulumi up`, and fail it "
        "if any check fails",
        default=_DEFAULTS.verify_on_deploy,
    ),
    Key(
        "rolePermissionsBoundary",
        "boolean",
        "`true` puts the stack's permissions boundary, `secure-qdrant-<stack>-boundary` of the "
        "deploying account, on the instance role and the backup role; an administrator creates it "
        "first (AWS refuses a role whose boundary does not exist). The least-privilege deployer "
        "needs it on; on a deployed stack, turning it on or off takes an administrator's "
        "credentials",
        default=_DEFAULTS.role_permissions_boundary,
    ),
    Key(
        "backupSchedule",
        "boolean",
        "A daily snapshot of the data volume (Data Lifecycle Manager, at 03:00 UTC); `false` "
        "creates no backup resources",
        default=Durability.backup_schedule,
    ),
    Key(
        "backupRetentionDays",
        "integer",
        "Daily snapshots kept; older ones are deleted by the schedule",
        default=Durability.backup_retention_days,
        bounds=(1, MAX_BACKUP_RETENTION),
        unit="daily snapshots",
    ),
    Key(
        "restoreFromSnapshotId",
        "string",
        "Snapshot (`snap-` and 8 or 17 hex digits) of this account and region to make the data "
        "volume from: Pulumi refuses to replace the current volume until it is unprotected; "
        "unsetting it later changes nothing. Read the restore procedure first",
        changing=REPLACES_THE_HOST_AND_THE_DATA_VOLUME,
    ),
    Key(
        "alertEmail",
        "string",
        "Address subscribed to the alarms' SNS topic (it must confirm the subscription); at most "
        f"{MAX_EMAIL_LOCAL_PART} characters before the @ and {MAX_EMAIL_ADDRESS} in all (RFC 5321)",
    ),
    Key(
        "alarmCertificateDaysLeft",
        "integer",
        "Alarm when the TLS certificate has fewer days left than this (certbot renews from 30)",
        default=AlarmThresholds.certificate_days_left,
        bounds=(1, CERTIFICATE_LIFETIME_DAYS - 1),
        unit="days",
    ),
    Key(
        "alarmQdrantDownMinutes",
        "integer",
        "Alarm when Qdrant is not ready, the TLS edge does not serve, or the host stops "
        "reporting, for this many minutes",
        default=AlarmThresholds.qdrant_down_minutes,
        bounds=(1, MAX_ALARM_MINUTES),
        unit="minutes",
    ),
    Key(
        "alarmUnauthorizedPerMinute",
        "integer",
        "Alarm when more requests a minute than this are refused with 401 or gRPC UNAUTHENTICATED",
        default=AlarmThresholds.unauthorized_per_minute,
        bounds=(1, MAX_PULUMI_INTEGER),
        unit="requests",
    ),
    Key(
        "alarmDataVolumeUsedPercent",
        "integer",
        "Alarm when the data volume is fuller than this",
        default=AlarmThresholds.data_volume_used_percent,
        bounds=(1, 99),
        unit="percent",
    ),
    Key(
        "alarmDeniedPerMinute",
        "integer",
        "Alarm, per application (each token's name, its `subject` in Qdrant's audit log), when "
        "Qdrant denies it more requests a minute than this",
        default=AlarmThresholds.denied_per_minute,
        bounds=(1, MAX_PULUMI_INTEGER),
        unit="requests",
    ),
    Key(
        "auditRotation",
        "string",
        "How often Qdrant starts a new audit log file on the data volume; a change restarts "
        "Qdrant once",
        default=_DEFAULTS.audit.rotation,
        allowed=get_args(AuditRotation),
    ),
    Key(
        "auditMaxLogFiles",
        "integer",
        "Audit log files kept on the data volume, the oldest deleted as a new one opens: the "
        "default keeps 30 days at `daily` rotation (30 hours at `hourly`); a change restarts "
        "Qdrant once",
        default=_DEFAULTS.audit.max_log_files,
        bounds=(1, MAX_AUDIT_LOG_FILES),
        unit="files",
    ),
    Key(
        "auditLogRetentionDays",
        "integer",
        "Days CloudWatch Logs keeps the audit lines shipped off the host",
        default=_DEFAULTS.audit_log_retention_days,
        bounds=(min(CLOUDWATCH_LOG_RETENTION_DAYS), max(CLOUDWATCH_LOG_RETENTION_DAYS)),
        allowed=tuple(map(str, CLOUDWATCH_LOG_RETENTION_DAYS)),
        unit="days",
    ),
    Key(
        "tokens",
        "array",
        "Callers, one scoped JWT each: a list of `{name, access}` objects, with optional "
        "`expiresAt`, `valueExists`, `revocable` and `revoked` (see the token fields)",
        default=(),
        items="object",
    ),
)

BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}
KNOWN_KEYS = frozenset(BY_NAME)


def bounds_text(key: Key) -> str:
    """The values a key takes beyond its type, as the tables and `pulumi config` show them."""
    # A key of fixed values says them, even an integer one whose bounds only frame them.
    if key.allowed:
        return (" or ".join(f"`{value}`" for value in key.allowed) + f" {key.unit}").rstrip()
    if key.bounds:
        low, high = key.bounds
        return f"{low:,} to {high:,} {key.unit}".rstrip()
    return ""


def explained(key: Key) -> str:
    """The description with its bounds: one line, the same in `Pulumi.yaml` and the README."""
    bounds = bounds_text(key)
    return f"{key.description}; takes {bounds}" if bounds else key.description


def _default_text(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is None:
        return key.unset
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    if isinstance(key.default, tuple):
        return "`[]`"
    return f"`{key.default}`"


def _type_text(key: Key) -> str:
    return f"list of {key.items}s" if key.items else key.type


def _declaration(key: Key) -> dict[str, Any]:
    # The project schema types no objects: a list of objects stays untyped there (the CLI checks
    # only typed keys), and the reader refuses a malformed token before any resource exists.
    declaration: dict[str, Any] = {} if key.items == "object" else {"type": key.type}
    if key.items == "string":
        declaration["items"] = {"type": key.items}
    declaration["description"] = explained(key)
    if not key.required:
        # The reader reads an empty value as unset, so `""` declares an optional key without a
        # default of its own.
        default = "" if key.default is None else key.default
        declaration["default"] = list(default) if isinstance(default, tuple) else default
    return declaration


def render_pulumi_config() -> str:
    """`Pulumi.yaml`'s `config:` block, a default for every key but the required ones."""
    block = {"config": {key.name: _declaration(key) for key in KEYS}}
    return yaml.safe_dump(block, sort_keys=False, width=10**6, allow_unicode=True)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


def render_readme_table() -> str:
    return _table(
        ("key", "default", "changing it", "meaning"),
        [(f"`{k.name}`", _default_text(k), k.changing, explained(k)) for k in KEYS],
    )


def render_docs_table() -> str:
    return _table(
        ("key", "type", "default", "bounds", "changing it", "meaning"),
        [
            (
                f"`{k.name}`",
                _type_text(k),
                _default_text(k),
                bounds_text(k) or "-",
                k.changing,
                k.description,
            )
            for k in KEYS
        ],
    )


def with_table(text: str, table: str) -> str:
    """`text` with what stands between the config-table markers replaced by `table`."""
    head, begin, rest = text.partition(TABLE_BEGIN + "\n")
    _old, end, tail = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f"no {TABLE_BEGIN} ... {TABLE_END} markers")
    return head + begin + table + end + tail


def with_pulumi_config(text: str) -> str:
    """A `Pulumi.yaml` whose `config:` block, its last, is the rendered one."""
    head, config, _old = text.partition("\nconfig:\n")
    if not config:
        raise ValueError("Pulumi.yaml has no top-level config: block")
    return head + "\n" + render_pulumi_config()


def generated_files() -> dict[Path, str]:
    """Every file the table renders into, with the text it must have."""
    readme, docs = REPO / "README.md", REPO / "docs" / "configuration.md"
    project = REPO / "Pulumi.yaml"
    return {
        readme: with_table(readme.read_text(), render_readme_table()),
        docs: with_table(docs.read_text(), render_docs_table()),
        project: with_pulumi_config(project.read_text()),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="rewrite the stale files")
    args = parser.parse_args(argv)
    wanted = generated_files()
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    for path in stale:
        if args.write:
            path.write_text(wanted[path])
        print(f"{'rewrote' if args.write else 'stale'}: {path.relative_to(REPO)}")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
