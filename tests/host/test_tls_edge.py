"""The edge for real, on loopback: pebble issues the certificate over HTTP-01, certbot renews it,
nginx runs the rendered site in front of the Qdrant auth double, and real clients probe it.

One lab serves the whole module. The rate limit is per client address and the whole 127.0.0.0/8 is
local, so every curl probe sends from a loopback address of its own and no test spends another's
budget. Only the gRPC clients (which cannot choose a source address) share 127.0.0.1, and the one
test that exhausts a budget on purpose uses ::1, which nothing else sends requests from.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from qdrant_client import QdrantClient
from qdrant_client import grpc as qdrant_grpc
from qdrant_client.common.version_check import get_server_version

from lab import pki
from lab.edge import UNTHROTTLED, EdgeLab, lab_host_settings, running_edge_lab
from lab.guide_nginx import certbot_tls_files, render_guide_site
from lab.nginx import Nginx
from lab.probes import (
    EMPTY_GRPC_MESSAGE,
    GRPC_HEADERS,
    Reply,
    Request,
    curl,
    curl_statuses,
    fresh_source_address,
    grpc_channel,
    qdrant_client,
    served_certificate,
    tls_handshake,
)
from lab.processes import (
    CommandFailed,
    LabUnavailable,
    clean_env,
    require_tools,
    run,
    wait_until,
)
from model.config import (
    NGINX_MAX_BODY_SIZE_MB,
    NGINX_MAX_BURST,
    NGINX_MAX_RATE_PER_SECOND,
    load_settings,
)
from model.nginx_config import (
    ACCESS_LOG_FLUSH_SECONDS,
    ACCESS_LOG_NAME,
    ACME_CHALLENGE_PATH,
    ERROR_LOG_NAME,
    SECURITY_HEADERS,
    certificate_paths,
    render_http_site,
    render_tls_site,
    site_file,
)
from model.settings import HostPaths, Limits, Ports
from model.tokens import mint_token
from tests.program import MINIMAL_CONFIG
from tests.readme import SECURITY_MODEL, stated

REPOSITORY = Path(__file__).resolve().parent.parent.parent
COLLECTION, OTHER_COLLECTION = "jwt_demo", "other"
POINTS = b'{"points": [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}]}'
VECTORS = {"size": 4, "distance": "Dot"}  # what POINTS needs of a collection, as in Qdrant
HTTP_VERSIONS = ["2", "1.1"]
# This module spends one key from many addresses to test the per-address zone; the credential
# zone, which would cut that in, is tested in test_hostile_clients.py.
PER_ADDRESS_ONLY = replace(
    Limits(),
    credential_rate_limit_rps=UNTHROTTLED.credential_rate_limit_rps,
    credential_burst=UNTHROTTLED.credential_burst,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[EdgeLab]:
    with ExitStack() as stack:
        try:
            edge = stack.enter_context(running_edge_lab(limits=PER_ADDRESS_ONLY))
        except LabUnavailable as missing:
            pytest.skip(f"loopback lab unavailable: {missing}")
        for name in (COLLECTION, OTHER_COLLECTION):
            edge.qdrant.store.create(name, VECTORS)
        environment = stack.enter_context(pytest.MonkeyPatch.context())
        # This machine presets these to the system bundle: nothing here may fall back on it.
        for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"):
            environment.setenv(variable, str(edge.client_ca))
        yield edge


def send(lab: EdgeLab, path: str, **request: Any) -> Reply:
    """One curl request from a loopback address of its own."""
    return curl(lab, Request(path, source=fresh_source_address(), **request))


def key(credential: str) -> dict[str, str]:
    return {"api-key": credential}


def collection_token(lab: EdgeLab, collection: str, access: str) -> str:
    return mint_token({"access": [{"collection": collection, "access": access}]}, lab.api_key)


def write_points(lab: EdgeLab, collection: str, credential: str) -> Reply:
    return send(
        lab,
        f"/collections/{collection}/points?wait=true",
        method="PUT",
        headers={**key(credential), "Content-Type": "application/json"},
        data=POINTS,
    )


def grpc_request(
    lab: EdgeLab, method: str, credential: str | None = None, source: str | None = None
) -> Request:
    """A gRPC call as curl can send it: an empty message, framed, over HTTP/2."""
    return Request(
        method,
        port=lab.host.ports.grpc_tls,
        method="POST",
        headers={**GRPC_HEADERS, **(key(credential) if credential else {})},
        data=EMPTY_GRPC_MESSAGE,
        source=source or fresh_source_address(),
    )


def timed_statuses(lab: EdgeLab, request: Request, count: int) -> tuple[list[int], float]:
    started = time.monotonic()
    statuses = curl_statuses(lab, request, count)
    return statuses, time.monotonic() - started


def assert_burst_then_429(statuses: list[int], burst: int, elapsed: float, rps: int) -> None:
    """`nodelay`: the first burst+1 pass at once, then 429s, save what refilled meanwhile."""
    refilled = math.ceil(elapsed * rps)
    assert statuses[: burst + 1] == [200] * (burst + 1), statuses
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(200) <= burst + 1 + refilled, statuses
    assert 429 in statuses[burst + 1 : burst + 2 + refilled], statuses


def certificate_on_disk(lab: EdgeLab) -> pki.CertificateInfo:
    return pki.certificate_info(Path(certificate_paths(lab.host)[0]).read_bytes())


def access_log(lab: EdgeLab) -> str:
    return (Path(lab.host.paths.nginx_log_dir) / ACCESS_LOG_NAME).read_text()


def flushed_access_log(lab: EdgeLab, complete: Callable[[str], bool]) -> str:
    """The access log once `complete` holds for it, or after the flush interval and a margin:
    each worker buffers its lines for up to ACCESS_LOG_FLUSH_SECONDS. Callers assert on it."""
    timeout = ACCESS_LOG_FLUSH_SECONDS + 4
    with suppress(TimeoutError):
        wait_until(lambda: complete(access_log(lab)), "nginx to write out its log", timeout)
    return access_log(lab)


# --------------------------------------------------------------------------- nginx accepts the site


@pytest.fixture
def offline_nginx(tmp_path: Path) -> tuple[Nginx, pki.KeyPair]:
    """An nginx prefix with the VM's real ports and a self-signed certificate, for `nginx -t`."""
    host = lab_host_settings(tmp_path, Ports(), "https://127.0.0.1/dir", Limits())
    try:
        ca = pki.make_ca(tmp_path / "ca", "offline-ca")
        certificate = pki.issue(ca, tmp_path / "site", [host.domain])
        nginx = Nginx(host, tmp_path / "nginx")
    except LabUnavailable as missing:
        pytest.skip(str(missing))
    return nginx, certificate


