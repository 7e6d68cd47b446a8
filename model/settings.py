"""The one source of truth for every port, path, limit and version.

The Pulumi program, the cloud-init renderer, the Nginx renderer, the loopback lab and the docs all
read these objects; nothing else in the project writes a port number or a VM path by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

CollectionAccess = Literal["r", "rw", "prw"]
GlobalAccess = Literal["r", "m"]
Architecture = Literal["x86_64", "arm64"]
HostOs = Literal["ubuntu-24.04", "debian-12"]
AcmeChallenge = Literal["http-01", "dns-01"]

# v1.18.2 fixed an auth bypass (`/dashboard%2f..%2fcollections`), so nothing older is deployable.
QDRANT_VERSION_FLOOR = (1, 18, 2)
DEFAULT_QDRANT_VERSION = "v1.18.3"
QDRANT_IMAGE = "qdrant/qdrant"
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
# ACME directories whose certificates no public trust store accepts: fine for experiments, but the
# deploy gate's certificate check (and every client) refuses what they issue.
UNTRUSTED_ACME_HOSTS = frozenset(
    {
        "acme-staging-v02.api.letsencrypt.org",
        "dv.acme-v02.test-api.pki.goog",
        "api.test4.buypass.no",
    }
)
DEFAULT_HOST_OS: HostOs = "ubuntu-24.04"
# The image release each host OS boots unless `imageRelease` says otherwise: the serial in the
# distribution's AMI name (model/images.py). Pinned, so a newly published image never replaces
# the host on a routine `pulumi up`; bumping it is a planned replacement.
DEFAULT_IMAGE_RELEASES: dict[HostOs, str] = {
    # Canonical's build date.
    "ubuntu-24.04": "20251212",
    # Debian's build date and build number: a build whose AMIs are on record for both architectures
    # (debian-12-amd64-20231013-1532 and debian-12-arm64-20231013-1532, Debian's account).
    "debian-12": "20231013-1532",
}
# The device name the data volume is attached under; Nitro instances show it as an NVMe disk instead,
# which the VM finds by the volume id.
DATA_VOLUME_DEVICE = "/dev/sdf"
# The user Qdrant runs as in its container; it owns Qdrant's files on the data volume, which outlive
# the instance, so it must be the same number on every host. 1000 (what earlier releases used) is
# the image's login user, with passwordless sudo: Ubuntu's `ubuntu`, Debian's `admin`. This one is
# in the only range systemd's UIDS-GIDS.md leaves unused below 65536 (60578-61183): above the
# distro's system (up to 999) and login (1000-60000, login.defs) allocations, and outside
# systemd-homed's (60001-60577), DynamicUser's (61184-65519) and nspawn's container (524288 and up)
# ranges, so no package, login user or systemd allocation on either host can ever be handed the
# same number.
QDRANT_UID = 61000
# What Qdrant ran as before: a data volume from an earlier deploy still belongs to it.
LEGACY_QDRANT_UID = 1000


@dataclass(frozen=True)
class Ports:
    """Ports of the host. Only `public` ones are ever opened to the network."""

    ssh: int = 22
    http: int = 80
    https: int = 443
    grpc_tls: int = 6334
    # Qdrant's own listeners are published on 127.0.0.1 only; Nginx is their sole client.
    qdrant_rest: int = 6333
    qdrant_grpc: int = 16334

    @property
    def public(self) -> tuple[int, ...]:
        """Ports the world may reach (SSH is separate: admin CIDRs only)."""
        return (self.http, self.https, self.grpc_tls)

    def public_for(self, challenge: AcmeChallenge) -> tuple[int, ...]:
        """The public ports of a host getting its certificate by `challenge`: DNS-01 needs no port
        80, so none is opened."""
        return self.public if challenge == "http-01" else (self.https, self.grpc_tls)

    @property
    def loopback_only(self) -> tuple[int, ...]:
        return (self.qdrant_rest, self.qdrant_grpc)


PORTS = Ports()


@dataclass(frozen=True)
class ImagePorts:
    """Where Qdrant listens inside its container (the image's defaults); the unit publishes them on
    the host's loopback-only `Ports.qdrant_rest` and `Ports.qdrant_grpc`."""

    rest: int = 6333
    grpc: int = 6334


QDRANT_IMAGE_PORTS = ImagePorts()


@dataclass(frozen=True)
class ListenAddresses:
    """The IPv4 and IPv6 addresses every public server of the host listens on."""

    ipv4: str
    ipv6: str


# The VM serves every interface; the lab keeps its servers on loopback.
ALL_INTERFACES = ListenAddresses("0.0.0.0", "[::]")
LOOPBACK = ListenAddresses("127.0.0.1", "[::1]")


@dataclass(frozen=True)
class AccessRule:
    collection: str
    access: CollectionAccess


@dataclass(frozen=True)
class ValueMatch:
    key: str
    value: str | int | bool


@dataclass(frozen=True)
class ValueExists:
    """Qdrant's `value_exists` claim: the token only works while a matching point exists."""

    collection: str
    matches: tuple[ValueMatch, ...]


@dataclass(frozen=True)
class TokenSpec:
    """One configured caller. `access` is mandatory: Qdrant gives a token without it full manage."""

    name: str
    access: GlobalAccess | tuple[AccessRule, ...]
    expires_at: dt.datetime | None = None
    value_exists: ValueExists | None = None
    revocable: bool = False
    """It carries a `value_exists` claim on the token allowlist, so it can be revoked alone."""
    revoked: bool = False
    """Its allowlist point is deleted at deploy: Qdrant refuses it from then on."""


# The collection the deploy keeps one point per active revocable token in (verify/allowlist.py),
# its payload key holding the token's name: Qdrant accepts such a token only while its point exists.
TOKEN_ALLOWLIST_COLLECTION = "secure-qdrant-tokens"
TOKEN_ID_KEY = "token_id"


@dataclass(frozen=True)
class ClientLimits:
    """How long and how much the edge waits for and holds per client connection: what keeps slow or
    oversized clients from tying up nginx's connections. Not stack config: the lab shortens them to
    watch them cut in."""

    header_timeout_s: int = 10
    """For the whole request head (HTTP/2 too, since nginx 1.19.7): a slowloris client sending a
    byte now and then is cut after this, however often it sends."""
    body_timeout_s: int = 30
    """Between two reads of a request body, not for the whole body: a large upload that keeps
    flowing is never cut, a stalled one is."""
    send_timeout_s: int = 30
    """Between two writes of a response: a client that stops reading (slow read) is cut."""
    keepalive_timeout_s: int = 60
    """Idle time before a kept-alive connection (HTTP/2 too, since 1.19.7) is closed."""
    header_buffer_size_kb: int = 1
    large_header_buffers: int = 4
    large_header_buffer_kb: int = 16
    """The largest request line or single header: twice nginx's 8k default, because a token scoped
    to many collections (or carrying `value_exists` matches) grows with its claims; anything larger
    is refused (414 for the request line, 400 for a header) before Qdrant sees it."""
    http2_max_concurrent_streams: int = 128
    requests_per_address: int = 128
    """Requests one address may have in progress at once (over HTTP/2, each stream counts). No
    timeout cuts a body that trickles in faster than `body_timeout_s`: this bounds how many such
    requests one address can hold open. The per-address rate keeps a legitimate client's requests
    in progress far below it unless each one takes tens of seconds."""
    upstream_read_timeout_s: int = 300
    """For Qdrant's answer: a search over a large collection or a snapshot may take minutes, so
    more than nginx's 60s default; a hung Qdrant still frees the connection."""


@dataclass(frozen=True)
class Limits:
    """Edge limits enforced by Nginx, shared by REST and gRPC."""

    rate_limit_rps: int = 5
    rest_burst: int = 20
    grpc_burst: int = 50
    max_body_size_mb: int = 128
    credential_rate_limit_rps: int = 100
    """Requests per second per credential (`api-key` header, else `Authorization`), from all
    addresses together: what one leaked credential spread over many addresses gets. Looser than the
    per-address rate, because an application fleet shares one credential."""
    credential_burst: int = 400
    clients: ClientLimits = field(default_factory=ClientLimits)


AuditRotation = Literal["daily", "hourly"]


AUDIT_LOG_RETENTION_DAYS = 30
"""How long CloudWatch keeps the lines: as long as the host keeps its daily files
(`QDRANT_AUDIT.max_log_files`), so that an incident a month old is answered in either place."""


@dataclass(frozen=True)
class QdrantAudit:
    """Qdrant's audit log as the host runs it (the `audit:` section of Qdrant's config,
    lib/storage/src/audit.rs): one JSON line per access-checked request, naming the token's
    `subject`, the client's address and the result, never a key or a token."""

    directory: str = "/qdrant/storage/audit"
    """Inside the container, under the storage directory the unit mounts from the data volume:
    encrypted at rest, and carried by the volume's snapshots and restores."""
    rotation: AuditRotation = "daily"
    max_log_files: int = 30
    """Files kept, the oldest deleted as a new one opens: 30 days at daily rotation (Qdrant's
    default is 7)."""

    def environment(self) -> dict[str, str]:
        """The `QDRANT__AUDIT__*` variables Qdrant reads the section from."""
        return {
            "QDRANT__AUDIT__ENABLED": "true",
            "QDRANT__AUDIT__DIR": self.directory,
            "QDRANT__AUDIT__ROTATION": self.rotation,
            "QDRANT__AUDIT__MAX_LOG_FILES": str(self.max_log_files),
            # Qdrant's one client is the edge, which sets X-Forwarded-For to the connection's
            # address and drops Forwarded: without this every line would say 127.0.0.1.
            "QDRANT__AUDIT__TRUST_FORWARDED_HEADERS": "true",
        }


QDRANT_AUDIT = QdrantAudit()


# The CloudWatch namespace of the host's own metrics: the only one its role may publish to.
METRICS_NAMESPACE = "SecureQdrant"


@dataclass(frozen=True)
class HostMetrics:
    """What the host's publisher (cloud-init/secure-qdrant-metrics) sends every minute, under the
    dimension `Host` = the host's name, so the alarms outlive a replaced instance."""

    dimension: str = "Host"
    certificate_days_left: str = "CertificateDaysLeft"
    qdrant_up: str = "QdrantUp"
    edge_serves: str = "EdgeServes"
    unauthorized: str = "Unauthorized401"
    rate_limited: str = "RateLimited429"
    data_volume_used_percent: str = "DataVolumeUsedPercent"
    config_rejected: str = "ConfigRejected"
    """1 while the host refuses the latest published configuration and serves the last good one."""


HOST_METRICS = HostMetrics()


@dataclass(frozen=True)
class AlarmThresholds:
    """When the host's own metrics raise an alarm (each a stack config key)."""

    certificate_days_left: int = 14
    """certbot renews 30 days ahead: under 14 left, renewal has been failing for over two weeks."""
    qdrant_down_minutes: int = 5
    unauthorized_per_minute: int = 60
    """401s a minute above which someone is guessing credentials (fail2ban bans single sources)."""
    data_volume_used_percent: int = 80
    denied_per_minute: int = 10
    """Requests of one application (its tokens' `subject`) a minute that Qdrant's audit log records
    as denied, above which the application misbehaves or its token is misused: a legitimate client
    is rarely refused at all."""


@dataclass(frozen=True)
class Durability:
    """Backups, restore and alarms of the data volume and the host."""

    backup_schedule: bool = True
    backup_retention_days: int = 7
    """Daily snapshots kept: DLM deletes the oldest beyond this count."""
    restore_from_snapshot_id: str | None = None
    alert_email: str | None = None
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)


