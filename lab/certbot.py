"""Real certbot renewals against the lab's pebble (the bootstrap obtains the certificate).

Each call names the ACME server explicitly: without `--server`, `renew` would go to Let's Encrypt
staging, and the lab must never leave loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.processes import clean_env, require_tools, run
from model.settings import HostSettings


@dataclass(frozen=True)
class Certbot:
    host: HostSettings
    """`acme_server` and `paths.letsencrypt_dir` (certbot's config dir) come from here."""
    acme_trust: Path
    """The CA of the ACME server's own listener."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """More of certbot's environment (a DNS plugin's credentials and endpoint trust)."""
    wrap: Callable[[list[str]], list[str]] = list
    """Runs the command elsewhere (inside the mount namespace holding the data volume)."""

    def renew(self) -> None:
        """Renew now, whatever the expiry; the stored deploy hook reloads nginx."""
        self._certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")

    def _certbot(self, *arguments: str) -> None:
        require_tools("certbot")
        paths = self.host.paths
        run(
            self.wrap([
                "certbot", *arguments,
                "--non-interactive",
                "--server", self.host.acme_server,
                "--config-dir", paths.letsencrypt_dir,
                "--work-dir", paths.certbot_work_dir,
                "--logs-dir", paths.certbot_logs_dir,
            ]),
            env=clean_env(REQUESTS_CA_BUNDLE=str(self.acme_trust), **self.environment),
        )  # fmt: skip
