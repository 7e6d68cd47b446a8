"""Bad stack config fails `pulumi up` with a message naming the key, before any resource exists."""

import json

import pytest
from pulumi.runtime import config as runtime_config

from components.stack_config import raw_config
from model.config import ConfigError, load_settings
from model.settings import DEFAULT_IMAGE_RELEASES
from tests.program import MINIMAL_CONFIG, Failed, deploy


def with_(**changes):
    return {**MINIMAL_CONFIG, **changes}


def without(key):
    return {k: v for k, v in MINIMAL_CONFIG.items() if k != key}


def token(**fields):
    return {"name": "app", "access": "r", **fields}


def dns01(**changes):
    return with_(**{"hostedZone": "example.com", "acmeChallenge": "dns-01", **changes})


BAD_CONFIGS = {
    "missing-domain": (without("domain"), "secure-qdrant:domain: is required"),
    "invalid-domain": (with_(domain="not a domain"), "secure-qdrant:domain: 'not a domain' is not"),
    "single-label-domain": (with_(domain="localhost"), "secure-qdrant:domain:"),
    "missing-email": (without("acmeEmail"), "secure-qdrant:acmeEmail: is required"),
    "invalid-email": (
        with_(acmeEmail="ops-at-example.com"),
        "secure-qdrant:acmeEmail: 'ops-at-example.com' is not",
    ),
    "domain-outside-zone": (
        with_(hostedZone="example.org"),
        "secure-qdrant:hostedZone: 'qdrant.example.com' is not inside",
    ),
    "unparsable-cidr": (
        with_(adminCidrs=["203.0.113.300/32"]),
        "secure-qdrant:adminCidrs: '203.0.113.300/32' is not a CIDR",
    ),
    "cidr-without-prefix": (
        with_(adminCidrs=["203.0.113.7"]),
        "secure-qdrant:adminCidrs: '203.0.113.7' is not a CIDR",
    ),
    "cidr-with-host-bits": (with_(adminCidrs=["203.0.113.7/24"]), "did you mean 203.0.113.0/24"),
    "cidrs-not-a-list": (with_(adminCidrs="203.0.113.0/24"), "secure-qdrant:adminCidrs:"),
    "too-many-ipv4-cidrs": (
        with_(adminCidrs=[f"198.51.{i}.0/24" for i in range(58)]),
        "secure-qdrant:adminCidrs: 58 IPv4 blocks exceed the 57 a security group holds",
    ),
    "duplicate-cidr": (with_(adminCidrs=["203.0.113.0/24", "203.0.113.0/24"]), "more than once"),
    "world-ssh-v4": (
        with_(adminCidrs=["0.0.0.0/0"]),
        "secure-qdrant:adminCidrs: 0.0.0.0/0 opens SSH to the whole internet",
    ),
    "world-ssh-v6": (with_(adminCidrs=["::/0"]), "secure-qdrant:adminCidrs: ::/0 opens SSH"),
    "unknown-instance-type": (
        with_(instanceType="t3.humongous"),
        "secure-qdrant:instanceType: 't3.humongous' is not a known",
    ),
    "unknown-architecture": (
        with_(architecture="riscv64"),
        "secure-qdrant:architecture: 'riscv64' is not x86_64 or arm64",
    ),
    "architecture-mismatch": (
        with_(instanceType="t4g.medium"),
        "secure-qdrant:architecture: x86_64 does not match instance type t4g.medium (arm64)",
    ),
    "version-below-floor": (
        with_(qdrantVersion="v1.18.1"),
        "secure-qdrant:qdrantVersion: 'v1.18.1' is older than v1.18.2",
    ),
    "version-unparsable": (
        with_(qdrantVersion="latest"),
        "secure-qdrant:qdrantVersion: 'latest' is not a release",
    ),
    "zero-rate": (
        with_(rateLimitRps=0),
        "secure-qdrant:rateLimitRps: must be 1 to 1000000 requests a second, got 0",
    ),
    "negative-rest-burst": (
        with_(restBurst=-1),
        "secure-qdrant:restBurst: must be 1 to 9223372036854775 requests, got -1",
    ),
    "zero-grpc-burst": (
        with_(grpcBurst=0),
        "secure-qdrant:grpcBurst: must be 1 to 9223372036854775 requests, got 0",
    ),
    "zero-body-size": (
        with_(maxBodySizeMb=0),
        "secure-qdrant:maxBodySizeMb: must be 1 to 8796093022207 MB, got 0",
    ),
    "zero-credential-rate": (
        with_(credentialRateLimitRps=0),
        "secure-qdrant:credentialRateLimitRps: must be 1 to 1000000 requests a second, got 0",
    ),
    "negative-credential-burst": (
        with_(credentialBurst=-5),
        "secure-qdrant:credentialBurst: must be 1 to 9223372036854775 requests, got -5",
    ),
    "zero-volume": (
        with_(dataVolumeSizeGb=0),
        "secure-qdrant:dataVolumeSizeGb: must be 1 to 16384 GiB (a gp3 volume's largest), got 0",
    ),
    "non-integer-limit": (
        with_(rateLimitRps="fast"),
        "secure-qdrant:rateLimitRps: 'fast' is not an integer",
    ),
    "zero-key-version": (
        with_(apiKeyVersion=0),
        "secure-qdrant:apiKeyVersion: must be 1 to 9007199254740991, got 0",
    ),
    "negative-key-grace": (
        with_(keyGraceHours=-1),
        "secure-qdrant:keyGraceHours: must be 0 to 720 hours, got -1",
    ),
    "key-grace-over-30-days": (
        with_(keyGraceHours=721),
        "secure-qdrant:keyGraceHours: must be 0 to 720 hours, got 721",
    ),
    "bad-subnet-id": (
        with_(subnetId="my-subnet"),
        "secure-qdrant:subnetId: 'my-subnet' is not a subnet id",
    ),
    "image-release-wildcard": (
        with_(imageRelease="*"),
        "secure-qdrant:imageRelease: '*' is not a ubuntu-24.04 image release",
    ),
    "image-release-not-a-date": (
        with_(imageRelease="20251332"),
        "secure-qdrant:imageRelease: '20251332' is not",
    ),
    "unknown-host-os": (
        with_(hostOs="debian-11"),
        "secure-qdrant:hostOs: 'debian-11' is not ubuntu-24.04 or debian-12",
    ),
    "debian-release-for-ubuntu": (
        with_(imageRelease="20231013-1532"),
        "secure-qdrant:imageRelease: '20231013-1532' is not a ubuntu-24.04 image release serial (YYYYMMDD",
    ),
    "ubuntu-release-for-debian": (
        with_(hostOs="debian-12", imageRelease="20251212"),
        "secure-qdrant:imageRelease: '20251212' is not a debian-12 image release serial (YYYYMMDD-NNNN, "
        "as in the AMI name debian-12-amd64-YYYYMMDD-NNNN)",
    ),
    "debian-release-without-build": (
        with_(hostOs="debian-12", imageRelease="20231013"),
        "'20231013' is not a debian-12",
    ),
    "staging-acme-with-the-gate": (
        with_(acmeServer="https://acme-staging-v02.api.letsencrypt.org/directory"),
        "secure-qdrant:acmeServer: https://acme-staging-v02.api.letsencrypt.org/directory issues "
        "certificates no client trusts, so the deploy gate's certificate check would fail",
    ),
    "token-without-access": (
        with_(tokens=[{"name": "app"}]),
        "secure-qdrant:tokens: token 'app': has no access",
    ),
    "token-unknown-global-access": (
        with_(tokens=[token(access="rw")]),
        "token 'app': access 'rw' is not r, m",
    ),
    "token-unknown-collection-access": (
        with_(tokens=[token(access=[{"collection": "c", "access": "admin"}])]),
        "token 'app': collection 'c' has access 'admin', not r, rw or prw",
    ),
    "token-empty-access-list": (with_(tokens=[token(access=[])]), "token 'app': access must be"),
    "duplicate-token-names": (
        with_(tokens=[token(), token()]),
        "secure-qdrant:tokens: token name app is used more than once",
    ),
    "duplicate-collection-in-token": (
        with_(
            tokens=[
                token(
                    access=[{"collection": "c", "access": "r"}, {"collection": "c", "access": "rw"}]
                )
            ]
        ),
        "token 'app': collection c appears more than once",
    ),
    "expiry-in-the-past": (
        with_(tokens=[token(expiresAt="2020-01-01")]),
        "token 'app': expiresAt '2020-01-01' is in the past",
    ),
    "expiry-unparsable": (
        with_(tokens=[token(expiresAt="next year")]),
        "token 'app': expiresAt 'next year' is not an ISO-8601",
    ),
    "expiry-without-zone": (
        with_(tokens=[token(expiresAt="2099-01-01T10:00:00")]),
        "needs a time zone",
    ),
    "token-unknown-field": (with_(tokens=[token(scope="r")]), "token 'app': unknown field scope"),
    "token-bad-name": (
        with_(tokens=[token(name="has space")]),
        "secure-qdrant:tokens: name 'has space'",
    ),
    "value-exists-malformed": (
        with_(tokens=[token(valueExists={"collection": "c"})]),
        "valueExists must have exactly",
    ),
    "revoked-without-revocable": (
        with_(tokens=[token(revoked=True)]),
        "token 'app': revoked needs revocable: true",
    ),
    "revocable-not-a-boolean": (
        with_(tokens=[token(revocable="yes")]),
        "token 'app': revocable 'yes' is not true or false",
    ),
    "revocable-with-value-exists": (
        with_(
            tokens=[
                token(
                    revocable=True,
                    valueExists={"collection": "c", "matches": [{"key": "k", "value": 1}]},
                )
            ]
        ),
        "token 'app': revocable and valueExists exclude each other",
    ),
    "access-to-the-allowlist": (
        with_(tokens=[token(access=[{"collection": "secure-qdrant-tokens", "access": "rw"}])]),
        "token 'app': collection 'secure-qdrant-tokens' is the token allowlist",
    ),
    "value-exists-on-the-allowlist": (
        with_(
            tokens=[
                token(
                    valueExists={
                        "collection": "secure-qdrant-tokens",
                        "matches": [{"key": "token_id", "value": "other"}],
                    }
                )
            ]
        ),
        "token 'app': collection 'secure-qdrant-tokens' is the token allowlist",
    ),
    "unknown-key": (
        with_(adminCidr=["203.0.113.0/24"]),
        "secure-qdrant:adminCidr: unknown key (a typo?)",
    ),
    "non-boolean-flag": (
        with_(allowSshFromAnywhere="yes"),
        "secure-qdrant:allowSshFromAnywhere: 'yes' is not true or false",
    ),
    "non-boolean-backup-schedule": (
        with_(backupSchedule="daily"),
        "secure-qdrant:backupSchedule: 'daily' is not true or false",
    ),
    # An ARN here would be a boundary the deployer policy, scoped to the stack's own, never allows.
    "boundary-named-not-switched": (
        with_(rolePermissionsBoundary="arn:aws:iam::123456789012:policy/mine"),
        "secure-qdrant:rolePermissionsBoundary: 'arn:aws:iam::123456789012:policy/mine' is not true or false",
    ),
    "zero-backup-retention": (
        with_(backupRetentionDays=0),
        "secure-qdrant:backupRetentionDays: must be 1 to 1000 daily snapshots, got 0",
    ),
    "backup-retention-past-dlm": (
        with_(backupRetentionDays=1001),
        "secure-qdrant:backupRetentionDays: must be 1 to 1000",
    ),
    "snapshot-id-not-a-snapshot": (
        with_(restoreFromSnapshotId="vol-0123456789abcdef0"),
        "secure-qdrant:restoreFromSnapshotId: 'vol-0123456789abcdef0' is not an EBS snapshot id",
    ),
    "snapshot-id-wrong-length": (
        with_(restoreFromSnapshotId="snap-0123456789"),
        "secure-qdrant:restoreFromSnapshotId: 'snap-0123456789' is not",
    ),
    "snapshot-id-upper-case": (
        with_(restoreFromSnapshotId="snap-0123456789ABCDEF0"),
        "secure-qdrant:restoreFromSnapshotId:",
    ),
    "invalid-alert-email": (
        with_(alertEmail="pager"),
        "secure-qdrant:alertEmail: 'pager' is not an e-mail address",
    ),
    "certificate-alarm-past-lifetime": (
        with_(alarmCertificateDaysLeft=90),
        "secure-qdrant:alarmCertificateDaysLeft: must be 1 to 89 days, got 90",
    ),
    "zero-certificate-alarm": (
        with_(alarmCertificateDaysLeft=0),
        "secure-qdrant:alarmCertificateDaysLeft: must be 1 to 89",
    ),
    "qdrant-down-alarm-past-a-day": (
        with_(alarmQdrantDownMinutes=1441),
        "secure-qdrant:alarmQdrantDownMinutes: must be 1 to 1440 minutes",
    ),
    "zero-unauthorized-alarm": (
        with_(alarmUnauthorizedPerMinute=0),
        "secure-qdrant:alarmUnauthorizedPerMinute: must be 1 to 9007199254740991 requests, got 0",
    ),
    "full-disk-alarm": (
        with_(alarmDataVolumeUsedPercent=100),
        "secure-qdrant:alarmDataVolumeUsedPercent: must be 1 to 99 percent, got 100",
    ),
    "zero-denied-alarm": (
        with_(alarmDeniedPerMinute=0),
        "secure-qdrant:alarmDeniedPerMinute: must be 1 to 9007199254740991 requests, got 0",
    ),
    "weekly-audit-rotation": (
        with_(auditRotation="weekly"),
        "secure-qdrant:auditRotation: 'weekly' is not daily or hourly",
    ),
    "no-audit-log-file": (
        with_(auditMaxLogFiles=0),
        "secure-qdrant:auditMaxLogFiles: must be 1 to 8784 files, got 0",
    ),
    "audit-log-files-past-a-year-of-hours": (
        with_(auditMaxLogFiles=8785),
        "secure-qdrant:auditMaxLogFiles: must be 1 to 8784 files",
    ),
    "audit-retention-cloudwatch-refuses": (
        with_(auditLogRetentionDays=31),
        "secure-qdrant:auditLogRetentionDays: '31' is not one of 1, 3, 5, 7, 14, 30, 60",
    ),
    "audit-retention-never-expiring": (
        with_(auditLogRetentionDays=0),
        "secure-qdrant:auditLogRetentionDays: '0' is not one of",
    ),
    "non-integer-disk-alarm": (
        with_(alarmDataVolumeUsedPercent="80%"),
        "secure-qdrant:alarmDataVolumeUsedPercent: '80%' is not an integer",
    ),
    "unknown-challenge": (
        dns01(acmeChallenge="tls-alpn-01"),
        "secure-qdrant:acmeChallenge: 'tls-alpn-01' is not http-01 or dns-01",
    ),
    "dns01-without-zone": (
        with_(acmeChallenge="dns-01"),
        "secure-qdrant:acmeChallenge: dns-01 needs secure-qdrant:hostedZone",
    ),
    "names-with-http01": (
        with_(certificateNames=["api.example.com"]),
        "secure-qdrant:certificateNames: needs secure-qdrant:acmeChallenge dns-01",
    ),
    "name-outside-the-zone": (
        dns01(certificateNames=["api.example.org"]),
        "secure-qdrant:certificateNames: api.example.org not inside the zone 'example.com'",
    ),
    "wildcard-outside-the-zone": (
        dns01(certificateNames=["*.example.org"]),
        "secure-qdrant:certificateNames: *.example.org not inside the zone",
    ),
    "wildcard-not-leftmost": (
        dns01(certificateNames=["api.*.example.com"]),
        "secure-qdrant:certificateNames: 'api.*.example.com' is not a domain name or a wildcard",
    ),
    "names-not-a-list": (
        dns01(certificateNames="api.example.com"),
        "secure-qdrant:certificateNames:",
    ),
    "name-listed-twice": (
        dns01(certificateNames=["api.example.com", "API.example.com."]),
        "secure-qdrant:certificateNames: lists api.example.com more than once",
    ),
    "domain-listed-again": (
        dns01(certificateNames=["qdrant.example.com"]),
        "secure-qdrant:certificateNames: lists 'qdrant.example.com', which is always on it",
    ),
    "more-names-than-a-certificate-holds": (
        dns01(certificateNames=[f"n{i}.example.com" for i in range(100)]),
        "secure-qdrant:certificateNames: 100 names and the domain exceed the 100",
    ),
    "names-beyond-the-user-data-budget": (
        dns01(certificateNames=[f"{'a' * 60}.{'b' * 60}.n{i}.example.com" for i in range(9)]),
        "secure-qdrant:certificateNames: 1224 characters of names exceed the 1024",
    ),
    "challenge-record-too-long": (
        dns01(domain=".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 40, "example.com"])),
        "secure-qdrant:domain: "
        + ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 40, "example.com"])
        + " too long for its _acme-challenge.<name> record",
    ),
}


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_fails_with_its_message_before_any_resource(config, message):
    """A half-built stack from a typo is worse than no stack: refuse, say why, register nothing."""
    with pytest.raises(Failed) as failure:
        deploy(config)

    assert message in str(failure.value)
    assert failure.value.registered == [], [r.type for r in failure.value.registered]