@dataclass(frozen=True)
class StackSettings:
    """Validated stack configuration: everything `pulumi up` needs, and nothing unchecked."""

    domain: str
    acme_email: str
    hosted_zone: str | None = None
    acme_server: str = LETS_ENCRYPT_DIRECTORY
    acme_challenge: AcmeChallenge = "http-01"
    certificate_names: tuple[str, ...] = ()
    """Names on the certificate besides `domain` (DNS-01 only), a wildcard as `*.<name>`."""
    admin_cidrs: tuple[str, ...] = ()
    allow_ssh_from_anywhere: bool = False
    instance_type: str = "t3.medium"
    architecture: Architecture = "x86_64"
    host_os: HostOs = DEFAULT_HOST_OS
    image_release: str = DEFAULT_IMAGE_RELEASES[DEFAULT_HOST_OS]
    subnet_id: str | None = None
    data_volume_size_gb: int = 20
    qdrant_version: str = DEFAULT_QDRANT_VERSION
    limits: Limits = field(default_factory=Limits)
    tokens: tuple[TokenSpec, ...] = ()
    api_key_version: int = 1
    key_grace_hours: int = 24
    """After a rotation, how long the previous master key (and tokens it signed) still work."""
    verify_on_deploy: bool = True
    role_permissions_boundary: bool = False
    """Both roles carry the stack's permissions boundary, `secure-qdrant-<stack>-boundary` of the
    deploying account, which an administrator creates once: what the least-privilege deployer
    policy needs (components/deployer_policy.py)."""
    durability: Durability = field(default_factory=Durability)
    audit: QdrantAudit = QDRANT_AUDIT
    """Qdrant's audit log on the host: its rotation and the files kept come from config."""
    audit_log_retention_days: int = AUDIT_LOG_RETENTION_DAYS
    """Days CloudWatch Logs keeps the audit lines shipped off the host (one of its retention
    values)."""

    @property
    def ssh_enabled(self) -> bool:
        return bool(self.admin_cidrs)

    @property
    def all_certificate_names(self) -> tuple[str, ...]:
        return (self.domain, *self.certificate_names)


