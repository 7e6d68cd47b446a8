"""`verify` against the real edge on loopback: all green on the correct stack, and each deliberate
misconfiguration caught by the check meant for it (and only by plausibly related ones).

Each fault gets a lab of its own (about four seconds): pebble, certbot, nginx and the Qdrant double,
with one thing broken the way an operator could break it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, redirect_stderr, redirect_stdout

import pytest

from lab.edge import EdgeLab, LabFaults, running_edge_lab
from lab.processes import LabUnavailable, free_port
from model.gate_environment import OUTPUTS_VARIABLE
from model.settings import AccessRule, Limits, TokenSpec, ValueExists, ValueMatch
from verify.checks import check_master_key, endpoint_checks, token_checks
from verify.cli import main as verify_main
from verify.report import as_json, table
from verify.result import CheckResult, Status
from verify.stack import wait_until_serving

USER_COLLECTION = "products"
TOKENS = (
    TokenSpec("search", (AccessRule(USER_COLLECTION, "r"),)),
    TokenSpec("ingest", (AccessRule(USER_COLLECTION, "rw"),)),
    TokenSpec("reader", "r"),
    TokenSpec("admin", "m"),
)


def start_lab(
    stack: ExitStack, faults: LabFaults = LabFaults(), limits: Limits = Limits()
) -> EdgeLab:
    try:
        lab = stack.enter_context(running_edge_lab(limits=limits, faults=faults))
    except LabUnavailable as missing:
        pytest.skip(f"loopback lab unavailable: {missing}")
    lab.qdrant.store.create(USER_COLLECTION)
    return lab


def run_verify(lab: EdgeLab) -> dict[str, CheckResult]:
    results = endpoint_checks(lab.verify_target(TOKENS), rate_limit=True)
    return {result.name: result for result in results}


def failing(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, result in results.items() if result.status is Status.FAIL}


@pytest.fixture(scope="module")
def healthy() -> Iterator[tuple[EdgeLab, dict[str, CheckResult]]]:
    with ExitStack() as stack:
        lab = start_lab(stack)
        yield lab, run_verify(lab)


def test_every_check_passes_on_the_correct_stack(healthy):
    _, results = healthy

    assert failing(results) == set(), table(list(results.values()), ())
    assert {r.status for r in results.values()} == {Status.PASS}
    assert {f"token:{t.name}" for t in TOKENS} <= set(results)


def test_user_collections_are_never_written_and_the_probe_is_removed(healthy):
    """The checks may only write to a collection of their own, and must leave nothing behind."""
    lab, _ = healthy

    assert lab.qdrant.store.names() == [USER_COLLECTION]
    assert lab.qdrant.store.info(USER_COLLECTION)["points_count"] == 0


def test_checks_wait_out_the_edges_rate_limit_instead_of_failing():
    """verify is a client like any other: under a tight rate limit its requests meet 429s, which
    must not be reported as the endpoint's answers (nor leave the probe collection behind)."""
    with ExitStack() as stack:
        lab = start_lab(stack, limits=Limits(rate_limit_rps=2, rest_burst=3, grpc_burst=3))

        results = run_verify(lab)

        assert failing(results) == set(), {n: results[n].detail for n in failing(results)}
        assert lab.qdrant.store.names() == [USER_COLLECTION]


def test_reports_never_contain_a_credential(healthy):
    lab, results = healthy
    target = lab.verify_target(TOKENS)

    for report in (
        table(list(results.values()), target.secrets),
        as_json(list(results.values()), target.secrets),
    ):
        for secret in target.secrets:
            assert secret not in report


def replacing(old: str, new: str, count: int = -1) -> Callable[[str], str]:
    """A site rewrite that fails loudly if it changes nothing: a no-op fault would prove nothing."""

    def rewrite(site: str) -> str:
        assert old in site, f"fault injection found no {old!r} to replace"
        return site.replace(old, new, count)

    return rewrite