def test_as_many_admin_cidrs_as_a_security_group_holds_are_accepted():
    cidrs = [f"198.51.{i}.0/24" for i in range(57)] + [
        f"2001:db8:{i + 1:x}::/48" for i in range(57)
    ]

    assert (
        len(load_settings({**MINIMAL_CONFIG, "adminCidrs": json.dumps(cidrs)}).admin_cidrs) == 114
    )


def test_a_stack_name_too_long_for_the_iam_role_is_refused_before_any_resource():
    """AWS would refuse the role minutes into `pulumi up`, after other resources exist."""
    with pytest.raises(
        Failed, match="has 45 characters; the IAM role named after it allows at most 44"
    ) as failure:
        deploy(MINIMAL_CONFIG, stack="s" * 45)

    assert failure.value.registered == []


def test_all_problems_are_reported_at_once():
    """One `pulumi up` shows every mistake, not one per attempt."""
    with pytest.raises(Failed) as failure:
        deploy(with_(domain="bad domain", rateLimitRps=0, tokens=[{"name": "x"}]))

    text = str(failure.value)
    for key in ("secure-qdrant:domain", "secure-qdrant:rateLimitRps", "secure-qdrant:tokens"):
        assert key in text


def test_world_open_ssh_is_accepted_with_the_explicit_flag():
    deployment = deploy(with_(adminCidrs=["0.0.0.0/0"], allowSshFromAnywhere=True))

    ssh = [
        r
        for r in deployment.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["fromPort"] == 22
    ]
    assert [r.inputs["cidrIpv4"] for r in ssh] == ["0.0.0.0/0"]


