"""The files the user data carries, checked as the VM's tools would read them (cloud-init's own
reading of the user data is tests/consumers/test_cloud_init.py).

Pure and fast: nothing runs on this machine except offline checkers (shellcheck, fail2ban's config
and regex testers, bash to read settings.env), each skipped with a reason when missing. Settings
use unusual ports so every number found provably came from them.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from model.host_config import config_source, host_config_document, render_host_config
from model.nginx_config import ADDRESS_ZONE, CREDENTIAL, LOG_FORMAT, site_file
from model.settings import (
    QDRANT_AUDIT,
    QDRANT_IMAGE_PORTS,
    QDRANT_UID,
    HostPaths,
    HostSettings,
    Limits,
    Ports,
)
from model.user_data import (
    AUTH_FILTER,
    BOOTSTRAP_UNIT,
    CLOUD_INIT_DIR,
    DATA_VOLUME_UNITS,
    JAIL,
    QDRANT_UNIT,
    bootstrap_command,
    drop_in_path,
    host_files,
    loader_files,
    mount_unit,
    qdrant_env_path,
    render_settings_env,
    render_user_data,
    settings_env,
    settings_env_path,
    shipped_python,
    shipped_script,
    source_env,
)

PORTS = Ports(ssh=2222, http=8080, https=8443, grpc_tls=9443, qdrant_rest=7333, qdrant_grpc=17334)
VOLUME_ID = "vol-0123456789abcdef0"
HOST = HostSettings(
    domain="qdrant.example.com",
    acme_email="ops@example.com",
    acme_server="https://acme.example.com/dir",
    qdrant_version="v1.18.3",
    limits=Limits(),
    admin_cidrs=("203.0.113.7/32", "2001:db8::/48"),
    region="eu-west-1",
    api_key_parameter="/secure-qdrant/test/api-key",
    read_only_api_key_parameter="/secure-qdrant/test/read-only-api-key",
    previous_api_key_parameter="/secure-qdrant/test/previous-api-key",
    ports=PORTS,
)
SOURCE = config_source(HOST.region, "secure-qdrant-test-config", HOST.name)
USER_DATA = render_user_data(HOST, VOLUME_ID, SOURCE)
# The published configuration, every file but the loader's.
DOCUMENT = host_config_document(render_host_config(HOST, VOLUME_ID))
# What the converge program writes from the document, byte for byte (tests/host/test_converge.py).
WRITE_FILES = {f.path: f.content for f in host_files(HOST, VOLUME_ID)}
SHELL_SCRIPTS = sorted(CLOUD_INIT_DIR.rglob("*.sh"))


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def written(path: str) -> str:
    return WRITE_FILES[path]


# --------------------------------------------------------------------------- the host files


def test_no_host_file_is_writable_by_others() -> None:
    """Files another user could write would let that user run code as root at the next boot step.
    (That cloud-init writes them with exactly these permissions, as root, is
    tests/consumers/test_cloud_init.py.)"""
    for f in [*host_files(HOST, VOLUME_ID), *loader_files(HOST, VOLUME_ID, SOURCE)]:
        assert int(f.permissions, 8) & 0o022 == 0, f"{f.path} is writable by non-root"


def test_files_in_the_secrets_dir_are_root_only() -> None:
    """settings.env lays out the host and names the key parameters: nobody else's business."""
    secret = [f for f in host_files(HOST, VOLUME_ID) if f.path.startswith(HOST.paths.secrets_dir)]
    assert [f.path for f in secret] == [settings_env_path(HOST)]
    assert all(f.permissions == "0600" for f in secret)


@pytest.mark.parametrize(
    "text",
    [USER_DATA, "".join(f["content"] for f in json.loads(DOCUMENT)["files"])],
    ids=["user data", "configuration document"],
)
def test_user_data_and_document_carry_no_key_or_token_value(text: str) -> None:
    """User data is readable through the EC2 API and IMDS, the document by the deployer and the
    host: they may name secrets, never hold them."""
    # Keys are 48 random alphanumerics, tokens are JWTs (`eyJ...`), private keys are PEM.
    assert not re.search(r"[A-Za-z0-9]{32,}", text)
    assert "eyJ" not in text
    assert "PRIVATE KEY" not in text
    assert not re.search(r"QDRANT__SERVICE__(READ_ONLY_)?API_KEY=\S", text)
    env = settings_env(HOST, VOLUME_ID)
    assert env["API_KEY_PARAMETER"] == HOST.api_key_parameter
    assert env["READ_ONLY_API_KEY_PARAMETER"] == HOST.read_only_api_key_parameter


