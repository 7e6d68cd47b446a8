"""Any value of any config key, as a careless or hostile user types it. The reader accepts it or
refuses it with a line naming the key, before any resource exists and never with a traceback; and
what it accepts, its consumers take: Pulumi's numbers (doubles), nginx's parser, the host's
`settings.env`, AWS's lookups by exact name, the staging-ACME gate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from model.audit_log import RETENTION_DAYS
from model.config import NAMESPACE, ConfigError, load_settings
from model.config_keys import (
    CERTIFICATE_LIFETIME_DAYS,
    GP3_MAX_SIZE_GB,
    KEYS,
    KNOWN_KEYS,
    MAX_ALARM_MINUTES,
    MAX_AUDIT_LOG_FILES,
    MAX_BACKUP_RETENTION,
    MAX_KEY_GRACE_HOURS,
    MAX_PULUMI_INTEGER,
    NGINX_MAX_BODY_SIZE_MB,
    NGINX_MAX_BURST,
    NGINX_MAX_RATE_PER_SECOND,
)
from model.settings import UNTRUSTED_ACME_HOSTS, StackSettings
from model.user_data import render_settings_env
from tests.host.test_metrics_publisher import metrics
from tests.program import MINIMAL_CONFIG, Failed, deploy
from tests.readme import config_row

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# ngx_atoi reads rate= and burst= into a 64-bit integer; client_max_body_size is an off_t in bytes.
NGINX_INTEGER = 2**63 - 1

# Each number key's range: what its consumer holds.
NUMBER_RANGES = {
    "rateLimitRps": (1, NGINX_MAX_RATE_PER_SECOND),
    "credentialRateLimitRps": (1, NGINX_MAX_RATE_PER_SECOND),
    "restBurst": (1, NGINX_MAX_BURST),
    "grpcBurst": (1, NGINX_MAX_BURST),
    "credentialBurst": (1, NGINX_MAX_BURST),
    "maxBodySizeMb": (1, NGINX_MAX_BODY_SIZE_MB),
    "apiKeyVersion": (1, MAX_PULUMI_INTEGER),
    "alarmUnauthorizedPerMinute": (1, MAX_PULUMI_INTEGER),
    "dataVolumeSizeGb": (1, GP3_MAX_SIZE_GB),
    "keyGraceHours": (0, MAX_KEY_GRACE_HOURS),
    "backupRetentionDays": (1, MAX_BACKUP_RETENTION),
    "alarmCertificateDaysLeft": (1, CERTIFICATE_LIFETIME_DAYS - 1),
    "alarmQdrantDownMinutes": (1, MAX_ALARM_MINUTES),
    "alarmDataVolumeUsedPercent": (1, 99),
    # A CloudWatch threshold, as alarmUnauthorizedPerMinute.
    "alarmDeniedPerMinute": (1, MAX_PULUMI_INTEGER),
    # Qdrant's max_log_files, a usize; bounded to a year of hourly files.
    "auditMaxLogFiles": (1, MAX_AUDIT_LOG_FILES),
}
# A valid value of every key read by a pattern or a fixed list.
VALID_TEXT = {
    "domain": "qdrant.example.com",
    "acmeEmail": "ops@example.com",
    "hostedZone": "example.com",
    "acmeServer": "https://acme.example.com/dir",
    "acmeChallenge": "http-01",
    "auditRotation": "daily",
    "auditLogRetentionDays": "30",
    "instanceType": "t3.medium",
    "architecture": "x86_64",
    "hostOs": "ubuntu-24.04",
    "imageRelease": "20251212",
    "subnetId": "subnet-0aaaaaaaaaaaaaaaa",
    "qdrantVersion": "v1.18.3",
    "restoreFromSnapshotId": "snap-0123456789abcdef0",
    "alertEmail": "pager@example.com",
    "allowSshFromAnywhere": "false",
    "verifyOnDeploy": "true",
    "backupSchedule": "true",
    "rolePermissionsBoundary": "true",
    "adminCidrs": '["203.0.113.0/24"]',
    "tokens": '[{"name": "app", "access": "r"}]',
}


def load(**changes: str) -> StackSettings:
    return load_settings({**MINIMAL_CONFIG, **changes}, now=NOW)


def refusal(**changes: str) -> str:
    with pytest.raises(ConfigError) as refused:
        load(**changes)
    return str(refused.value)


def integers_in(value: Any) -> list[int]:
    """Every integer a settings object holds, however deep."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if dataclasses.is_dataclass(value):
        return [n for f in dataclasses.fields(value) for n in integers_in(getattr(value, f.name))]
    if isinstance(value, (tuple, list)):
        return [n for item in value for n in integers_in(item)]
    return []


