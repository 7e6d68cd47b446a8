"""DNS-01 for real on this machine: the bootstrap's certificate step with certbot's Route 53 plugin
(Debian's `python3-certbot-dns-route53`) against moto as Route 53, pebble validating the TXT records
through pebble-challtestsrv, nginx serving the certificate on the VM's own ports, then a forced
`certbot renew` by the same path, whose deploy hook reloads nginx.

It runs in a network namespace of its own (`unshare --net`, loopback only, so nothing can leave it),
where the VM's ports are free: nginx takes 443 and 6334 as on the VM, Route 53's stand-in HTTPS's port
on another loopback address (`lab.route53`), and "no port 80" means nothing listens on 80 at all.
The bootstrap itself runs as in `lab.bootstrap` (loop device as the data volume, private mount
namespace), with the lab's domain in a zone moto holds.

`python -m lab.dns01` runs it once and prints what it saw (`--json` for the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lab.bootstrap import EDGE_STEPS, BootstrapLab, edge_bootstrap_lab, moto_ssm
from lab.certbot import Certbot
from lab.edge import lab_target
from lab.processes import LOOPBACK, LabUnavailable, accepts_connections, require_tools, run
from lab.route53 import FRONT_ADDRESS, ROUTE53_HOST, route53_front
from model.settings import PORTS, HostSettings
from verify.checks import check_certificate
from verify.client import certificate_dns_names

LAB_ZONE = "lab.test"
LAB_DNS01_DOMAIN = f"qdrant.{LAB_ZONE}"
# A wildcard under the zone: proven at `_acme-challenge.lab.test`, beside the domain's own record.
LAB_CERTIFICATE_NAMES = (f"*.{LAB_ZONE}",)
# Where the domain points on the host: elsewhere (TEST-NET-1), as for a host behind NAT. HTTP-01's
# DNS wait would never end; DNS-01 must not care.
ELSEWHERE = "192.0.2.1"
_IN_NAMESPACE = "--in-namespace"
_TCP_LISTEN = "0A"
RELOAD_WAIT_SECONDS = 15.0


def dns01_host(host: HostSettings) -> HostSettings:
    return dataclasses.replace(
        host,
        domain=LAB_DNS01_DOMAIN,
        acme_challenge="dns-01",
        certificate_names=LAB_CERTIFICATE_NAMES,
    )


def served_certificate(host: HostSettings, client_ca: Path) -> dict[str, Any]:
    """The certificate nginx presents on the HTTPS port for the domain, verified against `client_ca`."""
    context = ssl.create_default_context(cafile=str(client_ca))
    with socket.create_connection((LOOPBACK, host.ports.https), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host.domain) as tls:
            certificate: dict[str, Any] = tls.getpeercert() or {}
    return {
        "names": certificate_dns_names(certificate),
        "serial": certificate.get("serialNumber", ""),
    }


def listening_tcp_ports() -> list[int]:
    """Every TCP port something listens on in this network namespace, from the kernel's tables."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == _TCP_LISTEN:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return sorted(ports)


def renewal_authenticator(lab: BootstrapLab) -> str:
    renewal = lab.view(f"{lab.host.paths.letsencrypt_dir}/renewal/{lab.host.domain}.conf")
    return next(
        line.split("=", 1)[1].strip()
        for line in renewal.read_text().splitlines()
        if line.startswith("authenticator")
    )


def _wait_for_new_serial(host: HostSettings, client_ca: Path, old: str) -> dict[str, Any]:
    deadline = time.monotonic() + RELOAD_WAIT_SECONDS
    served = served_certificate(host, client_ca)
    while served["serial"] == old and time.monotonic() < deadline:
        time.sleep(0.2)
        served = served_certificate(host, client_ca)
    return served


