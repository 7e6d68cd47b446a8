"""Converges the host to its published configuration: converge.py SOURCE_ENV < DOCUMENT.

The loader (cloud-init/loader.py, from the user data) fetches the document every minute
(secure-qdrant-converge.timer) and at first boot, and runs this program, which the document itself
carries: the version already installed judges the next one. The document
(model/host_config.py) is every file the host runs from, bar the loader's. A run checks it,
compares it with the files on disk and with the last document it applied, validates what would change with the tools that will read it (nginx -t, fail2ban-client
--test) before writing anything, writes the changed files atomically and runs only the bootstrap
steps those changes need. A document that fails any check changes nothing: the host keeps serving
the last good one and says so (a log line, its status object, the state file the metrics
publisher turns into ConfigRejected). Every run also runs the bootstrap's `secrets` step, which
applies a key rotation.

Before the host is ready (first boot), the bootstrap's own unit builds it: a run only writes the
files and starts that unit. While that unit runs, a run writes nothing (restarting it could
interrupt dpkg); the next run after it ends applies the difference.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_SCHEMA = 1
_PERMISSIONS = re.compile(r"0[0-7]{3}")
# The bootstrap's steps, in its own order (cloud-init/bootstrap.sh STEPS).
STEPS = (
    "packages", "data_volume", "secrets", "qdrant", "nginx_http", "dns", "certificate", "renewal",
    "nginx_tls", "firewall", "fail2ban", "metrics", "qdrant_health", "ready",
)  # fmt: skip
# What a change of each settings.env key needs beyond rewriting the file, as steps; RESTART marks
# what Qdrant's container starts from. Keys every run reads afresh (waits, metrics) need nothing. A
# key not listed (a newer document) runs every step: unknown means "check it all".
RESTART = "restart-qdrant"
_ACTIONS = {
    "": "QDRANT_WAIT_SECONDS SECRETS_WAIT_SECONDS METRICS_NAMESPACE METRICS_HOST CONFIG_STATE_FILE "
    "AUDIT_DIR AUDIT_LOG_GROUP AUDIT_LOG_STREAM AUDIT_SHIPPER_STATE",
    "certificate": "ACME_EMAIL CERTBOT_WORK_DIR CERTBOT_LOGS_DIR",
    "certificate nginx_tls": "DOMAIN ACME_SERVER CERTIFICATE_NAMES CERTIFICATE CERTIFICATE_KEY",
    # DNS-01 needs certbot's Route 53 plugin, which the packages step installs.
    "packages certificate nginx_tls": "ACME_CHALLENGE",
    "qdrant qdrant_health " + RESTART: "QDRANT_IMAGE QDRANT_UNIT QDRANT_IMAGE_REST_PORT "
    "QDRANT_IMAGE_GRPC_PORT QDRANT_AUDIT_ENV",
    "data_volume": "QDRANT_LEGACY_UID DATA_VOLUME_SIZE_GB DATA_VOLUME_ID DATA_VOLUME_DEVICE FSTAB",
    "data_volume qdrant qdrant_health " + RESTART: "QDRANT_UID DATA_MOUNT QDRANT_STORAGE "
    "QDRANT_SNAPSHOTS",
    "data_volume certificate nginx_tls": "LETSENCRYPT_DIR LETSENCRYPT_LINK",
    "secrets": "AWS_REGION API_KEY_PARAMETER READ_ONLY_API_KEY_PARAMETER "
    "PREVIOUS_API_KEY_PARAMETER",
    "secrets qdrant qdrant_health " + RESTART: "SECRETS_DIR QDRANT_ENV_FILE",
    "nginx_http nginx_tls": "ACME_WEBROOT NGINX_ARGS NGINX_CONF_DIR NGINX_SITE NGINX_HTTP_SITE "
    "NGINX_TLS_SITE",
    "nginx_http nginx_tls fail2ban": "NGINX_ACCESS_LOG NGINX_ERROR_LOG NGINX_ADDRESS_ZONE",
    "nginx_http nginx_tls fail2ban firewall": "HTTP_PORT HTTPS_PORT GRPC_TLS_PORT",
    "nginx_http nginx_tls qdrant qdrant_health " + RESTART: "QDRANT_REST_PORT QDRANT_GRPC_PORT",
    "firewall": "SSH_PORT PUBLIC_PORTS ADMIN_CIDRS FIREWALL_RULES_FILE",
    "metrics": "METRICS_TIMER AUDIT_SHIPPER_TIMER",
    "ready": "READY_MARKER",
}
KEY_ACTIONS = {key: tuple(a.split()) for a, keys in _ACTIONS.items() for key in keys.split()}
# The settings.env keys this program itself reads; a document without one is rejected.
REQUIRED_KEYS = (
    "DATA_VOLUME_ID", "QDRANT_UNIT", "METRICS_TIMER", "NGINX_SITE", "NGINX_ARGS",
    "NGINX_TLS_SITE", "NGINX_HTTP_SITE",
)  # fmt: skip


class Rejected(Exception):
    """The document may not be applied; the message says why."""


class Superseded(Exception):
    """The document is another host's: its replacement's, on another data volume."""


@dataclass(frozen=True)
class Source:
    """The loader's settings (source.env, from the user data): where the document is and what
    this program may touch."""

    region: str
    bucket: str
    config_key: str
    status_key: str
    data_volume_id: str
    settings_file: str
    bootstrap: str
    converge: str
    unit_dir: str
    fail2ban_dir: str
    bootstrap_unit: str
    ready_marker: str
    state_file: str
    last_good: str
    managed_roots: tuple[str, ...]
    loader_files: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Source:
        env = read_env(text)
        return cls(
            region=env["AWS_REGION"],
            bucket=env["CONFIG_BUCKET"],
            config_key=env["CONFIG_KEY"],
            status_key=env["STATUS_KEY"],
            data_volume_id=env["DATA_VOLUME_ID"],
            settings_file=env["SETTINGS_FILE"],
            bootstrap=env["BOOTSTRAP"],
            converge=env["CONVERGE"],
            unit_dir=env["UNIT_DIR"],
            fail2ban_dir=env["FAIL2BAN_DIR"],
            bootstrap_unit=env["BOOTSTRAP_UNIT"],
            ready_marker=env["READY_MARKER"],
            state_file=env["CONVERGE_STATE"],
            last_good=env["LAST_GOOD"],
            managed_roots=tuple(env["MANAGED_ROOTS"].split()),
            loader_files=tuple(env["LOADER_FILES"].split()),
        )


def read_env(text: str) -> dict[str, str]:
    """A `KEY=shell-quoted value` file, as model/user_data.py renders it."""
    return dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines() if "=" in line)


@dataclass(frozen=True)
class File:
    path: str
    permissions: str
    content: str


@dataclass(frozen=True)
class Document:
    version: str
    files: dict[str, File]

    def settings(self, source: Source) -> dict[str, str]:
        return read_env(self.files[source.settings_file].content)


def digest(files: Iterable[File]) -> str:
    """The version of a set of files: model/host_config.py's `config_version`."""
    canonical = json.dumps(
        [[f.path, f.permissions, f.content] for f in sorted(files, key=lambda f: f.path)],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path.startswith(root.rstrip("/") + "/") for root in roots)