def test_http_only_site_passes_nginx_t(offline_nginx: tuple[Nginx, pki.KeyPair]) -> None:
    """cloud-init installs it before any certificate exists: nginx must start with it."""
    nginx, _ = offline_nginx
    nginx.install_site(render_http_site(nginx.host))
    nginx.check()


def test_tls_site_passes_nginx_t(offline_nginx: tuple[Nginx, pki.KeyPair]) -> None:
    """A reload with a site nginx rejects keeps the old one: the VM would stay HTTP-only."""
    nginx, certificate = offline_nginx
    nginx.install_site(
        render_tls_site(nginx.host, str(certificate.certificate), str(certificate.key))
    )
    nginx.check()


# Every nginx limit at the largest value the config accepts.
LARGEST_LIMITS = {
    "rateLimitRps": NGINX_MAX_RATE_PER_SECOND,
    "credentialRateLimitRps": NGINX_MAX_RATE_PER_SECOND,
    "restBurst": NGINX_MAX_BURST,
    "grpcBurst": NGINX_MAX_BURST,
    "credentialBurst": NGINX_MAX_BURST,
    "maxBodySizeMb": NGINX_MAX_BODY_SIZE_MB,
}


def test_the_largest_limits_the_config_accepts_pass_nginx_t(
    offline_nginx: tuple[Nginx, pki.KeyPair],
) -> None:
    """What validation accepts nginx must load: a limit it refused would fail the bootstrap after
    `pulumi up` had built everything (10**30 requests a second did)."""
    nginx, certificate = offline_nginx
    raw = {**MINIMAL_CONFIG, **{key: str(value) for key, value in LARGEST_LIMITS.items()}}
    host = replace(nginx.host, limits=load_settings(raw).limits)

    nginx.install_site(render_tls_site(host, str(certificate.certificate), str(certificate.key)))
    nginx.check()


