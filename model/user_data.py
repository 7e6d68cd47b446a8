"""The host's files, and the VM's user data: a small `#cloud-config` that installs the loader
(cloud-init/loader.py), which fetches the rest (`host_files`, published as one document by
model/host_config.py) and hands it to the converge program it carries, at first boot and every
minute after.

Pure: `HostSettings` in, text out. The same `host_files` feed the loopback lab, so what the lab runs
is byte for byte what the VM runs. User data is readable by anyone with `ec2:DescribeInstanceAttribute`
and by every process on the VM via IMDS, so it carries names of secrets, never their values. It
changes only when the machine must: a setting in it replaces the instance, so it holds nothing a
host can change in place.

Files under `cloud-init/` are data: shell scripts read `settings.env` at run time; the few files
that cannot (systemd, fail2ban) are templates whose `{NAME}` placeholders are `settings.env` keys,
filled in here from the same values.
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import os
import re
import shlex
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from model.audit_log import audit_log_group_name, audit_log_stream_name
from model.nginx_config import (
    ACCESS_LOG_NAME,
    ADDRESS_ZONE,
    ERROR_LOG_NAME,
    certificate_paths,
    render_http_site,
    render_tls_site,
    site_file,
)
from model.settings import (
    LEGACY_QDRANT_UID,
    METRICS_NAMESPACE,
    QDRANT_IMAGE_PORTS,
    QDRANT_UID,
    HostSettings,
)

if TYPE_CHECKING:
    # host_config builds on this module's `host_files`; only the type comes back.
    from model.host_config import ConfigSource

CLOUD_INIT_DIR = Path(__file__).resolve().parent.parent / "cloud-init"
QDRANT_UNIT = "qdrant.service"
# Runs the bootstrap at every boot: the converge program enables and starts it at first boot.
BOOTSTRAP_UNIT = "secure-qdrant-bootstrap.service"
# The loader's units: every minute (and once at first boot) the converge program fetches the host's
# configuration and applies what changed; each run also applies a key rotation (the secrets step).
CONVERGE_UNIT = "secure-qdrant-converge.service"
CONVERGE_TIMER = "secure-qdrant-converge.timer"
# Relative to fail2ban's config dir, and mirrored under cloud-init/fail2ban/.
AUTH_FILTER = "filter.d/secure-qdrant-auth.conf"
JAIL = "jail.d/secure-qdrant.conf"
# Units that read the data volume (nginx and certbot: the certificate) and the drop-in, from
# cloud-init/, that makes systemd start them only once it is mounted.
DATA_VOLUME_UNITS = ("nginx.service", "certbot.service")
DATA_VOLUME_DROP_IN = "requires-data-volume.conf"
# What the converge program last did ({"version", "error", "rejected"}, read by the metrics
# publisher) and the last document it applied, beside the ready marker.
CONVERGE_STATE = "converge.json"
LAST_GOOD = "config.json"
# The host's metrics publisher (cloud-init/metrics.py), its unit and the timer that runs it.
METRICS_UNIT = "secure-qdrant-metrics.service"
METRICS_TIMER = "secure-qdrant-metrics.timer"
# The audit log's shipper (cloud-init/audit_shipper.py), its unit and its timer: every minute too,
# from a copy of the metrics timer (a timer starts the service of its own name).
AUDIT_SHIPPER_UNIT = "secure-qdrant-audit-shipper.service"
AUDIT_SHIPPER_TIMER = "secure-qdrant-audit-shipper.timer"
# Where Qdrant's container sees the storage directory the unit mounts (cloud-init/qdrant.service).
CONTAINER_STORAGE = "/qdrant/storage"


@dataclass(frozen=True)
class HostFile:
    path: str
    content: str
    permissions: str = "0644"


def settings_env_path(host: HostSettings) -> str:
    return f"{host.paths.secrets_dir}/settings.env"


def qdrant_env_path(host: HostSettings) -> str:
    """The API keys, fetched at boot: the only file on the host holding them."""
    return f"{host.paths.secrets_dir}/qdrant.env"


def source_env_path(host: HostSettings) -> str:
    """The loader's settings: where the configuration is and what the converge program may touch."""
    return f"{host.paths.secrets_dir}/source.env"


