"""The host's configuration as one versioned document: every file the host runs from, bar the few
that fetch it (the user data's).

`pulumi up` publishes the document; the host's converge timer fetches it, checks it, and applies
what changed in place. Pure: `HostSettings` in, text out. It names the secrets' parameters, never
their values: the API keys stay in their SecureString parameters.

The version is a digest of the files alone, so the same settings always give the same version and
the host can tell "nothing to do" from a byte comparison of one string.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from model.settings import HostSettings
from model.user_data import HostFile, host_files

# Bumped when the document's shape changes: a host refuses a schema it does not know rather than
# guess, and keeps serving what it has.
CONFIG_SCHEMA = 1


@dataclass(frozen=True)
class ConfigSource:
    """Where the host fetches its configuration and reports the version it serves."""

    region: str
    bucket: str
    config_key: str
    """The document (`host_config_document`): written by `pulumi up`, read by the host only."""
    status_key: str
    """The host's report (`{"version", "error"}`): written by the host only, read by the deploy
    gate."""


def config_source(region: str, bucket: str, host_name: str) -> ConfigSource:
    return ConfigSource(
        region=region,
        bucket=bucket,
        config_key=f"hosts/{host_name}/config.json",
        status_key=f"hosts/{host_name}/status.json",
    )


@dataclass(frozen=True)
class HostConfig:
    files: tuple[HostFile, ...]

    @property
    def version(self) -> str:
        return config_version(self.files)


def config_version(files: tuple[HostFile, ...]) -> str:
    canonical = json.dumps(
        [[f.path, f.permissions, f.content] for f in sorted(files, key=lambda f: f.path)],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_host_config(host: HostSettings, data_volume_id: str) -> HostConfig:
    return HostConfig(tuple(host_files(host, data_volume_id)))


def host_config_document(config: HostConfig) -> str:
    """The published text: `{"schema", "version", "files": [{"path", "permissions", "content"}]}`,
    files sorted by path."""
    return json.dumps(
        {
            "schema": CONFIG_SCHEMA,
            "version": config.version,
            "files": [
                {"path": f.path, "permissions": f.permissions, "content": f.content}
                for f in sorted(config.files, key=lambda f: f.path)
            ],
        },
        indent=1,
        ensure_ascii=False,
    )
