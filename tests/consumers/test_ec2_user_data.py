"""The user data as EC2's API takes it.

EC2 refuses user data over 16 KB "in raw form, before it is base64-encoded" (EC2 User Guide, "Work
with instance user data",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html), so
`pulumi up` would fail at RunInstances. What counts is the decoded `user_data_base64`. The project
holds it to a quarter of that (issue 19): only the loader rides in it, so later features never
have to squeeze in.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import ipaddress
import json
import random

import pytest

from model.config import (
    MAX_CERTIFICATE_NAMES_CHARACTERS,
    MAX_EMAIL_LOCAL_PART,
    MAX_PULUMI_INTEGER,
    NGINX_MAX_BODY_SIZE_MB,
    NGINX_MAX_BURST,
    NGINX_MAX_RATE_PER_SECOND,
    load_settings,
)
from model.host_config import config_source
from model.settings import HostSettings
from model.user_data import ec2_user_data, render_user_data

EC2_USER_DATA_LIMIT = 16 * 1024
# The project's own bound: what the loader may take of EC2's limit.
USER_DATA_BUDGET = 4096
VOLUME_ID = "vol-0123456789abcdef0"


def admin_cidrs(count: int) -> list[str]:
    """Scattered networks, half IPv6 at full length: they compress the least."""
    rng = random.Random(8)
    ipv4 = [f"{ipaddress.IPv4Address(rng.getrandbits(32))}/32" for _ in range(count // 2)]
    ipv6 = [f"{ipaddress.IPv6Address(rng.getrandbits(128) | 1 << 127 | 1 << 112)}/128"
            for _ in range(count - count // 2)]  # fmt: skip
    return ipv4 + ipv6


# The largest user data a valid configuration produces: every value at the longest the validator
# takes or AWS allows (a 253-character domain, a 100-character stack name in the parameter paths,
# a 254-character e-mail address, every limit at its bound) and 60 admin CIDRs (a security group
# holds 60 inbound rules by default; the public ports take 6).
LONGEST_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 53, "example"])
LONGEST_EMAIL = f"{'p' * MAX_EMAIL_LOCAL_PART}@" + ".".join(
    ["a" * 63, "b" * 63, "c" * 53, "example"]
)
STACK = "s" * 100
SETTINGS = load_settings(
    {
        "domain": LONGEST_DOMAIN,
        "acmeEmail": LONGEST_EMAIL,
        "acmeServer": f"https://{LONGEST_DOMAIN}/acme/directory/{'x' * 200}",
        "adminCidrs": json.dumps(admin_cidrs(60)),
        "qdrantVersion": "v1.180.300",
        "rateLimitRps": str(NGINX_MAX_RATE_PER_SECOND),
        "credentialRateLimitRps": str(NGINX_MAX_RATE_PER_SECOND),
        "restBurst": str(NGINX_MAX_BURST),
        "grpcBurst": str(NGINX_MAX_BURST),
        "credentialBurst": str(NGINX_MAX_BURST),
        "maxBodySizeMb": str(NGINX_MAX_BODY_SIZE_MB),
        "apiKeyVersion": str(MAX_PULUMI_INTEGER),
    }
)
LARGEST_HOST = HostSettings(
    domain=SETTINGS.domain,
    acme_email=SETTINGS.acme_email,
    acme_server=SETTINGS.acme_server,
    qdrant_version=SETTINGS.qdrant_version,
    limits=SETTINGS.limits,
    admin_cidrs=SETTINGS.admin_cidrs,
    region="ap-southeast-5",
    api_key_parameter=f"/secure-qdrant/{STACK}/api-key",
    read_only_api_key_parameter=f"/secure-qdrant/{STACK}/read-only-api-key",
    previous_api_key_parameter=f"/secure-qdrant/{STACK}/previous-api-key",
    name=f"qdrant-{STACK}",
)


# S3's longest bucket name, and the host name of the longest stack name in the keys.
LARGEST_SOURCE = config_source("ap-southeast-5", "b" * 63, f"qdrant-{STACK}")


# DNS-01 adds its names: the longest domain whose challenge record DNS still takes, and random names
# (they compress the least) up to the characters the validator allows.
DNS01_ZONE = "example.io"
DNS01_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 34, DNS01_ZONE])


def random_names(characters: int) -> list[str]:
    rng = random.Random(14)
    label = 63
    names: list[str] = []
    while sum(map(len, names)) + label + 1 + len(DNS01_ZONE) <= characters:
        random_label = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=label))
        names.append(f"{random_label}.{DNS01_ZONE}")
    return names


DNS01_SETTINGS = load_settings(
    {
        "domain": DNS01_DOMAIN,
        "acmeEmail": SETTINGS.acme_email,
        "hostedZone": DNS01_ZONE,
        "acmeChallenge": "dns-01",
        "certificateNames": json.dumps(random_names(MAX_CERTIFICATE_NAMES_CHARACTERS)),
    }
)
LARGEST_DNS01_HOST = dataclasses.replace(
    LARGEST_HOST,
    domain=DNS01_SETTINGS.domain,
    acme_challenge="dns-01",
    certificate_names=DNS01_SETTINGS.certificate_names,
)


def received_by_ec2(host: HostSettings) -> bytes:
    """The bytes EC2 stores and serves: the provider's base64 decoded, as the API does."""
    return base64.b64decode(ec2_user_data(host, VOLUME_ID, LARGEST_SOURCE), validate=True)


