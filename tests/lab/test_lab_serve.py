"""`python -m lab --serve`, as someone trying secure-qdrant without AWS meets it: run as a command,
read from what it prints, reached with curl and qdrant-client the way it says, stopped with a
signal. Needs root, like the lab; skips, saying why, without it.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lab.demo import DEMO_TOKENS
from lab.processes import clean_env, wait_until
from lab.serve_guide import PYTHON_HEADING, READY_LINE
from tests.readme import python_block

REPO = Path(__file__).resolve().parent.parent.parent
STARTUP_SECONDS = 240
STOP_SECONDS = 60
UNKNOWN_HOST = "unknown.example"


@dataclass(frozen=True)
class Credential:
    label: str
    path: Path
    scope: str


@dataclass(frozen=True)
class Served:
    """A running `python -m lab --serve` and what it printed up to its ready line."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def blocks(self) -> dict[str, list[str]]:
        """The printed guide's paragraphs, by their first line."""
        guide = self.stdout.read_text().split("\nREST:", 1)[1]
        paragraphs = [p.splitlines() for p in f"REST:{guide}".split("\n\n")]
        return {lines[0]: lines[1:] for lines in paragraphs if lines}

    def endpoint(self, name: str) -> str:
        found = re.search(rf"^{name}: +(\S+)", self.stdout.read_text(), re.MULTILINE)
        assert found, f"no {name} line in the output"
        return found.group(1)

    @property
    def rest_url(self) -> str:
        return self.endpoint("REST")

    @property
    def domain(self) -> str:
        return str(urlsplit(self.rest_url).hostname)

    @property
    def ca(self) -> Path:
        return Path(self.endpoint("CA"))

    @property
    def workdir(self) -> Path:
        return self.ca.parent

    def port(self, name: str) -> int:
        return int(self.endpoint(name).rsplit(":", 1)[1])

    def credentials(self) -> list[Credential]:
        [lines] = [v for k, v in self.blocks().items() if k.startswith("Credentials")]
        rows = [re.fullmatch(r"  (.+?) +(/\S+)  (.+)", line) for line in lines]
        assert all(rows), lines
        return [Credential(r[1], Path(r[2]), r[3]) for r in rows if r]


def launch(scratch: Path) -> Served:
    """The command started as a user starts it, its output going to files in `scratch`."""
    stdout, stderr = scratch / "stdout", scratch / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab", "--serve"],
            cwd=REPO,
            env=clean_env(),
            stdout=out,
            stderr=err,
        )
    return Served(process, stdout, stderr)


def start_serving(scratch: Path) -> Served:
    """The lab, up: its ready line printed."""
    served = launch(scratch)
    deadline = time.monotonic() + STARTUP_SECONDS
    while READY_LINE not in served.stdout.read_text():
        if served.process.poll() is not None:
            if "lab unavailable" in served.output():
                pytest.skip(served.output().strip())
            pytest.fail(f"the lab exited {served.process.returncode}:\n{served.output()}")
        if time.monotonic() > deadline:
            stop(served, signal.SIGTERM)
            pytest.fail(f"no ready line after {STARTUP_SECONDS}s:\n{served.output()}")
        time.sleep(0.2)
    return served


def stop(served: Served, signum: signal.Signals) -> int:
    served.process.send_signal(signum)
    try:
        return served.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
        raise


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = start_serving(tmp_path_factory.mktemp("serve"))
    try:
        yield running
    finally:
        stop(running, signal.SIGTERM)


# What a lab started: its descendants, each identified with its start time, since a PID is reused.
Process = tuple[int, int]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time) of a live process, None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def descendants(root: int) -> set[Process]:
    parents: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents.setdefault(found[0], []).append((int(entry.name), found[1]))
    found_all: set[Process] = set()
    frontier = [root]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found_all.update(children)
        frontier.extend(pid for pid, _ in children)
    return found_all


def alive(processes: set[Process]) -> set[Process]:
    return {(pid, start) for pid, start in processes if (_stat(pid) or (0, -1))[1] == start}


