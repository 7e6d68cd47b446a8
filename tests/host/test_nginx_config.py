"""The rendered Nginx site, read as nginx reads it: what each directive guarantees, no nginx needed.

Settings use unusual ports and limits, so every number found in the output provably came from them.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import qdrant_client.grpc

from model.nginx_config import (
    ACCESS_LOG_BUFFER,
    ACCESS_LOG_FLUSH_SECONDS,
    CREDENTIAL_PROBE_PATH,
    GRPC_CONTENT_TYPE,
    GRPC_IDENTITY_ENCODING,
    GRPC_SERVICES,
    MOZILLA_INTERMEDIATE_CIPHERS,
    REFUSED_GRPC_SERVICES,
    SECURITY_HEADERS,
    certificate_paths,
    render_http_site,
    render_tls_site,
    site_file,
)
from model.settings import (
    ALL_INTERFACES,
    LOOPBACK,
    ClientLimits,
    HostPaths,
    HostSettings,
    Limits,
    Ports,
)

PORTS = Ports(http=8080, https=8443, grpc_tls=9443, qdrant_rest=7333, qdrant_grpc=17334)
CLIENT_LIMITS = ClientLimits(
    header_timeout_s=7,
    body_timeout_s=19,
    send_timeout_s=23,
    keepalive_timeout_s=41,
    header_buffer_size_kb=3,
    large_header_buffers=5,
    large_header_buffer_kb=12,
    http2_max_concurrent_streams=77,
    requests_per_address=99,
    upstream_read_timeout_s=333,
)
LIMITS = Limits(
    rate_limit_rps=7, rest_burst=11, grpc_burst=33, max_body_size_mb=64, clients=CLIENT_LIMITS,
    credential_rate_limit_rps=13, credential_burst=57
)  # fmt: skip
PATHS = HostPaths(acme_webroot="/srv/acme", nginx_log_dir="/srv/logs/nginx")
CERTIFICATE = ("/certs/fullchain.pem", "/certs/privkey.pem")


def host_settings(ports: Ports = PORTS) -> HostSettings:
    return HostSettings(
        domain="qdrant.example.com",
        acme_email="ops@example.com",
        acme_server="https://acme.example.com/dir",
        qdrant_version="v1.18.3",
        limits=LIMITS,
        admin_cidrs=(),
        region="eu-west-1",
        api_key_parameter="/secure-qdrant/test/api-key",
        read_only_api_key_parameter="/secure-qdrant/test/read-only-api-key",
        previous_api_key_parameter="/secure-qdrant/test/previous-api-key",
        ports=ports,
        paths=PATHS,
    )


HOST = host_settings()


# --------------------------------------------------------------------------- reading nginx text


@dataclass
class Block:
    """One `{ }` context: its directives (name, *arguments) and nested blocks, in order."""

    head: tuple[str, ...]
    directives: list[tuple[str, ...]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def values(self, name: str) -> list[tuple[str, ...]]:
        return [d[1:] for d in self.directives if d[0] == name]

    def value(self, name: str) -> tuple[str, ...]:
        (found,) = self.values(name)
        return found

    def walk(self) -> Iterator[Block]:
        yield self
        for block in self.blocks:
            yield from block.walk()

    def location(self, path: str, modifier: str | None = None) -> Block:
        head = ("location", path) if modifier is None else ("location", modifier, path)
        (found,) = [b for b in self.blocks if b.head == head]
        return found


def parse(text: str) -> Block:
    tokens = _tokens(text)
    root = Block(("http",))
    stack: list[Block] = [root]
    words: list[str] = []
    for token in tokens:
        if token == "{":
            block = Block(tuple(words))
            stack[-1].blocks.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        elif token == ";":
            stack[-1].directives.append(tuple(words))
            words = []
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";{}")
    lexer.wordchars += "$:/.-^~=[]*?&@%,+"
    lexer.commenters = "#"
    return list(lexer)


def servers(site: Block) -> dict[int, Block]:
    """Server blocks by the port they listen on."""
    by_port = {}
    for server in (b for b in site.blocks if b.head == ("server",)):
        ports = {int(listen[0].rsplit(":", 1)[1]) for listen in server.values("listen")}
        (port,) = ports
        by_port[port] = server
    return by_port


HTTP_SITE = parse(render_http_site(HOST))
TLS_SITE = parse(render_tls_site(HOST, *CERTIFICATE))
TLS_SERVERS = servers(TLS_SITE)
REST, GRPC = TLS_SERVERS[PORTS.https], TLS_SERVERS[PORTS.grpc_tls]


# --------------------------------------------------------------------------- before the certificate


def test_http_site_has_no_route_to_qdrant() -> None:
    """Fail closed: until TLS is up, nothing from outside reaches Qdrant, not even in cleartext."""
    directives = {d[0] for block in HTTP_SITE.walk() for d in block.directives}
    assert not directives & {"proxy_pass", "grpc_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass"}
    assert not [b for b in HTTP_SITE.blocks if b.head[0] == "upstream"]
    assert set(servers(HTTP_SITE)) == {PORTS.http}


def test_http_site_serves_acme_challenges_from_the_webroot() -> None:
    """certbot --webroot writes the token there; Let's Encrypt must fetch it over plain HTTP."""
    challenge = servers(HTTP_SITE)[PORTS.http].location("/.well-known/acme-challenge/", "^~")
    assert challenge.head == ("location", "^~", "/.well-known/acme-challenge/")
    assert challenge.value("root") == (PATHS.acme_webroot,)