@pytest.mark.parametrize(
    ("challenge", "host"), [("http-01", LARGEST_HOST), ("dns-01", LARGEST_DNS01_HOST)]
)
def test_largest_user_data_fits_the_projects_budget(
    challenge: str,
    host: HostSettings,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    """Over 16 KB, RunInstances rejects the instance and the first `pulumi up` fails; the
    project keeps to 4 KB, so the next features ride in the configuration document instead."""
    size = len(received_by_ec2(host))
    record_property(f"ec2_user_data_bytes_{challenge}", size)
    uncompressed = len(render_user_data(host, VOLUME_ID, LARGEST_SOURCE).encode())
    with capsys.disabled():
        print(
            f"\n  EC2 user data, largest {challenge} configuration: {size} of {USER_DATA_BUDGET} "
            f"bytes (EC2 allows {EC2_USER_DATA_LIMIT}; {uncompressed} uncompressed)"
        )
    assert size <= USER_DATA_BUDGET < EC2_USER_DATA_LIMIT


def test_user_data_bytes_do_not_depend_on_when_they_were_rendered() -> None:
    """A timestamp in the gzip header would change the user data on every `pulumi up`, and
    `user_data_replace_on_change` would replace the instance each time."""
    header_mtime = received_by_ec2(LARGEST_HOST)[4:8]
    assert header_mtime == b"\0\0\0\0"


def test_user_data_decompresses_to_the_rendered_cloud_config() -> None:
    """Compression may change the size, never the content cloud-init reads."""
    assert gzip.decompress(received_by_ec2(LARGEST_HOST)).decode() == render_user_data(
        LARGEST_HOST, VOLUME_ID, LARGEST_SOURCE
    )


IN_PLACE = {
    "edge limits": dataclasses.replace(
        LARGEST_HOST, limits=dataclasses.replace(LARGEST_HOST.limits, rate_limit_rps=1)
    ),
    "admin CIDRs": dataclasses.replace(LARGEST_HOST, admin_cidrs=()),
    "Qdrant version": dataclasses.replace(LARGEST_HOST, qdrant_version="v1.18.3"),
    "certificate names": dataclasses.replace(
        LARGEST_HOST,
        acme_challenge="dns-01",
        certificate_names=LARGEST_DNS01_HOST.certificate_names,
    ),
    "ACME server": dataclasses.replace(LARGEST_HOST, acme_server="https://acme.example/dir"),
    "data volume size": dataclasses.replace(LARGEST_HOST, data_volume_size_gb=500),
    "key parameters": dataclasses.replace(LARGEST_HOST, api_key_parameter="/other/api-key"),
}


@pytest.mark.parametrize("changed", IN_PLACE.values(), ids=IN_PLACE.keys())
def test_a_setting_the_host_converges_to_leaves_the_user_data_as_it_was(
    changed: HostSettings,
) -> None:
    """`user_data_replace_on_change` replaces the instance on any byte of change: a setting the
    host applies in place must not reach the user data, or tuning it takes the database down."""
    assert received_by_ec2(changed) == received_by_ec2(LARGEST_HOST)


def test_a_new_domain_changes_the_user_data() -> None:
    """A new domain's TLS site names a certificate that exists only once certbot has issued it, so
    a running host's `nginx -t` would refuse it: the domain is the machine's, and a new one means a
    new host, whose first boot issues the certificate before it installs that site."""
    other = dataclasses.replace(LARGEST_HOST, domain="other.example.com")
    assert received_by_ec2(other) != received_by_ec2(LARGEST_HOST)


def test_a_restore_onto_another_volume_changes_the_user_data() -> None:
    """The one thing in it besides the machine: the volume a replaced instance must mount."""
    other = base64.b64decode(ec2_user_data(LARGEST_HOST, "vol-0fedcba9876543210", LARGEST_SOURCE))
    assert other != received_by_ec2(LARGEST_HOST)