def test_staging_acme_is_accepted_with_the_gate_turned_off():
    """Staging is for experiments; what fails is only the gate's trust check, so say how to opt out."""
    settings = load_settings(
        {
            **MINIMAL_CONFIG,
            "acmeServer": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "verifyOnDeploy": "false",
        }
    )

    assert settings.acme_server.startswith("https://acme-staging-v02.")


def test_defaults_match_the_documented_contract():
    settings = load_settings({"domain": "qdrant.example.com", "acmeEmail": "ops@example.com"})

    assert (settings.instance_type, settings.architecture) == ("t3.medium", "x86_64")
    assert (settings.host_os, settings.image_release) == ("ubuntu-24.04", "20251212")
    assert settings.data_volume_size_gb == 20
    assert settings.qdrant_version == "v1.18.3"
    assert (settings.limits.rate_limit_rps, settings.limits.rest_burst) == (5, 20)
    assert (settings.limits.grpc_burst, settings.limits.max_body_size_mb) == (50, 128)
    assert (settings.limits.credential_rate_limit_rps, settings.limits.credential_burst) == (
        100,
        400,
    )
    assert settings.api_key_version == 1 and settings.key_grace_hours == 24
    assert settings.role_permissions_boundary is False
    assert settings.admin_cidrs == () and settings.tokens == ()
    assert settings.hosted_zone is None and settings.subnet_id is None
    durability = settings.durability
    assert (durability.backup_schedule, durability.backup_retention_days) == (True, 7)
    assert durability.restore_from_snapshot_id is None and durability.alert_email is None
    thresholds = durability.thresholds
    assert (thresholds.certificate_days_left, thresholds.qdrant_down_minutes) == (14, 5)
    assert (thresholds.unauthorized_per_minute, thresholds.data_volume_used_percent) == (60, 80)
    assert thresholds.denied_per_minute == 10
    assert (settings.audit.rotation, settings.audit.max_log_files) == ("daily", 30)
    assert settings.audit_log_retention_days == 30