def test_port_80_redirects_everything_else_to_https_keeping_host_and_path() -> None:
    """Cleartext is never answered with content, only sent to the same URL over TLS."""
    at_443 = parse(render_http_site(host_settings(Ports())))
    assert servers(at_443)[80].location("/").value("return") == (
        "301",
        "https://$host$request_uri",
    )
    elsewhere = servers(HTTP_SITE)[PORTS.http].location("/")
    assert elsewhere.value("return") == ("301", f"https://$host:{PORTS.https}$request_uri")


def test_tls_site_keeps_the_same_port_80_server() -> None:
    """Renewals still need the challenge path: installing TLS must not take port 80 away."""
    assert TLS_SERVERS[PORTS.http] == servers(HTTP_SITE)[PORTS.http]


# --------------------------------------------------------------------------- listeners


@pytest.mark.parametrize("site", [HTTP_SITE, TLS_SITE], ids=["http-site", "tls-site"])
def test_every_server_listens_on_ipv4_and_ipv6(site: Block) -> None:
    """An IPv6-only client must get the same hardened server, not the distro's default site."""
    for port, server in servers(site).items():
        addresses = {listen[0].rsplit(":", 1)[0] for listen in server.values("listen")}
        assert addresses == {ALL_INTERFACES.ipv4, ALL_INTERFACES.ipv6}, port


def test_lab_listeners_stay_on_loopback() -> None:
    """The lab renders the same directives but must not expose a test server to the network."""
    lab = parse(render_tls_site(dataclasses.replace(HOST, listen=LOOPBACK), *CERTIFICATE))
    listens = {listen[0] for server in servers(lab).values() for listen in server.values("listen")}
    assert {address.rsplit(":", 1)[0] for address in listens} == {"127.0.0.1", "[::1]"}


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_tls_listeners_use_the_http2_syntax_of_nginx_1_22_and_1_24(port: int) -> None:
    """`http2 on;` needs nginx 1.25.1: Debian 12 (1.22) and Ubuntu 24.04 (1.24) refuse it."""
    server = TLS_SERVERS[port]
    assert all(listen[1:] == ("ssl", "http2") for listen in server.values("listen"))
    assert "http2" not in {d[0] for block in TLS_SITE.walk() for d in block.directives}


