"""The Nginx site of the host: settings in, config text out.

The site is one file, `site_file(paths)`, included from the distro's `nginx.conf` inside its
`http {}` block (Debian and Ubuntu include `conf.d/*.conf` there). It has two states:

- `render_http_site`: before a certificate exists. Port 80 serves ACME HTTP-01 challenges and
  redirects everything else; nothing proxies to Qdrant, so it is unreachable from outside until TLS
  is up (fail closed).
- `render_tls_site`: once certbot has issued the certificate, it replaces the file. It keeps the
  same port-80 server and adds REST and gRPC over TLS. Replacing one file (rather than adding a
  second) means there is never a moment with two servers competing for port 80.

With DNS-01 (`acme_challenge`) the host has no port 80 at all: the first state has no server (it
only clears the distro's port-80 default) and the TLS site has none for port 80.

The distro's `http {}` block already sets `ssl_protocols`, `access_log` and friends, and nginx
rejects a directive repeated in one block, so everything here that overrides them is set per
`server`; only names nginx needs at `http` level (zone, upstreams, log format) live there, each
prefixed `secure_qdrant` so nothing else in the distro config can clash with them.

The same functions render the loopback lab's site: only `listen` addresses and `HostSettings`
(ports, paths) differ, never the directives.
"""

from __future__ import annotations

from model.settings import ClientLimits, HostPaths, HostSettings, ListenAddresses

NAME = "secure_qdrant"
# The per-address rate-limit zone: the one whose refusals fail2ban's rate-limit jail counts.
ADDRESS_ZONE = NAME
# The per-credential rate-limit zone, and the variable it is keyed by.
CREDENTIAL = f"{NAME}_credential"
# The zone counting each address's requests in progress, and the largest count nginx takes
# ("connection limit must be less 65536").
IN_PROGRESS = f"{NAME}_in_progress"
IN_PROGRESS_MAX = 65535
SITE_FILE_NAME = "secure-qdrant.conf"
ACCESS_LOG_NAME = "secure-qdrant.access.log"
ERROR_LOG_NAME = "secure-qdrant.error.log"
# Access log lines are buffered per worker and written out at least this often. A write() per
# request cost the proxy about a fifth of its CPU per gRPC call (docs/performance.md); fail2ban
# still sees every line within the second, far inside its findtime. The error log, where the
# rate-limit jail reads 429s, is not buffered.
ACCESS_LOG_FLUSH_SECONDS = 1
ACCESS_LOG_BUFFER = "64k"
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"
# What `https://` means without a port (RFC 9110), not a port of the host: any other port must be
# spelled out in the redirect.
_HTTPS_SCHEME_PORT = 443
# Qdrant 1.18's raw shard-file reads, open to any collection reader: not part of the public API.
REFUSED_GRPC_SERVICES = ("qdrant.StorageRead",)
# The public gRPC services Qdrant serves (src/tonic/mod.rs `init`; their names from
# lib/api/src/grpc/proto/*.proto), less the refused one. Any other `:path` (an unknown service,
# server reflection, a typo) is answered by the edge and never reaches Qdrant.
GRPC_SERVICES = (
    "qdrant.Qdrant",
    "qdrant.Collections",
    "qdrant.Points",
    "qdrant.Snapshots",
    "grpc.health.v1.Health",
)
# nginx's 404 reaches a gRPC client as UNIMPLEMENTED (gRPC's HTTP-to-status mapping), what a gRPC
# server answers for a method or a message encoding it does not have.
GRPC_UNIMPLEMENTED = 404
# Qdrant accepts gzip'd messages with no limit on their decoded size (every service in
# src/tonic/mod.rs: `accept_compressed(Gzip)`, `max_decoding_message_size(usize::MAX)`): a small
# gzip'd message past `client_max_body_size` would inflate to gigabytes inside Qdrant. Only
# uncompressed calls pass; a message flagged compressed without this header is refused by tonic
# before any decoding ("compressed-flag but no grpc-encoding was specified").
GRPC_IDENTITY_ENCODING = "^(identity)?$"
# Qdrant's web UI. The unit turns it off; the edge refuses it too, so that turning it back on in
# Qdrant alone does not publish it.
REFUSED_REST_PREFIXES = ("/dashboard",)
# Qdrant answers `/` (its version) to anyone. The edge asks Qdrant this question with the caller's
# own headers first and passes `/` only when it is answered: any valid credential lists
# collections (a scoped one sees its own), none gets 401, a forged one 403.
CREDENTIAL_PROBE_LOCATION = "/_secure_qdrant_credential"
CREDENTIAL_PROBE_PATH = "/collections"
# What a gRPC call carries (`application/grpc`, `+proto`, `;charset=...`). Anything else on the gRPC
# port is not a call: without this, a plain GET went through to Qdrant and came back as a 502.
GRPC_CONTENT_TYPE = "^application/grpc([+;]|$)"