def converge_path(host: HostSettings) -> str:
    """The converge program (cloud-init/converge.py): in the document, run by the loader."""
    return f"{os.path.dirname(host.paths.bootstrap)}/secure-qdrant-converge"


def fetch_keys_path(host: HostSettings) -> str:
    """The secrets step's key fetcher (cloud-init/fetch_keys.py): beside the bootstrap, which runs
    it from its own directory."""
    return f"{os.path.dirname(host.paths.bootstrap)}/secure-qdrant-fetch-keys"


def audit_shipper_path(host: HostSettings) -> str:
    return f"{os.path.dirname(host.paths.metrics_publisher)}/secure-qdrant-audit-shipper"


def audit_dir(host: HostSettings) -> str:
    """Qdrant's audit directory as the host sees it: on the data volume, under the storage."""
    inside = os.path.relpath(host.audit.directory, CONTAINER_STORAGE)
    if inside.startswith(".."):
        raise ValueError(f"the audit log must be under {CONTAINER_STORAGE}: {host.audit.directory}")
    return f"{host.paths.qdrant_storage}/{inside}"


def loader_path(host: HostSettings) -> str:
    """The user data's program (cloud-init/loader.py): fetches the document, runs the converge
    program."""
    return f"{os.path.dirname(host.paths.bootstrap)}/secure-qdrant-loader"


def state_path(host: HostSettings, name: str) -> str:
    """A file of the host's own state, beside the ready marker (never in the document)."""
    return f"{os.path.dirname(host.paths.ready_marker)}/{name}"


def loader_command(host: HostSettings) -> tuple[str, ...]:
    """The converge unit's command line (after the interpreter), and what the labs run."""
    return (loader_path(host), source_env_path(host))


def managed_roots(host: HostSettings) -> tuple[str, ...]:
    """The directories the document's files may be written in: those of `host_files`."""
    paths = host.paths
    roots = (
        paths.secrets_dir,
        os.path.dirname(paths.bootstrap),
        os.path.dirname(paths.metrics_publisher),
        paths.systemd_unit_dir,
        paths.fail2ban_dir,
        os.path.dirname(staged_site_path(host, "tls")),
    )
    return tuple(dict.fromkeys(roots))


def staged_site_path(host: HostSettings, state: str) -> str:
    """Where a site state waits for the bootstrap to install it; nginx includes nothing here."""
    return f"{host.paths.nginx_conf_dir}/secure-qdrant/{state}.conf"


def drop_in_path(host: HostSettings, unit: str) -> str:
    return f"{host.paths.systemd_unit_dir}/{unit}.d/secure-qdrant-{DATA_VOLUME_DROP_IN}"


def bootstrap_command(host: HostSettings) -> tuple[str, ...]:
    """The bootstrap's command line: its unit's ExecStart, and what the labs (no systemd) run."""
    return (host.paths.bootstrap, settings_env_path(host))


# What systemd reads literally in ExecStart= and in a unit name: no quotes, `%` specifiers,
# `$` variables or escapes to get wrong.
_LITERAL_WORD = re.compile(r"[A-Za-z0-9/._-]+")


def _literal_words(words: tuple[str, ...]) -> str:
    if not all(_LITERAL_WORD.fullmatch(word) for word in words):
        raise ValueError(f"not literal to systemd: {words!r}")
    return " ".join(words)


def mount_unit(path: str) -> str:
    """systemd's name for the mount unit of `path` (`systemd-escape --path --suffix=mount`): the
    path without its outer slashes, `/` as `-`, and a `-` in a name as `\\x2d`."""
    names = path.split("/")
    _literal_words((path,))
    if names[0] or not all(names[1:]) or any(name.startswith(".") for name in names):
        raise ValueError(f"not an absolute path below / without empty or hidden names: {path!r}")
    return "-".join(name.replace("-", "\\x2d") for name in names[1:]) + ".mount"