def left_running(processes: set[Process], seconds: float = 5) -> set[Process]:
    """Those of `processes` still alive after `seconds`: killed workers take a moment to go."""
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(processes)


def named(processes: set[Process], name: str) -> bool:
    """Whether one of `processes` runs the program `name` (its comm)."""
    for pid, _ in alive(processes):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                return True
        except FileNotFoundError:
            pass  # gone since alive() looked
    return False


def command_lines_naming(path: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(path)], capture_output=True, text=True, check=False)
    return found.stdout.splitlines()


def loop_devices_of(path: Path) -> list[str]:
    devices = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True)
    return [line for line in devices.stdout.splitlines() if str(path) in line]


def run_curl(*arguments: str, stdin: str = "") -> tuple[int, dict[str, str], str]:
    """curl as a user's shell runs it (none of this machine's preset CA bundles): status,
    headers (lower-case names, last value), body. A credential goes in as `--header @-`, never as
    an argument that any process on the machine could read."""
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body"
        done = subprocess.run(
            ["curl", "--silent", "--show-error", "--output", str(body),
             "--write-out", "%{http_code}\\n%{header_json}", *arguments],
            input=stdin,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )  # fmt: skip
        status, headers = done.stdout.split("\n", 1)
        received = {name.lower(): values[-1] for name, values in json.loads(headers).items()}
        return int(status), received, body.read_text(errors="replace")


def test_serve_prints_the_rest_grpc_and_http_endpoints_on_a_name_that_resolves_here(served):
    """`localhost` reaches loopback on any machine without editing /etc/hosts: the name the edge's
    certificate carries is the name a client dials."""
    assert re.fullmatch(r"https://localhost:\d+", served.rest_url)
    assert re.fullmatch(r"localhost:\d+", served.endpoint("gRPC"))
    assert re.fullmatch(r"http://localhost:\d+", served.endpoint("HTTP"))
    assert len({served.port(name) for name in ("REST", "gRPC", "HTTP")}) == 3


def test_serve_prints_the_ca_file_the_edge_certificate_chains_to(served):
    status, _, _ = run_curl("--cacert", str(served.ca), f"{served.rest_url}/healthz")

    assert status == 200


def test_serve_lists_a_file_for_the_keys_and_for_each_demo_token_with_its_scope(served):
    listed = {credential.label: credential for credential in served.credentials()}

    assert set(listed) == {"master key", "read-only key"} | {f"token {t.name}" for t in DEMO_TOKENS}
    assert all(
        credential.path.parent == served.workdir / "credentials" for credential in listed.values()
    )
    assert (
        listed["token search-api"].scope
        == '{"access": [{"collection": "products", "access": "r"}], "subject": "search-api"}'
    )


def test_credential_files_are_owner_only(served):
    """Anyone else on the machine could otherwise read a master key."""
    credentials = served.credentials()
    directory = credentials[0].path.parent

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for credential in credentials:
        assert stat.S_IMODE(credential.path.stat().st_mode) == 0o600, credential.label
        assert credential.path.stat().st_uid == os.geteuid()


def test_each_token_file_carries_the_scope_printed_beside_it(served):
    for credential in served.credentials():
        if credential.label.startswith("token "):
            payload = credential.path.read_text().split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            assert claims == json.loads(credential.scope), credential.label


def test_each_credential_file_authenticates_through_the_edge(served):
    """Only what Qdrant accepts lists collections: the same request without a credential is 401."""
    url = f"{served.rest_url}/collections"
    anonymous, _, _ = run_curl("--cacert", str(served.ca), url)
    assert anonymous == 401

    for credential in served.credentials():
        header = f"api-key: {credential.path.read_text()}"
        status, _, _ = run_curl("--cacert", str(served.ca), "--header", "@-", url, stdin=header)
        assert status == 200, credential.label


def test_no_secret_appears_on_stdout_or_stderr(served):
    output = served.output()

    for credential in served.credentials():
        assert credential.path.read_text() not in output, credential.label