# Mozilla "intermediate" (guideline 5.7), verbatim. The DHE suites need an RSA certificate; with the
# ECDSA certificate certbot is asked for they are never negotiated, so no `ssl_dhparam` is needed.
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS_CURVES = "X25519:prime256v1:secp384r1"

SECURITY_HEADERS = (
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)

# Close to nginx's `combined`, so existing tooling reads it, with three changes:
# - `$remote_user` is written as `-`: it is decoded from an `Authorization: Basic` header, i.e. from
#   a credential, and nothing credential-derived belongs in a log;
# - `port=` tells REST from gRPC;
# - `grpc_status=`: gRPC reports failures inside an HTTP 200, so a gRPC 401 is only visible here
#   (16 = UNAUTHENTICATED, 7 = PERMISSION_DENIED).
# A rejected request therefore reads `<ip> - - [<time>] "<request>" 401|429 ...` (REST and any 429)
# or `... 200 ... grpc_status=16 ...` (gRPC auth failure).
# A gRPC error without a body comes back as headers only ("trailers-only"), any other status as a
# trailer: exactly one of the two is set.
_GRPC_STATUS = "$upstream_http_grpc_status$upstream_trailer_grpc_status"
LOG_FORMAT = (
    '$remote_addr - - [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" '
    f"port=$server_port grpc_status=${NAME}_grpc_status rt=$request_time"
)


def site_file(paths: HostPaths) -> str:
    """Where the site lives; both states are written to this one file."""
    return f"{paths.nginx_conf_dir}/conf.d/{SITE_FILE_NAME}"


def certificate_paths(host: HostSettings) -> tuple[str, str]:
    """(fullchain, private key) of the lineage certbot keeps under `--cert-name <domain>`."""
    live = f"{host.paths.letsencrypt_dir}/live/{host.domain}"
    return f"{live}/fullchain.pem", f"{live}/privkey.pem"


def render_http_site(host: HostSettings) -> str:
    """The site before a certificate exists: ACME challenges and redirects, no route to Qdrant."""
    return _file(_http_level(host), *_http_servers(host))


def render_tls_site(host: HostSettings, certificate: str, certificate_key: str) -> str:
    """The full site: REST and gRPC behind TLS, keys and rate limits, and the port-80 server of an
    HTTP-01 host."""
    tls = _tls(certificate, certificate_key)
    return _file(
        _http_level(host),
        *_upstreams(host),
        *_http_servers(host),
        _rest_server(host, host.listen, tls),
        _grpc_server(host, host.listen, tls),
    )


def _http_level(host: HostSettings) -> str:
    limits = host.limits
    # One zone keyed by client address and one keyed by credential, each for REST and gRPC alike:
    # alternating protocols gains nothing, and neither do many addresses with one credential.
    return _lines(
        f"limit_req_zone $binary_remote_addr zone={ADDRESS_ZONE}:10m rate={limits.rate_limit_rps}r/s;",
        # The credential as Qdrant reads it: `api-key` first, else `Authorization`. Empty (no
        # credential: health checks, 401s) is not counted, which nginx does for an empty key. The
        # key is the credential itself: nginx core has no hash function (njs is not installed), and
        # the key stays in the workers' shared memory, which already hold every request's headers,
        # and is never written to disk. limit_req logs a key only past 65535 bytes, four times what
        # large_client_header_buffers lets one header hold: only a sender repeating oversized
        # headers could get there, and the log would then hold what it sent, nobody else's.
        _block(
            f"map $http_api_key ${CREDENTIAL}",
            '"" $http_authorization;',
            "default $http_api_key;",
        ),
        f"limit_req_zone ${CREDENTIAL} zone={CREDENTIAL}:10m "
        f"rate={limits.credential_rate_limit_rps}r/s;",
        f"limit_conn_zone $binary_remote_addr zone={IN_PROGRESS}:10m;",
        f"log_format {NAME} '{LOG_FORMAT}';",
        _block(
            f'map "{_GRPC_STATUS}" ${NAME}_grpc_status',
            '"" "-";',
            f'default "{_GRPC_STATUS}";',
        ),
    )