def test_nginx_t_refuses_a_body_size_just_past_the_config_bound(
    offline_nginx: tuple[Nginx, pki.KeyPair],
) -> None:
    """The body-size bound is nginx's own (an off_t in bytes), not a guess below it."""
    nginx, certificate = offline_nginx
    host = replace(
        nginx.host, limits=replace(Limits(), max_body_size_mb=NGINX_MAX_BODY_SIZE_MB + 1)
    )

    with pytest.raises(CommandFailed, match="client_max_body_size"):
        nginx.install_site(
            render_tls_site(host, str(certificate.certificate), str(certificate.key))
        )


@pytest.fixture
def distro_nginx(tmp_path: Path) -> HostPaths:
    """A copy of this machine's own nginx config dir, its paths moved into `tmp_path`."""
    distro = HostPaths()
    main = Path(distro.nginx_conf_dir) / "nginx.conf"
    try:
        require_tools("nginx", "openssl")
    except LabUnavailable as missing:
        pytest.skip(str(missing))
    if not main.exists():
        pytest.skip(f"no {main} on this machine")
    copy = tmp_path / "nginx"
    shutil.copytree(distro.nginx_conf_dir, copy, symlinks=True)
    moved = main.read_text().replace(distro.nginx_conf_dir, str(copy))
    (copy / "nginx.conf").write_text(moved.replace(distro.nginx_log_dir, str(tmp_path)))
    return HostPaths(nginx_conf_dir=str(copy), nginx_log_dir=str(tmp_path))


def test_tls_site_passes_nginx_t_inside_the_distro_nginx_conf(
    distro_nginx: HostPaths, tmp_path: Path
) -> None:
    """On the VM the site sits in the distro's `http {}`, which already sets ssl_protocols, logs
    and more: a directive the site repeated there would stop nginx from loading it."""
    host = replace(
        lab_host_settings(tmp_path, Ports(), "https://127.0.0.1/dir", Limits()), paths=distro_nginx
    )
    certificate = pki.issue(pki.make_ca(tmp_path / "ca", "distro-ca"), tmp_path, [host.domain])
    Path(site_file(distro_nginx)).write_text(
        render_tls_site(host, str(certificate.certificate), str(certificate.key))
    )
    run(["nginx", "-t", "-c", f"{distro_nginx.nginx_conf_dir}/nginx.conf"])


def test_guide_site_passes_nginx_t(offline_nginx: tuple[Nginx, pki.KeyPair]) -> None:
    """The guide's config is kept runnable as the baseline benchmarks compare ours against."""
    nginx, certificate = offline_nginx
    try:
        tls_options, dhparam = certbot_tls_files()
    except LabUnavailable as missing:
        pytest.skip(str(missing))
    nginx.install_site(
        render_guide_site(
            nginx.host,
            str(certificate.certificate),
            str(certificate.key),
            tls_options=str(tls_options),
            dhparam=str(dhparam),
        )
    )
    nginx.check()


# --------------------------------------------------------------------------- the certificate


def test_certificate_is_issued_by_pebble_over_http01(lab: EdgeLab) -> None:
    """The VM gets its certificate with no human and no DNS credentials: HTTP-01 on port 80."""
    served = pki.certificate_info(served_certificate(lab, lab.host.ports.https))
    assert served.serial == certificate_on_disk(lab).serial
    validations = re.findall(
        rf'"GET {ACME_CHALLENGE_PATH}\S+ HTTP/1.1" 200 .*"LetsEncrypt-Pebble-VA', access_log(lab)
    )
    assert validations, "pebble never fetched the challenge from nginx"


def test_grpc_port_serves_the_same_certificate(lab: EdgeLab) -> None:
    """Clients verify gRPC against the same name and CA as REST."""
    grpc_serial = pki.certificate_info(served_certificate(lab, lab.host.ports.grpc_tls)).serial
    assert grpc_serial == certificate_on_disk(lab).serial


