"""Every command's input, as a careless or hostile user types it: `verify`'s stack outputs (any
JSON, any text), `--stack` and its other options, `lab`'s and `bench`'s arguments. Whatever comes
in, the command either runs or exits 2 with one line naming what is wrong: never a traceback, which
buries the cause and, from `verify`, may quote the outputs it was reading (credentials).

And the report's redaction: it removes every credential that stands as a whole value and changes
nothing else, so evidence stays readable and a short credential cannot mangle ordinary words.
"""

from __future__ import annotations

import base64
import errno
import http.client
import io
import json
import os
import string
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import bench.bootstrap
import bench.edge
import lab.cli as lab_cli
import verify.cli as verify_cli
from model.gate_environment import OUTPUTS_VARIABLE
from verify.checks import HSTS_MIN_AGE, check_security_headers
from verify.client import Response
from verify.report import REDACTED, redact
from verify.result import Status

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Every other output verify reads, fuzzed with any JSON value.
OTHER_OUTPUT_KEYS = (
    "revokedTokens",
    "certificateNames",
    "acmeChallenge",
    "keyGraceEndsAt",
    "alertTopicArn",
    "dataVolumeId",
    "backupPolicyId",
)
# Outputs that get past the first checks often: the keys verify reads, with any JSON values, and
# some plausible ones so that the deeper checks (URL, ports, scopes) are reached too.
plausible = st.fixed_dictionaries(
    {},
    optional={
        "restUrl": st.sampled_from(["https://qdrant.example.com", "https://a.b:8443"])
        | json_values,
        "publicIp": st.sampled_from(["127.0.0.1", "::1", "localhost"]) | json_values,
        "apiKey": st.text(string.ascii_letters, min_size=1) | st.text(min_size=1) | json_values,
        "readOnlyApiKey": json_values,
        "tokens": st.dictionaries(
            st.text(max_size=5), st.text(max_size=5) | json_values, max_size=3
        ),
        "tokenScopes": st.dictionaries(
            st.text(max_size=5),
            st.fixed_dictionaries(
                {},
                optional={"access": json_values, "exp": json_values, "value_exists": json_values},
            )
            | json_values,
            max_size=3,
        ),
        "grpcPort": json_values,
        "instanceId": json_values,
        "adminCidrs": json_values,
        **{key: json_values for key in OTHER_OUTPUT_KEYS},
    },
)
BASE = {"restUrl": "https://a.example", "publicIp": "::1", "apiKey": "k"}
# A JWT whose claims part is JSON nested far deeper than Python's json reads.
DEEP_JWT = "x." + base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=") + ".y"
# More digits than Python's int() reads (4,300).
HUGE = "9" * 5000


def headers_of_every_credential(target: Any, rate_limit: bool) -> list[Any]:
    """Stands in for the network checks, doing what each of them does first: put a credential in a
    request header, which http.client builds (and refuses) before connecting."""
    for secret in target.secrets:
        request = http.client.HTTPConnection(target.address, target.https_port)
        request.putrequest("GET", "/")
        request.putheader("api-key", secret)
    return []