def parse_document(text: str, source: Source) -> Document:
    """The document, checked: its schema, its version against its files, and every path a
    file this program may write. Raises `Rejected`, or `Superseded` for another host's."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise Rejected(f"not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("schema") != CONFIG_SCHEMA:
        raise Rejected(f"unknown schema {raw.get('schema') if isinstance(raw, dict) else raw!r}")
    entries = raw.get("files")
    if not isinstance(entries, list):
        raise Rejected("no file list")
    files: dict[str, File] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"path", "permissions", "content"}:
            raise Rejected(f"malformed file entry {str(entry)[:80]!r}")
        file = File(entry["path"], entry["permissions"], entry["content"])
        if not all(isinstance(value, str) for value in (file.path, file.permissions, file.content)):
            raise Rejected(f"malformed file entry {file.path!r}")
        _check_path(file.path, source)
        if not _PERMISSIONS.fullmatch(file.permissions):
            raise Rejected(f"{file.path}: permissions {file.permissions!r} are not octal")
        if file.path in files:
            raise Rejected(f"{file.path} appears twice")
        files[file.path] = file
    if raw.get("version") != digest(files.values()):
        raise Rejected(f"version {raw.get('version')!r} is not the digest of its files")
    if source.settings_file not in files:
        raise Rejected(f"no {source.settings_file}")
    document = Document(raw["version"], files)
    try:
        settings = document.settings(source)
    except ValueError as error:
        raise Rejected(f"{source.settings_file}: {error}") from None
    missing = [key for key in REQUIRED_KEYS if key not in settings]
    if missing:
        raise Rejected(f"{source.settings_file} lacks {' '.join(missing)}")
    if settings["NGINX_TLS_SITE"] not in files:
        raise Rejected(f"no {settings['NGINX_TLS_SITE']}")
    # A restore publishes the replacement's document before the old host is gone: its volume is
    # not this host's to look for, nor is the document wrong (not a rejection).
    volume = settings["DATA_VOLUME_ID"]
    if volume != source.data_volume_id:
        raise Superseded(f"for the host on {volume}; this one mounts {source.data_volume_id}")
    return document


def _check_path(path: str, source: Source) -> None:
    if not path.startswith("/") or os.path.normpath(path) != path:
        raise Rejected(f"{path!r} is not an absolute, normalised path")
    if not _inside(path, source.managed_roots):
        raise Rejected(f"{path} is outside the managed directories")
    # The loader is the user data's: a document that replaced it could never be undone.
    if path in source.loader_files:
        raise Rejected(f"{path} belongs to the loader")


@dataclass(frozen=True)
class Plan:
    """What applying a change takes: bootstrap steps, and whether systemd re-reads its units and
    Qdrant restarts."""

    steps: frozenset[str] = frozenset()
    restart_qdrant: bool = False
    daemon_reload: bool = False

    def bootstrap_steps(self) -> list[str]:
        """The steps to run, `secrets` always (a key rotation is applied within the minute), in
        the bootstrap's order."""
        return [step for step in STEPS if step in self.steps | {"secrets"}]


