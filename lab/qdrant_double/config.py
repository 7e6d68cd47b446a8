"""The configuration of one double and its parsing from Qdrant's environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.qdrant_double.audit import AuditConfig
from model.settings import DEFAULT_QDRANT_VERSION, PORTS

TITLE = "qdrant - vector search engine"
QDRANT_STORAGE_PATH = "./storage"
"""Qdrant's own default (`config/config.yaml`): `/qdrant/storage` in its image, which runs from
`/qdrant`."""
QDRANT_SNAPSHOTS_PATH = "./snapshots"
"""Qdrant's own default (`config/config.yaml`): `/qdrant/snapshots` in its image."""


@dataclass(frozen=True)
class DoubleConfig:
    """Keys and listeners of one double. Hosts default to loopback only."""

    api_key: str
    read_only_api_key: str | None = None
    alt_api_key: str | None = None
    """Qdrant's `service.alt_api_key`, for rotation: a second master key and JWT signing key."""
    jwt_rbac: bool = False
    rest_host: str = "127.0.0.1"
    rest_port: int = PORTS.qdrant_rest
    grpc_host: str = "127.0.0.1"
    grpc_port: int = PORTS.qdrant_grpc
    version: str = DEFAULT_QDRANT_VERSION.removeprefix("v")
    log_requests: bool = False
    read_only_writes: bool = False
    """A deliberate bug, for fault injection: global read access may also write."""
    enable_static_content: bool = True
    """Qdrant's `service.enable_static_content`: the web UI under `/dashboard`, public when on."""
    storage_path: str | None = None
    """Qdrant's `storage.storage_path`: data kept there survives a restart. None keeps it in a
    temporary directory that goes with the double."""
    snapshots_path: str | None = None
    enable_snapshot_url_recovery: bool = True
    """Qdrant's `service.enable_snapshot_url_recovery` (on by default): off, recovering a snapshot
    from an http(s) URL is Qdrant's 403."""
    """Qdrant's `storage.snapshots_path`. None keeps snapshots in the storage's `snapshots/`."""
    audit: AuditConfig = AuditConfig()
    """Qdrant's `audit:` section (lib/storage/src/audit.rs): off by default, as in Qdrant."""

    def __post_init__(self) -> None:
        # Qdrant versions disagree on whether "" is a key or "no auth"; either way a
        # double configured like that would hide a broken deployment.
        if not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        if self.read_only_api_key == "":
            raise ValueError("read_only_api_key must be non-empty when set")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> DoubleConfig:
        """Read the keys from the variables real Qdrant uses; ``overrides`` set the rest."""
        api_key = environ.get("QDRANT__SERVICE__API_KEY")
        if api_key is None:
            raise ValueError("QDRANT__SERVICE__API_KEY is not set")
        return cls(
            api_key=api_key,
            read_only_api_key=environ.get("QDRANT__SERVICE__READ_ONLY_API_KEY"),
            # Qdrant takes an empty alt key as none (`AuthKeys::try_create`, src/common/auth/mod.rs).
            alt_api_key=environ.get("QDRANT__SERVICE__ALT_API_KEY") or None,
            jwt_rbac=_env_bool(environ.get("QDRANT__SERVICE__JWT_RBAC", "false")),
            enable_static_content=_env_bool(
                environ.get("QDRANT__SERVICE__ENABLE_STATIC_CONTENT", "true")
            ),
            enable_snapshot_url_recovery=_env_bool(
                environ.get("QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY", "true")
            ),
            storage_path=environ.get("QDRANT__STORAGE__STORAGE_PATH"),
            snapshots_path=environ.get("QDRANT__STORAGE__SNAPSHOTS_PATH"),
            audit=AuditConfig.from_env(environ, _env_bool),
            **overrides,
        )


def unit_environment(unit: str) -> dict[str, str]:
    """The `--env NAME=VALUE` settings a systemd unit's `docker run` hands Qdrant, so that a double
    is configured by the deployed unit itself rather than by a copy of its settings."""
    return dict(setting.split("=", 1) for setting in re.findall(r"--env\s+(QDRANT\w*=\S*)", unit))


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")
