"""Route 53 for certbot's plugin on loopback: moto behind Route 53's real name over TLS, whose record
changes reach pebble's DNS server (pebble-challtestsrv) before the API answers.

Debian 12's boto3 (1.26, what the distro's certbot plugin imports) predates `AWS_ENDPOINT_URL`, so
the plugin can only be sent elsewhere by name: the bootstrap's mount namespace resolves
`route53.amazonaws.com` to `FRONT_ADDRESS`, where this front listens on HTTPS's port with a
certificate for that name from a CA given to botocore as `AWS_CA_BUNDLE`. That port is free only in
a network namespace of the lab's own (`python -m lab.dns01` runs in one).

Route 53 answers a change PENDING and turns it INSYNC once its name servers serve it. Here the front
copies the TXT challenge records of every zone into challtestsrv (pebble's resolver) after each
change batch and before it passes moto's answer back: a change the plugin sees is already what pebble
resolves, so nothing races. It also notes every call as IAM would authorize it (action, resource,
the change batch's condition keys), so a test can ask an IAM evaluator about each.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab import pki
from model.acme_dns import CHALLENGE_LABEL, CHANGE_KEYS

ROUTE53_HOST = "route53.amazonaws.com"
# Not 127.0.0.1: the lab's nginx takes HTTPS's port there, as the VM's does.
FRONT_ADDRESS = "127.0.0.2"
HTTPS_PORT = 443
# Hop-by-hop headers, which a proxy must not pass on (RFC 9110, 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Call:
    """One API call as IAM sees it."""

    action: str
    resource: str
    context: dict[str, list[str]]


def authorized_call(method: str, path: str, body: bytes) -> Call:
    """What IAM authorizes a Route 53 REST call as (Route 53 API reference: the request URIs;
    Developer Guide: the ChangeResourceRecordSets condition keys and their normalization)."""
    parts = path.split("?", 1)[0].strip("/").split("/")[1:]
    if parts == ["hostedzone"] and method == "GET":
        return Call("route53:ListHostedZones", "*", {})
    if len(parts) == 2 and parts[0] == "change":
        return Call("route53:GetChange", f"arn:aws:route53:::change/{parts[1]}", {})
    if len(parts) == 3 and parts[0] == "hostedzone" and parts[2] == "rrset" and method == "POST":
        changes = ElementTree.fromstring(body).iter()
        values: dict[str, list[str]] = {field: [] for field in CHANGE_KEYS.values()}
        for element in changes:
            tag = element.tag.rsplit("}", 1)[-1]
            text = (element.text or "").strip()
            if tag == "Action":
                values["actions"].append(text)
            elif tag == "Type":
                values["types"].append(text)
            elif tag == "Name":
                values["names"].append(text.lower().rstrip("."))
        context = {key: sorted(set(values[field])) for key, field in CHANGE_KEYS.items()}
        return Call(
            "route53:ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{parts[1]}", context
        )
    return Call(f"route53:{method} {path}", "*", {})


@dataclass(frozen=True)
class Route53:
    moto_endpoint: str
    """moto itself, plain HTTP: how the lab (not the host) reads and writes zones."""
    ca: Path
    """The front's CA: `AWS_CA_BUNDLE` for the plugin."""
    calls: list[Call]
    """Every call through the front, in order."""

    def client(self) -> Any:
        import boto3  # only the lab needs it

        return boto3.client(
            "route53",
            region_name="us-east-1",
            endpoint_url=self.moto_endpoint,
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
        )

    def create_zone(self, name: str) -> str:
        zone = self.client().create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]
        return str(zone["Id"]).rsplit("/", 1)[-1]

    def challenge_records(self) -> dict[str, list[str]]:
        """Every `_acme-challenge` TXT record in every zone: name (no trailing dot) -> values."""
        client = self.client()
        records: dict[str, list[str]] = {}
        for zone in client.list_hosted_zones()["HostedZones"]:
            pages = client.get_paginator("list_resource_record_sets").paginate(
                HostedZoneId=zone["Id"]
            )
            for page in pages:
                for record in page["ResourceRecordSets"]:
                    name = record["Name"].rstrip(".")
                    if record["Type"] == "TXT" and name.startswith(CHALLENGE_LABEL):
                        # Route 53 keeps TXT values in their zone-file quotes.
                        records[name] = [r["Value"].strip('"') for r in record["ResourceRecords"]]
        return records


class _Front(ThreadingHTTPServer):
    def __init__(self, route53: Route53, dns_management_url: str, tls: ssl.SSLContext) -> None:
        super().__init__((FRONT_ADDRESS, HTTPS_PORT), _FrontHandler)
        self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.route53 = route53
        self.dns_management_url = dns_management_url
        self.published: set[str] = set()
        self.lock = threading.Lock()

    def publish_challenges(self) -> None:
        """Make challtestsrv answer exactly the challenge records moto holds."""
        with self.lock:
            records = self.route53.challenge_records()
            for name in self.published | set(records):
                self._manage("clear-txt", {"host": f"{name}."})
                for value in records.get(name, []):
                    self._manage("set-txt", {"host": f"{name}.", "value": value})
            self.published = set(records)

    def _manage(self, command: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"{self.dns_management_url}/{command}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5):
            pass


class _FrontHandler(BaseHTTPRequestHandler):
    server: _Front
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.server.route53.calls.append(authorized_call(self.command, self.path, body or b""))
        moto = urlsplit(self.server.route53.moto_endpoint)
        connection = http.client.HTTPConnection(moto.netloc, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        connection.request(self.command, self.path, body=body, headers=headers)
        reply = connection.getresponse()
        content = reply.read()
        if (
            self.command == "POST"
            and self.path.rstrip("/").endswith("/rrset")
            and reply.status == 200
        ):
            self.server.publish_challenges()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        connection.close()

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: certbot's log says what it asked."""


@contextmanager
def route53_front(workdir: Path, moto_endpoint: str, dns_management_url: str) -> Iterator[Route53]:
    """The front on `FRONT_ADDRESS:443` in front of moto at `moto_endpoint`; stops on exit."""
    ca = pki.make_ca(workdir / "ca", "secure-qdrant-lab-route53")
    listener = pki.issue(ca, workdir / "listener", [ROUTE53_HOST])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(listener.certificate, listener.key)
    route53 = Route53(moto_endpoint, ca.certificate, [])
    server = _Front(route53, dns_management_url, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield route53
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
