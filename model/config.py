"""Stack configuration: raw Pulumi config strings in, validated `StackSettings` out, or one error.

Pure: no Pulumi import, so every rule is tested directly, and `__main__` can refuse bad input before a
single resource is registered. All problems are collected and reported together, each naming its key.
The keys, with their integer bounds, fixed values and defaults, are declared once in
`model.config_keys`; the parsing of each kind of value lives here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from model.acme_dns import CHALLENGE_LABEL
from model.config_keys import (
    BY_NAME,
    KNOWN_KEYS,
    MAX_ADMIN_CIDRS_PER_FAMILY,
    MAX_CERTIFICATE_NAMES,
    MAX_CERTIFICATE_NAMES_CHARACTERS,
    MAX_EMAIL_ADDRESS,
    MAX_EMAIL_LOCAL_PART,
    SECURITY_GROUP_RULES_PER_FAMILY,
)

# Still imported from here by the host and user-data tests: each names what its consumer holds.
from model.config_keys import MAX_PULUMI_INTEGER as MAX_PULUMI_INTEGER
from model.config_keys import NGINX_MAX_BODY_SIZE_MB as NGINX_MAX_BODY_SIZE_MB
from model.config_keys import NGINX_MAX_BURST as NGINX_MAX_BURST
from model.config_keys import NGINX_MAX_RATE_PER_SECOND as NGINX_MAX_RATE_PER_SECOND
from model.images import HOST_IMAGES
from model.instance_types import architecture_of
from model.settings import (
    DEFAULT_IMAGE_RELEASES,
    QDRANT_VERSION_FLOOR,
    TOKEN_ALLOWLIST_COLLECTION,
    UNTRUSTED_ACME_HOSTS,
    AccessRule,
    AcmeChallenge,
    AlarmThresholds,
    Architecture,
    AuditRotation,
    Durability,
    HostOs,
    Limits,
    QdrantAudit,
    StackSettings,
    TokenSpec,
    ValueExists,
    ValueMatch,
)

NAMESPACE = "secure-qdrant"

# Every pattern is applied with `fullmatch`: `$` also matches before a final newline, which would
# then reach AWS lookups, output keys and `settings.env`.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_FQDN = re.compile(rf"(?:{_LABEL}\.)+[a-z]{{2,63}}")
_EMAIL = re.compile(r"(?P<local>[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@(?P<host>[^@\s]+)")
# ASCII digits, few enough that int() never meets Python's 4,300-digit limit.
_VERSION = re.compile(r"v?([0-9]{1,9})\.([0-9]{1,9})\.([0-9]{1,9})")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
# EC2 resource ids: 8 hex digits (before 2018) or 17.
_SNAPSHOT_ID = re.compile(r"snap-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# RFC 3986's grammar, narrowed to what an ACME directory needs: an ASCII DNS name or IP literal, no
# user part. Parsers disagree outside it: urlsplit reads the host of `https://a\\@b/` as b, urllib3
# (certbot's requests) as a, and urllib3 also decodes `%2e` in a host.
_URL_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_HTTPS_URL = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
    rf"(?:/{_URL_PCHAR}*)*(?:\?(?:{_URL_PCHAR}|[/?])*)?(?:#(?:{_URL_PCHAR}|[/?])*)?"
)
MAX_PORT = 65535
_INTEGER = re.compile(r"-?[0-9]+")
_COLLECTION_ACCESS = ("r", "rw", "prw")
_GLOBAL_ACCESS = ("r", "m")
_TOKEN_FIELDS = {"name", "access", "expiresAt", "valueExists", "revocable", "revoked"}
_MAX_DNS_NAME = 253
# Resource names derive from the stack: `qdrant-<stack>-role` (and the backups' `qdrant-<stack>-dlm`)
# plus the 8 characters Pulumi's auto-naming appends must fit IAM's 64-character role names (IAM
# CreateRole, RoleName).
MAX_STACK_NAME_LENGTH = 64 - len("qdrant-") - len("-role") - 8

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad stack configuration. The message has one line per problem, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class _Invalid(Exception):
    """One problem with one key; collected into a ConfigError."""


class _Reader:
    """Reads typed values from the raw map, recording problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def field(self, key: str, parse: Callable[[str], T], default: T) -> T:
        # Pulumi.yaml gives optional keys an empty default: empty means unset.
        if self.raw.get(key, "") == "":
            return default
        try:
            return parse(self.raw[key])
        except _Invalid as problem:
            self.problems.append(f"{NAMESPACE}:{key}: {problem}")
        except RecursionError:
            # json.loads, and the repr of what it read, recurse once per level of nesting.
            self.problems.append(f"{NAMESPACE}:{key}: is nested too deeply to be read")
        return default

    def check(self, key: str, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(f"{NAMESPACE}:{key}: {problem}")

    def has_problem(self, key: str) -> bool:
        return any(problem.startswith(f"{NAMESPACE}:{key}: ") for problem in self.problems)


def _required(raw: Mapping[str, str], key: str, reader: _Reader) -> bool:
    present = bool(raw.get(key, "").strip())
    reader.check(key, present, "is required")
    return present


def _parse_domain(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if len(name) > 253 or not _FQDN.fullmatch(name):
        raise _Invalid(f"{text!r} is not a fully qualified domain name (e.g. qdrant.example.com)")
    return name


def _cut(text: str) -> str:
    """`text` cut short for a message: a value may be many kilobytes long."""
    return text if len(text) <= 60 else text[:60] + "..."


def _shown(text: str) -> str:
    return repr(_cut(text))


def _parse_email(text: str) -> str:
    address = text.strip()
    match = _EMAIL.fullmatch(address)
    if not match:
        raise _Invalid(f"{_shown(text)} is not an e-mail address")
    if len(match.group("local")) > MAX_EMAIL_LOCAL_PART or len(address) > MAX_EMAIL_ADDRESS:
        raise _Invalid(
            f"{_shown(text)} is longer than an e-mail address may be ({MAX_EMAIL_LOCAL_PART} "
            f"characters before the @, {MAX_EMAIL_ADDRESS} in all: RFC 5321)"
        )
    _parse_domain(match.group("host"))
    return address


def _parse_https_url(text: str) -> str:
    match = _HTTPS_URL.fullmatch(text)
    if not match or not 0 < int(match["port"] or 443) <= MAX_PORT:
        raise _Invalid(
            f"{_shown(text)} is not an https:// URL of RFC 3986 characters with a host, a port "
            f"from 1 to {MAX_PORT} if any, and no user part"
        )
    return text


def _parse_int(text: str) -> int:
    # ASCII digits only: int() also takes spaces, `_` and other scripts' digits.
    if not _INTEGER.fullmatch(text):
        raise _Invalid(f"{_shown(text)} is not an integer")
    try:
        return int(text)
    except ValueError:
        # Past Python's 4,300 digits: far outside every key's range.
        raise _Invalid(f"{_shown(text)} has {len(text)} digits, far out of range") from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise _Invalid(f"{text!r} is not true or false")
    return lowered == "true"


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise _Invalid(
            f"{_shown(text)} is not a list (set it with `pulumi config set --path`)"
        ) from None
    except ValueError:
        # json reads integers with int(), which refuses more than 4,300 digits.
        raise _Invalid("holds a number too long to read") from None


def _choice(read: _Reader, key: str) -> str:
    """A key of a fixed list of values, its declared default when unset."""
    declared = BY_NAME[key]

    def parse(text: str) -> str:
        if text not in declared.allowed:
            raise _Invalid(f"{text!r} is not {' or '.join(declared.allowed)}")
        return text

    return read.field(key, parse, str(declared.default))


def _parse_certificate_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{value!r} is not a domain name")
    wildcard = value.startswith("*.")
    try:
        name = _parse_domain(value[2:] if wildcard else value)
    except _Invalid:
        raise _Invalid(f"{value!r} is not a domain name or a wildcard (*.example.com)") from None
    return f"*.{name}" if wildcard else name


def _parse_unique_list(text: str, parse: Callable[[Any], str], what: str) -> tuple[str, ...]:
    items = _parse_json(text)
    if not isinstance(items, list):
        raise _Invalid(f"must be a list of {what}")
    values = tuple(parse(item) for item in items)
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise _Invalid(f"lists {', '.join(duplicates)} more than once")
    return values


def _parse_certificate_names(text: str) -> tuple[str, ...]:
    return _parse_unique_list(text, _parse_certificate_name, "domain names")


def _inside_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _check_certificate_names(
    read: _Reader, names: tuple[str, ...], domain: str, zone: str | None
) -> None:
    read.check("certificateNames", domain not in names, f"lists {domain!r}, which is always on it")
    if zone:
        outside = [n for n in names if not _inside_zone(n.removeprefix("*."), zone)]
        read.check(
            "certificateNames",
            not outside,
            f"{', '.join(outside)} not inside the zone {zone!r}, where certbot writes the challenge",
        )
    read.check(
        "certificateNames",
        len(names) < MAX_CERTIFICATE_NAMES,
        f"{len(names)} names and the domain exceed the {MAX_CERTIFICATE_NAMES} a Let's Encrypt "
        "certificate holds",
    )
    all_names = (domain, *names) if domain else names
    too_long = [n for n in all_names if len(CHALLENGE_LABEL + n.removeprefix("*.")) > _MAX_DNS_NAME]
    read.check(
        "certificateNames" if set(too_long) - {domain} else "domain",
        not too_long,
        f"{', '.join(too_long)} too long for its {CHALLENGE_LABEL}<name> record (DNS allows "
        f"{_MAX_DNS_NAME} characters)",
    )
    characters = sum(len(name) for name in names)
    read.check(
        "certificateNames",
        characters <= MAX_CERTIFICATE_NAMES_CHARACTERS,
        f"{characters} characters of names exceed the {MAX_CERTIFICATE_NAMES_CHARACTERS} the host's "
        "user data and its role's policy have room for; use a wildcard",
    )


def _parse_cidr(text: Any) -> str:
    if not isinstance(text, str) or "/" not in text:
        raise _Invalid(f"{text!r} is not a CIDR block (address/prefix, e.g. 203.0.113.7/32)")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _Invalid(f"{text!r} is not a CIDR block") from None
    if str(network) != text:
        raise _Invalid(f"{text!r} has host bits set or is not canonical; did you mean {network}?")
    return text


def _parse_cidrs(text: str) -> tuple[str, ...]:
    return _parse_unique_list(text, _parse_cidr, "CIDR blocks")


def _parse_snapshot_id(text: str) -> str:
    if not _SNAPSHOT_ID.fullmatch(text):
        raise _Invalid(f"{text!r} is not an EBS snapshot id (snap- and 8 or 17 hex digits)")
    return text


def _parse_int_within(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _parse_int(text)
        if not low <= value <= high:
            range_ = f"{low} to {high} {unit}".rstrip()
            raise _Invalid(f"must be {range_}, got {_cut(text)}")
        return value

    return parse


def _integer(read: _Reader, key: str) -> int:
    """An integer key read within its declared bounds, its declared default when unset."""
    declared = BY_NAME[key]
    assert declared.bounds is not None and isinstance(declared.default, int), key
    return read.field(key, _parse_int_within(*declared.bounds, declared.unit), declared.default)


def _integer_choice(read: _Reader, key: str) -> int:
    """An integer key of a fixed list of values, its declared default when unset."""
    declared = BY_NAME[key]
    assert declared.allowed and isinstance(declared.default, int), key

    def parse(text: str) -> int:
        if text.strip() not in declared.allowed:
            raise _Invalid(f"{text!r} is not one of {', '.join(declared.allowed)}")
        return int(text)

    return read.field(key, parse, declared.default)


def _parse_qdrant_version(text: str) -> str:
    match = _VERSION.fullmatch(text.strip())
    if not match:
        raise _Invalid(f"{text!r} is not a release version like v1.18.3")
    version = tuple(int(part) for part in match.groups())
    if version < QDRANT_VERSION_FLOOR:
        floor = ".".join(map(str, QDRANT_VERSION_FLOOR))
        raise _Invalid(f"{text!r} is older than v{floor}, which fixed an authentication bypass")
    return "v" + ".".join(map(str, version))


def _parse_instance_type(text: str) -> str:
    if architecture_of(text) is None:
        raise _Invalid(f"{text!r} is not a known EC2 instance type (family.size, e.g. t3.medium)")
    return text


def _parse_image_release(text: str, host_os: HostOs) -> str:
    image = HOST_IMAGES[host_os]
    if not image.accepts(text):
        raise _Invalid(
            f"{text!r} is not a {host_os} image release serial ({image.release_format}, as in the "
            f"AMI name {image.ami_name('x86_64', image.release_format)})"
        )
    return text


def _acme_host(url: str) -> str:
    """The host the ACME client reaches, of a URL `_parse_https_url` took: without the port,
    lowercase, and without the final dot DNS ignores (any of them would slip the staging host past
    the comparison)."""
    match = _HTTPS_URL.fullmatch(url)
    return match["host"].lower().rstrip(".") if match else ""


def _parse_subnet_id(text: str) -> str:
    if not _SUBNET_ID.fullmatch(text):
        raise _Invalid(f"{text!r} is not a subnet id (subnet-...)")
    return text


def _parse_expiry(value: Any, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise _Invalid(f"expiresAt {value!r} is not an ISO-8601 date")
    try:
        if len(value) == 10:
            # A bare date means the start of that day in UTC: the token is dead once the day begins.
            expiry = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        else:
            expiry = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(f"expiresAt {value!r} is not an ISO-8601 date") from None
    if expiry.tzinfo is None:
        raise _Invalid(f"expiresAt {value!r} needs a time zone (e.g. Z)")
    if expiry <= now:
        raise _Invalid(f"expiresAt {value!r} is in the past")
    return expiry


def _parse_access(value: Any) -> str | tuple[AccessRule, ...]:
    if value is None:
        # Qdrant grants full manage rights to a token without `access`: never mint one.
        raise _Invalid("has no access (a token without it would get full manage rights)")
    if isinstance(value, str):
        if value not in _GLOBAL_ACCESS:
            raise _Invalid(f"access {value!r} is not r, m or a list of collection rules")
        return value
    if not isinstance(value, list) or not value:
        raise _Invalid("access must be r, m or a non-empty list of {collection, access}")
    rules = []
    for rule in value:
        if not isinstance(rule, dict) or set(rule) != {"collection", "access"}:
            raise _Invalid(f"access rule {rule!r} must have exactly collection and access")
        collection, level = rule["collection"], rule["access"]
        if not isinstance(collection, str) or not collection:
            raise _Invalid(f"access rule {rule!r} has no collection name")
        _refuse_allowlist(collection)
        if level not in _COLLECTION_ACCESS:
            raise _Invalid(f"collection {collection!r} has access {level!r}, not r, rw or prw")
        rules.append(AccessRule(collection, level))
    names = [rule.collection for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        # Qdrant rejects such a token outright, so it would be dead on arrival.
        raise _Invalid(f"collection {', '.join(duplicates)} appears more than once")
    return tuple(rules)


def _refuse_allowlist(collection: str) -> None:
    # Whoever may write the allowlist may re-allow a revoked token.
    if collection == TOKEN_ALLOWLIST_COLLECTION:
        raise _Invalid(f"collection {collection!r} is the token allowlist, kept by the deploy")


def _parse_flag(value: dict[str, Any], field: str) -> bool:
    flag = value.get(field, False)
    if not isinstance(flag, bool):
        raise _Invalid(f"{field} {flag!r} is not true or false")
    return flag


def _parse_value_exists(value: Any) -> ValueExists:
    if not isinstance(value, dict) or set(value) != {"collection", "matches"}:
        raise _Invalid("valueExists must have exactly collection and matches")
    collection, matches = value["collection"], value["matches"]
    if not isinstance(collection, str) or not collection:
        raise _Invalid("valueExists has no collection name")
    _refuse_allowlist(collection)
    if not isinstance(matches, list) or not matches:
        raise _Invalid("valueExists.matches must be a non-empty list of {key, value}")
    parsed = []
    for match in matches:
        if (
            not isinstance(match, dict)
            or set(match) != {"key", "value"}
            or not isinstance(match["key"], str)
            or not isinstance(match["value"], (str, int, bool))
        ):
            raise _Invalid(f"valueExists match {match!r} must be {{key: str, value: str|int|bool}}")
        parsed.append(ValueMatch(match["key"], match["value"]))
    return ValueExists(collection, tuple(parsed))


def _parse_token(value: Any, now: dt.datetime) -> TokenSpec:
    if not isinstance(value, dict):
        raise _Invalid(f"{value!r} is not a {{name, access}} object")
    name = value.get("name")
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise _Invalid(f"name {name!r} must be 1-63 letters, digits, '.', '_' or '-'")
    try:
        unknown = sorted(set(value) - _TOKEN_FIELDS)
        if unknown:
            raise _Invalid(f"unknown field {', '.join(unknown)}")
        revocable, revoked = _parse_flag(value, "revocable"), _parse_flag(value, "revoked")
        if revoked and not revocable:
            raise _Invalid(
                "revoked needs revocable: true, which the token must have carried when minted "
                "(otherwise only rotating the keys stops it)"
            )
        if revocable and "valueExists" in value:
            raise _Invalid(
                "revocable and valueExists exclude each other (Qdrant reads one per token)"
            )
        return TokenSpec(
            name=name,
            access=cast(Any, _parse_access(value.get("access"))),
            expires_at=_parse_expiry(value["expiresAt"], now) if "expiresAt" in value else None,
            value_exists=(
                _parse_value_exists(value["valueExists"]) if "valueExists" in value else None
            ),
            revocable=revocable,
            revoked=revoked,
        )
    except _Invalid as problem:
        raise _Invalid(f"token {name!r}: {problem}") from None


def _parse_tokens(text: str, now: dt.datetime) -> tuple[TokenSpec, ...]:
    items = _parse_json(text)
    if not isinstance(items, list):
        raise _Invalid("must be a list of {name, access} objects")
    tokens = tuple(_parse_token(item, now) for item in items)
    names = [token.name for token in tokens]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _Invalid(f"token name {', '.join(duplicates)} is used more than once")
    return tokens


def load_settings(
    raw: Mapping[str, str], now: dt.datetime | None = None, stack: str = ""
) -> StackSettings:
    """Validate the `secure-qdrant:` config (keys without the namespace) into `StackSettings`.

    Raises ConfigError listing every problem; nothing is half-accepted.
    """
    now = now or dt.datetime.now(dt.UTC)
    read = _Reader(raw)
    if len(stack) > MAX_STACK_NAME_LENGTH:
        read.problems.append(
            f"stack name {stack!r} has {len(stack)} characters; the IAM role named after it allows "
            f"at most {MAX_STACK_NAME_LENGTH}"
        )
    for key in sorted(set(raw) - KNOWN_KEYS):
        read.problems.append(f"{NAMESPACE}:{key}: unknown key (a typo?)")

    defaults = StackSettings(domain="", acme_email="")
    has_domain = _required(raw, "domain", read)
    has_email = _required(raw, "acmeEmail", read)
    domain = read.field("domain", _parse_domain, "") if has_domain else ""
    acme_email = read.field("acmeEmail", _parse_email, "") if has_email else ""
    hosted_zone = read.field("hostedZone", _parse_domain, None)
    if domain and hosted_zone:
        read.check(
            "hostedZone",
            _inside_zone(domain, hosted_zone),
            f"{domain!r} is not inside the zone {hosted_zone!r}",
        )
    acme_challenge = cast(AcmeChallenge, _choice(read, "acmeChallenge"))
    certificate_names: tuple[str, ...] = read.field(
        "certificateNames", _parse_certificate_names, ()
    )
    if acme_challenge == "dns-01":
        read.check(
            "acmeChallenge",
            bool(raw.get("hostedZone", "")),
            "dns-01 needs secure-qdrant:hostedZone, the Route 53 zone certbot writes the challenge "
            "record into",
        )
        _check_certificate_names(read, certificate_names, domain, hosted_zone)
    else:
        # HTTP-01 proves only a name that points at this host, and never a wildcard.
        read.check(
            "certificateNames",
            not certificate_names,
            "needs secure-qdrant:acmeChallenge dns-01 (HTTP-01 proves only the domain, which "
            "points here, and issues no wildcard)",
        )

    admin_cidrs: tuple[str, ...] = read.field("adminCidrs", _parse_cidrs, tuple())
    allow_anywhere = read.field("allowSshFromAnywhere", _parse_bool, False)
    world = [cidr for cidr in admin_cidrs if ipaddress.ip_network(cidr).prefixlen == 0]
    read.check(
        "adminCidrs",
        allow_anywhere or not world,
        f"{', '.join(world)} opens SSH to the whole internet; "
        "set secure-qdrant:allowSshFromAnywhere true if that is really meant",
    )

    for family in (4, 6):
        count = sum(1 for cidr in admin_cidrs if ipaddress.ip_network(cidr).version == family)
        read.check(
            "adminCidrs",
            count <= MAX_ADMIN_CIDRS_PER_FAMILY,
            f"{count} IPv{family} blocks exceed the {MAX_ADMIN_CIDRS_PER_FAMILY} a security group "
            f"holds next to the public ports (AWS allows {SECURITY_GROUP_RULES_PER_FAMILY} rules "
            "per family); aggregate them into larger blocks",
        )

    instance_type = read.field("instanceType", _parse_instance_type, defaults.instance_type)
    architecture = cast(Architecture, _choice(read, "architecture"))
    type_architecture = architecture_of(instance_type)
    read.check(
        "architecture",
        type_architecture in (None, architecture),
        f"{architecture} does not match instance type {instance_type} ({type_architecture})",
    )

    host_os = cast(HostOs, _choice(read, "hostOs"))
    # Unset means the chosen OS's own pin. A release is judged only against a known OS: against
    # the default one it would earn a second, misleading message.
    image_release = DEFAULT_IMAGE_RELEASES[host_os]
    if not read.has_problem("hostOs"):
        image_release = read.field(
            "imageRelease", lambda text: _parse_image_release(text, host_os), image_release
        )

    acme_server = read.field("acmeServer", _parse_https_url, defaults.acme_server)
    verify_on_deploy = read.field("verifyOnDeploy", _parse_bool, defaults.verify_on_deploy)
    read.check(
        "acmeServer",
        not (verify_on_deploy and _acme_host(acme_server) in UNTRUSTED_ACME_HOSTS),
        f"{acme_server} issues certificates no client trusts, so the deploy gate's certificate "
        "check would fail after waiting 15 minutes; set secure-qdrant:verifyOnDeploy false while "
        "you use it",
    )

    limits = Limits(
        rate_limit_rps=_integer(read, "rateLimitRps"),
        rest_burst=_integer(read, "restBurst"),
        grpc_burst=_integer(read, "grpcBurst"),
        max_body_size_mb=_integer(read, "maxBodySizeMb"),
        credential_rate_limit_rps=_integer(read, "credentialRateLimitRps"),
        credential_burst=_integer(read, "credentialBurst"),
    )
    settings = StackSettings(
        durability=_durability(read),
        domain=domain,
        acme_email=acme_email,
        hosted_zone=hosted_zone,
        acme_server=acme_server,
        acme_challenge=acme_challenge,
        certificate_names=certificate_names,
        admin_cidrs=admin_cidrs,
        allow_ssh_from_anywhere=allow_anywhere,
        instance_type=instance_type,
        architecture=architecture,
        host_os=host_os,
        image_release=image_release,
        subnet_id=read.field("subnetId", _parse_subnet_id, None),
        data_volume_size_gb=_integer(read, "dataVolumeSizeGb"),
        qdrant_version=read.field("qdrantVersion", _parse_qdrant_version, defaults.qdrant_version),
        limits=limits,
        tokens=read.field("tokens", lambda text: _parse_tokens(text, now), ()),
        api_key_version=_integer(read, "apiKeyVersion"),
        key_grace_hours=_integer(read, "keyGraceHours"),
        verify_on_deploy=verify_on_deploy,
        # A switch, not an ARN: the boundary is the stack's own (account and stack name), the one
        # `--part boundary` renders and the deployer policy's condition names; any other policy
        # would be one nothing renders from the roles and the deployer could not create them with.
        role_permissions_boundary=read.field(
            "rolePermissionsBoundary", _parse_bool, defaults.role_permissions_boundary
        ),
        audit=QdrantAudit(
            rotation=cast(AuditRotation, _choice(read, "auditRotation")),
            max_log_files=_integer(read, "auditMaxLogFiles"),
        ),
        audit_log_retention_days=_integer_choice(read, "auditLogRetentionDays"),
    )
    if read.problems:
        raise ConfigError(read.problems)
    return settings


def _durability(read: _Reader) -> Durability:
    return Durability(
        backup_schedule=read.field("backupSchedule", _parse_bool, Durability.backup_schedule),
        backup_retention_days=_integer(read, "backupRetentionDays"),
        restore_from_snapshot_id=read.field("restoreFromSnapshotId", _parse_snapshot_id, None),
        alert_email=read.field("alertEmail", _parse_email, None),
        thresholds=AlarmThresholds(
            certificate_days_left=_integer(read, "alarmCertificateDaysLeft"),
            qdrant_down_minutes=_integer(read, "alarmQdrantDownMinutes"),
            unauthorized_per_minute=_integer(read, "alarmUnauthorizedPerMinute"),
            data_volume_used_percent=_integer(read, "alarmDataVolumeUsedPercent"),
            denied_per_minute=_integer(read, "alarmDeniedPerMinute"),
        ),
    )