def settings_env(host: HostSettings, data_volume_id: str) -> dict[str, str]:
    """Every value the bootstrap script and the templates read, from the one settings object."""
    ports, paths = host.ports, host.paths
    certificate, certificate_key = certificate_paths(host)
    return {
        "DOMAIN": host.domain,
        "ACME_EMAIL": host.acme_email,
        "ACME_SERVER": host.acme_server,
        "ACME_CHALLENGE": host.acme_challenge,
        "CERTIFICATE_NAMES": _words((host.domain, *host.certificate_names)),
        "QDRANT_IMAGE": host.qdrant_image,
        "QDRANT_UID": str(QDRANT_UID),
        "QDRANT_LEGACY_UID": str(LEGACY_QDRANT_UID),
        "QDRANT_WAIT_SECONDS": str(host.waits.qdrant),
        "SECRETS_WAIT_SECONDS": str(host.waits.secrets),
        "QDRANT_UNIT": QDRANT_UNIT,
        "AWS_REGION": host.region,
        "DATA_VOLUME_SIZE_GB": str(host.data_volume_size_gb),
        "API_KEY_PARAMETER": host.api_key_parameter,
        "READ_ONLY_API_KEY_PARAMETER": host.read_only_api_key_parameter,
        "PREVIOUS_API_KEY_PARAMETER": host.previous_api_key_parameter,
        "DATA_VOLUME_ID": data_volume_id,
        "DATA_VOLUME_DEVICE": host.data_volume_device,
        "DATA_MOUNT": paths.data_mount,
        "FSTAB": paths.fstab,
        "QDRANT_STORAGE": paths.qdrant_storage,
        "QDRANT_SNAPSHOTS": paths.qdrant_snapshots,
        "LETSENCRYPT_DIR": paths.letsencrypt_dir,
        "LETSENCRYPT_LINK": paths.letsencrypt_link,
        "CERTBOT_WORK_DIR": paths.certbot_work_dir,
        "CERTBOT_LOGS_DIR": paths.certbot_logs_dir,
        "CERTIFICATE": certificate,
        "CERTIFICATE_KEY": certificate_key,
        "ACME_WEBROOT": paths.acme_webroot,
        "SECRETS_DIR": paths.secrets_dir,
        "QDRANT_ENV_FILE": qdrant_env_path(host),
        "NGINX_ARGS": _words(host.nginx_args),
        "NGINX_CONF_DIR": paths.nginx_conf_dir,
        "NGINX_SITE": site_file(paths),
        "NGINX_HTTP_SITE": staged_site_path(host, "http"),
        "NGINX_TLS_SITE": staged_site_path(host, "tls"),
        "NGINX_ACCESS_LOG": f"{paths.nginx_log_dir}/{ACCESS_LOG_NAME}",
        "NGINX_ERROR_LOG": f"{paths.nginx_log_dir}/{ERROR_LOG_NAME}",
        "NGINX_ADDRESS_ZONE": ADDRESS_ZONE,
        "READY_MARKER": paths.ready_marker,
        "SSH_PORT": str(ports.ssh),
        "HTTP_PORT": str(ports.http),
        "HTTPS_PORT": str(ports.https),
        "GRPC_TLS_PORT": str(ports.grpc_tls),
        "PUBLIC_PORTS": _words(tuple(map(str, host.public_ports))),
        "QDRANT_REST_PORT": str(ports.qdrant_rest),
        "QDRANT_GRPC_PORT": str(ports.qdrant_grpc),
        "QDRANT_IMAGE_REST_PORT": str(QDRANT_IMAGE_PORTS.rest),
        "QDRANT_IMAGE_GRPC_PORT": str(QDRANT_IMAGE_PORTS.grpc),
        # `docker run` options, so the unit spells out no value of the audit log's own.
        "QDRANT_AUDIT_ENV": _words(
            tuple(
                word
                for setting in host.audit.environment().items()
                for word in ("--env", "=".join(setting))
            )
        ),
        "ADMIN_CIDRS": _words(host.admin_cidrs),
        "METRICS_NAMESPACE": METRICS_NAMESPACE,
        "METRICS_HOST": host.name,
        "METRICS_TIMER": METRICS_TIMER,
        "AUDIT_DIR": audit_dir(host),
        "AUDIT_LOG_GROUP": audit_log_group_name(host.name),
        "AUDIT_LOG_STREAM": audit_log_stream_name(host.name),
        # On the data volume, beside the files: a replaced instance or a restored volume resumes
        # from the position that belongs to those very files.
        "AUDIT_SHIPPER_STATE": f"{paths.data_mount}/audit-shipper.json",
        "AUDIT_SHIPPER_TIMER": AUDIT_SHIPPER_TIMER,
        # The admin CIDR and port rules the firewall step added last: what it removes once they are
        # no longer configured.
        "FIREWALL_RULES_FILE": state_path(host, "firewall-rules"),
        "CONFIG_STATE_FILE": state_path(host, CONVERGE_STATE),
    }