def changed_keys(old: Mapping[str, str], new: Mapping[str, str]) -> frozenset[str]:
    return frozenset(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def plan(
    changed_paths: frozenset[str],
    keys: frozenset[str],
    source: Source,
    settings: Mapping[str, str],
) -> Plan:
    """The actions a change needs, from the paths that differ and the settings.env keys that
    differ (`settings` is the new settings.env). Pure."""
    actions: set[str] = set()
    for key in keys:
        actions.update(KEY_ACTIONS.get(key, STEPS))
    qdrant_unit = f"{source.unit_dir}/{settings['QDRANT_UNIT']}"
    for path in changed_paths:
        if path == qdrant_unit:
            actions.update(("qdrant", "qdrant_health", RESTART))
        elif path in _timers(source, settings):
            actions.add("metrics")
        elif path == settings["NGINX_TLS_SITE"]:
            actions.add("nginx_tls")
        elif path == settings["NGINX_HTTP_SITE"]:
            actions.add("nginx_http")
        elif _inside(path, (source.fail2ban_dir,)):
            actions.add("fail2ban")
    return Plan(
        steps=frozenset(actions - {RESTART}),
        restart_qdrant=RESTART in actions,
        daemon_reload=any(_inside(path, (source.unit_dir,)) for path in changed_paths),
    )


def _timers(source: Source, settings: Mapping[str, str]) -> tuple[str, ...]:
    """The timers the metrics step enables: the metrics publisher's and the audit shipper's."""
    return tuple(
        f"{source.unit_dir}/{settings[key]}"
        for key in ("METRICS_TIMER", "AUDIT_SHIPPER_TIMER")
        if key in settings
    )


def on_disk(path: str) -> File | None:
    try:
        with open(path, encoding="utf-8") as file:
            content = file.read()
        return File(path, f"0{os.stat(path).st_mode & 0o777:03o}", content)
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None


def differing(
    document: Document, previous: Document | None
) -> tuple[frozenset[str], frozenset[str]]:
    """(paths whose file on disk differs: to write; paths that differ from disk or from the last
    document applied: to act on). A change whose actions failed is acted on again."""
    drifted = frozenset(p for p, f in document.files.items() if on_disk(p) != f)
    if previous is None:
        return drifted, drifted
    applied = frozenset(p for p, f in document.files.items() if previous.files.get(p) != f)
    return drifted, drifted | applied


def log(message: str) -> None:
    print(f"secure-qdrant-converge: {message}", file=sys.stderr, flush=True)


def systemd_runs() -> bool:
    """sd_booted(3): whether systemd is the init system. A host without it (the loopback lab, a
    container) has no units to load or start."""
    return os.path.isdir("/run/systemd/system")


def systemctl(*arguments: str) -> None:
    if systemd_runs():
        subprocess.run(["systemctl", *arguments], check=True)


def stage(file: File) -> str:
    """`file` written whole beside its path, under a temporary name: what to rename over it."""
    directory = os.path.dirname(file.path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(file.path)}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(file.content)
            out.flush()
            os.fchmod(out.fileno(), int(file.permissions, 8))
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(staged)
        raise
    return staged


def write_atomically(*files: File) -> None:
    """Readers see the old file or the new one, never a part: every file is staged before any is
    renamed, so a failure while staging (a full disk) leaves every live file as it was."""
    staged: list[tuple[str, str]] = []
    try:
        for file in files:
            staged.append((stage(file), file.path))
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            if os.path.lexists(temporary):
                os.unlink(temporary)


def nginx_test(settings: Mapping[str, str], site: File) -> None:
    """`nginx -t` with `site` in place of the live site, in a mount namespace of its own: the
    live file never holds an untested site, not even for a moment."""
    if not shutil.which("nginx") or not os.path.exists(settings["NGINX_SITE"]):
        return
    with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8") as candidate:
        candidate.write(site.content)
        candidate.flush()
        os.chmod(candidate.name, 0o644)
        result = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                sys.executable,
                os.path.abspath(sys.argv[0]),
                "--nginx-test",
                candidate.name,
                settings["NGINX_SITE"],
                *settings["NGINX_ARGS"].split(),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise Rejected(f"nginx -t: {_last_lines(result.stderr)}")


def nginx_test_in_namespace(candidate: str, site: str, nginx_args: list[str]) -> int:
    subprocess.run(["mount", "--bind", candidate, site], check=True)
    return subprocess.run(["nginx", *nginx_args, "-t"], check=False).returncode


def fail2ban_test(document: Document, source: Source) -> None:
    """`fail2ban-client --test` on a copy of the fail2ban directory with the document's files."""
    if not shutil.which("fail2ban-client"):
        return
    with tempfile.TemporaryDirectory(prefix="secure-qdrant-fail2ban-") as scratch:
        copy = Path(scratch) / "fail2ban"
        shutil.copytree(source.fail2ban_dir, copy, symlinks=True)
        for path, file in document.files.items():
            if _inside(path, (source.fail2ban_dir,)):
                target = copy / os.path.relpath(path, source.fail2ban_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(file.content, encoding="utf-8")
        result = subprocess.run(
            ["fail2ban-client", "-c", str(copy), "--test"],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise Rejected(f"fail2ban-client --test: {_last_lines(result.stderr)}")


def _last_lines(text: str, count: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])


def validate(document: Document, source: Source, to_act_on: frozenset[str]) -> None:
    """The candidate through the tools that will read it: the live site (the TLS site once the
    host is ready) with nginx, the jails with fail2ban. Before the host is ready the bootstrap's
    own steps check each file as it installs it. This program's own next version must at least
    compile: the loader runs it from the next minute on."""
    program = document.files.get(source.converge)
    try:
        compile(program.content if program else "", source.converge, "exec")
    except SyntaxError as error:
        raise Rejected(f"{source.converge}: {error}") from None
    if not os.path.exists(source.ready_marker):
        return
    settings = document.settings(source)
    nginx_test(settings, document.files[settings["NGINX_TLS_SITE"]])
    if any(_inside(path, (source.fail2ban_dir,)) for path in to_act_on):
        fail2ban_test(document, source)


@dataclass
class State:
    """What this host serves, for the metrics publisher (`rejected` -> ConfigRejected) and the
    deploy gate (the status object)."""

    version: str | None
    rejected: str | None = None
    error: str | None = None
    superseded: bool = False
    """The document was its replacement's: the status key is that host's to report on."""

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = {"version": self.version, "error": self.error}
        if self.rejected is not None:
            report["rejected"] = self.rejected
        return report


def claimed_version(text: str) -> str | None:
    try:
        version = json.loads(text).get("version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def last_good(source: Source) -> Document | None:
    try:
        return parse_document(Path(source.last_good).read_text(encoding="utf-8"), source)
    except (FileNotFoundError, Rejected, Superseded):
        return None


def disk_settings(source: Source) -> dict[str, str]:
    try:
        return read_env(Path(source.settings_file).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        # Missing or mangled by hand: every key counts as changed.
        return {}


def unit_active(unit: str) -> bool:
    if not systemd_runs():
        return False
    return subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0


def hand_over(source: Source) -> None:
    """First boot: the bootstrap's unit, not running (a run never writes under it), builds the
    host from the files."""
    if not systemd_runs():
        log("no systemd: the bootstrap is left to whoever runs it")
        return
    systemctl("daemon-reload")
    systemctl("enable", source.bootstrap_unit)
    systemctl("start", "--no-block", source.bootstrap_unit)


def run_steps(source: Source, steps: list[str], restart_qdrant: bool) -> None:
    env = {**os.environ, "BOOTSTRAP_STEPS": " ".join(steps)}
    if restart_qdrant:
        env["RESTART_QDRANT"] = "1"
    restart = " (Qdrant restarts)" if restart_qdrant else ""
    log(f"running steps: {' '.join(steps)}{restart}")
    result = subprocess.run([source.bootstrap, source.settings_file], env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"steps {' '.join(steps)} failed (exit {result.returncode})")


def restarted_for(source: Source) -> str:
    """The file naming the version Qdrant last restarted for."""
    return os.path.join(os.path.dirname(source.state_file), "qdrant-restarted")


def run_plan(source: Source, actions: Plan, version: str | None) -> None:
    """The plan's steps. A failed step leaves the change to be planned again next minute: Qdrant
    restarts once per version (the steps up to its own run first, then it is recorded), not
    every minute until every other step passes."""
    steps = actions.bootstrap_steps()
    if actions.restart_qdrant and version is not None:
        marker = on_disk(restarted_for(source))
        if marker is None or marker.content != version:
            through_qdrant = steps[: steps.index("qdrant") + 1]
            run_steps(source, through_qdrant, restart_qdrant=True)
            write_atomically(File(restarted_for(source), "0600", version))
            steps = steps[len(through_qdrant) :]
    if steps:
        run_steps(source, steps, restart_qdrant=False)


def apply(document: Document, previous: Document | None, source: Source) -> Plan | None:
    """Writes what differs and returns what it needs, once validated; None before the host is
    ready (the bootstrap's unit takes over). Raises `Rejected` having written nothing, OSError
    having written nothing when staging failed."""
    to_write, to_act_on = differing(document, previous)
    old_settings = previous.settings(source) if previous else disk_settings(source)
    if to_act_on:
        validate(document, source, to_act_on)
    write_atomically(*(document.files[path] for path in sorted(to_write)))
    for path in sorted(to_write):
        log(f"wrote {path}")
    if not os.path.exists(source.ready_marker):
        hand_over(source)
        return None
    new_settings = document.settings(source)
    return plan(to_act_on, changed_keys(old_settings, new_settings), source, new_settings)


def record(document: Document, text: str, source: Source) -> None:
    write_atomically(File(source.last_good, "0600", text))
    log(f"serving config {document.version}")


def converge(source: Source, text: str | None, fetch_error: str) -> State:
    """One run on the fetched document (None: the loader could not fetch it, for
    `fetch_error`): never raises for a bad or missing document, which only changes the state."""
    previous = last_good(source)
    state = State(version=previous.version if previous else None)
    actions: Plan | None = Plan()
    applied: tuple[Document, str] | None = None
    # A boot's bootstrap run holds the lock and may be inside apt/dpkg: nothing is written under
    # it, nor is it restarted; the run after it ends applies the difference from the last good.
    bootstrap_running = unit_active(source.bootstrap_unit)
    if text is None:
        # Unreachable S3, no object yet, credentials not there yet: the host keeps serving and
        # the next minute's run fetches again.
        state.error = f"fetch failed: {fetch_error}"
        log(state.error)
    else:
        try:
            document = parse_document(text, source)
            if bootstrap_running:
                log(f"the bootstrap is running: config {document.version} waits for the next run")
                return state
            actions = apply(document, previous, source)
            applied = (document, text)
        except Superseded as reason:
            state.superseded = True
            log(f"config {claimed_version(text)} superseded: {reason}")
        except Rejected as rejection:
            state.rejected, state.error = claimed_version(text) or "unknown", str(rejection)
            log(f"config {state.rejected} rejected: {rejection}")
        except OSError as error:
            # The host's fault (a full disk), not the document's: retried next minute.
            state.error = f"config {claimed_version(text)} not written: {error}"
            log(state.error)
    if actions is not None and bootstrap_running:
        log("the bootstrap is running: steps wait for the next run")
        return state
    try:
        if actions is not None:
            if actions.daemon_reload:
                systemctl("daemon-reload")
            run_plan(source, actions, applied[0].version if applied else None)
        if applied is not None:
            record(*applied, source)
            state.version = applied[0].version
    except (RuntimeError, subprocess.CalledProcessError, OSError) as error:
        state.error = str(error)
        log(state.error)
    return state


def publish_state(state: State, source: Source, s3: Any) -> bool:
    local = json.dumps({**state.status(), "at": time.time()})
    write_atomically(File(source.state_file, "0644", local))
    if state.superseded:
        return True
    try:
        s3.put_object(
            Bucket=source.bucket,
            Key=source.status_key,
            Body=json.dumps(state.status()).encode(),
            ContentType="application/json",
        )
    except Exception as error:  # noqa: BLE001 (as in fetch)
        log(f"could not report the status: {error}")
        return False
    return True


def main(argv: list[str]) -> int:
    if argv[:1] == ["--nginx-test"] and len(argv) >= 3:
        return nginx_test_in_namespace(argv[1], argv[2], argv[3:])
    if len(argv) != 1:
        print("usage: converge.py SOURCE_ENV < DOCUMENT", file=sys.stderr)
        return 2
    import boto3  # the loader has installed it

    fetched = os.environ.get("FETCH_ERROR") is None
    text = sys.stdin.read() if fetched else None
    with open(argv[0], encoding="utf-8") as source_file:
        # One run at a time: the timer never overlaps itself, a run by hand might.
        fcntl.flock(source_file, fcntl.LOCK_EX)
        source = Source.parse(source_file.read())
        state = converge(source, text, os.environ.get("FETCH_ERROR", ""))
        reported = publish_state(state, source, boto3.client("s3", region_name=source.region))
    return 0 if reported and state.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