def test_settings_env_reads_back_exactly_in_bash(tmp_path: Path) -> None:
    """A value bash splits or expands differently would send the bootstrap to the wrong path."""
    env = settings_env(
        dataclasses.replace(HOST, nginx_args=("-p", "/srv/nginx", "-c", "x.conf")), VOLUME_ID
    )
    settings = tmp_path / "settings.env"
    settings.write_text(render_settings_env(env))
    script = '. "$1"; shift; for name; do printf "%s\\0" "${!name}"; done'
    result = subprocess.run(
        ["bash", "-c", script, "bash", str(settings), *env],
        capture_output=True,
        text=True,
        check=True,
    )
    assert dict(zip(env, result.stdout.split("\0"), strict=False)) == env


def test_list_settings_refuse_elements_bash_would_split() -> None:
    """The bootstrap splits CIDR and nginx argument lists on whitespace: a space would inject a
    second element."""
    with pytest.raises(ValueError):
        settings_env(dataclasses.replace(HOST, nginx_args=("-p", "/a dir")), VOLUME_ID)


# --------------------------------------------------------------------------- the Qdrant unit


def unit_values(key: str, unit: str = QDRANT_UNIT) -> list[str]:
    text = written(f"{HOST.paths.systemd_unit_dir}/{unit}").replace("\\\n", " ")
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


# Every `docker run` option the unit may use. An option outside these lists fails the tests on
# purpose: `--network host`, `-P` or `--privileged` each undo a guarantee checked below.
DOCKER_FLAGS = {"--rm"}
DOCKER_VALUED = {"-p", "--publish", "-e", "--env", "--env-file", "-v", "--volume", "--user",
                 "--name", "--pull", "--cap-drop", "--security-opt", "--log-driver"}  # fmt: skip


def docker_run_options() -> list[tuple[str, str]]:
    """`docker run`'s options as (name, value) pairs, flags with an empty value."""
    (exec_start,) = unit_values("ExecStart")
    words = shlex.split(exec_start)
    assert words[:2] == ["/usr/bin/docker", "run"], exec_start
    *options, image = words[2:]
    assert image == HOST.qdrant_image
    pairs, words_left = [], iter(options)
    for word in words_left:
        name, _, inline = word.partition("=")
        if name in DOCKER_FLAGS:
            pairs.append((name, ""))
        else:
            assert name in DOCKER_VALUED, f"unreviewed docker option {word!r}"
            pairs.append((name, inline or next(words_left)))
    return pairs


def option_values(*names: str) -> list[str]:
    return [value for name, value in docker_run_options() if name in names]


def test_qdrant_is_published_on_loopback_only() -> None:
    """Docker's published ports bypass ufw: anything but 127.0.0.1 would expose Qdrant, keyless
    endpoints and all, to the internet."""
    published = option_values("-p", "--publish")
    assert published == [
        f"127.0.0.1:{PORTS.qdrant_rest}:{QDRANT_IMAGE_PORTS.rest}",
        f"127.0.0.1:{PORTS.qdrant_grpc}:{QDRANT_IMAGE_PORTS.grpc}",
    ]


# What the unit inserts before Qdrant starts: new connections into Docker's bridge from any other
# interface are dropped.
DOCKER_BRIDGE_DROP = "-I DOCKER-USER ! -i docker0 -o docker0 -m conntrack --ctstate NEW -j DROP"