def assert_consumers_take(accepted: StackSettings) -> None:
    """What each consumer of an accepted configuration needs of it, judged by the consumer's rule,
    not by the reader's."""
    # Pulumi sends every number as a double: an integer past 2**53 - 1 is not carried exactly.
    assert all(abs(n) <= 2**53 - 1 for n in integers_in(accepted))
    limits = accepted.limits
    rates = (limits.rate_limit_rps, limits.credential_rate_limit_rps)
    bursts = (limits.rest_burst, limits.grpc_burst, limits.credential_burst)
    # limit_req keeps rates and bursts times 1000 in 64 bits; the body size is a byte count.
    assert all(0 < n and n * 1000 <= NGINX_INTEGER for n in rates + bursts)
    assert 0 < limits.max_body_size_mb * 2**20 <= NGINX_INTEGER
    # Looked up by exact name or id at AWS, or an output key: whitespace would be part of it.
    words = [accepted.instance_type, accepted.image_release, *(t.name for t in accepted.tokens)]
    words += [w for w in (accepted.subnet_id, accepted.durability.restore_from_snapshot_id) if w]
    assert all(w.isprintable() and not any(c.isspace() for c in w) for w in words)
    # The serial is the image's build date.
    dt.datetime.strptime(accepted.image_release[:8], "%Y%m%d")
    # The host reads these back from settings.env line by line (cloud-init/metrics.py).
    env = {
        "DOMAIN": accepted.domain,
        "ACME_EMAIL": accepted.acme_email,
        "ACME_SERVER": accepted.acme_server,
    }
    assert metrics.read_settings(render_settings_env(env)) == env
    # RFC 5321: 64 characters before the @, 254 in all.
    for address in filter(None, (accepted.acme_email, accepted.durability.alert_email)):
        assert len(address.split("@")[0]) <= 64 and len(address) <= 254
    # certbot reaches its server through requests, which reads the URL with urllib3's parse_url:
    # the host compared must be the one it connects to, and it must send no credentials (requests
    # turns a user part into a Basic Authorization header).
    consumer = parse_url(accepted.acme_server)
    assert consumer.scheme == "https" and consumer.auth is None
    # The gate's certificate check fails against a staging CA, however its host is written.
    host = (consumer.host or "").rstrip(".")
    assert not (accepted.verify_on_deploy and host in UNTRUSTED_ACME_HOSTS)


def assert_refused_naming_keys(refused: ConfigError) -> None:
    for problem in refused.problems:
        key = problem.removeprefix(f"{NAMESPACE}:").split(":", 1)[0]
        assert key in KNOWN_KEYS, problem


# --------------------------------------------------------------------------- the fuzz

text_values = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.sampled_from(sorted(VALID_TEXT.values())).flatmap(
        lambda valid: st.sampled_from(["\n", " ", "\r\n", "\t", "x", "\x00", "é"]).map(
            lambda suffix: valid + suffix
        )
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=8,
    ).map(json.dumps),
)