def test_the_audit_log_keys_are_read_into_the_settings():
    """The rotation, the files kept and the retention an operator sets are the ones the host and
    the log group get, not the defaults."""
    settings = load_settings(
        {
            **MINIMAL_CONFIG,
            "auditRotation": "hourly",
            "auditMaxLogFiles": "720",
            "auditLogRetentionDays": "365",
            "alarmDeniedPerMinute": "3",
        }
    )

    assert (settings.audit.rotation, settings.audit.max_log_files) == ("hourly", 720)
    assert settings.audit.directory == "/qdrant/storage/audit"
    assert settings.audit_log_retention_days == 365
    assert settings.durability.thresholds.denied_per_minute == 3


def test_the_audit_keys_problems_are_reported_together():
    """Every refusal names its key, all in one run."""
    bad = with_(auditRotation="weekly", auditMaxLogFiles=0, auditLogRetentionDays=2)
    with pytest.raises(Failed) as failure:
        deploy(bad)

    for key in ("auditRotation", "auditMaxLogFiles", "auditLogRetentionDays"):
        assert f"secure-qdrant:{key}:" in str(failure.value)


def test_the_per_credential_limit_is_read_from_its_own_keys():
    raw = {"domain": "qdrant.example.com", "acmeEmail": "ops@example.com"}
    settings = load_settings({**raw, "credentialRateLimitRps": "7", "credentialBurst": "31"})

    assert (settings.limits.credential_rate_limit_rps, settings.limits.credential_burst) == (7, 31)
    assert settings.limits.rate_limit_rps == 5