def removing(pattern: str) -> Callable[[str], str]:
    def rewrite(site: str) -> str:
        changed, found = re.subn(pattern, "", site)
        assert found, f"fault injection found no {pattern!r} to remove"
        return changed

    return rewrite


def rest_upstream_on_ipv6_loopback(site: str) -> str:
    """Point nginx at a REST double that listens on ::1, which is also where `verify` connects."""
    changed, found = re.subn(
        r"(upstream secure_qdrant_rest \{\s*server )127\.0\.0\.1:", r"\1[::1]:", site
    )
    assert found
    return changed


def legacy_tls_enabled(site: str) -> str:
    """What enabling TLS 1.0 "for one old client" takes on OpenSSL 3: the versions and a lower
    security level for their ciphers."""
    site = replacing(
        "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;"
    )(site)
    return re.sub(r"ssl_ciphers [^;]*;", "ssl_ciphers DEFAULT:@SECLEVEL=0;", site)


FAULTS = {
    "http-served-without-redirect": (
        LabFaults(tls_site=replacing("return 301 https://", "return 200 https://")),
        {"http-redirect"},
    ),
    "hsts-missing": (
        LabFaults(tls_site=removing(r"add_header Strict-Transport-Security \"[^\"]*\" always;")),
        {"security-headers"},
    ),
    "security-headers-only-on-200": (
        LabFaults(tls_site=replacing(" always;", ";")),
        {"security-headers"},
    ),
    "tls-1.0-enabled": (
        LabFaults(tls_site=legacy_tls_enabled),
        {"tls-legacy-refused"},
    ),
    "server-tokens-on": (
        LabFaults(tls_site=replacing("server_tokens off;", "server_tokens on;")),
        # nginx then also signs its own 401 and 404 pages for `/` and `/dashboard`.
        {"server-version-hidden", "banner-hidden"},
    ),
    "proxy-strips-api-key": (
        LabFaults(
            tls_site=replacing("proxy_pass ", 'proxy_set_header api-key "";\n        proxy_pass ')
        ),
        {"master-key", "security-headers", "banner-hidden", *(f"token:{t.name}" for t in TOKENS)},
    ),
    "banner-served-to-anyone": (
        LabFaults(tls_site=removing(r"auth_request [^;]*;")),
        {"banner-hidden"},
    ),
    "backend-reachable-beyond-loopback": (
        LabFaults(qdrant_host="::1", tls_site=rest_upstream_on_ipv6_loopback),
        {"qdrant-ports-closed"},
    ),
    "backend-lets-read-only-write": (
        LabFaults(read_only_writes=True),
        {"token:reader"},
    ),
    "rate-limiting-removed": (
        LabFaults(tls_site=removing(r"limit_req zone=[^;]*;")),
        {"rate-limit"},
    ),
}


@pytest.mark.parametrize(("faults", "expected"), FAULTS.values(), ids=FAULTS.keys())
def test_verify_fails_on_the_check_that_should_catch_the_fault(faults, expected):
    with ExitStack() as stack:
        results = run_verify(start_lab(stack, faults))

    assert failing(results) and failing(results) <= expected, table(list(results.values()), ())
    assert failing(results) & expected


@pytest.mark.parametrize(
    "credential",
    ["not-the-master-key-0123456789abcdef", "read-only"],
    ids=["wrong-key", "read-only-key-as-master"],
)
def test_master_key_fails_unless_the_key_is_qdrants_signing_key(healthy, credential):
    """Any credential, or none, used to pass: `/` shows the version to anyone. A read-only key in
    the outputs' place is accepted but cannot sign tokens, so it is not the master key."""
    lab, _ = healthy
    key = lab.read_only_api_key if credential == "read-only" else credential
    target = dataclasses.replace(lab.verify_target(), api_key=key, address="127.0.0.1")

    result = check_master_key(target)

    assert result.status is Status.FAIL, result.detail
    assert "token signed with the key (Bearer) -> 40" in result.detail