def _upstreams(host: HostSettings) -> tuple[str, ...]:
    # Keep-alive to Qdrant: without it every request pays a fresh loopback TCP connection, which
    # measured at well under half the throughput.
    return (
        _block(
            f"upstream {NAME}_rest",
            f"server 127.0.0.1:{host.ports.qdrant_rest};",
            "keepalive 32;",
        ),
        _block(
            f"upstream {NAME}_grpc",
            f"server 127.0.0.1:{host.ports.qdrant_grpc};",
            "keepalive 32;",
        ),
    )


def _http_servers(host: HostSettings) -> tuple[str, ...]:
    """The port-80 server, where the host has port 80 (HTTP-01)."""
    return (_http_server(host, host.listen),) if host.ports.http in host.public_ports else ()


def _http_server(host: HostSettings, listen: ListenAddresses) -> str:
    https = host.ports.https
    authority = "$host" if https == _HTTPS_SCHEME_PORT else f"$host:{https}"
    return _block(
        "server",
        *_listen(listen, host.ports.http, ""),
        *_common(host),
        _block(
            # `^~`: no other location may take the challenge path away from certbot's webroot.
            f"location ^~ {ACME_CHALLENGE_PATH}",
            f"root {host.paths.acme_webroot};",
            "default_type text/plain;",
            "try_files $uri =404;",
        ),
        _block("location /", f"return 301 https://{authority}$request_uri;"),
    )


# Qdrant's audit log records the client's address from `Forwarded` (RFC 7239), else
# `X-Forwarded-For`, taken raw (src/actix/forwarded.rs, src/tonic/forwarded.rs). The edge is the first
# proxy: it replaces whatever a client sent in the one and removes the other (an empty value is not
# sent), so every line names the address the connection really came from.
_CLIENT_ADDRESS_HEADERS = ("X-Forwarded-For $remote_addr;", 'Forwarded "";')

_REST_PROXY = (
    # HTTP/1.1 with an empty Connection header is what lets the upstream keep-alive work.
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    # Setting any proxy_set_header drops nginx's defaults, so Host is restated. api-key and
    # Authorization are not touched: nginx forwards request headers unchanged.
    "proxy_set_header Host $host;",
    *(f"proxy_set_header {header}" for header in _CLIENT_ADDRESS_HEADERS),
    "proxy_set_header X-Forwarded-Proto https;",
)


def _rest_server(host: HostSettings, listen: ListenAddresses, tls: tuple[str, ...]) -> str:
    upstream = f"http://{NAME}_rest"
    refusals = (_block(f"location ^~ {prefix}", "return 404;") for prefix in REFUSED_REST_PREFIXES)
    return _tls_server(
        host,
        listen,
        host.ports.https,
        tls,
        host.limits.rest_burst,
        f"proxy_read_timeout {host.limits.clients.upstream_read_timeout_s}s;",
        # qdrant-client's start-up check reads the version here with the caller's credentials:
        # they get it; nobody else does. Only `/` pays for the extra round trip.
        _block(
            "location = /",
            f"auth_request {CREDENTIAL_PROBE_LOCATION};",
            f"proxy_pass {upstream};",
            *_REST_PROXY,
        ),
        _block(
            f"location = {CREDENTIAL_PROBE_LOCATION}",
            "internal;",
            f"proxy_pass {upstream}{CREDENTIAL_PROBE_PATH};",
            # The subrequest carries the caller's headers (the credential), never a body.
            "proxy_pass_request_body off;",
            'proxy_set_header Content-Length "";',
            *_REST_PROXY,
        ),
        *refusals,
        _block("location /", f"proxy_pass {upstream};", *_REST_PROXY),
    )


def _grpc_server(host: HostSettings, listen: ListenAddresses, tls: tuple[str, ...]) -> str:
    # A plain 403 reaches gRPC clients as PERMISSION_DENIED; `return` runs before the rate limit.
    refusals = (
        _block(f"location ^~ /{service}/", "return 403;") for service in REFUSED_GRPC_SERVICES
    )
    services = "|".join(service.replace(".", r"\.") for service in GRPC_SERVICES)
    return _tls_server(
        host,
        listen,
        host.ports.grpc_tls,
        tls,
        host.limits.grpc_burst,
        f"grpc_read_timeout {host.limits.clients.upstream_read_timeout_s}s;",
        *refusals,
        _block(
            # `/package.Service/Method`: a known service; the method is Qdrant's to know.
            f'location ~ "^/({services})/[A-Za-z0-9_]+$"',
            # No body: refused at the edge, before the rate limit and before Qdrant.
            _block(f'if ($content_type !~ "{GRPC_CONTENT_TYPE}")', "return 415;"),
            _block(
                f'if ($http_grpc_encoding !~ "{GRPC_IDENTITY_ENCODING}")',
                f"return {GRPC_UNIMPLEMENTED};",
            ),
            # grpc_pass forwards all metadata (api-key, authorization) as received.
            f"grpc_pass grpc://{NAME}_grpc;",
            *(f"grpc_set_header {header}" for header in _CLIENT_ADDRESS_HEADERS),
        ),
        _block("location /", f"return {GRPC_UNIMPLEMENTED};"),
    )