def firewall_rules(host: HostSettings, scratch: Path) -> list[str]:
    """The ufw rules the bootstrap's firewall step adds for `host`: its own function, run by bash."""
    require("bash")
    settings = scratch / "settings.env"
    settings.write_text(render_settings_env(settings_env(host, VOLUME_ID)))
    bootstrap = (CLOUD_INIT_DIR / "bootstrap.sh").read_text()
    function = re.search(r"^firewall_rules\(\) \{$.*?^\}$", bootstrap, re.S | re.M)
    assert function, "the bootstrap has no firewall_rules function"
    script = f'. "$1"\n{function.group(0)}\nfirewall_rules'
    result = subprocess.run(
        ["bash", "-c", script, "bash", str(settings)], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_only_processes_on_the_host_reach_qdrant_to_claim_an_address(tmp_path: Path) -> None:
    """Qdrant records the client address `X-Forwarded-For` names: its one client is the edge, which
    puts the connection's own address there (tests/host/test_audit_edge.py). A request sent
    straight to Qdrant's port could name any address, and Qdrant would record it
    (test_qdrant_itself_believes_any_address_it_is_told). Only the host itself can send one:
    - Qdrant is published on 127.0.0.1 only (test_qdrant_is_published_on_loopback_only), and Linux
      drops 127.0.0.0/8 arriving from the network;
    - Docker would still forward a packet for its bridge, or for 127.0.0.1 arriving on another
      interface (moby#45610): the unit's DOCKER-USER rule drops every new connection into the
      bridge from outside it, before Qdrant starts (here);
    - ufw opens the public ports and SSH, never Qdrant's (here); neither does the security group
      (tests/test_security_group.py, test_no_rule_covers_qdrant_loopback_ports).
    What remains is a process on the host. Without a credential it can only add `denied` lines
    under an address of its choosing; an `ok` line needs a key or a token signed by one, which on
    the host only root can read (the root-only env file), and root could as well write the log."""
    assert any(DOCKER_BRIDGE_DROP in command for command in unit_values("ExecStartPre"))
    host = dataclasses.replace(HOST, admin_cidrs=("198.51.100.0/24",))
    rules = firewall_rules(host, tmp_path)
    opened = {int(rule.split()[-1].removesuffix("/tcp")) for rule in rules}
    assert all(rule.startswith("allow ") for rule in rules), rules
    assert opened == {PORTS.ssh, *host.public_ports}
    assert not opened & set(PORTS.loopback_only)


def test_qdrant_runs_with_rbac_and_without_cors_telemetry_or_url_recovery() -> None:
    """JWT RBAC makes scoped tokens work; CORS (any origin by default), telemetry and snapshot
    recovery from a URL (an SSRF) are off."""
    environment = option_values("-e", "--env")
    for setting in (
        "QDRANT__SERVICE__JWT_RBAC=true",
        "QDRANT__TELEMETRY_DISABLED=true",
        "QDRANT__SERVICE__ENABLE_CORS=false",
        "QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY=false",
    ):
        assert setting in environment


def test_qdrant_writes_its_audit_log_as_declared() -> None:
    """Who did what from where: Qdrant logs every access-checked request with the token's subject
    and the client's address, kept 30 days by default, trusting the X-Forwarded-For Nginx sets."""
    environment = dict(setting.split("=", 1) for setting in option_values("-e", "--env"))
    assert {name: environment.get(name) for name in QDRANT_AUDIT.environment()} == {
        "QDRANT__AUDIT__ENABLED": "true",
        "QDRANT__AUDIT__DIR": QDRANT_AUDIT.directory,
        "QDRANT__AUDIT__ROTATION": "daily",
        "QDRANT__AUDIT__MAX_LOG_FILES": "30",
        "QDRANT__AUDIT__TRUST_FORWARDED_HEADERS": "true",
    }


def test_qdrant_audit_log_lives_on_the_data_volume() -> None:
    """The audit log is evidence: on the encrypted data volume it survives the instance, and the
    volume's snapshots and restores carry it. Anywhere else in the container it is lost with it."""
    mounts = {
        inside: outside
        for outside, inside in (value.split(":", 1) for value in option_values("-v", "--volume"))
    }
    audit_dir = PurePosixPath(QDRANT_AUDIT.directory)
    (storage,) = [inside for inside in mounts if audit_dir.is_relative_to(inside)]
    assert mounts[storage] == HOST.paths.qdrant_storage
    assert PurePosixPath(HOST.paths.qdrant_storage).is_relative_to(HOST.paths.data_mount)


def test_qdrant_takes_its_keys_from_the_env_file_only() -> None:
    """A key on a command line is readable by every local user in /proc and by anyone who can
    read the unit; the root-only env file is the one place it lives."""
    assert option_values("--env-file") == [qdrant_env_path(HOST)]
    assert not [value for value in option_values("-e", "--env") if "API_KEY" in value]
    assert not unit_values("Environment") and not unit_values("EnvironmentFile")


def test_qdrant_runs_unprivileged() -> None:
    """A compromised Qdrant process gets no root, no capabilities and no way to regain them."""
    assert option_values("--user") == [f"{QDRANT_UID}:{QDRANT_UID}"]
    assert option_values("--cap-drop") == ["ALL"]
    assert option_values("--security-opt") == ["no-new-privileges"]


def test_qdrant_only_starts_on_the_mounted_data_volume() -> None:
    """Started on the root disk's empty mount point, Qdrant would serve (and later lose) an empty
    database instead of the real one."""
    data = HOST.paths.data_mount
    assert unit_values("RequiresMountsFor") == [data]
    assert unit_values("AssertPathIsMountPoint") == [data]
    assert option_values("-v", "--volume") == [
        f"{HOST.paths.qdrant_storage}:/qdrant/storage",
        f"{HOST.paths.qdrant_snapshots}:/qdrant/snapshots",
    ]


def login_defs(name: str) -> int:
    """A value of /etc/login.defs, which useradd and adduser allocate uids by."""
    defs = Path("/etc/login.defs")
    if not defs.exists():
        pytest.skip("no /etc/login.defs on this machine")
    for line in defs.read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == name:
            return int(words[1])
    raise AssertionError(f"/etc/login.defs sets no {name}")


def systemd_boundary(name: str) -> int:
    """A uid boundary systemd was built with, where UIDS-GIDS.md says to read it (pkg-config)."""
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is not installed")
    result = subprocess.run(
        ["pkg-config", f"--variable={name}", "systemd"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        pytest.skip(f"systemd's pkg-config file does not give {name}")
    return int(result.stdout)


# systemd's UIDS-GIDS.md ranges that pkg-config does not report: systemd-homed's users and host users
# that systemd-nspawn maps into containers; 65534 is `nobody`, 65535 the 16-bit (uid_t) -1.
SYSTEMD_FIXED_UIDS = (range(60001, 60578), range(65534, 65536))
CONTAINER_UID_RANGE = 65536


@pytest.mark.debian
def test_qdrant_uid_is_nobody_elses_on_any_host() -> None:
    """The container's uid owns the data volume, which outlives every instance: no user the distro,
    an admin or systemd creates on any host may ever be handed it. uid 1000, used before, is the
    image's login user with passwordless sudo (Ubuntu's `ubuntu`, Debian's `admin`)."""
    taken = [
        range(0, systemd_boundary("systemuidmax") + 1),
        range(login_defs("UID_MIN"), login_defs("UID_MAX") + 1),
        range(systemd_boundary("dynamicuidmin"), systemd_boundary("dynamicuidmax") + 1),
        range(
            systemd_boundary("containeruidbasemin"),
            systemd_boundary("containeruidbasemax") + CONTAINER_UID_RANGE,
        ),
        *SYSTEMD_FIXED_UIDS,
    ]
    assert not [r for r in taken if QDRANT_UID in r]
    # Above 2^31 some kernel interfaces misread uids as negative.
    assert QDRANT_UID < 2**31


def test_units_reading_the_data_volume_wait_for_its_mount_as_qdrant_does() -> None:
    """nginx and certbot read the certificate on the data volume: each gets a drop-in requiring the
    same mount Qdrant's unit requires (systemd's reading of them: tests/host/test_bootstrap.py)."""
    for unit in DATA_VOLUME_UNITS:
        drop_in = written(drop_in_path(HOST, unit))
        # systemd reads only `*.conf` files in the unit's `.d` directory.
        assert drop_in_path(HOST, unit).startswith(f"{HOST.paths.systemd_unit_dir}/{unit}.d/")
        assert drop_in_path(HOST, unit).endswith(".conf")
        sections = [line for line in drop_in.splitlines() if line.startswith("[")]
        assert sections == ["[Unit]"], unit
        assert f"RequiresMountsFor={HOST.paths.data_mount}" in drop_in.splitlines(), unit
    assert unit_values("RequiresMountsFor") == [HOST.paths.data_mount]


def test_qdrant_restarts_whenever_it_stops() -> None:
    """A crashed Qdrant must come back on its own; nginx would otherwise answer 502 indefinitely."""
    assert unit_values("Restart") == ["always"]


# --------------------------------------------------------------------------- the bootstrap's unit
# (systemd's own reading of it, its dependencies and its place in the boot:
# tests/host/test_bootstrap.py)


def bootstrap_unit_values(key: str) -> list[str]:
    return unit_values(key, BOOTSTRAP_UNIT)


def test_bootstrap_unit_never_holds_up_the_boot() -> None:
    """A oneshot unit wanted by multi-user.target would keep the boot (and cloud-final, ordered
    after it) waiting for as long as the bootstrap waits for DNS or Qdrant: an hour and more. An
    exec unit is started once the script runs, and nothing may be ordered after it."""
    assert bootstrap_unit_values("Type") == ["exec"]
    assert bootstrap_unit_values("WantedBy") == ["multi-user.target"]
    assert not bootstrap_unit_values("Before")
    assert not bootstrap_unit_values("RemainAfterExit")


def test_bootstrap_unit_starts_after_the_network() -> None:
    """Every step past the data volume reaches the network (SSM, the registry, DNS, ACME)."""
    assert "network-online.target" in bootstrap_unit_values("Wants")
    assert "network-online.target" in bootstrap_unit_values("After")


def test_bootstrap_unit_waits_for_the_data_mount_without_requiring_it() -> None:
    """Ordered after the data volume's mount on every boot that has its fstab line; a mount that
    failed (a late volume) must not cancel the run that would wait for the volume and mount it."""
    data_mount_unit = mount_unit(HOST.paths.data_mount)
    assert data_mount_unit in bootstrap_unit_values("Wants")
    assert data_mount_unit in bootstrap_unit_values("After")
    assert not bootstrap_unit_values("Requires")
    assert not bootstrap_unit_values("RequiresMountsFor")


def test_bootstrap_unit_retries_a_failed_run_without_end() -> None:
    """A first boot that failed half-way (a key parameter or DNS late, the ACME server down) heals
    itself: the run is retried every few minutes, never given up for good by a start limit."""
    assert bootstrap_unit_values("Restart") == ["on-failure"]
    assert bootstrap_unit_values("RestartSec") == ["5min"]
    assert bootstrap_unit_values("StartLimitIntervalSec") == ["0"]


def test_bootstrap_unit_logs_under_the_projects_tag() -> None:
    """Operators and docs/security-model.md find the bootstrap's log by `journalctl -t
    secure-qdrant`; under the unit that includes what apt, certbot and docker print."""
    assert bootstrap_unit_values("SyslogIdentifier") == ["secure-qdrant"]


def test_bootstrap_unit_runs_the_one_bootstrap_command() -> None:
    """The unit and the labs run the same command line (`bootstrap_command`)."""
    assert bootstrap_unit_values("ExecStart") == [" ".join(bootstrap_command(HOST))]


@pytest.mark.parametrize("path", ["/srv/a b", "/srv/100%", "/srv/$HOME", "/srv/\\x2d"])
def test_bootstrap_paths_systemd_would_not_read_literally_are_refused(path: str) -> None:
    """In ExecStart= systemd splits on spaces and expands `%` specifiers, `$` variables and
    escapes: such a path would run something else, or nothing."""
    with pytest.raises(ValueError):
        host_files(dataclasses.replace(HOST, paths=HostPaths(bootstrap=path)), VOLUME_ID)


@pytest.mark.debian
@pytest.mark.parametrize("path", ["/var/lib/qdrant-data", "/data", "/srv/qdrant_data/v1.2-x"])
def test_mount_unit_is_the_name_systemd_gives_the_mount(path: str) -> None:
    """A misspelt mount unit orders the bootstrap after nothing: systemd's own escaping decides."""
    require("systemd-escape")
    escaped = subprocess.run(
        ["systemd-escape", "--path", "--suffix=mount", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert mount_unit(path) == escaped


# --------------------------------------------------------------------------- nginx sites


def test_nginx_sites_are_staged_for_the_bootstrap_not_live() -> None:
    """The TLS site names a certificate that does not exist at first boot: live, it would stop
    nginx from loading at all. The bootstrap installs each state when its time comes."""
    assert site_file(HOST.paths) not in WRITE_FILES
    env = settings_env(HOST, VOLUME_ID)
    assert "ssl_certificate" not in written(env["NGINX_HTTP_SITE"])
    assert "ssl_certificate" in written(env["NGINX_TLS_SITE"])


# --------------------------------------------------------------------------- packages


def bootstrap_packages() -> list[str]:
    """What the rendered bootstrap can hand apt-get, as bash reads its PACKAGES array and the
    DNS-01 hosts' DNS01_PACKAGES."""
    declarations = [
        line
        for line in written(HOST.paths.bootstrap).splitlines()
        if line.startswith(("readonly PACKAGES=(", "readonly DNS01_PACKAGES=("))
    ]
    assert len(declarations) == 2, declarations
    listed = subprocess.run(
        [
            "bash",
            "-c",
            "\n".join(declarations) + '\nprintf "%s\\n" "${PACKAGES[@]}" "${DNS01_PACKAGES[@]}"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def debian_12_apt() -> None:
    """apt on this machine is Debian 12's: the same archive a Debian 12 host installs from."""
    os_release = Path("/etc/os-release")
    if not os_release.exists() or "VERSION_CODENAME=bookworm" not in os_release.read_text():
        pytest.skip("this machine is not Debian 12")
    if not any(Path("/var/lib/apt/lists").glob("*_Packages*")):
        pytest.skip("apt has no package lists (run apt-get update)")


@pytest.mark.debian
def test_every_package_the_bootstrap_installs_exists_in_debian_12() -> None:
    """One unknown name fails the whole `apt-get install`, and with it the host's first boot."""
    debian_12_apt()
    missing = []
    for package in bootstrap_packages():
        policy = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, check=True
        ).stdout
        if "Candidate:" not in policy or "Candidate: (none)" in policy:
            missing.append(package)
    assert missing == []


def test_bootstrap_installs_the_journal_reader_of_the_sshd_jail() -> None:
    """fail2ban's systemd backend imports python3-systemd, which Debian 12's fail2ban only
    recommends: where apt skips recommends, the sshd jail would fail with "Failed to initialize any
    backend" and SSH guessing would go unbanned."""
    assert "python3-systemd" in bootstrap_packages()


def test_bootstrap_installs_the_tool_every_jail_bans_with() -> None:
    """fail2ban only recommends iptables, and docker.io and ufw need not keep bringing it: without
    it every ban fails while fail2ban runs on."""
    assert "iptables" in bootstrap_packages()


# --------------------------------------------------------------------------- shell scripts


def shellcheck(script: Path) -> subprocess.CompletedProcess[str]:
    require("shellcheck")
    return subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)


@pytest.mark.debian
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    """shellcheck finds the quoting and error-handling bugs that turn a bootstrap into a half-built
    host."""
    result = shellcheck(script)
    assert result.returncode == 0, result.stdout


@pytest.mark.debian
def test_bootstrap_as_rendered_passes_shellcheck(tmp_path: Path) -> None:
    """What cloud-init writes is what runs: check that copy, not only the source."""
    rendered = tmp_path / "bootstrap"
    rendered.write_text(written(HOST.paths.bootstrap))
    result = shellcheck(rendered)
    assert result.returncode == 0, result.stdout


def pretty_printed(script: Path) -> str:
    """The script as bash parsed it (`--pretty-print` parses without running anything)."""
    require("bash")
    return subprocess.run(
        ["bash", "--pretty-print", str(script)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.debian
def test_shipped_bootstrap_is_the_source_program_to_bash(tmp_path: Path) -> None:
    """The host runs the bootstrap with its comments emptied (room in EC2's 16 KB of user data):
    bash must parse that copy into exactly the program the repository's copy is."""
    shipped = tmp_path / "bootstrap"
    shipped.write_text(written(HOST.paths.bootstrap))
    source = CLOUD_INIT_DIR / "bootstrap.sh"
    assert len(shipped.read_text()) < len(source.read_text())
    assert pretty_printed(shipped) == pretty_printed(source)


def test_shipped_bootstrap_keeps_its_line_numbers() -> None:
    """An error line number on the host points at the same line of the repository's script."""
    source = (CLOUD_INIT_DIR / "bootstrap.sh").read_text().splitlines()
    shipped = written(HOST.paths.bootstrap).splitlines()
    assert len(shipped) == len(source)
    assert all(line in ("", kept) for line, kept in zip(shipped, source, strict=False))


def test_shipped_script_keeps_here_documents_shebang_and_shellcheck_directives() -> None:
    """A here-document's lines are data (a Python program's comments, a config file's), whatever
    they start with; the shebang picks the interpreter and the directives keep shellcheck
    passing on the shipped copy."""
    script = (
        "#!/usr/bin/env bash\n"
        "# why\n"
        "  # shellcheck disable=SC2016 # a format\n"
        'read -ra words <<<"$x"\n'
        "# gone\n"
        "python3 - <<'PYTHON'\n"
        "# kept: data\n"
        "PYTHON\n"
        "cat <<-EOF\n"
        "\t# kept too\n"
        "\tEOF\n"
        "    # gone too\n"
    )
    assert shipped_script(script).splitlines() == [
        "#!/usr/bin/env bash",
        "",
        "  # shellcheck disable=SC2016 # a format",
        'read -ra words <<<"$x"',
        "",
        "python3 - <<'PYTHON'",
        "# kept: data",
        "PYTHON",
        "cat <<-EOF",
        "\t# kept too",
        "\tEOF",
        "",
    ]


def without_docstrings(tree: ast.Module) -> ast.Module:
    """The tree less every docstring, as Python itself finds them (`ast.get_docstring`)."""
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, documented) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:]
    return tree


def python_tree(source: str) -> str:
    return ast.dump(without_docstrings(ast.parse(source)), include_attributes=True)


def test_shipped_publisher_is_the_source_program_to_python() -> None:
    """The host runs the metrics publisher with its comments and docstrings emptied (room in EC2's
    16 KB of user data): Python must parse that copy into the source's syntax tree, every node at
    the same line and column, so a traceback on the host points at the repository's line."""
    source = (CLOUD_INIT_DIR / "metrics.py").read_text()
    shipped = written(HOST.paths.metrics_publisher)
    assert len(shipped) < len(source)
    assert python_tree(shipped) == python_tree(source)


def test_shipped_python_empties_only_whole_comment_lines_and_docstrings_code_does_not_need() -> (
    None
):
    """A `#` inside a string is data; a docstring alone in its body holds the body up; one sharing
    a line with code goes with the code."""
    lines = [  # each line, and whether the shipped copy keeps it
        ('"""Module."""', False),
        ("# why", False),
        ("TEXT = '''", True),
        ("# kept: data", True),
        ("'''", True),
        ("def alone():", True),
        ('    """Kept: the only statement."""', True),
        ('def shared(): """Kept: on the line of code."""; x = 1  # kept: code', True),
        ("class Documented:", True),
        ('    """Gone,', False),
        ('    both lines."""', False),
        ("    y = 2", True),
    ]
    shipped = shipped_python("\n".join(line for line, _ in lines))
    assert shipped.splitlines() == [line if kept else "" for line, kept in lines]


# --------------------------------------------------------------------------- fail2ban


def access_log_line(**values: str) -> str:
    """One line in nginx's access log format for this site, from `LOG_FORMAT` itself."""
    defaults = {
        "remote_addr": "203.0.113.9",
        "time_local": "29/Nov/2026:10:00:00 +0000",
        "request": "GET /collections HTTP/2.0",
        "status": "200",
        "body_bytes_sent": "52",
        "http_referer": "-",
        "http_user_agent": "qdrant-client/1.20",
        "server_port": str(PORTS.https),
        "secure_qdrant_grpc_status": "-",
        "request_time": "0.002",
    }
    defaults.update(values)
    return re.sub(r"\$(\w+)", lambda match: defaults[match.group(1)], LOG_FORMAT)


def require_bundled_filter(name: str) -> None:
    if not Path(f"/etc/fail2ban/filter.d/{name}.conf").exists():
        pytest.skip("fail2ban's bundled filters are not installed")


def filter_matches(line: str, filter_: Path | str) -> bool:
    """Whether fail2ban-regex counts `line` for a filter file, or a bundled filter's name with
    options (`name[option="value"]`), as a jail's `filter` names it."""
    require("fail2ban-regex")
    result = subprocess.run(
        ["fail2ban-regex", line, str(filter_)], capture_output=True, text=True, check=True
    )
    counts = re.search(r"Lines: 1 lines, 0 ignored, (\d) matched", result.stdout)
    assert counts, result.stdout
    return counts.group(1) == "1"


# nginx writes a `"` inside a field as `\x22`.
FORGED_401 = "x\\x22 401 0 \\x22-\\x22 \\x22-\\x22 port=1 grpc_status="
AUTH_FILTER_SOURCE = CLOUD_INIT_DIR / "fail2ban" / AUTH_FILTER


@pytest.mark.parametrize(
    ("line", "banned"),
    [
        (access_log_line(status="401"), True),
        (access_log_line(server_port=str(PORTS.grpc_tls), secure_qdrant_grpc_status="16"), True),
        (access_log_line(), False),
        (access_log_line(status="403"), False),
        (access_log_line(status="429"), False),
        (access_log_line(server_port=str(PORTS.grpc_tls), secure_qdrant_grpc_status="7"), False),
        # Client-controlled fields imitating a failure must not count.
        (access_log_line(http_user_agent=FORGED_401), False),
        (access_log_line(http_user_agent="port=1 grpc_status=16"), False),
    ],
    ids=[
        "rest-401",
        "grpc-unauthenticated",
        "ok",
        "forbidden",
        "rate-limited",
        "grpc-denied",
        "fake-401-in-agent",
        "fake-grpc-status-in-agent",
    ],
)
@pytest.mark.debian
def test_auth_filter_counts_failed_authentication_only(line: str, banned: bool) -> None:
    """Key guessing floods are banned; a scoped token hitting 403 or a client hitting the rate
    limit is not an attack on the keys, and a forged log field must never frame anyone."""
    assert filter_matches(line, AUTH_FILTER_SOURCE) is banned


def limit_req_line(
    zone: str, client: str = "203.0.113.9", when: str = "2026/11/29 10:00:00"
) -> str:
    return (
        f'{when} [error] 812#812: *4 limiting requests, excess: 20.600 by zone "{zone}", '
        f'client: {client}, server: qdrant.example.com, request: "GET /collections HTTP/2.0", '
        'host: "qdrant.example.com"'
    )


def rate_limit_jail_filter() -> str:
    """The rate-limit jail's `filter` as rendered: the bundled filter with its zone option."""
    jail = configparser.ConfigParser(interpolation=None)
    jail.read_string(written(f"{HOST.paths.fail2ban_dir}/{JAIL}"))
    return jail["secure-qdrant-rate-limit"]["filter"]


@pytest.mark.debian
def test_rate_limit_jail_reads_nginx_limit_req_lines() -> None:
    """Clients that keep hammering past their address's rate limit are banned by the bundled
    filter, as long as it reads the lines this nginx writes."""
    require_bundled_filter("nginx-limit-req")
    assert filter_matches(limit_req_line(ADDRESS_ZONE), rate_limit_jail_filter())


@pytest.mark.debian
def test_rate_limit_jail_ignores_the_credential_zone() -> None:
    """A credential's zone is its owner's quota: an application fleet that overruns it gets 429s
    but must not have every address it runs from banned from the host."""
    require_bundled_filter("nginx-limit-req")
    assert not filter_matches(limit_req_line(CREDENTIAL), rate_limit_jail_filter())


@pytest.fixture
def fail2ban_config(tmp_path: Path) -> Path:
    """The machine's fail2ban configuration (Debian 12's) with our rendered files added, on a host
    without /var/log/auth.log, as a Debian 12 image without rsyslog is."""
    require("fail2ban-client")
    if not Path("/etc/fail2ban/jail.conf").exists():
        pytest.skip("fail2ban's configuration is not installed")
    config = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", config)
    # Where the distro's sshd jail looks for sshd's log (paths-debian.conf), pointed at nothing
    # whether or not this machine writes one.
    (config / "paths-overrides.local").write_text(
        f"[DEFAULT]\nsyslog_authpriv = {tmp_path / 'no-rsyslog' / 'auth.log'}\n"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    host = dataclasses.replace(
        HOST, paths=HostPaths(nginx_log_dir=str(logs), fail2ban_dir=str(config))
    )
    env = settings_env(host, VOLUME_ID)
    for log in (env["NGINX_ACCESS_LOG"], env["NGINX_ERROR_LOG"]):
        Path(log).touch()
    for f in host_files(host, VOLUME_ID):
        if f.path.startswith(str(config)):
            Path(f.path).write_text(f.content)
    return config


def fail2ban_dump(config: Path) -> str:
    return subprocess.run(
        ["fail2ban-client", "-c", str(config), "-d"], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.debian
def test_fail2ban_accepts_every_jail_on_a_host_without_auth_log(fail2ban_config: Path) -> None:
    """A jail fail2ban rejects stops fail2ban altogether: no bans at all, silently. The distro's
    own sshd jail is among them, and on Debian 12 it has no log file to read."""
    test = subprocess.run(
        ["fail2ban-client", "-c", str(fail2ban_config), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.mark.debian
def test_qdrant_jails_watch_the_public_ports_and_never_loopback(fail2ban_config: Path) -> None:
    dump = fail2ban_dump(fail2ban_config)
    for jail in ("secure-qdrant-auth", "secure-qdrant-rate-limit"):
        assert f"['add', '{jail}', 'auto']" in dump
        assert f"['set', '{jail}', 'addignoreip', '127.0.0.1/8', '::1']" in dump
        ports = f"{PORTS.http},{PORTS.https},{PORTS.grpc_tls}"
        assert f"['port', '{ports}']" in dump


# Ubuntu 24.04's jail.d/defaults-debian.conf (fail2ban 1.0.2-3) as the issue quotes it, from
# Debian's packaging change "Debian defaults: nftables as banaction and systemd as backend"
# (https://salsa.debian.org/python-team/packages/fail2ban/-/merge_requests/18). Debian 12's
# (1.0.2-2, this machine's) enables sshd only, so jail.conf's iptables-multiport stands.
NFTABLES_DEFAULTS = """[DEFAULT]
banaction = nftables
banaction_allports = nftables[type=allports]

[sshd]
enabled = true
"""


def jail_actions(dump: str) -> dict[str, list[str]]:
    """Each enabled jail's ban actions, as fail2ban's dump adds them."""
    actions: dict[str, list[str]] = {}
    for line in dump.splitlines():
        if match := re.fullmatch(r"\['add', '([^']+)', '[^']+'\]", line):
            actions[match.group(1)] = []
        elif match := re.fullmatch(r"\['set', '([^']+)', 'addaction', '([^']+)'\]", line):
            actions[match.group(1)].append(match.group(2))
    return actions


@pytest.mark.debian
@pytest.mark.parametrize(
    "distro_defaults", [None, NFTABLES_DEFAULTS], ids=["debian-12", "ubuntu-24.04"]
)
def test_every_jail_bans_with_iptables_whatever_the_distro_defaults(
    fail2ban_config: Path, distro_defaults: str | None
) -> None:
    """Ubuntu 24.04 defaults to nftables, whose `nft` fail2ban only recommends while docker.io and
    ufw bring iptables: every ban would fail, logged, with fail2ban running on. Each jail, the
    distro's sshd too, bans with iptables, the action the booted Debian 12 host is seen banning
    with (tests/booted/test_first_boot.py) and whose tool the bootstrap installs."""
    if distro_defaults is not None:
        (fail2ban_config / "jail.d" / "defaults-debian.conf").write_text(distro_defaults)

    actions = jail_actions(fail2ban_dump(fail2ban_config))

    assert actions == {
        jail: ["iptables-multiport"]
        for jail in ("sshd", "secure-qdrant-auth", "secure-qdrant-rate-limit")
    }


@pytest.mark.debian
def test_sshd_jail_reads_the_journal(fail2ban_config: Path) -> None:
    """sshd logs to the journal on both Debian 12 and Ubuntu 24.04; /var/log/auth.log exists only
    where rsyslog runs. Reading the journal keeps SSH guessing banned on either image."""
    assert "['add', 'sshd', 'systemd']" in fail2ban_dump(fail2ban_config)


def test_the_loader_names_the_same_paths_as_the_document() -> None:
    """The converge program finds the host's files by the loader's settings, the metrics publisher
    its state by settings.env: a path the two disagree on is a host that never converges, or a
    ConfigRejected that never rises."""
    loader = dict(
        line.split("=", 1)
        for line in render_settings_env(source_env(HOST, VOLUME_ID, SOURCE)).splitlines()
    )
    env = settings_env(HOST, VOLUME_ID)
    roots = shlex.split(loader["MANAGED_ROOTS"])[0].split()

    assert loader["CONVERGE_STATE"] == env["CONFIG_STATE_FILE"]
    assert loader["READY_MARKER"] == env["READY_MARKER"]
    assert loader["SETTINGS_FILE"] == settings_env_path(HOST)
    for f in host_files(HOST, VOLUME_ID):
        assert any(f.path.startswith(f"{root}/") for root in roots), f.path
    assert not set(shlex.split(loader["LOADER_FILES"])[0].split()) & set(WRITE_FILES)