def as_pasted(*command: str) -> subprocess.CompletedProcess[str]:
    """`command` run as on a user's machine: without this machine's preset CA bundles."""
    return subprocess.run(
        list(command), env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )


def test_printed_curl_commands_work_as_pasted(served):
    commands = served.blocks()["curl:"]
    assert len(commands) == 2

    for command in commands:
        done = as_pasted("bash", "-c", command)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "ok", command


def test_printed_python_reaches_qdrant_over_grpc_and_rest_with_qdrant_client(served):
    """The README's client example with only host, ports and the lab's CA changed."""
    snippet = "\n".join(served.blocks()[PYTHON_HEADING])
    assert "prefer_grpc=True" in snippet

    done = as_pasted(sys.executable, "-c", snippet)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "collections=[CollectionDescription(name='products')] count=0"


def client_calls(source: str) -> dict[str, dict[str | None, str]]:
    """Each `name = QdrantClient(...)` in `source`: its keyword arguments (None for `**x`), as
    written."""
    calls = {}
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "QdrantClient"
        ):
            [target] = node.targets
            calls[ast.unparse(target)] = {k.arg: ast.unparse(k.value) for k in node.value.keywords}
    return calls


def test_printed_clients_are_the_readmes_with_only_host_ports_and_ca_changed(served):
    """What works in the lab is what the README tells an application to write."""
    readme = python_block("QdrantClient(")
    changed = {"port", "grpc_port", "grpc_options", None}

    def unchanged(source: str) -> dict[str, dict[str | None, str]]:
        calls = client_calls(source)
        return {
            name: {k: v for k, v in kw.items() if k not in changed} for name, kw in calls.items()
        }

    printed = "\n".join(served.blocks()[PYTHON_HEADING])
    assert unchanged(printed) == unchanged(readme)
    assert set(client_calls(printed)) == {"grpc", "rest"}


# One request per port whose answer nginx writes itself (a redirect, the refused web UI, a refused
# gRPC service): nginx's own pages are where server_tokens shows, in the header and in the body.
NGINX_ANSWERS = {
    "HTTP": ("http", "/", ()),
    "REST": ("https", "/dashboard", ()),
    "gRPC": ("https", "/qdrant.StorageRead/Read", ("--http2", "--request", "POST")),
}


@pytest.mark.parametrize("host", ["lab domain", "unknown host"])
@pytest.mark.parametrize("port", list(NGINX_ANSWERS))
def test_no_answer_shows_the_nginx_version(served, port, host):
    """A version tells an attacker which nginx CVEs apply; the VM shows none (its bootstrap
    removes the distro's default site, which answers unknown names on port 80)."""
    scheme, path, options = NGINX_ANSWERS[port]
    name = served.domain if host == "lab domain" else UNKNOWN_HOST
    url = f"{scheme}://{served.domain}:{served.port(port)}{path}"

    status, headers, body = run_curl(
        "--cacert", str(served.ca), "--header", f"Host: {name}", *options, url
    )

    assert status != 0
    assert headers.get("server") == "nginx", f"{status} Server: {headers.get('server')}"
    assert "nginx/" not in body


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_lab_process_and_removes_the_credentials(tmp_path, signum):
    """The lab holds a loop device, a mount namespace and a dozen servers: none may outlive it."""
    served = start_serving(tmp_path)
    started, workdir = descendants(served.process.pid), served.workdir
    assert named(started, "nginx") and loop_devices_of(workdir)

    assert stop(served, signum) == 0, served.output()
    assert left_running(started) == set()
    assert command_lines_naming(workdir) == []
    assert loop_devices_of(workdir) == []
    assert not workdir.exists()


def test_sigterm_while_the_lab_comes_up_stops_what_it_started(tmp_path):
    """A service manager or a test harness may stop the lab before it is ready."""
    coming_up = launch(tmp_path)
    wait_until(lambda: named(descendants(coming_up.process.pid), "pebble"), "pebble", 60)
    started = descendants(coming_up.process.pid)

    assert stop(coming_up, signal.SIGTERM) != 0
    assert left_running(started) == set()
