"""Real certbot renewals against the lab's pebble (the bootstrap obtains the certificate).

Each call names the ACME server explicitly: without `--server`, `renew` would go to Let's Encrypt
staging, and the lab must never leave loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.settings import HostSettings
from lab.processes import clean_env, require_tools, run


@dataclass(frozen=True)
class Certbot:
    host: HostSettings
    """`acme_server` and `paths.letsencrypt_dir` (certbot's config dir) come from here."""
    acme_trust: Path
    """The CA of the ACME server's own listener."""

    def renew(self) -> None:
        """Renew now, whatever the expiry; the stored deploy hook reloads nginx."""
        self._certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")

    def _certbot(self, *arguments: str) -> None:
        require_tools("certbot")
        paths = self.host.paths
        run(
            [
                "certbot", *arguments,
                "--non-interactive",
                "--server", self.host.acme_server,
                "--config-dir", paths.letsencrypt_dir,
                "--work-dir", paths.certbot_work_dir,
                "--logs-dir", paths.certbot_logs_dir,
            ],
            env=clean_env(REQUESTS_CA_BUNDLE=str(self.acme_trust)),
        )  # fmt: skip