def test_a_release_is_not_judged_against_an_unknown_host_os():
    """Only the OS is wrong: a second message about the release's format would send the user after
    the wrong key."""
    with pytest.raises(ConfigError) as failure:
        load_settings(with_(hostOs="debian-13", imageRelease="20231013-1532"))

    assert [p.split(":")[1] for p in failure.value.problems] == ["hostOs"]


@pytest.mark.parametrize("release", [None, ""], ids=["unset", "pulumi-yaml-default"])
@pytest.mark.parametrize("host_os", ["ubuntu-24.04", "debian-12"])
def test_an_unset_image_release_means_the_pinned_release_of_the_chosen_os(host_os, release):
    """Pulumi.yaml's empty default stands for each OS's own pin: a Canonical serial handed to
    Debian's image name would find no image."""
    config = with_(hostOs=host_os, **({} if release is None else {"imageRelease": release}))

    settings = load_settings(config)

    assert (settings.host_os, settings.image_release) == (host_os, DEFAULT_IMAGE_RELEASES[host_os])


def test_empty_optional_values_mean_unset():
    """Pulumi.yaml declares optional keys with empty defaults; those must not be validated as names."""
    settings = load_settings(
        {
            "domain": "qdrant.example.com",
            "acmeEmail": "ops@example.com",
            "hostedZone": "",
            "subnetId": "",
            "restoreFromSnapshotId": "",
            "alertEmail": "",
        }
    )

    assert settings.hosted_zone is None and settings.subnet_id is None
    durability = settings.durability
    assert durability.restore_from_snapshot_id is None and durability.alert_email is None


def test_version_and_domain_are_normalised():
    settings = load_settings(
        {"domain": "Qdrant.Example.COM.", "acmeEmail": "ops@example.com", "qdrantVersion": "1.19.0"}
    )

    assert settings.domain == "qdrant.example.com"
    assert settings.qdrant_version == "v1.19.0"


def test_raw_config_sees_every_key_the_cli_passes_in_its_namespace(monkeypatch):
    """The CLI hands the program its config as JSON in PULUMI_CONFIG; typo protection needs all of
    it, including keys nobody asks `pulumi.Config` for."""
    monkeypatch.setattr(
        runtime_config, "CONFIG", runtime_config.ContextVar("test_config", default={})
    )
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps(
            {
                "secure-qdrant:domian": "x.example.com",
                "aws:region": "eu-west-1",
                "secure-qdrant:restBurst": "9",
            }
        ),
    )

    assert raw_config("secure-qdrant") == {"domian": "x.example.com", "restBurst": "9"}