def run_verify(argv: Sequence[str], environ: dict[str, str]) -> tuple[int, str, str]:
    """`python -m verify` as a function, with the network checks replaced by none: what is tested
    here is everything before them."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.object(verify_cli, "endpoint_checks", headers_of_every_credential),
        redirect_stdout(stdout),
        redirect_stderr(stderr),
    ):
        try:
            status = verify_cli.main(["--no-aws", *argv], environ)
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
    return status, stdout.getvalue(), stderr.getvalue()


def assert_refused_in_one_line(status: int, stdout: str, stderr: str) -> None:
    assert status == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr


def assert_ran_or_refused(status: int, stdout: str, stderr: str) -> None:
    if status == 0:
        assert stdout.startswith("verify: passed") and stderr == ""
    else:
        assert_refused_in_one_line(status, stdout, stderr)


@given(json_values | plausible)
@settings(max_examples=400, deadline=None)
@example({**BASE, "apiKey": "k\r\nX-Injected: 1"})
@example({**BASE, "apiKey": "ключ"})
@example({**BASE, "readOnlyApiKey": "k\n"})
@example({**BASE, "tokens": {"t": "a.b\r\nc"}})
@example({**BASE, "tokens": {"t": DEEP_JWT}})
@example({**BASE, "restUrl": "https://a.example:0"})
def test_any_outputs_json_runs_or_exits_2_in_one_line(outputs: Any):
    assert_ran_or_refused(*run_verify([], {OUTPUTS_VARIABLE: json.dumps(outputs)}))


@given(st.text())
@settings(max_examples=200, deadline=None)
@example(json.dumps(BASE)[:-1] + f', "grpcPort": {HUGE}}}')
@example(json.dumps(BASE)[:-1] + f', "unread": -{HUGE}}}')
def test_any_outputs_text_runs_or_exits_2_in_one_line(text: str):
    assert_ran_or_refused(*run_verify([], {OUTPUTS_VARIABLE: text}))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[1,2]", "not a list"),
        ("", "is empty"),
        ("  \n", "is empty"),
        ("nope", "is not JSON"),
        ("[" * 100_000, "nested too deeply"),
        ('{"restUrl": "https://a.example", "publicIp": "1.2.3.4"}', "no apiKey"),
        ('{"restUrl": 7}', "restUrl should be a string, not a number"),
        ('{"restUrl": "https://a.example:99999"}', "Port out of range"),
        ('{"restUrl": "http://a.example"}', "not an https:// URL"),
        ('{"restUrl": "https://a.example", "publicIp": "a b", "apiKey": "k"}', "publicIp 'a b'"),
        (
            '{"restUrl": "https://a.example", "publicIp": "::1", "apiKey": "k", "tokens": []}',
            "tokens should be an object, not a list",
        ),
        (
            '{"restUrl": "https://a.example", "publicIp": "::1", "apiKey": "k", "grpcPort": 0}',
            "grpcPort 0 is not a TCP port",
        ),
        (
            '{"restUrl": "https://a.example", "publicIp": "::1", "apiKey": "k", "tokens": {"t": "j"},'
            ' "tokenScopes": {"t": {"access": "r", "exp": "tomorrow"}}}',
            "tokenScopes.t.exp should be a number, not a string",
        ),
    ],
)
def test_malformed_outputs_are_named_in_one_line(text: str, named: str):
    """Before: `[1,2]` died with a traceback (exit 1) and a non-JSON value said only "Expecting
    value: line 1 column 1 (char 0)", naming neither the variable nor what it should hold."""
    status, stdout, stderr = run_verify([], {OUTPUTS_VARIABLE: text})

    assert_refused_in_one_line(status, stdout, stderr)
    assert named in stderr
    assert stderr.startswith("verify: ")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (json.dumps(BASE)[:-1] + f', "grpcPort": {HUGE}}}', "grpcPort inf is not a TCP port"),
        (json.dumps({**BASE, "grpcPort": HUGE}), "is not a TCP port"),
        (
            '{"restUrl": "https://a.example", "publicIp": "::1", "apiKey": ' + HUGE + "}",
            "apiKey should be a string, not a number",
        ),
        (
            json.dumps({**BASE, "tokens": {"t": "j"}})[:-1]
            + f', "tokenScopes": {{"t": {{"access": "r", "exp": {HUGE}}}}}}}',
            "tokenScopes.t.exp inf is not a finite number",
        ),
        (
            json.dumps({**BASE, "tokens": {"t": DEEP_JWT}}),
            "tokens.t has a claims part nested too deeply",
        ),
        (
            json.dumps({**BASE, "apiKey": "k\r\nX-Injected: 1"}),
            "apiKey holds characters a request header",
        ),
        (json.dumps({**BASE, "apiKey": "ключ"}), "apiKey holds characters a request header"),
        (json.dumps({**BASE, "readOnlyApiKey": "k\n"}), "readOnlyApiKey holds characters"),
        (json.dumps({**BASE, "tokens": {"t": "a.b\nc"}}), "tokens.t holds characters"),
        (
            json.dumps({**BASE, "restUrl": "https://a.example:0"}),
            "restUrl 'https://a.example:0' has port 0",
        ),
    ],
    ids=[
        "5000-digit-port",
        "5000-digit-port-string",
        "5000-digit-api-key",
        "5000-digit-exp",
        "deeply-nested-claims",
        "api-key-with-crlf",
        "api-key-not-latin-1",
        "read-only-key-with-lf",
        "token-with-lf",
        "rest-url-port-0",
    ],
)
def test_outputs_verify_cannot_read_or_send_are_named_in_one_line(text: str, named: str):
    """Before: a traceback and exit 1 ("a check failed") for the first five, from json, the token's
    claims and http.client building the header; and port 0 was silently served on 443."""
    status, stdout, stderr = run_verify([], {OUTPUTS_VARIABLE: text})

    assert_refused_in_one_line(status, stdout, stderr)
    assert named in stderr
    assert "X-Injected" not in stderr and "ключ" not in stderr  # credentials are never printed