@dataclass(frozen=True)
class BootstrapWaits:
    """How long the bootstrap waits for what other parties bring up, in seconds: long enough for the
    slow case, bounded so a host that cannot come up says so instead of waiting forever."""

    secrets: int = 300
    """For the key parameters to be readable: the instance may boot before they exist or before
    its role's policy has propagated (IAM is eventually consistent)."""
    qdrant: int = 3600
    """For Qdrant's health, after the edge is up: Qdrant loads every collection before serving, which
    on a large volume takes many minutes."""


@dataclass(frozen=True)
class HostPaths:
    """Where things live on the host. The lab points these into a scratch directory."""

    data_mount: str = "/var/lib/qdrant-data"
    secrets_dir: str = "/etc/secure-qdrant"
    acme_webroot: str = "/var/www/acme"
    nginx_conf_dir: str = "/etc/nginx"
    nginx_log_dir: str = "/var/log/nginx"
    ready_marker: str = "/var/lib/secure-qdrant/ready"
    bootstrap: str = "/usr/local/sbin/secure-qdrant-bootstrap"
    metrics_publisher: str = "/usr/local/sbin/secure-qdrant-metrics"
    fstab: str = "/etc/fstab"
    letsencrypt_link: str = "/etc/letsencrypt"
    """Where the distro's certbot (and its renewal timer) looks; it points at `letsencrypt_dir`."""
    certbot_work_dir: str = "/var/lib/letsencrypt"
    certbot_logs_dir: str = "/var/log/letsencrypt"
    systemd_unit_dir: str = "/etc/systemd/system"
    fail2ban_dir: str = "/etc/fail2ban"

    @property
    def qdrant_storage(self) -> str:
        return f"{self.data_mount}/storage"

    @property
    def qdrant_snapshots(self) -> str:
        return f"{self.data_mount}/snapshots"

    @property
    def letsencrypt_dir(self) -> str:
        # On the data volume: a replaced instance keeps its certificate and its ACME account.
        return f"{self.data_mount}/letsencrypt"


