"""Let's Encrypt's test ACME server (pebble) on loopback, resolving every name to 127.0.0.1.

pebble-challtestsrv is only the DNS server here: it answers A queries for any name (the lab's
domain) with 127.0.0.1 (or the address given) and has no AAAA answers, so pebble validates HTTP-01 over IPv4 on the lab's
http port, exactly as Let's Encrypt would on port 80 of the VM. For DNS-01 it answers the TXT
records its management API is given (`lab.route53` copies them from the lab's Route 53).
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab import pki
from lab.processes import LOOPBACK, Service, clean_env, free_port, require_tools

# 89 days, like Let's Encrypt; pebble's 5-year default fails TLS scanners' lifetime checks.
CERTIFICATE_VALIDITY_SECONDS = 7689600

_PEBBLE_ENV = {
    "PEBBLE_VA_NOSLEEP": "1",
    # The lab tests issuance, not nonce retries or pebble's random authorization reuse, which
    # would otherwise skip validation on some runs.
    "PEBBLE_WFE_NONCEREJECT": "0",
    "PEBBLE_AUTHZREUSE": "0",
}


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str
    listener_ca: Path
    """Trust anchor for pebble's own API (certbot's REQUESTS_CA_BUNDLE), not for issued certs."""
    dns_management_url: str
    """pebble-challtestsrv's management API (plain HTTP): `set-txt`, `clear-txt`."""

    def issuing_root(self) -> bytes:
        """The root that signs issued certificates; pebble makes a new one at every start."""
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        with urllib.request.urlopen(f"{self.management_url}/roots/0", context=context) as reply:
            root: bytes = reply.read()
        return root


@contextmanager
def running_pebble(
    workdir: Path,
    validation_port: int,
    validity_seconds: int = CERTIFICATE_VALIDITY_SECONDS,
    validation_address: str = LOOPBACK,
    listener_names: Sequence[str] = (),
) -> Iterator[Pebble]:
    """pebble validating HTTP-01 on `validation_address:validation_port`, plus its DNS; both stop
    on exit. `listener_names` are further names its API's certificate carries (the address a
    booted guest reaches it by)."""
    require_tools("pebble", "pebble-challtestsrv", "openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca(workdir / "listener", "pebble-listener-ca")
    listener = pki.issue(ca, workdir / "listener", ["localhost", LOOPBACK, *listener_names])
    acme, management, dns, dns_management = (free_port() for _ in range(4))
    config = workdir / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{LOOPBACK}:{acme}",
                    "managementListenAddress": f"{LOOPBACK}:{management}",
                    "certificate": str(listener.certificate),
                    "privateKey": str(listener.key),
                    "httpPort": validation_port,
                    # Only HTTP-01 is used; this port just has to be one nothing listens on.
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                    "certificateValidityPeriod": validity_seconds,
                }
            },
            indent=2,
        )
    )
    with ExitStack() as stack:
        dns_server = stack.enter_context(
            Service(
                "pebble-challtestsrv",
                [
                    "pebble-challtestsrv",
                    "-dns01", f"{LOOPBACK}:{dns}",
                    "-http01", "", "-https01", "", "-tlsalpn01", "",
                    "-management", f"{LOOPBACK}:{dns_management}",
                    "-defaultIPv4", validation_address,
                    "-defaultIPv6", "",
                ],
                workdir / "challtestsrv.log",
            )
        )  # fmt: skip
        dns_server.wait_for_port(dns_management)
        pebble = stack.enter_context(
            Service(
                "pebble",
                ["pebble", "-config", str(config), "-dnsserver", f"{LOOPBACK}:{dns}"],
                workdir / "pebble.log",
                env=clean_env(**_PEBBLE_ENV),
            )
        )
        pebble.wait_for_port(acme)
        pebble.wait_for_port(management)
        yield Pebble(
            directory_url=f"https://{LOOPBACK}:{acme}/dir",
            management_url=f"https://{LOOPBACK}:{management}",
            listener_ca=ca.certificate,
            dns_management_url=f"http://{LOOPBACK}:{dns_management}",
        )