def scenario(workdir: Path) -> dict[str, Any]:
    """Issue, serve and renew over DNS-01; what each stage showed. Must run in its own network
    namespace (the caller's `unshare --net`)."""
    require_tools("ip")
    run(["ip", "link", "set", "lo", "up"])
    if accepts_connections(PORTS.https):
        raise LabUnavailable("the DNS-01 lab needs a network namespace of its own (unshare --net)")
    report: dict[str, Any] = {"domain": LAB_DNS01_DOMAIN, "ports": dataclasses.asdict(PORTS)}
    with ExitStack() as stack:
        ssm = stack.enter_context(moto_ssm(workdir / "moto"))
        edge = stack.enter_context(
            edge_bootstrap_lab(
                workdir,
                ssm,
                ports=PORTS,
                configure=dns01_host,
                names={ROUTE53_HOST: FRONT_ADDRESS, LAB_DNS01_DOMAIN: ELSEWHERE},
            )
        )
        route53 = stack.enter_context(
            route53_front(workdir / "route53", ssm.endpoint, edge.pebble.dns_management_url)
        )
        report["zone_id"] = route53.create_zone(LAB_ZONE)
        report["listening_before"] = listening_tcp_ports()
        # Debian's botocore trusts the front through its own variable, as it would a proxy's CA.
        lab = dataclasses.replace(
            edge.lab, environment={**edge.lab.environment, "AWS_CA_BUNDLE": str(route53.ca)}
        )
        started = time.monotonic()
        bootstrap = lab.run(EDGE_STEPS)
        report["seconds"] = {"bootstrap": round(time.monotonic() - started, 2)}
        report["bootstrap"] = {"returncode": bootstrap.returncode, "log": bootstrap.stderr}
        if bootstrap.returncode != 0:
            return report
        report["authenticator"] = renewal_authenticator(lab)
        report["issued"] = served_certificate(lab.host, edge.client_ca)
        target = lab_target(lab.host, lab.api_key, lab.read_only_api_key, edge.client_ca)
        names = (lab.host.domain, *lab.host.certificate_names)
        verdict = check_certificate(dataclasses.replace(target, certificate_names=names))
        report["certificate_check"] = {"status": verdict.status.name, "detail": verdict.detail}
        report["records_after_issuance"] = route53.challenge_records()
        report["listening"] = listening_tcp_ports()

        certbot = Certbot(
            lab.host,
            edge.pebble.listener_ca,
            environment={**lab.aws_environment, "AWS_CA_BUNDLE": str(route53.ca)},
            wrap=lambda argv: lab.namespace.command(*argv),
        )
        started = time.monotonic()
        certbot.renew()
        report["seconds"]["renewal"] = round(time.monotonic() - started, 2)
        report["renewed"] = _wait_for_new_serial(
            lab.host, edge.client_ca, report["issued"]["serial"]
        )
        report["records_after_renewal"] = route53.challenge_records()
        rerun = lab.run(("certificate",))
        report["rerun"] = {"returncode": rerun.returncode, "log": rerun.stderr}
        report["route53_calls"] = [dataclasses.asdict(call) for call in route53.calls]
    return report


def _print(report: dict[str, Any]) -> None:
    print(report["bootstrap"]["log"], end="", file=sys.stderr)
    for key in (
        "authenticator",
        "issued",
        "renewed",
        "listening",
        "records_after_renewal",
        "seconds",
    ):
        if key in report:
            print(f"{key}: {report[key]}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.dns01", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--workdir", type=Path, help="keep every file and log here (default: removed)"
    )
    parser.add_argument(_IN_NAMESPACE, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.in_namespace:
        if os.geteuid() != 0:
            print("lab.dns01: needs root (network namespace, loop device, mounts)", file=sys.stderr)
            return 2
        require_tools("unshare")
        command = ["unshare", "--net", "--", sys.executable, "-m", "lab.dns01", _IN_NAMESPACE]
        return subprocess.run([*command, *argv], check=False).returncode
    with ExitStack() as stack:
        workdir = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="secure-qdrant-dns01-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        # nginx's workers (user nobody) read the certificate's directory.
        workdir.chmod(0o755)
        try:
            report = scenario(workdir)
        except LabUnavailable as missing:
            print(
                json.dumps({"unavailable": str(missing)}) if args.json else f"lab.dns01: {missing}"
            )
            return 3
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0 if report["bootstrap"]["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