@dataclass(frozen=True)
class HostSettings:
    """What one VM needs to build itself: rendered into its user data, and reused by the lab."""

    domain: str
    acme_email: str
    acme_server: str
    qdrant_version: str
    limits: Limits
    admin_cidrs: tuple[str, ...]
    region: str
    api_key_parameter: str
    read_only_api_key_parameter: str
    previous_api_key_parameter: str
    """The master key a rotation replaced and until when it stays valid: the host's timer reads all
    three, so a rotation changes no user data and replaces no host."""
    data_volume_size_gb: int = StackSettings.data_volume_size_gb
    """In the user data so that growing the volume replaces the host, whose bootstrap then grows the
    filesystem into the new space."""
    name: str = "secure-qdrant"
    """The host's name (`qdrant-<stack>`): the dimension its metrics are published under."""
    acme_challenge: AcmeChallenge = "http-01"
    certificate_names: tuple[str, ...] = ()
    """Further names on the certificate (`StackSettings.certificate_names`)."""
    ports: Ports = PORTS
    paths: HostPaths = field(default_factory=HostPaths)
    listen: ListenAddresses = ALL_INTERFACES
    data_volume_device: str = DATA_VOLUME_DEVICE
    waits: BootstrapWaits = field(default_factory=BootstrapWaits)
    audit: QdrantAudit = QDRANT_AUDIT
    """Qdrant's audit log settings (`StackSettings.audit`): in the configuration document, so a
    change converges in place with one Qdrant restart."""
    nginx_args: tuple[str, ...] = ()
    """Arguments for every `nginx` call: none for the distro's, `-p PREFIX -c CONF` in the lab."""

    @property
    def qdrant_image(self) -> str:
        return f"{QDRANT_IMAGE}:{self.qdrant_version}"

    @property
    def public_ports(self) -> tuple[int, ...]:
        return self.ports.public_for(self.acme_challenge)
