"""The README's qdrant-client example, run as an application runs it, against the lab's edge.

The block is taken from README.md (the ```python block holding `from qdrant_client import
QdrantClient`) and run verbatim, as its own Python process, with every credential the lab hands
out and every token of the example stack (`Pulumi.dev.yaml`), minted with the lab's master key.

Nothing in it is changed. The lab runs in a network namespace of its own (`lab.vm_ports`), where
nginx listens on the VM's ports, so the README's `port=443` and `grpc_port=6334` are what the
clients dial, and the snippet runs in that namespace. What the README leaves to the environment
comes from the environment, as it would in the app's container: `QDRANT_HOST` (the lab's domain,
`localhost`, which resolves to the namespace's loopback) and `QDRANT_TOKEN`, which the snippet
reads; and the lab's CA as the default trust store of both transports, through the variables the
libraries read for it: `SSL_CERT_FILE` (httpx, for REST and for the client's start-up version
check) and `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (gRPC). That is the least intrusive way: passing
`verify=` and `grpc_options=` would mean rewriting the README's calls.

The snippet prints the collections over gRPC and the count of `products` over REST; a credential
whose scope does not allow one of those calls makes it die there, with the refusal Qdrant gives.
Needs root (a network namespace, ports below 1024); skips, saying why, without it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.demo import DEMO_COLLECTION, DEMO_TOKENS, DEMO_VECTORS
from lab.processes import LabUnavailable, clean_env, run
from lab.vm_ports import VmPortsLab, vm_ports_lab
from model.tokens import mint_token, mint_tokens, token_claims
from tests.consumers.stack_files import EXAMPLE_STACK_FILE, deploy_stack_file
from tests.readme import python_block

CLIENT_EXAMPLE = python_block("from qdrant_client import QdrantClient")
PRODUCTS = [
    {"id": n, "vector": [0.1 * n, 0.2, 0.3, 0.4], "payload": {"sku": f"p-{n}"}} for n in (1, 2, 3)
]
# The example stack's tokens and their claims, as its `tokenScopes` output shows them.
STACK_SCOPES: Mapping[str, Any] = deploy_stack_file(EXAMPLE_STACK_FILE).outputs["tokenScopes"].value
ALLOWLIST = STACK_SCOPES["analytics"]["value_exists"]
EVERY_COLLECTION = frozenset({DEMO_COLLECTION, ALLOWLIST["collection"]})
# What the client library reports when Qdrant refuses the snippet's gRPC listing or REST count.
GRPC_FORBIDDEN = "status = StatusCode.PERMISSION_DENIED"
GRPC_UNAUTHENTICATED = "status = StatusCode.UNAUTHENTICATED"
REST_FORBIDDEN = "Unexpected Response: 403 (Forbidden)"


@dataclass(frozen=True)
class Served:
    """The snippet prints what the credential may list and the number of products."""

    collections: frozenset[str]


@dataclass(frozen=True)
class Refused:
    """The snippet dies on the first call the credential's scope does not allow."""

    error: str


def admin_request(lab: VmPortsLab, method: str, path: str, body: Any) -> None:
    """A request through the edge with the master key, as an operator sends one. The key goes in
    on stdin, never as an argument any process on the machine could read."""
    run(
        lab.command(
            "curl", "--silent", "--show-error", "--fail-with-body",
            "--cacert", str(lab.ca_file),
            "--header", "@-", "--header", "Content-Type: application/json",
            "--request", method, "--data", json.dumps(body),
            f"https://{lab.domain}{path}",
        ),
        stdin=f"api-key: {lab.api_key}".encode(),
    )  # fmt: skip


def allowlist_point() -> dict[str, Any]:
    """The point whose presence keeps the example stack's analytics token valid."""
    payload = {match["key"]: match["value"] for match in ALLOWLIST["matches"]}
    return {"id": 1, "vector": [0.4, 0.3, 0.2, 0.1], "payload": payload}


def upsert(lab: VmPortsLab, collection: str, points: list[dict[str, Any]]) -> None:
    admin_request(lab, "PUT", f"/collections/{collection}/points?wait=true", {"points": points})


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmPortsLab]:
    """The edge on the VM's ports, with the README's collection and the example stack's allowlist
    created and filled through it."""
    try:
        with vm_ports_lab(tmp_path_factory.mktemp("vm-ports")) as running:
            for collection in EVERY_COLLECTION:
                created = {"vectors": DEMO_VECTORS}
                admin_request(running, "PUT", f"/collections/{collection}", created)
            upsert(running, DEMO_COLLECTION, PRODUCTS)
            upsert(running, ALLOWLIST["collection"], [allowlist_point()])
            yield running
    except LabUnavailable as missing:
        pytest.skip(f"lab unavailable: {missing}")