def _tls_server(
    host: HostSettings,
    listen: ListenAddresses,
    port: int,
    tls: tuple[str, ...],
    burst: int,
    *locations: str,
) -> str:
    return _block(
        "server",
        *_listen(listen, port, " ssl http2"),
        *_common(host),
        *tls,
        # `always`, or nginx omits them on 401 and 429. Declared per server only: a location with
        # an add_header of its own would silently drop all of these.
        *(f'add_header {name} "{value}" always;' for name, value in SECURITY_HEADERS),
        # `nodelay`: a burst is served at once and the excess refused, never queued into latency.
        f"limit_req zone={ADDRESS_ZONE} burst={burst} nodelay;",
        f"limit_req zone={CREDENTIAL} burst={host.limits.credential_burst} nodelay;",
        "limit_req_status 429;",
        f"limit_conn {IN_PROGRESS} {host.limits.clients.requests_per_address};",
        "limit_conn_status 429;",
        f"client_max_body_size {host.limits.max_body_size_mb}m;",
        # Only the HTTP/2 limit nginx 1.22 and 1.24 both still have: since 1.19.7 HTTP/2 follows
        # keepalive_timeout, client_header_timeout and large_client_header_buffers like HTTP/1.1.
        f"http2_max_concurrent_streams {host.limits.clients.http2_max_concurrent_streams};",
        *locations,
    )


def _listen(listen: ListenAddresses, port: int, options: str) -> tuple[str, ...]:
    # `listen ... ssl http2`, not `http2 on;`: that needs nginx 1.25.1 (Debian 12 has 1.22, the
    # VM's Ubuntu 24.04 has 1.24).
    return (
        f"listen {listen.ipv4}:{port}{options};",
        f"listen {listen.ipv6}:{port}{options};",
    )


def _common(host: HostSettings) -> tuple[str, ...]:
    log_dir = host.paths.nginx_log_dir
    return (
        f"server_name {host.domain};",
        "server_tokens off;",
        # Every server writes the same file and nginx keeps one buffer per file: all say so alike.
        f"access_log {log_dir}/{ACCESS_LOG_NAME} {NAME} "
        f"buffer={ACCESS_LOG_BUFFER} flush={ACCESS_LOG_FLUSH_SECONDS}s;",
        f"error_log {log_dir}/{ERROR_LOG_NAME};",
        *_client_limits(host.limits.clients),
    )


def _client_limits(limits: ClientLimits) -> tuple[str, ...]:
    # On every server, port 80 too: a connection is held the same whatever it is for. Each one's
    # reason is on its field in ClientLimits.
    return (
        f"client_header_timeout {limits.header_timeout_s}s;",
        f"client_body_timeout {limits.body_timeout_s}s;",
        f"send_timeout {limits.send_timeout_s}s;",
        f"keepalive_timeout {limits.keepalive_timeout_s}s;",
        f"client_header_buffer_size {limits.header_buffer_size_kb}k;",
        f"large_client_header_buffers {limits.large_header_buffers} {limits.large_header_buffer_kb}k;",
    )


def _tls(certificate: str, certificate_key: str) -> tuple[str, ...]:
    return (
        f"ssl_certificate {certificate};",
        f"ssl_certificate_key {certificate_key};",
        f"ssl_protocols {' '.join(TLS_PROTOCOLS)};",
        f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
        f"ssl_ecdh_curve {TLS_CURVES};",
        # Every intermediate suite is strong: let clients pick the one their hardware runs fastest.
        "ssl_prefer_server_ciphers off;",
        f"ssl_session_cache shared:{NAME}_tls:10m;",
        "ssl_session_timeout 1d;",
        # A ticket key that lives as long as the nginx process would decrypt every recorded session:
        # no tickets keeps forward secrecy. No OCSP stapling: Let's Encrypt no longer runs OCSP.
        "ssl_session_tickets off;",
    )


def _block(head: str, *body: str) -> str:
    inner = "\n".join(_indent(line) for line in body)
    return f"{head} {{\n{inner}\n}}"


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else line for line in text.splitlines())


def _lines(*lines: str) -> str:
    return "\n".join(lines)


def _file(*sections: str) -> str:
    return "\n\n".join(sections) + "\n"