@pytest.fixture(scope="module")
def without_pulumi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A PATH with no pulumi on it, whatever this machine has: a developer's real CLI would be
    asked about hundreds of stack names."""
    with mock.patch.dict(os.environ, {"PATH": str(tmp_path_factory.mktemp("no-pulumi"))}):
        yield


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_any_stack_name_is_refused_in_one_line_when_pulumi_cannot_answer(
    without_pulumi: None, stack: str
):
    """Without the pulumi CLI, or with a name it would take for an option, every `--stack` ends
    in one line: never a FileNotFoundError traceback."""
    assume("\x00" not in stack)
    assert_refused_in_one_line(*run_verify([f"--stack={stack}"], {}))


def not_executable(directory: Path) -> str:
    (directory / "pulumi").write_text("#!/bin/sh\n")
    return str(directory)


def ending_in_a_file(directory: Path) -> str:
    (directory / "a-file").write_text("")
    return f"{directory}:{directory / 'a-file'}"


@pytest.mark.parametrize("path", [not_executable, ending_in_a_file])
def test_a_pulumi_that_cannot_be_started_is_one_line(tmp_path, monkeypatch, path):
    """Before: a PermissionError or NotADirectoryError traceback, which depended on the PATH of
    the machine the test ran on rather than on the name."""
    monkeypatch.setenv("PATH", path(tmp_path))

    status, stdout, stderr = run_verify(["--stack", "dev"], {})

    assert_refused_in_one_line(status, stdout, stderr)
    assert "pulumi could not be started" in stderr


def test_a_machine_out_of_processes_is_one_line():
    """Starting pulumi fails with EAGAIN when the machine is out of processes (a loaded machine):
    one line saying so, not a BlockingIOError traceback."""
    out_of_processes = BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
    with mock.patch.object(subprocess, "run", side_effect=out_of_processes):
        status, stdout, stderr = run_verify(["--stack", "dev"], {})

    assert_refused_in_one_line(status, stdout, stderr)
    assert os.strerror(errno.EAGAIN) in stderr


def fake_pulumi(directory: Path, script: str) -> None:
    pulumi = directory / "pulumi"
    pulumi.write_text(f"#!/bin/sh\n{script}\n")
    pulumi.chmod(0o755)


@pytest.mark.parametrize(
    ("script", "named"),
    [
        (
            'echo "warning: something" >&2; echo "error: no stack named \'dev\' found" >&2; exit 255',
            "error: no stack named 'dev' found",
        ),
        ("echo 'Current stack outputs (0):'", "pulumi's outputs of stack dev is not JSON"),
    ],
    ids=["pulumi-fails", "pulumi-prints-no-json"],
)
def test_what_pulumi_said_is_the_one_line(tmp_path, monkeypatch, script, named):
    """Before: "Command '[...]' returned non-zero exit status 255", not what pulumi said; and
    output that is not JSON was "Expecting value: line 1 column 1 (char 0)"."""
    fake_pulumi(tmp_path, script)
    monkeypatch.setenv("PATH", str(tmp_path))

    status, stdout, stderr = run_verify(["--stack", "dev"], {})

    assert_refused_in_one_line(status, stdout, stderr)
    assert named in stderr


def test_a_stack_name_that_looks_like_an_option_never_reaches_pulumi(tmp_path, monkeypatch):
    """`--stack=--help` must not become an option of `pulumi stack output`."""
    called = tmp_path / "called"
    fake_pulumi(tmp_path, f"touch {called}")
    monkeypatch.setenv("PATH", str(tmp_path))

    assert_refused_in_one_line(*run_verify(["--stack=--show-urns"], {}))
    assert not called.exists()


VALID_OUTPUTS = json.dumps(
    {"restUrl": "https://qdrant.example.com", "publicIp": "127.0.0.1", "apiKey": "k"}
)


@given(st.lists(st.text(max_size=12), max_size=4))
@settings(max_examples=300, deadline=None)
def test_any_verify_arguments_run_or_exit_2_in_one_line(argv: list[str]):
    """Options too (`--wait nan`, `--http-port 99999`, `--address 'a b'`, a missing `--ca-file`)."""
    assume(
        not any(
            arg.startswith("-h") or arg.startswith("--h") and "help".startswith(arg[2:])
            for arg in argv
            if arg.startswith("-")
        )
    )
    assert_ran_or_refused(*run_verify(argv, {OUTPUTS_VARIABLE: VALID_OUTPUTS}))


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--wait", "nan"], "'nan' is not a finite number"),
        (["--wait", "-3"], "'-3' is negative"),
        (["--http-port", "99999"], "not a TCP port"),
        (["--http-port", "\u0668\u0660"], "is not a whole number"),
        (["--http-port", " 80"], "is not a whole number"),
        (["--address", "a b"], "--address 'a b' is neither an IP address nor a host name"),
        (["--ca-file", "/nonexistent/ca.pem"], "--ca-file '/nonexistent/ca.pem' is not a file"),
        (["--region", "eu central"], "region_name 'eu central' doesn't match a supported format"),
    ],
)
def test_bad_verify_options_are_named_in_one_line(argv: list[str], named: str):
    status, stdout, stderr = run_verify(argv, {OUTPUTS_VARIABLE: VALID_OUTPUTS})

    assert_refused_in_one_line(status, stdout, stderr)
    assert named in stderr


def parse(parse_args: Any, argv: Sequence[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()):
        try:
            parse_args(argv)
        except SystemExit as exit:
            return int(exit.code or 0), stderr.getvalue()
    return 0, stderr.getvalue()


@given(st.lists(st.text(max_size=10), max_size=3))
@settings(max_examples=200, deadline=None)
def test_lab_takes_only_serve_and_refuses_anything_else_in_one_line(argv: list[str]):
    assume(not any(arg.startswith("-h") or arg.startswith("--h") for arg in argv))
    status, stderr = parse(lab_cli.parse_args, argv)

    if set(argv) <= {"--serve", "--s", "--se", "--ser", "--serv"} and "--" not in argv:
        assert status == 0
    else:
        assert status == 2 and len(stderr.splitlines()) == 1, stderr


@given(
    st.sampled_from(["--seconds", "--warmup", "--concurrency", "--workdir", "--json"]),
    st.text(max_size=10),
)
@settings(max_examples=300, deadline=None)
def test_bench_edge_options_are_valid_or_refused_in_one_line(option: str, value: str):
    status, stderr = parse(bench.edge.parse_args, [f"{option}={value}"])

    assert status in (0, 2)
    if status == 2:
        assert len(stderr.splitlines()) == 1, stderr


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--seconds", "0"], "'0' is not above 0"),
        (["--seconds", "inf"], "'inf' is not a finite number"),
        (["--warmup", "-1"], "'-1' is negative"),
        (["--concurrency", "2.5"], "'2.5' is not a whole number"),
        (["--json", "/nonexistent/figures.json"], "not a file in an existing directory"),
        (["--workdir", "/etc/hostname"], "exists and is not a directory"),
    ],
)
def test_bad_bench_edge_options_are_named_before_the_three_minute_run(argv, named):
    """Before: `--json` into a missing directory failed after the whole run, losing its figures;
    `--seconds -1` and `--concurrency 0` reached wrk."""
    status, stderr = parse(bench.edge.parse_args, argv)

    assert status == 2 and len(stderr.splitlines()) == 1
    assert named in stderr


def test_bench_bootstrap_refuses_arguments_it_does_not_take():
    """Before: ignored, so a typo ran the whole benchmark anyway."""
    status, stderr = parse(bench.bootstrap.main, ["--seconds", "1"])

    assert status == 2 and len(stderr.splitlines()) == 1
    assert "unrecognized arguments" in stderr


# Credentials as the program makes them (keys of letters and digits, JWTs of base64url segments)
# and shorter ones; ordinary words around them; separators that end a word.
credential = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20).filter(
    lambda value: value[0].isalnum() and value[-1].isalnum()
)
word = st.text(string.ascii_letters + string.digits + "_" + "éß", min_size=1, max_size=12)
separator = st.sampled_from(
    [" ", "\n", ": ", '"', "'", "=", "&", ",", "(", ")", "[", "]", "/", "; "]
)


@given(
    st.lists(credential, min_size=1, max_size=4, unique=True),
    st.lists(st.tuples(st.booleans(), word, separator), max_size=12),
)
@settings(max_examples=500, deadline=None)
def test_redaction_removes_every_credential_and_changes_nothing_else(
    credentials: list[str], pieces: list[tuple[bool, str, str]]
):
    """A text of ordinary words and credentials, each standing whole between separators: every
    credential becomes REDACTED, every other word and separator stays exactly as it was."""
    secret_set = set(credentials)
    assume(not any(text in secret_set for _, text, _ in pieces))
    chunks_in, chunks_out = [], []
    for index, (is_credential, text, sep) in enumerate(pieces):
        value = credentials[index % len(credentials)] if is_credential else text
        chunks_in.append(value + sep)
        chunks_out.append((REDACTED if is_credential else value) + sep)

    assert redact("".join(chunks_in), credentials) == "".join(chunks_out)


@given(st.text(), st.lists(st.text(), max_size=4))
@settings(max_examples=300, deadline=None)
def test_redaction_never_leaves_a_whole_credential(text: str, credentials: list[str]):
    """Whatever the text, a credential standing alone (spaces around it) never survives."""
    assume(all(c.strip() == c and c for c in credentials))
    spaced = " ".join([text, *credentials, text])
    redacted = f" {redact(spaced, credentials)} "

    for value in credentials:
        assert f" {value} " not in redacted or value in REDACTED


def test_a_short_credential_does_not_mangle_ordinary_words():
    """Before: substrings were replaced, so a one-letter key turned "does not answer" into
    "does not answe[redacted]"."""
    assert redact("does not answer r", ["r"]) == f"does not answer {REDACTED}"


@pytest.mark.parametrize(
    "echo",
    [
        "Authorization: Bearer {}",
        '{{"api-key":"{}"}}',
        "/collections?api-key={}&x=1",
        "key {}.",
        "{}",
    ],
)
def test_a_credential_echoed_by_a_server_is_redacted(echo: str):
    key = "Ab3" * 16
    assert redact(echo.format(key), [key]) == echo.format(REDACTED)


def reply_with_hsts(value: str) -> Response:
    headers = http.client.HTTPMessage()
    for name, header in (
        ("Strict-Transport-Security", value),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ):
        headers[name] = header
    return Response(status=200, headers=headers, body=b"")


@pytest.mark.parametrize(
    ("hsts", "status"),
    [
        (f"max-age={HUGE}", Status.PASS),
        (f"max-age=000{HSTS_MIN_AGE}", Status.PASS),
        (f"max-age={HSTS_MIN_AGE - 1}", Status.FAIL),
        (f"max-age={'0' * 5000}1", Status.FAIL),
    ],
)
def test_the_hsts_check_reads_any_max_age_the_server_sends(hsts: str, status: Status):
    """The endpoint under test writes the header: a number past Python's 4,300 digits must not
    stop the run with a traceback, nor leading zeros pass a short one."""
    with mock.patch("verify.checks.https_request", return_value=reply_with_hsts(hsts)):
        result = check_security_headers(mock.Mock(api_key="k"))

    assert result.status is status