def run_example(
    lab: VmPortsLab, credential: str, scratch: Path
) -> subprocess.CompletedProcess[str]:
    """The README's block as an app's process runs it: in the lab's namespace, configured only by
    its environment, and none of this machine's preset CA bundles."""
    return subprocess.run(
        lab.command(sys.executable, "-c", CLIENT_EXAMPLE),
        env=clean_env(
            QDRANT_HOST=lab.domain,
            QDRANT_TOKEN=credential,
            SSL_CERT_FILE=str(lab.ca_file),
            GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(lab.ca_file),
        ),
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_outcome(done: subprocess.CompletedProcess[str], expected: Served | Refused) -> None:
    if isinstance(expected, Refused):
        assert done.returncode != 0 and done.stdout == "", done.stdout
        assert expected.error in done.stderr, done.stderr
        return
    assert done.returncode == 0, done.stderr
    printed = re.fullmatch(r"collections=\[(.*)\] count=(\d+)\n", done.stdout)
    assert printed, done.stdout
    listed = re.findall(r"CollectionDescription\(name='([^']*)'\)", printed[1])
    assert sorted(listed) == sorted(expected.collections)
    assert int(printed[2]) == len(PRODUCTS)


def until_expiry(claims: Mapping[str, Any], served: Served) -> Served | Refused:
    """Qdrant refuses an expired token with 403 (ExpiredSignature), whatever its access."""
    expired = "exp" in claims and claims["exp"] < dt.datetime.now(dt.UTC).timestamp()
    return Refused(GRPC_FORBIDDEN) if expired else served


def demo_token(name: str) -> Callable[[VmPortsLab], str]:
    """A token `python -m lab --serve` hands out, minted as it mints them."""
    return lambda lab: mint_tokens(DEMO_TOKENS, lab.api_key)[name]


def stack_token(name: str) -> Callable[[VmPortsLab], str]:
    """The example stack's token, as `pulumi up` would mint it with the lab's master key."""
    return lambda lab: mint_token(STACK_SCOPES[name], lab.api_key)


ONLY_PRODUCTS = Served(frozenset({DEMO_COLLECTION}))
EVERYTHING = Served(EVERY_COLLECTION)
LAB_SCOPES = {spec.name: token_claims(spec) for spec in DEMO_TOKENS}
CREDENTIALS: dict[str, tuple[Callable[[VmPortsLab], str], Served | Refused]] = {
    "master key": (lambda lab: lab.api_key, EVERYTHING),
    "read-only key": (lambda lab: lab.read_only_api_key, EVERYTHING),
    "lab search-api (r on products)": (demo_token("search-api"), ONLY_PRODUCTS),
    "lab ingest-worker (rw on products)": (demo_token("ingest-worker"), ONLY_PRODUCTS),
    "lab analytics (global r)": (demo_token("analytics"), EVERYTHING),
    "stack search-api (r on products)": (stack_token("search-api"), ONLY_PRODUCTS),
    "stack ingest-worker (rw on products, expiresAt)": (
        stack_token("ingest-worker"),
        until_expiry(STACK_SCOPES["ingest-worker"], ONLY_PRODUCTS),
    ),
    "stack analytics (global r while its allowlist point exists)": (
        stack_token("analytics"),
        EVERYTHING,
    ),
    "a token reading only the allowlist": (
        lambda lab: mint_token(
            {"access": [{"collection": ALLOWLIST["collection"], "access": "r"}]}, lab.api_key
        ),
        Refused(REST_FORBIDDEN),
    ),
}


def test_the_lab_hands_out_the_tokens_whose_scopes_the_expectations_assume():
    """The expectations above read the demo tokens' names as scopes: a changed demo token must
    change them too."""
    assert LAB_SCOPES == {
        "search-api": {
            "access": [{"collection": DEMO_COLLECTION, "access": "r"}],
            "subject": "search-api",
        },
        "ingest-worker": {
            "access": [{"collection": DEMO_COLLECTION, "access": "rw"}],
            "subject": "ingest-worker",
        },
        "analytics": {"access": "r", "subject": "analytics"},
    }


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_readme_client_example_runs_as_the_credential_scope_says(lab, credential, tmp_path):
    """An app copies this block: with each credential it either lists what it may see (a
    collection token sees only its collections) and counts `products`, or stops on the call its
    scope does not allow, with Qdrant's refusal (403 on the count for a token without read on
    `products`)."""
    secret, expected = CREDENTIALS[credential]

    assert_outcome(run_example(lab, secret(lab), tmp_path), expected)


@pytest.fixture
def allowlist_point_deleted(lab: VmPortsLab) -> Iterator[None]:
    path = f"/collections/{ALLOWLIST['collection']}/points/delete?wait=true"
    admin_request(lab, "POST", path, {"points": [allowlist_point()["id"]]})
    try:
        yield
    finally:
        upsert(lab, ALLOWLIST["collection"], [allowlist_point()])


def test_readme_client_example_is_refused_once_the_analytics_allowlist_point_is_deleted(
    lab, allowlist_point_deleted, tmp_path
):
    """Deleting the point revokes that one token (the README's `valueExists`): Qdrant answers 401,
    so the app fails on its first call, over gRPC with UNAUTHENTICATED."""
    done = run_example(lab, stack_token("analytics")(lab), tmp_path)

    assert_outcome(done, Refused(GRPC_UNAUTHENTICATED))