@given(key=st.sampled_from(sorted(KNOWN_KEYS)), value=text_values)
@settings(max_examples=400, deadline=None)
@example(key="tokens", value="[" * 100_000)
@example(key="adminCidrs", value="[" + "9" * 5000 + "]")
@example(key="tokens", value='[{"name": "app", "access": "r", "revocable": ' + "9" * 5000 + "}]")
@example(key="apiKeyVersion", value="9" * 401)
@example(key="alarmUnauthorizedPerMinute", value="9" * 401)
@example(key="rateLimitRps", value=str(10**30))
@example(key="restBurst", value=str(10**30))
@example(key="grpcBurst", value=str(10**30))
@example(key="credentialRateLimitRps", value=str(10**30))
@example(key="credentialBurst", value=str(10**30))
@example(key="maxBodySizeMb", value=str(10**30))
@example(key="imageRelease", value="20251212\n")
@example(key="imageRelease", value="20250230")
@example(key="subnetId", value="subnet-0aaaaaaaaaaaaaaaa\n")
@example(key="restoreFromSnapshotId", value="snap-0123456789abcdef0\n")
@example(key="instanceType", value="t3.medium\n")
@example(key="acmeServer", value="https://acme.example.com/dir\n")
@example(key="tokens", value='[{"name": "app\\n", "access": "r"}]')
@example(key="acmeServer", value="https://acme-staging-v02.api.letsencrypt.org:443/directory")
@example(key="acmeServer", value="https://acme-staging-v02.api.letsencrypt.org./directory")
@example(key="acmeServer", value="https://x@acme-staging-v02.api.letsencrypt.org/directory")
@example(key="acmeServer", value="https://acme-staging-v02.api.letsencrypt.org\\@x/directory")
@example(key="acmeServer", value="https://acme-staging-v02%2eapi.letsencrypt.org/directory")
@example(key="acmeServer", value="https://x\t@acme-staging-v02.api.letsencrypt.org/directory")
@example(key="acmeServer", value="https://acme-staging-v02.api.letsencrypt.org/x@y/directory")
@example(key="acmeServer", value="https://ACME-STAGING-V02.API.LETSENCRYPT.ORG/directory")
@example(key="acmeServer", value="https://\uff41cme-staging-v02.api.letsencrypt.org/directory")
@example(key="qdrantVersion", value="v1.18." + "9" * 5000)
@example(key="qdrantVersion", value="v1.\u0661\u0668.3")
@example(key="alertEmail", value="a" * 65 + "@example.com")
def test_any_value_of_any_key_is_taken_by_its_consumers_or_refused_naming_it(key: str, value: str):
    """A value the reader accepted but a consumer refuses breaks the deploy after resources exist
    (or the host after it boots); a traceback names no key."""
    try:
        accepted = load(**{key: value})
    except ConfigError as refused:
        assert_refused_naming_keys(refused)
    else:
        assert_consumers_take(accepted)


# --------------------------------------------------------------------------- numbers


def test_every_integer_key_of_the_table_has_its_consumers_range_here():
    """A new integer key gets a bound from what consumes it, and is then tested against it: a
    range, or the consumer's own list of values."""
    ranged = {key.name for key in KEYS if key.type == "integer" and not key.allowed}
    assert ranged == set(NUMBER_RANGES)
    assert {key.name for key in KEYS if key.type == "integer" and key.allowed} == {
        "auditLogRetentionDays"
    }


def test_the_log_retention_takes_exactly_cloudwatchs_values():
    """PutRetentionPolicy refuses any other number, after the log group exists: refused before
    anything is created instead, naming the key."""
    for days in RETENTION_DAYS:
        assert load(auditLogRetentionDays=str(days)).audit_log_retention_days == days
    for days in (0, 2, 29, 31, 3654, 10**30):
        assert f"{NAMESPACE}:auditLogRetentionDays: " in refusal(auditLogRetentionDays=str(days))


@pytest.mark.parametrize("key", NUMBER_RANGES)
def test_every_number_key_takes_its_range_and_refuses_past_it(key: str):
    """Each bound is what the key's consumer holds: nginx's parser and arithmetic, Pulumi's and
    CloudWatch's doubles, AWS's limits."""
    low, high = NUMBER_RANGES[key]
    load(**{key: str(low)})
    load(**{key: str(high)})

    for outside in (low - 1, high + 1, 10**30):
        assert f"{NAMESPACE}:{key}: must be {low} to {high}" in refusal(**{key: str(outside)})


@pytest.mark.parametrize("key", NUMBER_RANGES)
def test_the_readme_states_each_number_keys_range(key: str):
    """A user sizing a limit reads the table, not the code."""
    low, high = NUMBER_RANGES[key]
    assert f"{low:,} to {high:,}" in config_row(key)