def test_master_key_fails_when_the_proxy_strips_the_api_key_header():
    """The credential must reach Qdrant through the edge, not merely exist in the outputs."""
    stripping, _ = FAULTS["proxy-strips-api-key"]
    with ExitStack() as stack:
        result = check_master_key(start_lab(stack, stripping).verify_target())

    assert result.status is Status.FAIL
    assert "api-key header -> 401" in result.detail


def test_a_certificate_close_to_expiry_fails_only_the_certificate_check():
    """Renewal runs 30 days ahead; under 14 days left means renewal is broken."""
    with ExitStack() as stack:
        results = run_verify(start_lab(stack, LabFaults(certificate_validity_seconds=10 * 86400)))

    assert failing(results) == {"certificate"}
    assert (
        "in 9 days" in results["certificate"].detail
        or "in 10 days" in results["certificate"].detail
    )


def test_an_expired_certificate_fails_the_certificate_check():
    """Clients refuse an expired certificate, so every check over verified TLS fails with it."""
    with ExitStack() as stack:
        lab = start_lab(stack, LabFaults(certificate_validity_seconds=1))
        time.sleep(2)
        results = run_verify(lab)

    assert "certificate" in failing(results)
    assert "expired" in results["certificate"].detail
    for name in failing(results) - {"certificate", "grpc"}:
        assert "certificate" in results[name].detail, (name, results[name].detail)


def lab_outputs(lab: EdgeLab, **changes: object) -> dict[str, object]:
    """The lab described the way `pulumi stack output --json --show-secrets` describes a stack."""
    target = lab.verify_target(TOKENS)
    outputs = {
        "restUrl": f"https://{lab.domain}:{lab.host.ports.https}",
        "grpcHost": lab.domain,
        "grpcPort": lab.host.ports.grpc_tls,
        # Not ::1, whose rate-limit budget the module's first verify run spent.
        "publicIp": "127.0.0.1",
        "apiKey": lab.api_key,
        "readOnlyApiKey": lab.read_only_api_key,
        "tokens": {token.name: token.jwt for token in target.tokens},
        "tokenScopes": {token.name: dict(token.claims) for token in target.tokens},
    }
    return {**outputs, **changes}


def run_cli(lab: EdgeLab, outputs: dict[str, object], *arguments: str) -> tuple[int, str, str]:
    environ = {OUTPUTS_VARIABLE: json.dumps(outputs)}
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        status = verify_main(
            [
                "--ca-file",
                str(lab.client_ca),
                "--http-port",
                str(lab.host.ports.http),
                "--no-aws",
                *arguments,
            ],
            environ,
        )
    return status, stdout.getvalue(), stderr.getvalue()


def test_cli_reads_the_outputs_from_the_environment_and_exits_0_when_all_pass(healthy):
    lab, _ = healthy

    status, stdout, _ = run_cli(lab, lab_outputs(lab), "--json")

    report = json.loads(stdout)
    assert status == 0
    assert report["passed"] is True
    assert {check["name"] for check in report["checks"]} >= {"certificate", "grpc", "token:search"}
    for secret in lab.verify_target(TOKENS).secrets:
        assert secret not in stdout


def test_cli_exits_1_and_names_the_failing_check(healthy):
    """A wrong key in the outputs: the master-key check fails, and so does the exit status."""
    lab, _ = healthy

    # As long as a real key, so the failure is the key's, not its length's.
    wrong_key = "not-the-key-but-as-long-as-a-real-one-48-chars!"
    status, stdout, _ = run_cli(lab, lab_outputs(lab, apiKey=wrong_key))

    assert status == 1
    assert re.search(r"^FAIL  master-key ", stdout, re.MULTILINE)
    assert wrong_key not in stdout


def test_cli_exits_2_when_the_outputs_do_not_describe_a_deployment(healthy):
    lab, _ = healthy
    outputs = lab_outputs(lab)
    del outputs["apiKey"]

    status, stdout, stderr = run_cli(lab, outputs)

    assert status == 2
    assert "apiKey" in stderr and stdout == ""