# --------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_tls_is_mozilla_intermediate(port: int) -> None:
    """TLS 1.2 and 1.3 with AEAD suites and modern curves only: no downgrade to broken crypto."""
    server = TLS_SERVERS[port]
    assert server.value("ssl_protocols") == ("TLSv1.2", "TLSv1.3")
    assert server.value("ssl_ciphers") == (MOZILLA_INTERMEDIATE_CIPHERS,)
    assert server.value("ssl_ecdh_curve") == ("X25519:prime256v1:secp384r1",)
    assert server.value("ssl_prefer_server_ciphers") == ("off",)
    assert (server.value("ssl_certificate"), server.value("ssl_certificate_key")) == tuple(
        (path,) for path in CERTIFICATE
    )


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_sessions_resume_from_a_shared_cache_without_tickets(port: int) -> None:
    """Tickets are encrypted with a key that lives as long as nginx: off keeps forward secrecy."""
    server = TLS_SERVERS[port]
    assert server.value("ssl_session_tickets") == ("off",)
    assert server.value("ssl_session_cache")[0].startswith("shared:")
    assert server.values("ssl_session_timeout")


def test_mozilla_cipher_list_is_the_intermediate_one() -> None:
    """Only ECDHE/DHE AEAD suites: forward secrecy and no CBC, RC4 or 3DES."""
    suites = MOZILLA_INTERMEDIATE_CIPHERS.split(":")
    aead_with_forward_secrecy = r"(ECDHE-(ECDSA|RSA)|DHE-RSA)-\S+-(GCM-SHA\d+|POLY1305)"
    assert all(re.fullmatch(aead_with_forward_secrecy, suite) for suite in suites)
    assert len(suites) == 9