# --------------------------------------------------------------------------- port 80


def test_http_redirects_to_https_on_the_same_host_and_path(lab: EdgeLab) -> None:
    """Nothing is answered in cleartext; a client is sent to the same URL over TLS."""
    reply = send(lab, "/collections/demo?limit=3", scheme="http", http_version="1.1")
    assert reply.status == 301
    https = lab.host.ports.https
    assert reply.redirect_url == f"https://{lab.domain}:{https}/collections/demo?limit=3"


def test_acme_challenge_is_still_served_on_port_80(lab: EdgeLab) -> None:
    """Renewals validate over plain HTTP every 60 days: the redirect must not swallow them."""
    challenges = Path(lab.host.paths.acme_webroot) / ACME_CHALLENGE_PATH.strip("/")
    challenges.mkdir(parents=True, exist_ok=True)
    (challenges / "lab-probe-token").write_text("lab-probe-token.key-authorization")
    reply = send(lab, f"{ACME_CHALLENGE_PATH}lab-probe-token", scheme="http", http_version="1.1")
    assert (reply.status, reply.body) == (200, b"lab-probe-token.key-authorization")


# --------------------------------------------------------------------------- REST authentication


@pytest.mark.parametrize("http_version", HTTP_VERSIONS)
def test_rest_without_a_key_is_refused(lab: EdgeLab, http_version: str) -> None:
    """Qdrant answers 401 through the edge: nginx neither caches nor fakes authentication."""
    reply = send(lab, "/collections", http_version=http_version)
    assert (reply.status, reply.http_version) == (401, http_version)


@pytest.mark.parametrize("http_version", HTTP_VERSIONS)
def test_rest_with_the_key_is_served(lab: EdgeLab, http_version: str) -> None:
    """The api-key header reaches Qdrant unchanged over HTTP/2 and HTTP/1.1."""
    reply = send(lab, "/collections", http_version=http_version, headers=key(lab.api_key))
    assert (reply.status, reply.http_version) == (200, http_version)


def test_rest_bearer_token_reaches_qdrant(lab: EdgeLab) -> None:
    """`Authorization: Bearer` is Qdrant's other credential header: the edge must pass it too."""
    reply = send(lab, "/collections", headers={"Authorization": f"Bearer {lab.api_key}"})
    assert reply.status == 200


def test_oversized_body_is_refused_before_it_is_read(lab: EdgeLab) -> None:
    """Qdrant does not cap gRPC or snapshot uploads; the edge refuses on the declared length."""
    too_big = lab.host.limits.max_body_size_mb * 1024 * 1024 + 1
    reply = send(
        lab,
        f"/collections/{COLLECTION}/points",
        method="PUT",
        http_version="1.1",
        headers={**key(lab.api_key), "Content-Length": str(too_big)},
    )
    assert reply.status == 413


# --------------------------------------------------------------------------- what Qdrant shows anyone


@pytest.mark.parametrize(
    ("path", "status"), [("/", 401), ("/dashboard", 404), ("/dashboard/", 404)]
)
def test_banner_and_web_ui_reveal_nothing_without_credentials(
    lab: EdgeLab, path: str, status: int
) -> None:
    """Qdrant serves its exact version at `/` to anyone: it tells an attacker which advisories
    apply. Without a credential the edge answers `/` with a 401 of its own and the UI not at all."""
    reply = send(lab, path)
    assert reply.status == status
    assert not re.search(rb"\d+\.\d+", reply.body), reply.body
    assert b"version" not in reply.body
    for name, value in SECURITY_HEADERS:
        assert reply.headers.get(name.lower()) == value, name


def test_a_forged_token_gets_no_banner(lab: EdgeLab) -> None:
    """The edge passes Qdrant's own refusal through: a token signed with another key is a 403."""
    forged = mint_token({"access": "r"}, "not-the-master-key-0123456789abcdef")
    reply = send(lab, "/", headers=key(forged))
    assert reply.status == 403 and b"version" not in reply.body


