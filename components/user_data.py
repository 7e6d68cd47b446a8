"""The VM's user data: a `#cloud-config` that writes the host's files and runs the bootstrap.

Pure: `HostSettings` in, text out. The same `host_files` feed the loopback lab, so what the lab runs
is byte for byte what the VM runs. User data is readable by anyone with `ec2:DescribeInstanceAttribute`
and by every process on the VM via IMDS, so it carries names of secrets, never their values.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.settings import DATA_VOLUME_DEVICE, HostSettings

CLOUD_INIT_DIR = Path(__file__).resolve().parent.parent / "cloud-init"
SETTINGS_ENV = "/etc/secure-qdrant/settings.env"
BOOTSTRAP = "/usr/local/sbin/secure-qdrant-bootstrap"


@dataclass(frozen=True)
class HostFile:
    path: str
    content: str
    permissions: str = "0644"


def settings_env(host: HostSettings, data_volume_id: str) -> dict[str, str]:
    """Every value the bootstrap script reads, from the one settings object."""
    ports, paths, limits = host.ports, host.paths, host.limits
    return {
        "DOMAIN": host.domain,
        "ACME_EMAIL": host.acme_email,
        "ACME_SERVER": host.acme_server,
        "QDRANT_IMAGE": host.qdrant_image,
        "AWS_REGION": host.region,
        "API_KEY_PARAMETER": host.api_key_parameter,
        "READ_ONLY_API_KEY_PARAMETER": host.read_only_api_key_parameter,
        "DATA_VOLUME_ID": data_volume_id,
        "DATA_VOLUME_DEVICE": DATA_VOLUME_DEVICE,
        "DATA_MOUNT": paths.data_mount,
        "QDRANT_STORAGE": paths.qdrant_storage,
        "QDRANT_SNAPSHOTS": paths.qdrant_snapshots,
        "LETSENCRYPT_DIR": paths.letsencrypt_dir,
        "ACME_WEBROOT": paths.acme_webroot,
        "SECRETS_DIR": paths.secrets_dir,
        "NGINX_CONF_DIR": paths.nginx_conf_dir,
        "NGINX_LOG_DIR": paths.nginx_log_dir,
        "READY_MARKER": paths.ready_marker,
        "SSH_PORT": str(ports.ssh),
        "HTTP_PORT": str(ports.http),
        "HTTPS_PORT": str(ports.https),
        "GRPC_TLS_PORT": str(ports.grpc_tls),
        "QDRANT_REST_PORT": str(ports.qdrant_rest),
        "QDRANT_GRPC_PORT": str(ports.qdrant_grpc),
        "ADMIN_CIDRS": " ".join(host.admin_cidrs),
        "MAX_BODY_SIZE_MB": str(limits.max_body_size_mb),
    }


def render_settings_env(values: dict[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def host_files(host: HostSettings, data_volume_id: str) -> list[HostFile]:
    return [
        HostFile(SETTINGS_ENV, render_settings_env(settings_env(host, data_volume_id)), "0600"),
        HostFile(BOOTSTRAP, (CLOUD_INIT_DIR / "bootstrap.sh").read_text(), "0755"),
    ]


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, so the user data reads like the files it carries."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def render_user_data(host: HostSettings, data_volume_id: str) -> str:
    cloud_config = {
        "write_files": [
            {"path": f.path, "content": f.content, "permissions": f.permissions, "owner": "root:root"}
            for f in host_files(host, data_volume_id)
        ],
        "runcmd": [[BOOTSTRAP]],
    }
    return "#cloud-config\n" + yaml.dump(
        cloud_config, Dumper=_BlockStyleDumper, sort_keys=False, width=1000
    )