def _words(values: tuple[str, ...]) -> str:
    # The bootstrap splits these lists on whitespace (`read -ra`), which no element may contain.
    if any(len(value.split()) != 1 for value in values):
        raise ValueError(f"list elements must be single words: {values!r}")
    return " ".join(values)


def render_settings_env(values: dict[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def _cloud_init_file(name: str) -> str:
    return (CLOUD_INIT_DIR / name).read_text()


# `<<WORD`, `<<-WORD`, `<<'WORD'`: a here-document, whose lines are data, not shell. Not `<<<`.
_HEREDOC = re.compile(r"(?<!<)<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
# Directives to shellcheck, which checks the shipped copy too.
_KEPT_COMMENT = re.compile(r"\s*# shellcheck ")


def shipped_script(script: str) -> str:
    """`script` with its comment lines emptied: the same program to bash (its `--pretty-print` of
    both is identical), with the same line numbers, in about a third fewer compressed bytes of the
    16 KB EC2 allows for user data. The repository keeps the comments; the host runs the code. The
    shebang, shellcheck's directives and here-document bodies (data, whatever their lines start
    with) are kept."""
    kept: list[str] = []
    heredoc_end: str | None = None
    strip_tabs = False
    for number, line in enumerate(script.splitlines(keepends=True)):
        if heredoc_end is not None:
            kept.append(line)
            # `<<-` allows tabs before the closing word.
            if (line.lstrip("\t") if strip_tabs else line).rstrip("\n") == heredoc_end:
                heredoc_end = None
            continue
        is_comment = line.lstrip().startswith("#")
        if number == 0 or not is_comment or _KEPT_COMMENT.match(line):
            kept.append(line)
        else:
            kept.append("\n")
        if not is_comment and (heredoc := _HEREDOC.search(line)):
            strip_tabs, heredoc_end = heredoc.group(1) == "-", heredoc.group(3)
    return "".join(kept)


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstring_lines(node: ast.AST, lines: list[str]) -> range:
    """The line numbers of `node`'s docstring where they hold nothing else and code follows in its
    body (emptied, a docstring alone would leave a body Python refuses); none otherwise."""
    if not isinstance(node, _DOCUMENTED) or len(node.body) < 2 or not ast.get_docstring(node):
        return range(0)
    docstring = node.body[0]
    first, last = docstring.lineno, docstring.end_lineno or docstring.lineno
    before = lines[first - 1][: docstring.col_offset]
    after = lines[last - 1][docstring.end_col_offset :]
    if before.strip() or after.strip() or node.body[1].lineno <= last:
        return range(0)
    return range(first, last + 1)


def shipped_python(source: str) -> str:
    """`source` with its comment lines and docstrings emptied, as `shipped_script` does for the
    shell: the same syntax tree to Python, less the docstrings, every node on its line and column
    (tracebacks on the host point at the repository's lines)."""
    lines = source.splitlines(keepends=True)
    emptied = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and not token.line[: token.start[1]].strip()
    }
    for node in ast.walk(ast.parse(source)):
        emptied.update(_docstring_lines(node, lines))
    return "".join("\n" if number in emptied else line for number, line in enumerate(lines, 1))


def host_files(host: HostSettings, data_volume_id: str) -> list[HostFile]:
    env = settings_env(host, data_volume_id)
    paths = host.paths
    certificate, certificate_key = certificate_paths(host)
    fail2ban = paths.fail2ban_dir
    unit_values = {
        **env,
        "BOOTSTRAP_COMMAND": _literal_words(bootstrap_command(host)),
        "DATA_MOUNT_UNIT": mount_unit(paths.data_mount),
    }
    return [
        # Root-only: it names the key parameters and maps the host, which is nobody else's business.
        HostFile(settings_env_path(host), render_settings_env(env), "0600"),
        HostFile(paths.bootstrap, shipped_script(_cloud_init_file("bootstrap.sh")), "0755"),
        HostFile(fetch_keys_path(host), shipped_python(_cloud_init_file("fetch_keys.py")), "0755"),
        HostFile(
            f"{paths.systemd_unit_dir}/{QDRANT_UNIT}",
            _cloud_init_file(QDRANT_UNIT).format_map(env),
        ),
        HostFile(
            f"{paths.systemd_unit_dir}/{BOOTSTRAP_UNIT}",
            _cloud_init_file(BOOTSTRAP_UNIT).format_map(unit_values),
        ),
        *(
            HostFile(
                drop_in_path(host, unit), _cloud_init_file(DATA_VOLUME_DROP_IN).format_map(env)
            )
            for unit in DATA_VOLUME_UNITS
        ),
        HostFile(paths.metrics_publisher, shipped_python(_cloud_init_file("metrics.py")), "0755"),
        HostFile(converge_path(host), shipped_python(_cloud_init_file("converge.py")), "0755"),
        HostFile(
            f"{paths.systemd_unit_dir}/{METRICS_UNIT}",
            _cloud_init_file(METRICS_UNIT).format_map(
                {
                    "METRICS_COMMAND": _literal_words(
                        (paths.metrics_publisher, settings_env_path(host))
                    )
                }
            ),
        ),
        HostFile(f"{paths.systemd_unit_dir}/{METRICS_TIMER}", _cloud_init_file(METRICS_TIMER)),
        HostFile(
            audit_shipper_path(host), shipped_python(_cloud_init_file("audit_shipper.py")), "0755"
        ),
        HostFile(
            f"{paths.systemd_unit_dir}/{AUDIT_SHIPPER_UNIT}",
            _cloud_init_file(AUDIT_SHIPPER_UNIT).format_map(
                {
                    **env,
                    "AUDIT_SHIPPER_COMMAND": _literal_words(
                        (audit_shipper_path(host), settings_env_path(host))
                    ),
                }
            ),
        ),
        HostFile(
            f"{paths.systemd_unit_dir}/{AUDIT_SHIPPER_TIMER}", _cloud_init_file(METRICS_TIMER)
        ),
        HostFile(f"{fail2ban}/{AUTH_FILTER}", _cloud_init_file(f"fail2ban/{AUTH_FILTER}")),
        HostFile(f"{fail2ban}/{JAIL}", _cloud_init_file(f"fail2ban/{JAIL}").format_map(env)),
        HostFile(env["NGINX_HTTP_SITE"], render_http_site(host)),
        HostFile(env["NGINX_TLS_SITE"], render_tls_site(host, certificate, certificate_key)),
    ]


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, so the user data reads like the files it carries."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def source_env(host: HostSettings, data_volume_id: str, source: ConfigSource) -> dict[str, str]:
    """The loader's settings: only what the machine itself is (a restore onto another volume must
    still replace it), where its configuration is, and the fixed paths the converge program
    needs before it has read any."""
    paths = host.paths
    loader = (source_env_path(host), loader_path(host), *_loader_units(host))
    return {
        "AWS_REGION": source.region,
        "CONFIG_BUCKET": source.bucket,
        "CONFIG_KEY": source.config_key,
        "STATUS_KEY": source.status_key,
        "DATA_VOLUME_ID": data_volume_id,
        # Nothing here reads it: it makes a new domain a new machine. The TLS site names the
        # domain's certificate, which a converge run cannot validate (`nginx -t`) before certbot
        # has issued it, while a first boot issues it before it installs that site.
        "DOMAIN": host.domain,
        "HOST_NAME": host.name,
        "SETTINGS_FILE": settings_env_path(host),
        "BOOTSTRAP": paths.bootstrap,
        "CONVERGE": converge_path(host),
        "BOOTSTRAP_UNIT": BOOTSTRAP_UNIT,
        "UNIT_DIR": paths.systemd_unit_dir,
        "FAIL2BAN_DIR": paths.fail2ban_dir,
        "READY_MARKER": paths.ready_marker,
        "CONVERGE_STATE": state_path(host, CONVERGE_STATE),
        "LAST_GOOD": state_path(host, LAST_GOOD),
        "MANAGED_ROOTS": _words(managed_roots(host)),
        "LOADER_FILES": _words(loader),
    }


def _loader_units(host: HostSettings) -> tuple[str, str]:
    unit_dir = host.paths.systemd_unit_dir
    return f"{unit_dir}/{CONVERGE_UNIT}", f"{unit_dir}/{CONVERGE_TIMER}"


def loader_files(host: HostSettings, data_volume_id: str, source: ConfigSource) -> list[HostFile]:
    """The user data's files: what fetches and applies the rest."""
    service, timer = _loader_units(host)
    command = {"LOADER_COMMAND": _literal_words(loader_command(host))}
    return [
        # Root-only, as settings.env: it maps the host.
        HostFile(
            source_env_path(host),
            render_settings_env(source_env(host, data_volume_id, source)),
            "0600",
        ),
        HostFile(loader_path(host), shipped_python(_cloud_init_file("loader.py")), "0755"),
        HostFile(service, _without_comments(_cloud_init_file(CONVERGE_UNIT).format_map(command))),
        HostFile(timer, _without_comments(_cloud_init_file(CONVERGE_TIMER))),
    ]


def _without_comments(unit: str) -> str:
    """A unit file as systemd reads it, less the comment lines the repository keeps for readers:
    the user data's bytes are few."""
    return "".join(line for line in unit.splitlines(keepends=True) if not line.startswith("#"))


def render_user_data(host: HostSettings, data_volume_id: str, source: ConfigSource) -> str:
    cloud_config = {
        "write_files": [
            {
                "path": f.path,
                "content": f.content,
                "permissions": f.permissions,
                "owner": "root:root",
            }
            for f in loader_files(host, data_volume_id, source)
        ],
        # Without waiting: a first run may install boto3 and hand over to the bootstrap, and
        # cloud-final (this runcmd) must end. `enable` reloads systemd first, which has not seen
        # the units cloud-init just wrote. The service has no [Install]: the timer runs it.
        "runcmd": [
            ["systemctl", "enable", "--now", "--no-block", CONVERGE_TIMER],
            ["systemctl", "start", "--no-block", CONVERGE_UNIT],
        ],
    }
    return "#cloud-config\n" + yaml.dump(
        cloud_config, Dumper=_BlockStyleDumper, sort_keys=False, width=1000
    )


def ec2_user_data(host: HostSettings, data_volume_id: str, source: ConfigSource) -> str:
    """What EC2 receives (pulumi-aws `user_data_base64`): the cloud-config gzip-compressed, then
    base64-encoded for the API.

    EC2 refuses more than 16 KB of user data before base64 (EC2 User Guide, "Work with instance
    user data"); this project keeps it under 4 KB compressed, so later features still fit.
    cloud-init recognises gzip by its magic bytes and decompresses before reading the
    `#cloud-config` header. mtime=0 keeps the bytes a function of the text alone: a timestamp would
    change the user data on every `pulumi up`, and with it replace the instance.
    """
    text = render_user_data(host, data_volume_id, source)
    compressed = gzip.compress(text.encode(), compresslevel=9, mtime=0)
    return base64.b64encode(compressed).decode("ascii")