@pytest.mark.parametrize("credential", ["master-key", "bearer", "collection-token"])
def test_banner_shows_the_version_to_a_caller_with_a_credential(
    lab: EdgeLab, credential: str
) -> None:
    """qdrant-client's compatibility check reads `/` with the caller's own credential, whatever
    its scope and header."""
    headers = {
        "master-key": key(lab.api_key),
        "bearer": {"Authorization": f"Bearer {lab.api_key}"},
        "collection-token": key(collection_token(lab, COLLECTION, "r")),
    }[credential]
    reply = send(lab, "/", headers=headers)
    assert reply.status == 200
    assert json.loads(reply.body)["version"] == lab.host.qdrant_version.removeprefix("v")


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_paths_answer_without_credentials_and_without_a_version(
    lab: EdgeLab, path: str
) -> None:
    """Load balancers probe these without a key; they must keep working and say nothing more."""
    reply = send(lab, path)
    assert reply.status == 200
    assert not re.search(rb"\d+\.\d+", reply.body) and reply.headers["server"] == "nginx"


@pytest.fixture
def lab_domain_resolves(lab: EdgeLab, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lab's domain resolves to the edge for this test's clients (what curl's --resolve does)."""
    resolve = socket.getaddrinfo

    def lab_resolver(host: Any, *arguments: Any, **options: Any) -> Any:
        return resolve("127.0.0.1" if host == lab.domain else host, *arguments, **options)

    monkeypatch.setattr(socket, "getaddrinfo", lab_resolver)
    return f"https://{lab.domain}:{lab.host.ports.https}"


def test_qdrant_client_over_rest_gets_the_version_and_the_api(
    lab: EdgeLab, lab_domain_resolves: str
) -> None:
    """The README's REST client: its start-up compatibility check (a `GET /` with the client's
    headers) still reads the version through the edge, and its calls work."""
    url = lab_domain_resolves
    expected = lab.host.qdrant_version.removeprefix("v")
    assert get_server_version(url, {"api-key": lab.api_key}, None, 10) == expected
    assert get_server_version(url, {}, None, 10) is None
    with closing(QdrantClient(url=url, api_key=lab.api_key, check_compatibility=False)) as client:
        names = {c.name for c in client.get_collections().collections}
    assert COLLECTION in names


# --------------------------------------------------------------------------- response headers


def response_with_status(lab: EdgeLab, status: int) -> Reply:
    source = fresh_source_address()
    if status == 429:
        budget = Request("/collections", headers=key(lab.api_key), source=source)
        curl_statuses(lab, budget, lab.host.limits.rest_burst + 1)
    credential = key(lab.api_key) if status in (200, 429) else {}
    return curl(lab, Request("/collections", headers=credential, source=source))


@pytest.mark.parametrize("status", [200, 401, 429])
def test_security_headers_are_on_every_response(lab: EdgeLab, status: int) -> None:
    """401 and 429 are what attackers see most: the headers must not depend on success."""
    reply = response_with_status(lab, status)
    assert reply.status == status
    for name, value in SECURITY_HEADERS:
        assert reply.headers.get(name.lower()) == value, name


def test_server_header_carries_no_version(lab: EdgeLab) -> None:
    """A version number only tells an attacker which exploits to try."""
    assert send(lab, "/collections").headers["server"] == "nginx"


# --------------------------------------------------------------------------- TLS


def test_tls13_is_negotiated(lab: EdgeLab) -> None:
    """A modern client gets TLS 1.3: no downgrade when both sides can do better."""
    assert tls_handshake(lab, lab.host.ports.https) == "TLSv1.3"


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=lambda version: version.name
)
@pytest.mark.parametrize("port_name", ["https", "grpc_tls"])
def test_legacy_tls_is_refused(lab: EdgeLab, port_name: str, version: ssl.TLSVersion) -> None:
    """TLS 1.0 and 1.1 have known attacks (BEAST, SHA-1 handshakes) and are retired (RFC 8996)."""
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        tls_handshake(lab, getattr(lab.host.ports, port_name), version)


def test_tls12_is_still_accepted_for_older_clients(lab: EdgeLab) -> None:
    """Mozilla intermediate keeps TLS 1.2 (with AEAD suites only) so older SDKs still connect."""
    assert tls_handshake(lab, lab.host.ports.https, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_ipv6_listeners_serve_the_same_tls_and_redirect(lab: EdgeLab) -> None:
    """An IPv6 client must meet the same server, not a default site left unhardened."""
    serial = certificate_on_disk(lab).serial
    for port in (lab.host.ports.https, lab.host.ports.grpc_tls):
        assert pki.certificate_info(served_certificate(lab, port, address="::1")).serial == serial
    redirect = curl(lab, Request("/", scheme="http", http_version="1.1", address="::1"))
    assert redirect.status == 301


@pytest.mark.skipif(
    importlib.util.find_spec("sslyze") is None, reason="sslyze is not installed (pip sslyze==6.3.1)"
)
def test_sslyze_finds_both_tls_ports_mozilla_intermediate_compliant(lab: EdgeLab) -> None:
    """An independent scanner agrees with our reading of Mozilla's guideline."""
    ports = (lab.host.ports.https, lab.host.ports.grpc_tls)
    targets = [f"{lab.domain}:{port}{{127.0.0.1}}" for port in ports]
    scan = subprocess.run(
        [
            sys.executable, "-m", "sslyze", "--mozilla_config=intermediate",
            "--certinfo_ca_file", str(lab.client_ca), *targets,
        ],
        capture_output=True, text=True, env=clean_env(), timeout=120, check=False,
    )  # fmt: skip
    assert scan.returncode == 0, scan.stdout[-3000:]
    assert scan.stdout.count("OK - Compliant") == 2, scan.stdout[-3000:]


# --------------------------------------------------------------------------- JWT through the edge


def test_read_only_token_reads_its_collection(lab: EdgeLab) -> None:
    """A scoped token works through the proxy exactly as against Qdrant."""
    token = collection_token(lab, COLLECTION, "r")
    assert send(lab, f"/collections/{COLLECTION}", headers=key(token)).status == 200


def test_read_only_token_cannot_write(lab: EdgeLab) -> None:
    """A leaked dashboard token must not be able to change data."""
    token = collection_token(lab, COLLECTION, "r")
    assert write_points(lab, COLLECTION, token).status == 403


def test_collection_token_writes_its_collection(lab: EdgeLab) -> None:
    """A read-write token does its job: the scope is not stricter than configured."""
    token = collection_token(lab, COLLECTION, "rw")
    assert write_points(lab, COLLECTION, token).status == 200


def test_collection_token_is_refused_on_another_collection(lab: EdgeLab) -> None:
    """A token for one collection is no key to the others."""
    token = collection_token(lab, COLLECTION, "rw")
    assert write_points(lab, OTHER_COLLECTION, token).status == 403


# --------------------------------------------------------------------------- rate limits


def test_rest_serves_a_burst_then_answers_429(lab: EdgeLab) -> None:
    """A flood from one address is cut off after the burst instead of queuing onto Qdrant."""
    limits = lab.host.limits
    request = Request("/collections", headers=key(lab.api_key), source=fresh_source_address())
    statuses, elapsed = timed_statuses(lab, request, 30)
    assert_burst_then_429(statuses, limits.rest_burst, elapsed, limits.rate_limit_rps)


def test_grpc_has_its_own_bigger_burst(lab: EdgeLab) -> None:
    """Services fan out in bursts: gRPC gets more headroom, then the same 429."""
    limits = lab.host.limits
    request = grpc_request(lab, "/qdrant.Collections/List", lab.api_key)
    statuses, elapsed = timed_statuses(lab, request, limits.grpc_burst + 20)
    assert limits.grpc_burst > limits.rest_burst
    assert_burst_then_429(statuses, limits.grpc_burst, elapsed, limits.rate_limit_rps)


def test_rest_and_grpc_draw_on_one_budget(lab: EdgeLab) -> None:
    """Switching protocol must not buy a second burst: REST's excess counts against gRPC."""
    limits = lab.host.limits
    grpc_call = grpc_request(lab, "/qdrant.Collections/List", lab.api_key)
    rest = Request("/collections", headers=key(lab.api_key), source=grpc_call.source)
    started = time.monotonic()
    curl_statuses(lab, rest, limits.rest_burst + 1)
    statuses = curl_statuses(lab, grpc_call, limits.grpc_burst + 1)
    refilled = math.ceil((time.monotonic() - started) * limits.rate_limit_rps)
    assert statuses.count(200) <= limits.grpc_burst - limits.rest_burst + refilled, statuses


def test_rate_limited_grpc_client_sees_unavailable(lab: EdgeLab) -> None:
    """What an application sees when throttled: nginx's 429 arrives as UNAVAILABLE, which gRPC
    clients retry with backoff. (Over ::1: this test empties that address's budget.)"""
    outcomes = []
    with closing(qdrant_client(lab, lab.api_key, address="::1")) as client:
        for _ in range(lab.host.limits.grpc_burst + 10):
            try:
                client.get_collections()
                outcomes.append((grpc.StatusCode.OK, ""))
            except grpc.RpcError as error:
                outcomes.append((error.code(), error.details()))
    assert outcomes[0][0] == grpc.StatusCode.OK
    code, details = outcomes[-1]
    assert code == grpc.StatusCode.UNAVAILABLE and "429" in details, outcomes


# --------------------------------------------------------------------------- gRPC through the edge


def test_qdrant_client_reaches_qdrant_over_grpc_tls_with_the_key(lab: EdgeLab) -> None:
    """The documented client setup (prefer_grpc, https, private CA) works end to end."""
    with closing(qdrant_client(lab, lab.api_key)) as client:
        collections = client.get_collections().collections
    assert {c.name for c in collections} >= {COLLECTION, OTHER_COLLECTION}


def test_qdrant_client_without_a_key_is_refused(lab: EdgeLab) -> None:
    """gRPC is no side door: without a credential Qdrant refuses it behind the edge too."""
    with closing(qdrant_client(lab, None)) as client, pytest.raises(grpc.RpcError) as refused:
        client.get_collections()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_bearer_token_reaches_qdrant(lab: EdgeLab) -> None:
    """`authorization` metadata passes through grpc_pass as it does through proxy_pass."""
    metadata = [("authorization", f"Bearer {lab.api_key}")]
    with grpc_channel(lab) as channel:
        stub = qdrant_grpc.CollectionsStub(channel)
        listed = stub.List(qdrant_grpc.ListCollectionsRequest(), metadata=metadata)
    assert {c.name for c in listed.collections} >= {COLLECTION}


def test_grpc_storage_read_is_refused_at_the_edge(lab: EdgeLab) -> None:
    """Raw shard reads stay internal: even the master key gets PERMISSION_DENIED from nginx,
    while Qdrant itself (the double, dialled directly) would have answered."""
    method, metadata = "/qdrant.StorageRead/ReadShard", [("api-key", lab.api_key)]
    with grpc.insecure_channel(lab.qdrant.grpc_target) as direct:
        assert direct.unary_unary(method)(b"", metadata=metadata) == b""
    with grpc_channel(lab) as channel, pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(method)(b"", metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("path", "claim"),
    [
        ("/qdrant.StorageRead/ReadShard", r"StorageRead`[^.]*?\) gets ([A-Z_]+)"),
        (
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            r"reflection[^.]*?\) gets ([A-Z_]+)",
        ),
    ],
    ids=["storage-read", "reflection"],
)
def test_the_security_model_says_what_a_refused_grpc_call_gets(
    lab: EdgeLab, path: str, claim: str
) -> None:
    """A user learns from the security model what a refused call looks like, and what to do
    instead (a reflection-based tool needs Qdrant's protos). It said UNIMPLEMENTED for
    StorageRead, which gets PERMISSION_DENIED."""
    with grpc_channel(lab) as channel, pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(path)(b"", metadata=[("api-key", lab.api_key)])
    [status] = stated(claim, SECURITY_MODEL)
    assert refused.value.code().name == status


@pytest.mark.parametrize(
    "path",
    [
        "/qdrant%2EStorageRead/ReadShard",
        "//qdrant.StorageRead/ReadShard",
        "/qdrant.StorageRead%2FReadShard",
    ],
)
def test_grpc_storage_read_is_refused_however_its_path_is_spelled(lab: EdgeLab, path: str) -> None:
    """nginx matches the decoded, merged path: encodings and doubled slashes do not slip past."""
    assert curl(lab, grpc_request(lab, path, lab.api_key)).status == 403


# --------------------------------------------------------------------------- logs


def test_rejections_are_logged_in_a_format_fail2ban_can_match(lab: EdgeLab) -> None:
    """Banning brute-forcers needs the client address next to the refusal: REST 401, any 429,
    and gRPC's UNAUTHENTICATED, which travels inside an HTTP 200."""
    rest_client, grpc_client = fresh_source_address(), fresh_source_address()
    curl(lab, Request("/collections", source=rest_client))
    curl_statuses(
        lab,
        Request("/collections", headers=key(lab.api_key), source=rest_client),
        lab.host.limits.rest_burst + 2,
    )
    curl(lab, grpc_request(lab, "/qdrant.Collections/List", source=grpc_client))
    expected = (
        (rest_client, "401 "),
        (rest_client, "429 "),
        (grpc_client, r"200 .* grpc_status=16 "),
    )

    def pattern(client: str, outcome: str) -> str:
        return rf'^{re.escape(client)} - - \[[^\]]*\] "[^"]*" {outcome}'

    def complete(log: str) -> bool:
        return all(re.search(pattern(client, outcome), log, re.M) for client, outcome in expected)

    log = flushed_access_log(lab, complete)

    def lines(client: str, outcome: str) -> list[str]:
        return re.findall(pattern(client, outcome), log, re.M)

    assert lines(rest_client, "401 "), "REST 401 not logged"
    assert lines(rest_client, "429 "), "429 not logged"
    assert lines(grpc_client, r"200 .* grpc_status=16 "), "gRPC UNAUTHENTICATED not logged"


# --------------------------------------------------------------------------- renewal


def test_renewal_replaces_the_certificate_and_the_deploy_hook_reloads_nginx(lab: EdgeLab) -> None:
    """Certificates last 90 days: renewal must reach the running nginx with nobody restarting it."""
    before = certificate_on_disk(lab)
    lab.renew_certificate()
    after = certificate_on_disk(lab)
    assert after.serial != before.serial and after.not_after >= before.not_after

    def served_serial() -> str:
        return pki.certificate_info(served_certificate(lab, lab.host.ports.https)).serial

    wait_until(lambda: served_serial() == after.serial, "nginx to serve the renewed certificate")


def fail2ban_matches(log: Path, filter_file: Path, source: str) -> int:
    """How many of `log`'s lines from `source` the filter counts against it."""
    require_tools("fail2ban-regex")
    lines = [line for line in log.read_text().splitlines() if source in line]
    assert lines, f"nginx logged nothing from {source} in {log}"
    matched = subprocess.run(
        ["fail2ban-regex", "--print-all-matched", "\n".join(lines), str(filter_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", matched)
    assert counts, matched
    return int(counts.group(1))


def test_fail2ban_counts_the_labs_own_401_and_429_lines(lab: EdgeLab) -> None:
    """The jails read what this nginx really writes: a key-guessing client's 401s and a flooding
    client's rate-limit rejections both count against its address."""
    logs = Path(lab.host.paths.nginx_log_dir)
    guesser, flooder = fresh_source_address(), fresh_source_address()
    for _ in range(3):
        assert (
            curl(lab, Request("/collections", headers=key("guess"), source=guesser)).status == 401
        )
    statuses = curl_statuses(
        lab, Request("/collections", headers=key(lab.api_key), source=flooder), 30
    )
    assert 429 in statuses

    flushed_access_log(lab, lambda log: len(re.findall(rf"^{re.escape(guesser)} ", log, re.M)) >= 3)
    auth_filter = REPOSITORY / "cloud-init" / "fail2ban" / "filter.d" / "secure-qdrant-auth.conf"
    assert fail2ban_matches(logs / ACCESS_LOG_NAME, auth_filter, guesser) == 3
    rate_filter = Path("/etc/fail2ban/filter.d/nginx-limit-req.conf")
    if not rate_filter.exists():
        pytest.skip("fail2ban's bundled filters are not installed")
    assert fail2ban_matches(logs / ERROR_LOG_NAME, rate_filter, flooder) == statuses.count(429)
