"""Real certbot against the lab's pebble: `certonly --webroot` as on the VM, every file in scratch.

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
    scratch: Path
    """For certbot's work and logs dirs."""

    def issue(self, deploy_hook: str) -> None:
        """Obtain an ECDSA certificate over HTTP-01 through the webroot nginx serves on port 80."""
        host = self.host
        self._certbot(
            "certonly",
            "--webroot", "--webroot-path", host.paths.acme_webroot,
            "--domain", host.domain,
            # Pinned lineage name, so the certificate path never gains a `-0001` suffix.
            "--cert-name", host.domain,
            "--email", host.acme_email, "--agree-tos", "--no-eff-email",
            "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
            "--deploy-hook", deploy_hook,
        )  # fmt: skip

    def renew(self) -> None:
        """Renew now, whatever the expiry; the stored deploy hook reloads nginx."""
        self._certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")

    def _certbot(self, *arguments: str) -> None:
        require_tools("certbot")
        Path(self.host.paths.acme_webroot).mkdir(parents=True, exist_ok=True)
        run(
            [
                "certbot", *arguments,
                "--non-interactive",
                "--server", self.host.acme_server,
                "--config-dir", self.host.paths.letsencrypt_dir,
                "--work-dir", str(self.scratch / "work"),
                "--logs-dir", str(self.scratch / "logs"),
            ],
            env=clean_env(REQUESTS_CA_BUNDLE=str(self.acme_trust)),
        )  # fmt: skip