# --------------------------------------------------------------------------- response headers


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_security_headers_are_sent_always(port: int) -> None:
    """Without `always` nginx drops them on 401 and 429: exactly the responses attackers see."""
    headers = {args[0]: args[1:] for args in TLS_SERVERS[port].values("add_header")}
    assert headers == {name: (value, "always") for name, value in SECURITY_HEADERS}
    assert dict(SECURITY_HEADERS)["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )


def test_no_location_shadows_the_security_headers() -> None:
    """nginx inherits add_header only into blocks that declare none: one would drop them all."""
    for server in TLS_SERVERS.values():
        for location in server.blocks:
            assert not location.values("add_header"), location.head


def test_server_tokens_are_off_on_every_server() -> None:
    """The version banner only helps an attacker pick an exploit."""
    for server in [*TLS_SERVERS.values(), *servers(HTTP_SITE).values()]:
        assert server.value("server_tokens") == ("off",)


# --------------------------------------------------------------------------- limits


def zone_keyed_by(key: str) -> tuple[str, str]:
    """(name, rate) of the one limit_req_zone keyed by `key`."""
    (zone,) = [zone for zone in TLS_SITE.values("limit_req_zone") if zone[0] == key]
    return zone[1].removeprefix("zone=").split(":")[0], zone[2]


def test_one_rate_limit_zone_per_client_address_is_shared_by_rest_and_grpc() -> None:
    """Alternating protocols must not double an attacker's budget."""
    name, rate = zone_keyed_by("$binary_remote_addr")
    assert rate == f"rate={LIMITS.rate_limit_rps}r/s"
    assert (f"zone={name}", f"burst={LIMITS.rest_burst}", "nodelay") in REST.values("limit_req")
    assert (f"zone={name}", f"burst={LIMITS.grpc_burst}", "nodelay") in GRPC.values("limit_req")


def test_one_rate_limit_zone_per_credential_is_shared_by_rest_and_grpc() -> None:
    """One credential used from many addresses has its own budget, over both protocols."""
    (credential_map,) = [b for b in TLS_SITE.blocks if b.head[:2] == ("map", "$http_api_key")]
    name, rate = zone_keyed_by(credential_map.head[2])
    assert rate == f"rate={LIMITS.credential_rate_limit_rps}r/s"
    expected = (f"zone={name}", f"burst={LIMITS.credential_burst}", "nodelay")
    assert expected in REST.values("limit_req") and expected in GRPC.values("limit_req")


def test_the_credential_key_is_the_one_qdrant_reads_and_empty_without_one() -> None:
    """Qdrant reads `api-key` first, else `Authorization` (src/common/auth/mod.rs): keying on the
    same choice means no header can be added to dodge the limit of the credential that is used.
    Without either the key is empty, which nginx does not count."""
    (credential_map,) = [b for b in TLS_SITE.blocks if b.head[:2] == ("map", "$http_api_key")]
    assert credential_map.directives == [("", "$http_authorization"), ("default", "$http_api_key")]


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_excess_requests_get_429_and_bodies_are_capped(port: int) -> None:
    """429 tells clients to back off (and fail2ban whom to ban); the body cap is the only one
    on gRPC and snapshot uploads, which Qdrant does not limit itself."""
    server = TLS_SERVERS[port]
    assert server.value("limit_req_status") == ("429",)
    assert server.value("client_max_body_size") == (f"{LIMITS.max_body_size_mb}m",)
    for location in server.blocks:
        assert not location.values("limit_req"), "a location with its own limit_req escapes"


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_requests_in_progress_per_address_are_capped(port: int) -> None:
    """No timeout cuts a body trickling in a byte at a time: the count one address may hold is
    what bounds it, over REST and gRPC together, with the 429 that tells a client to back off."""
    (zone,) = TLS_SITE.values("limit_conn_zone")
    assert zone[0] == "$binary_remote_addr"
    name = zone[1].removeprefix("zone=").split(":")[0]
    server = TLS_SERVERS[port]
    assert server.value("limit_conn") == (name, str(CLIENT_LIMITS.requests_per_address))
    assert server.value("limit_conn_status") == ("429",)


# --------------------------------------------------------------------------- slow and oversized clients


@pytest.mark.parametrize("port", [PORTS.http, PORTS.https, PORTS.grpc_tls])
def test_slow_clients_are_cut_by_timeouts_on_every_server(port: int) -> None:
    """Slowloris (a header byte now and then), a stalled body, a client that stops reading and an
    idle kept-alive connection each hold a connection only this long, on every public port."""
    server = (servers(TLS_SITE) | servers(HTTP_SITE))[port]
    assert server.value("client_header_timeout") == (f"{CLIENT_LIMITS.header_timeout_s}s",)
    assert server.value("client_body_timeout") == (f"{CLIENT_LIMITS.body_timeout_s}s",)
    assert server.value("send_timeout") == (f"{CLIENT_LIMITS.send_timeout_s}s",)
    assert server.value("keepalive_timeout") == (f"{CLIENT_LIMITS.keepalive_timeout_s}s",)


@pytest.mark.parametrize("port", [PORTS.http, PORTS.https, PORTS.grpc_tls])
def test_request_heads_are_held_in_bounded_buffers(port: int) -> None:
    """A request line or header longer than a large buffer is refused (414, 400) by nginx itself;
    since nginx 1.19.7 the same limit holds for HTTP/2 header fields."""
    server = (servers(TLS_SITE) | servers(HTTP_SITE))[port]
    assert server.value("client_header_buffer_size") == (f"{CLIENT_LIMITS.header_buffer_size_kb}k",)
    assert server.value("large_client_header_buffers") == (
        str(CLIENT_LIMITS.large_header_buffers),
        f"{CLIENT_LIMITS.large_header_buffer_kb}k",
    )


@pytest.mark.parametrize("port", [PORTS.https, PORTS.grpc_tls])
def test_http2_streams_per_connection_are_capped(port: int) -> None:
    assert TLS_SERVERS[port].value("http2_max_concurrent_streams") == (
        str(CLIENT_LIMITS.http2_max_concurrent_streams),
    )


def test_no_http2_directive_nginx_removed_in_1_19_7_is_used() -> None:
    """Debian 12's nginx 1.22 and Ubuntu 24.04's 1.24 refuse these; their jobs moved to
    keepalive_timeout, client_header_timeout and large_client_header_buffers (nginx CHANGES,
    1.19.7)."""
    removed = {
        "http2_recv_timeout",
        "http2_idle_timeout",
        "http2_max_requests",
        "http2_max_field_size",
        "http2_max_header_size",
    }
    used = {directive[0] for block in TLS_SITE.walk() for directive in block.directives}
    assert not used & removed


def test_qdrant_gets_long_enough_to_answer_long_searches() -> None:
    assert REST.value("proxy_read_timeout") == (f"{CLIENT_LIMITS.upstream_read_timeout_s}s",)
    assert GRPC.value("grpc_read_timeout") == (f"{CLIENT_LIMITS.upstream_read_timeout_s}s",)


GRPC_CALLS = next(b for b in GRPC.blocks if b.head[:2] == ("location", "~"))


def test_grpc_port_refuses_what_is_not_a_grpc_call() -> None:
    """A plain GET on 6334 used to reach Qdrant's gRPC port and come back as a 502; only a gRPC
    content type passes now, anything else gets 415 from the edge."""
    refusal = GRPC_CALLS.blocks[0]
    assert refusal.head == ("if", "(", "$content_type", "!", "~", GRPC_CONTENT_TYPE, ")")
    assert refusal.value("return") == ("415",)


def test_grpc_port_answers_unimplemented_for_any_other_path() -> None:
    """Only the proxied location reaches Qdrant; nginx's 404 is a gRPC client's UNIMPLEMENTED."""
    assert GRPC.location("/").directives == [("return", "404")]
    assert [b for b in GRPC.walk() if b.values("grpc_pass")] == [GRPC_CALLS]


@pytest.mark.parametrize(
    ("path", "passes"),
    [
        ("/qdrant.Points/Upsert", True),
        ("/qdrant.Collections/List", True),
        ("/qdrant.Qdrant/HealthCheck", True),
        ("/qdrant.Snapshots/Create", True),
        ("/grpc.health.v1.Health/Check", True),
        ("/qdrant.StorageRead/ReadShard", False),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", False),
        ("/qdrant.PointsInternal/Upsert", False),
        ("/qdrant.Raft/Send", False),
        ("/qdrantXPoints/Upsert", False),
        ("/qdrant.Points/Upsert/extra", False),
        ("/qdrant.Points/", False),
    ],
)
def test_grpc_service_pattern(path: str, passes: bool) -> None:
    """Qdrant's public services only: not its internal (cluster) ones, reflection or StorageRead.
    nginx's regexes are PCRE; this one uses nothing Python's `re` reads differently."""
    assert bool(re.search(GRPC_CALLS.head[2], path)) is passes


def qdrant_client_services() -> set[str]:
    """Every gRPC service in qdrant-client's generated modules."""
    modules = (
        importlib.import_module(f"qdrant_client.grpc.{module.name}")
        for module in pkgutil.iter_modules(qdrant_client.grpc.__path__)
    )
    descriptors = (module.DESCRIPTOR for module in modules if hasattr(module, "DESCRIPTOR"))
    return {service.full_name for d in descriptors for service in d.services_by_name.values()}


def test_every_service_qdrant_client_calls_is_proxied() -> None:
    """qdrant-client's own generated stubs are what applications call: none may be refused."""
    called = qdrant_client_services()
    assert called and called <= set(GRPC_SERVICES)
    assert not set(GRPC_SERVICES) & set(REFUSED_GRPC_SERVICES)


def test_grpc_calls_with_a_message_encoding_get_unimplemented() -> None:
    """Qdrant inflates gzip'd messages without a size limit: a small compressed call past the body
    cap is a decompression bomb. Refused before the rate limit and before Qdrant."""
    refusal = GRPC_CALLS.blocks[1]
    assert refusal.head == ("if", "(", "$http_grpc_encoding", "!", "~", GRPC_IDENTITY_ENCODING, ")")
    assert refusal.value("return") == ("404",)


@pytest.mark.parametrize(
    ("encoding", "passes"),
    [("", True), ("identity", True), ("gzip", False), ("deflate", False), ("identity,gzip", False)],
)
def test_grpc_identity_encoding_pattern(encoding: str, passes: bool) -> None:
    assert bool(re.search(GRPC_IDENTITY_ENCODING, encoding)) is passes


@pytest.mark.parametrize(
    ("content_type", "passes"),
    [
        ("application/grpc", True),
        ("application/grpc+proto", True),
        ("application/grpc;charset=utf-8", True),
        ("application/grpc-web", False),
        ("application/grpcx", False),
        ("application/json", False),
        ("", False),
    ],
)
def test_grpc_content_type_pattern(content_type: str, passes: bool) -> None:
    """nginx's regexes are PCRE; this one uses nothing Python's `re` reads differently."""
    assert bool(re.search(GRPC_CONTENT_TYPE, content_type)) is passes


# --------------------------------------------------------------------------- proxying


def test_rest_goes_to_qdrant_on_loopback_over_kept_alive_connections() -> None:
    """Qdrant listens on loopback only; keep-alive spares a TCP handshake per request."""
    upstream_name = REST.location("/").value("proxy_pass")[0].removeprefix("http://")
    upstream = next(b for b in TLS_SITE.blocks if b.head == ("upstream", upstream_name))
    assert upstream.value("server") == (f"127.0.0.1:{PORTS.qdrant_rest}",)
    assert upstream.values("keepalive")
    location = REST.location("/")
    assert location.value("proxy_http_version") == ("1.1",)
    assert ("Connection", "") in location.values("proxy_set_header")


def test_grpc_goes_to_qdrant_grpc_on_loopback() -> None:
    """gRPC needs HTTP/2 end to end: grpc_pass, never proxy_pass, to Qdrant's internal port."""
    upstream_name = GRPC_CALLS.value("grpc_pass")[0].removeprefix("grpc://")
    upstream = next(b for b in TLS_SITE.blocks if b.head == ("upstream", upstream_name))
    assert upstream.value("server") == (f"127.0.0.1:{PORTS.qdrant_grpc}",)


def test_credentials_reach_qdrant_unchanged() -> None:
    """Qdrant authenticates from `api-key` or `Authorization`; the edge must neither drop nor
    rewrite them, on REST or gRPC."""
    for block in TLS_SITE.walk():
        for directive in ("proxy_set_header", "grpc_set_header"):
            touched = {args[0].lower() for args in block.values(directive)}
            assert not touched & {"api-key", "authorization"}
        for directive in ("proxy_pass_request_headers", "grpc_pass_request_headers"):
            assert block.values(directive) in ([], [("on",)])
        assert not block.values("proxy_hide_header") and not block.values("ignore_invalid_headers")


def test_qdrant_sees_only_the_connections_own_address() -> None:
    """Qdrant's audit log takes the client's address from `Forwarded`, else `X-Forwarded-For`, as
    sent: every route to Qdrant (REST, gRPC, the credential probe) must replace the one with the
    connection's address and remove the other, or a client could log itself as anyone."""
    routes = {
        "proxy_pass": "proxy_set_header",
        "grpc_pass": "grpc_set_header",
    }
    proxying = [
        (block, setter)
        for block in TLS_SITE.walk()
        for passing, setter in routes.items()
        if block.values(passing)
    ]
    assert len(proxying) == 4, "the banner, the probe, REST and gRPC"
    for block, setter in proxying:
        headers = {args[0].lower(): args[1:] for args in block.values(setter)}
        assert headers["x-forwarded-for"] == ("$remote_addr",), block.head
        assert headers["forwarded"] == ("",), block.head


def test_grpc_storage_read_service_is_refused() -> None:
    """qdrant.StorageRead reads raw shard files for any collection reader: not a public API."""
    refusal = GRPC.location("/qdrant.StorageRead/", "^~")
    assert refusal.head == ("location", "^~", "/qdrant.StorageRead/")
    assert refusal.value("return") == ("403",)


def test_version_banner_is_passed_only_to_callers_qdrant_accepts() -> None:
    """Qdrant serves `/` (its exact version) to anyone. The edge first asks Qdrant an authenticated
    question with the caller's own headers and passes `/` only if Qdrant answers it."""
    banner = REST.location("/", "=")
    (probe_location,) = banner.value("auth_request")
    assert banner.value("proxy_pass") == REST.location("/").value("proxy_pass")
    probe = REST.location(probe_location, "=")
    assert probe.values("internal") == [()], "the probe location must not be reachable from outside"
    upstream = REST.location("/").value("proxy_pass")[0]
    assert probe.value("proxy_pass") == (f"{upstream}{CREDENTIAL_PROBE_PATH}",)
    assert probe.value("proxy_pass_request_body") == ("off",)
    assert ("Content-Length", "") in probe.values("proxy_set_header")


def test_only_the_banner_pays_for_the_credential_probe() -> None:
    """A subrequest per request would double Qdrant's load: health checks and the API go straight
    through, and load balancers keep `/healthz`, `/livez` and `/readyz` without credentials."""
    probing = [b.head for b in TLS_SITE.walk() if b.values("auth_request")]
    assert probing == [("location", "=", "/")]


def test_web_ui_is_refused_at_the_edge() -> None:
    """The dashboard stays unpublished even if Qdrant's static content were switched back on."""
    refusal = REST.location("/dashboard", "^~")
    assert refusal.value("return") == ("404",)


# --------------------------------------------------------------------------- logs


@pytest.mark.parametrize("site", [HTTP_SITE, TLS_SITE], ids=["http-site", "tls-site"])
def test_every_server_logs_to_the_log_dir_in_the_edge_format(site: Block) -> None:
    """fail2ban reads these files: a server logging elsewhere would be invisible to it."""
    (log_format,) = site.values("log_format")
    for server in servers(site).values():
        access_log, format_name, *_ = server.value("access_log")
        assert access_log.startswith(f"{PATHS.nginx_log_dir}/")
        assert format_name == log_format[0]
        assert server.value("error_log")[0].startswith(f"{PATHS.nginx_log_dir}/")


@pytest.mark.parametrize("site", [HTTP_SITE, TLS_SITE], ids=["http-site", "tls-site"])
def test_access_log_is_buffered_for_at_most_a_second(site: Block) -> None:
    """A write() per request is a fifth of the proxy's CPU per gRPC call; buffered lines still reach
    fail2ban within a second. Every server names the same buffer: nginx keeps one per file."""
    for server in servers(site).values():
        _, _, *options = server.value("access_log")
        assert options == [f"buffer={ACCESS_LOG_BUFFER}", f"flush={ACCESS_LOG_FLUSH_SECONDS}s"]
    assert ACCESS_LOG_FLUSH_SECONDS <= 1


def test_access_log_starts_with_client_and_status_and_records_no_credential() -> None:
    """fail2ban needs the client address and the status; a logged key would be a leaked key."""
    (log_format,) = TLS_SITE.values("log_format")
    line = log_format[1]
    assert line.startswith('$remote_addr - - [$time_local] "$request" $status ')
    assert "grpc_status=" in line, "a gRPC auth failure is an HTTP 200: only grpc-status shows it"
    for secret in ("$http_api_key", "$http_authorization", "$remote_user", "$http_cookie"):
        assert secret not in line


# --------------------------------------------------------------------------- where files go


def test_site_and_certificate_paths_come_from_host_paths() -> None:
    """cloud-init, certbot and nginx must agree on every path; HostPaths is the one source."""
    assert site_file(PATHS) == f"{PATHS.nginx_conf_dir}/conf.d/secure-qdrant.conf"
    assert certificate_paths(HOST) == (
        f"{PATHS.letsencrypt_dir}/live/{HOST.domain}/fullchain.pem",
        f"{PATHS.letsencrypt_dir}/live/{HOST.domain}/privkey.pem",
    )