@pytest.mark.parametrize(
    "value",
    ["9" * 401, "9" * 5000, "1_000", " 5", "٥"],
    ids=["401-digits", "5000-digits", "underscore", "space", "arabic-indic-digit"],
)
def test_a_number_key_refuses_what_is_not_a_plain_decimal_within_range(value: str):
    """int() takes `_`, spaces and other scripts' digits, and past 4,300 digits raises."""
    assert f"{NAMESPACE}:rateLimitRps: " in refusal(rateLimitRps=value)


@pytest.mark.parametrize("key", ["apiKeyVersion", "alarmUnauthorizedPerMinute"])
def test_a_number_too_large_for_pulumi_is_refused_before_any_resource(key: str):
    """Before: 401 digits passed, then Pulumi's serializer raised OverflowError with 41 or 49
    resources registered: a half-built stack."""
    with pytest.raises(Failed) as failure:
        deploy({**MINIMAL_CONFIG, key: "9" * 401})

    assert f"{NAMESPACE}:{key}: must be 1 to {MAX_PULUMI_INTEGER}" in str(failure.value)
    assert failure.value.registered == []


def test_the_largest_alarm_threshold_reaches_cloudwatch_exactly():
    """2**53 - 1 is the largest integer every double (Pulumi's, CloudWatch's) holds exactly."""
    deployment = deploy({**MINIMAL_CONFIG, "alarmUnauthorizedPerMinute": str(MAX_PULUMI_INTEGER)})

    thresholds = [
        alarm.inputs.get("threshold")
        for alarm in deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    ]
    assert MAX_PULUMI_INTEGER in thresholds


# --------------------------------------------------------------------------- JSON values


@pytest.mark.parametrize("key", ["tokens", "adminCidrs", "certificateNames"])
def test_a_list_nested_too_deeply_is_refused_naming_its_key(key: str):
    """Before: RecursionError, a traceback."""
    assert f"{NAMESPACE}:{key}: is nested too deeply to be read" in refusal(**{key: "[" * 100_000})


@pytest.mark.parametrize("key", ["tokens", "adminCidrs", "certificateNames"])
def test_a_list_holding_a_number_too_long_to_read_is_refused_naming_its_key(key: str):
    """Before: ValueError from Python's 4,300-digit limit, a traceback."""
    text = "[" + "9" * 5000 + "]"
    assert f"{NAMESPACE}:{key}: holds a number too long to read" in refusal(**{key: text})


# --------------------------------------------------------------------------- patterns


@pytest.mark.parametrize("key", sorted(VALID_TEXT))
def test_a_final_newline_is_refused_or_changes_nothing(key: str):
    """Python's `$` matches before a final newline: the value kept it, and it reached AWS lookups,
    output keys and settings.env (where the metrics publisher then failed on every run)."""
    valid = VALID_TEXT[key]
    try:
        accepted = load(**{key: valid + "\n"})
    except ConfigError as refused:
        assert any(p.startswith(f"{NAMESPACE}:{key}: ") for p in refused.problems)
    else:
        assert accepted == load(**{key: valid})


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("imageRelease", "20251212"),
        ("subnetId", "subnet-0aaaaaaaaaaaaaaaa"),
        ("restoreFromSnapshotId", "snap-0123456789abcdef0"),
        ("instanceType", "t3.medium"),
        ("acmeServer", "https://acme.example.com/dir"),
    ],
)
def test_a_final_newline_is_refused_where_it_would_be_kept(key: str, valid: str):
    """These keys are used as written (an AMI name, a subnet, a snapshot, an instance type, the
    ACME directory in settings.env): a newline would travel with them."""
    assert f"{NAMESPACE}:{key}: " in refusal(**{key: valid + "\n"})


def test_a_token_name_with_a_final_newline_is_refused():
    """The name is an output key and the token's id on the host."""
    assert "name 'app\\n'" in refusal(tokens=json.dumps([{"name": "app\n", "access": "r"}]))


@pytest.mark.parametrize(
    "release",
    ["20250230", "20251131", "20230229", "20250431.1"],
)
def test_an_image_release_on_a_day_that_does_not_exist_is_refused(release: str):
    """No image was built on it: the lookup would fail minutes into `pulumi up`."""
    assert f"{NAMESPACE}:imageRelease: {release!r} is not" in refusal(imageRelease=release)


def test_an_image_release_on_a_leap_day_is_accepted():
    """The date check is the calendar's, not a fixed 28 days for February."""
    assert load(imageRelease="20240229").image_release == "20240229"