def test_cli_refuses_to_run_without_outputs():
    """Secrets come from the stack or the environment; there is no flag to pass them."""
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        status = verify_main([], {})

    assert status == 2
    assert OUTPUTS_VARIABLE in stderr.getvalue()
    with pytest.raises(SystemExit):
        with redirect_stderr(io.StringIO()):
            verify_main(["--api-key", "k"], {})


def test_an_unreachable_endpoint_fails_every_check_under_its_own_name(healthy):
    """A report must name the same checks whether the endpoint answers or not, so that a gate or a
    dashboard keyed on check names sees the failure where the pass used to be."""
    lab, results = healthy
    nothing_listens = [free_port() for _ in range(4)]
    unreachable = dataclasses.replace(
        lab.verify_target(TOKENS),
        https_port=nothing_listens[0],
        grpc_port=nothing_listens[1],
        http_port=nothing_listens[2],
        closed_ports=(nothing_listens[3],),
    )

    down = {result.name: result for result in endpoint_checks(unreachable, rate_limit=True)}

    assert set(down) == set(results)
    assert failing(down) == set(down) - {"qdrant-ports-closed"}


# --------------------------------------------------------------------------- value_exists tokens

ALLOWLIST = "token-allowlist"


def allowlisted(name: str, collection: str = ALLOWLIST) -> TokenSpec:
    """The shipped example stack's `analytics` token: global read while its point exists."""
    return TokenSpec(name, "r", value_exists=ValueExists(collection, (ValueMatch("token", name),)))


VALUE_EXISTS_TOKENS = (
    allowlisted("no-collection-yet", collection="never-created"),
    allowlisted("no-point-yet"),
    allowlisted("allowed"),
)


@pytest.fixture(scope="module")
def value_exists_results() -> Iterator[dict[str, CheckResult]]:
    """The three states of a value_exists token, in a lab of their own with room in the rate limit
    for every request."""
    with ExitStack() as stack:
        lab = start_lab(stack, limits=Limits(rate_limit_rps=1000, rest_burst=1000))
        lab.qdrant.store.create(ALLOWLIST)
        lab.qdrant.store.upsert(ALLOWLIST, [(1, {"token": "allowed"})])
        results = token_checks(lab.verify_target(VALUE_EXISTS_TOKENS))
        yield {result.name: result for result in results}


def test_value_exists_token_whose_collection_is_missing_is_skipped_with_what_to_do(
    value_exists_results,
):
    """The example stack's first deploy: Qdrant refuses the token with 403 until `token-allowlist`
    exists. That is the token's design, not a broken scope, and must not fail the deploy gate."""
    result = value_exists_results["token:no-collection-yet"]

    assert result.status is Status.SKIP, result.detail
    assert "'never-created' does not exist" in result.detail
    assert "create the collection and a point with token='no-collection-yet'" in result.detail


def test_value_exists_token_without_its_point_is_skipped_as_revoked_or_not_yet_allowed(
    value_exists_results,
):
    result = value_exists_results["token:no-point-yet"]

    assert result.status is Status.SKIP, result.detail
    assert result.detail.startswith("revoked or not yet allowed")
    assert "token='no-point-yet'" in result.detail


def test_value_exists_token_with_its_point_is_checked_like_any_other(value_exists_results):
    result = value_exists_results["token:allowed"]

    assert result.status is Status.PASS, result.detail
    assert "write" in result.detail


def test_the_deploy_gates_wait_ends_only_once_the_host_takes_the_outputs_master_key(healthy):
    """After a rotation the gate runs as soon as the new keys are in SSM, and the host applies
    them within about a minute: checked at once, the new master key would get 401 and fail the
    deploy. The wait lasts until Qdrant takes the key the outputs hold."""
    lab, _ = healthy
    applied = lab.verify_target()
    not_yet_applied = dataclasses.replace(applied, api_key="rotated-but-not-applied-0123456789abc")

    assert wait_until_serving(applied, 5) is True
    assert wait_until_serving(not_yet_applied, 1) is False
