"""The converge program's pure half (cloud-init/converge.py): which documents it accepts, and what
a change makes it do. Run on documents rendered from real settings, as `pulumi up` publishes them.

What it does on a host (nginx, fail2ban, the bootstrap's steps): tests/host/test_converge.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from model.host_config import config_source, host_config_document, render_host_config
from model.settings import HostSettings, Limits
from model.user_data import (
    CLOUD_INIT_DIR,
    render_settings_env,
    settings_env,
    settings_env_path,
    source_env,
)
from tests.host_programs import load_host_program

VOLUME_ID = "vol-0123456789abcdef0"
HOST = HostSettings(
    domain="qdrant.example.com",
    acme_email="ops@example.com",
    acme_server="https://acme-v02.api.letsencrypt.org/directory",
    qdrant_version="v1.18.3",
    limits=Limits(),
    admin_cidrs=("203.0.113.0/24",),
    region="eu-central-1",
    api_key_parameter="/secure-qdrant/dev/api-key",
    read_only_api_key_parameter="/secure-qdrant/dev/read-only-api-key",
    previous_api_key_parameter="/secure-qdrant/dev/previous-api-key",
    name="qdrant-dev",
)
SOURCE = config_source(HOST.region, "secure-qdrant-dev-config", HOST.name)


converge = load_host_program("converge.py", "converge")
LOADER = converge.Source.parse(render_settings_env(source_env(HOST, VOLUME_ID, SOURCE)))


def document(host: HostSettings = HOST, volume_id: str = VOLUME_ID) -> str:
    return host_config_document(render_host_config(host, volume_id))


def edited(change: Callable[[dict], None], reseal: bool = True) -> str:
    """The document with `change` applied to its parsed JSON, and its version made the digest of
    the changed files where they still have every field (`reseal`)."""
    raw = json.loads(document())
    change(raw)
    fields = {"path", "permissions", "content"}
    if reseal and all(set(f) == fields for f in raw["files"]):
        raw["version"] = converge.digest(converge.File(**f) for f in raw["files"])
    return json.dumps(raw)


def test_a_published_document_is_accepted_with_its_version() -> None:
    config = render_host_config(HOST, VOLUME_ID)

    accepted = converge.parse_document(document(), LOADER)

    assert accepted.version == config.version
    assert set(accepted.files) == {f.path for f in config.files}


def test_the_version_is_computed_as_pulumi_computes_it() -> None:
    """The host's digest must agree with the program's byte for byte, or every document would be
    refused as tampered with."""
    config = render_host_config(HOST, VOLUME_ID)
    files = [converge.File(f.path, f.permissions, f.content) for f in config.files]

    assert converge.digest(files) == config.version


def _first_file(raw: dict) -> dict:
    return raw["files"][0]


REFUSALS: dict[str, Callable[[dict], None]] = {
    "an unknown schema": lambda raw: raw.update(schema=2),
    "a version that is not its files' digest": lambda raw: _first_file(raw).update(content="x"),
    "a path outside the managed directories": lambda raw: _first_file(raw).update(
        path="/etc/sudoers.d/owned"
    ),
    "a path that climbs out with ..": lambda raw: _first_file(raw).update(
        path="/etc/fail2ban/../sudoers"
    ),
    "a relative path": lambda raw: _first_file(raw).update(path="etc/fail2ban/jail.local"),
    "permissions that are not octal": lambda raw: _first_file(raw).update(permissions="rwxr-xr-x"),
    "the same path twice": lambda raw: raw["files"].append(dict(_first_file(raw))),
    "the loader's own file": lambda raw: _first_file(raw).update(path=LOADER.loader_files[0]),
    "no settings.env": lambda raw: raw.update(
        files=[f for f in raw["files"] if f["path"] != settings_env_path(HOST)]
    ),
    "an entry with a missing field": lambda raw: _first_file(raw).pop("permissions"),
}


@pytest.mark.parametrize("change", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_document_that_fails_its_checks_is_refused(change: Callable[[dict], None]) -> None:
    """Whatever writes the S3 object, the host writes only well-formed files inside the
    directories it manages, never over the loader that fetches the next document (a document
    that replaced it could never be undone), only what the version names."""
    # Re-sealed, so that each case is refused for its own reason, not for the digest.
    text = edited(change, reseal=change is not REFUSALS["a version that is not its files' digest"])

    with pytest.raises(converge.Rejected):
        converge.parse_document(text, LOADER)


def test_the_steps_are_the_bootstraps_own() -> None:
    """The step list is declared twice, once per program: a step converge names that the bootstrap
    lacks fails every run of that change ("unknown step"), and one the bootstrap adds would never
    run on a change. bash reads the bootstrap's declaration."""
    script = (CLOUD_INIT_DIR / "bootstrap.sh").read_text()
    declaration = re.search(r"^readonly STEPS=\([^)]*\)$", script, re.MULTILINE)
    assert declaration is not None
    printed = subprocess.run(
        ["bash", "-c", declaration.group(0) + '\nprintf "%s\\n" "${STEPS[@]}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tuple(printed) == converge.STEPS


def test_every_settings_key_has_its_actions() -> None:
    """A key without a decision would run every step on each change of it: new keys must say
    what a change of them needs."""
    assert set(settings_env(HOST, VOLUME_ID)) <= set(converge.KEY_ACTIONS)
    assert {step for steps in converge.KEY_ACTIONS.values() for step in steps} <= {
        *converge.STEPS,
        converge.RESTART,
    }


def planned(changed: HostSettings) -> object:
    """The plan for moving a host from HOST's document to `changed`'s."""
    old = converge.parse_document(document(), LOADER)
    new = converge.parse_document(document(changed), LOADER)
    paths = frozenset(p for p, f in new.files.items() if old.files.get(p) != f)
    keys = converge.changed_keys(old.settings(LOADER), new.settings(LOADER))
    return converge.plan(paths, keys, LOADER, new.settings(LOADER))


def _limits(**values: int) -> HostSettings:
    return dataclasses.replace(HOST, limits=dataclasses.replace(HOST.limits, **values))


CHANGES = {
    "nothing": (HOST, [], False, False),
    # Both sites carry the limits; the HTTP site's step leaves a live TLS site alone.
    "the rate limit": (_limits(rate_limit_rps=50), ["nginx_http", "nginx_tls"], False, False),
    "the body size limit": (_limits(max_body_size_mb=512), ["nginx_tls"], False, False),
    "the admin CIDRs": (
        dataclasses.replace(HOST, admin_cidrs=("198.51.100.7/32",)),
        ["firewall"],
        False,
        False,
    ),
    "the Qdrant version": (
        dataclasses.replace(HOST, qdrant_version="v1.18.4"),
        ["qdrant", "qdrant_health"],
        True,
        True,
    ),
    "a certificate name": (
        dataclasses.replace(HOST, certificate_names=("api.example.com",)),
        ["certificate", "nginx_tls"],
        False,
        False,
    ),
    "the ACME challenge": (
        dataclasses.replace(HOST, acme_challenge="dns-01"),
        ["packages", "nginx_http", "certificate", "nginx_tls", "firewall"],
        False,
        False,
    ),
    "the data volume's size": (
        dataclasses.replace(HOST, data_volume_size_gb=200),
        ["data_volume"],
        False,
        False,
    ),
}


@pytest.mark.parametrize(
    ("changed", "steps", "restart", "reload_units"), CHANGES.values(), ids=CHANGES.keys()
)
def test_a_change_runs_only_the_steps_it_needs(
    changed: HostSettings, steps: list[str], restart: bool, reload_units: bool
) -> None:
    """An edge change is an nginx reload, never a Qdrant restart; Qdrant restarts only for its
    own settings; every run applies a key rotation (`secrets`)."""
    plan = planned(changed)

    assert plan.bootstrap_steps() == [s for s in converge.STEPS if s in {*steps, "secrets"}]
    assert (plan.restart_qdrant, plan.daemon_reload) == (restart, reload_units)


def test_a_hand_edited_fail2ban_jail_is_reloaded_and_a_unit_reloads_systemd() -> None:
    """Drift repair acts on what it rewrote as a change would."""
    settings = converge.parse_document(document(), LOADER).settings(LOADER)
    jail = f"{HOST.paths.fail2ban_dir}/jail.d/secure-qdrant.conf"
    unit = f"{HOST.paths.systemd_unit_dir}/secure-qdrant-bootstrap.service"

    plan = converge.plan(frozenset({jail, unit}), frozenset(), LOADER, settings)

    assert plan.steps == {"fail2ban"} and plan.daemon_reload and not plan.restart_qdrant


def test_an_unknown_key_runs_every_step() -> None:
    settings = converge.parse_document(document(), LOADER).settings(LOADER)

    plan = converge.plan(frozenset(), frozenset({"A_KEY_OF_A_NEWER_RELEASE"}), LOADER, settings)

    assert plan.bootstrap_steps() == list(converge.STEPS)


# --- One run, in a directory standing in for the host -----------------------------------------

STUB_BOOTSTRAP = """#!/bin/sh
echo "steps=$BOOTSTRAP_STEPS restart=${RESTART_QDRANT:-0}" >> "$0.log"
case " $BOOTSTRAP_STEPS " in *" $FAIL_STEP "*) exit 1 ;; esac
"""


@dataclasses.dataclass(frozen=True)
class FakeHost:
    """A ready host in a directory: its managed files, converge state and a bootstrap stub that
    logs each run's steps and fails any run that includes FAIL_STEP."""

    root: str
    source: object

    def settings(self, **changes: str | None) -> dict[str, str | None]:
        return {
            "QDRANT_UNIT": "qdrant.service",
            "METRICS_TIMER": "metrics.timer",
            "NGINX_TLS_SITE": f"{self.root}/etc/tls.conf",
            "NGINX_HTTP_SITE": f"{self.root}/etc/http.conf",
            "NGINX_SITE": f"{self.root}/no-live-site",
            "NGINX_ARGS": "",
            "DATA_VOLUME_ID": VOLUME_ID,
            "QDRANT_IMAGE": "qdrant/qdrant:v1.18.3",
            "ADMIN_CIDRS": "203.0.113.0/24",
            **changes,
        }

    def document(self, *extra: object, env_line: str = "", **changes: str | None) -> str:
        """A sealed document of the TLS site, settings.env (`changes` to its keys, None removes
        one; `env_line` added) and `extra` files."""
        settings = {k: v for k, v in self.settings(**changes).items() if v is not None}
        env = "".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items()) + env_line
        files = [
            converge.File(f"{self.root}/etc/settings.env", "0644", env),
            converge.File(f"{self.root}/etc/tls.conf", "0644", "server {}\n"),
            *extra,
        ]
        entries = [dataclasses.asdict(f) for f in files]
        return json.dumps({"schema": 1, "version": converge.digest(files), "files": entries})

    def bootstrap_runs(self) -> list[str]:
        log = Path(f"{self.root}/bootstrap.log")
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    root = str(tmp_path)
    for directory in ("etc", "units", "fail2ban", "state"):
        (tmp_path / directory).mkdir()
    (tmp_path / "ready").touch()
    (tmp_path / "bootstrap").write_text(STUB_BOOTSTRAP)
    (tmp_path / "bootstrap").chmod(0o755)
    source = dataclasses.replace(
        LOADER,
        settings_file=f"{root}/etc/settings.env",
        bootstrap=f"{root}/bootstrap",
        converge=f"{root}/etc/converge.py",
        unit_dir=f"{root}/units",
        fail2ban_dir=f"{root}/fail2ban",
        ready_marker=f"{root}/ready",
        state_file=f"{root}/state/converge.json",
        last_good=f"{root}/state/config.json",
        managed_roots=(f"{root}/etc", f"{root}/units", f"{root}/fail2ban"),
        loader_files=(),
    )
    # No systemd here: the units the program would start are the test's to say.
    monkeypatch.setattr(converge, "systemd_runs", lambda: False)
    monkeypatch.setenv("FAIL_STEP", "none")
    fake = FakeHost(root, source)
    assert converge.converge(source, fake.document(), "").error is None
    return fake


def test_a_failing_step_restarts_qdrant_once_per_version_not_every_minute(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change whose later step keeps failing (here the firewall) is retried every minute, but
    Qdrant restarts once for it: a restart every minute would take the database down for good."""
    new = host.document(QDRANT_IMAGE="qdrant/qdrant:v1.18.4", ADMIN_CIDRS="198.51.100.7/32")
    monkeypatch.setenv("FAIL_STEP", "firewall")
    before = len(host.bootstrap_runs())

    first = converge.converge(host.source, new, "")
    second = converge.converge(host.source, new, "")

    runs = host.bootstrap_runs()[before:]
    assert first.error and second.error
    assert sum("restart=1" in run for run in runs) == 1
    assert all("firewall" in run for run in runs if "restart=1" not in run)
    assert len([run for run in runs if "firewall" in run]) == 2


def test_a_new_document_while_the_first_boot_bootstrap_runs_writes_nothing_and_restarts_nothing(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarting the bootstrap in the middle of apt/dpkg leaves dpkg interrupted: while its unit
    runs a new document waits (nothing written, last good unchanged), applied by a later run."""
    Path(host.source.ready_marker).unlink()
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(converge, "systemd_runs", lambda: True)
    monkeypatch.setattr(converge, "unit_active", lambda unit: True)
    monkeypatch.setattr(converge, "systemctl", lambda *arguments: calls.append(arguments))
    settings = Path(host.source.settings_file).read_text()
    last_good = Path(host.source.last_good).read_text()

    converge.converge(host.source, host.document(QDRANT_IMAGE="qdrant/qdrant:v1.18.4"), "")

    assert Path(host.source.settings_file).read_text() == settings
    assert Path(host.source.last_good).read_text() == last_good
    assert not [call for call in calls if "restart" in call or "start" in call]


class _StatusStore:
    def __init__(self) -> None:
        self.puts: list[dict] = []

    def put_object(self, **request: object) -> None:
        self.puts.append(request)


def test_another_data_volumes_document_is_superseded_not_rejected(host: FakeHost) -> None:
    """During a replacement the old host fetches its successor's document (another data
    volume): it applies nothing, and reports nothing to the status key both share, or the deploy
    gate would read the new host's document as rejected and ConfigRejected would raise a false
    alarm."""
    settings = Path(host.source.settings_file).read_text()
    store = _StatusStore()

    state = converge.converge(host.source, host.document(DATA_VOLUME_ID="vol-0fedcba98765"), "")
    converge.publish_state(state, host.source, store)

    assert Path(host.source.settings_file).read_text() == settings
    assert (state.rejected, state.error) == (None, None)
    assert store.puts == []
    assert json.loads(Path(host.source.state_file).read_text()).get("rejected") is None


BROKEN_SETTINGS = {
    "a key the program reads is missing": {"QDRANT_UNIT": None},
    "a line shell quoting cannot read": {"env_line": "BROKEN='unterminated\n"},
}


@pytest.mark.parametrize("change", BROKEN_SETTINGS.values(), ids=BROKEN_SETTINGS.keys())
def test_a_settings_file_the_program_cannot_read_is_rejected_before_writing(
    host: FakeHost, change: dict
) -> None:
    """A document whose settings.env lacks a key or does not parse would stop the run half-way,
    files written and nothing reported: it is a rejection, found before anything is written."""
    settings = Path(host.source.settings_file).read_text()
    text = host.document(QDRANT_IMAGE="qdrant/qdrant:v1.18.4", **change)

    state = converge.converge(host.source, text, "")

    assert state.rejected == json.loads(text)["version"]
    assert Path(host.source.settings_file).read_text() == settings


def test_a_file_that_cannot_be_staged_leaves_every_live_file_as_it_was(host: FakeHost) -> None:
    """A full disk or a path that cannot be created must not leave half a configuration live:
    every file is staged before any is renamed over its live one, and the run reports the error."""
    settings = Path(host.source.settings_file).read_text()
    # The TLS site is a file: nothing can be created beneath it.
    unwritable = converge.File(f"{host.root}/etc/tls.conf/below", "0644", "x\n")

    state = converge.converge(host.source, host.document(unwritable, ADMIN_CIDRS="10.0.0.0/8"), "")

    assert state.error and state.rejected is None
    assert Path(host.source.settings_file).read_text() == settings
    assert sorted(p.name for p in Path(f"{host.root}/etc").iterdir()) == [
        "settings.env",
        "tls.conf",
    ]


def test_a_last_good_document_that_cannot_be_recorded_is_the_runs_error(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk after the steps ran must still end in a status the gate can read, not an
    exception that reports nothing: the next run records it."""

    def disk_full(*arguments: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(converge, "record", disk_full)

    state = converge.converge(host.source, host.document(ADMIN_CIDRS="10.0.0.0/8"), "")

    assert state.error and state.rejected is None