def test_a_debian_release_on_a_day_that_does_not_exist_is_refused():
    """Debian's serial starts with the build date too."""
    refused = refusal(hostOs="debian-12", imageRelease="20250230-1532")
    assert f"{NAMESPACE}:imageRelease: " in refused


@pytest.mark.parametrize("key", ["alertEmail", "acmeEmail"])
def test_an_address_longer_than_smtp_allows_is_refused(key: str):
    """RFC 5321: an address with 65 characters before the @ cannot be delivered to."""
    assert f"{NAMESPACE}:{key}: " in refusal(**{key: "a" * 65 + "@example.com"})
    long_domain = ".".join(["d" * 60] * 4) + ".com"
    assert f"{NAMESPACE}:{key}: " in refusal(**{key: "a" * 10 + "@" + long_domain})


def test_an_address_with_64_characters_before_the_at_is_accepted():
    """RFC 5321's limit is inclusive: a deliverable address is not refused."""
    assert load(alertEmail="a" * 64 + "@example.com").durability.alert_email is not None


@pytest.mark.parametrize(
    "version", ["v1.18." + "9" * 5000, "v1.18.9999999999", "v1.\u0661\u0668.3", "v\uff11.18.3"]
)
def test_a_qdrant_version_of_more_than_nine_or_non_ascii_digits_is_refused(version: str):
    """Qdrant's release tags are short ASCII numbers: anything else is a typing error (or, past
    Python's 4,300 digits, a traceback instead of a line naming the key)."""
    assert f"{NAMESPACE}:qdrantVersion: " in refusal(qdrantVersion=version)


# --------------------------------------------------------------------------- the staging gate


@pytest.mark.parametrize(
    "url",
    [
        "https://acme-staging-v02.api.letsencrypt.org:443/directory",
        "https://acme-staging-v02.api.letsencrypt.org./directory",
        "https://ACME-Staging-v02.api.letsencrypt.org.:443/directory",
        "https://acme-staging-v02.api.letsencrypt.org",
        "https://acme-staging-v02.api.letsencrypt.org/x@y/directory",
        "https://acme-staging-v02.api.letsencrypt.org/%2e%2e/directory",
    ],
)
def test_the_staging_ca_is_refused_with_the_gate_however_its_host_is_written(url: str):
    """The ACME client reaches the same host with a port, in capitals, with a final dot or with an
    `@` or escapes in the path; the gate's certificate check would fail after waiting 15 minutes."""
    assert f"{NAMESPACE}:acmeServer: {url} issues certificates no client trusts" in refusal(
        acmeServer=url
    )


@pytest.mark.parametrize(
    "url",
    [
        # urlsplit reads the host as `x`; urllib3 (certbot's requests) as the staging host.
        "https://acme-staging-v02.api.letsencrypt.org\\@x/directory",
        # urllib3 decodes the escape and connects to the staging host.
        "https://acme-staging-v02%2eapi.letsencrypt.org/directory",
        "https://x@acme-staging-v02.api.letsencrypt.org/directory",
        "https://x:secret@acme.example.com/directory",
        "https://x\t@acme-staging-v02.api.letsencrypt.org/directory",
        "https://\uff41cme-staging-v02.api.letsencrypt.org/directory",
        "https://acme.example.com/dir ectory",
    ],
)
def test_an_acme_server_outside_rfc_3986_or_with_a_user_part_is_refused(url: str):
    """Parsers disagree on where the host of such a URL ends, so the gate could compare one host
    while certbot reaches another; and a user part would go to the ACME server as credentials."""
    problem = refusal(acmeServer=url)
    assert f"{NAMESPACE}:acmeServer: " in problem
    assert "issues certificates no client trusts" not in problem


@pytest.mark.parametrize(
    "url",
    ["https://acme.example.com:0/dir", "https://acme.example.com:99999/dir", "https://[x/dir"],
)
def test_an_acme_server_without_a_reachable_host_and_port_is_refused(url: str):
    """certbot could reach no server at port 0, past 65535 or at an unparsable host; the gate's
    comparison reads the host the same way, so it must parse."""
    assert f"{NAMESPACE}:acmeServer: " in refusal(acmeServer=url)
