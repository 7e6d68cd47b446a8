"""Throw-away certificates for the lab, minted with the openssl CLI (nothing is ever checked in)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.processes import require_tools, run

_LIFETIME_DAYS = "30"


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class CertificateInfo:
    serial: str
    not_after: dt.datetime


def make_ca(directory: Path, name: str) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(directory / f"{name}.pem", directory / f"{name}.key")
    config = _config(
        directory / f"{name}.cnf",
        name,
        "basicConstraints = critical,CA:TRUE",
        "keyUsage = critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier = hash",
    )
    _openssl(
        "req", "-x509", "-new", "-config", str(config),
        "-extensions", "ext", "-days", _LIFETIME_DAYS, "-set_serial", _serial(),
        *_new_ec_key(pair.key), "-out", str(pair.certificate),
    )  # fmt: skip
    return pair


def issue(ca: KeyPair, directory: Path, names: Sequence[str]) -> KeyPair:
    """A server certificate for `names` (host names and IP addresses), signed by `ca`."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = names[0]
    pair = KeyPair(directory / f"{stem}.pem", directory / f"{stem}.key")
    csr = directory / f"{stem}.csr"
    config = _config(
        directory / f"{stem}.cnf",
        stem,
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = serverAuth",
        f"subjectAltName = {', '.join(_san(name) for name in names)}",
    )
    _openssl("req", "-new", "-config", str(config), *_new_ec_key(pair.key), "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.certificate),
        "-CAkey", str(ca.key), "-set_serial", _serial(), "-days", _LIFETIME_DAYS,
        "-extfile", str(config), "-extensions", "ext", "-out", str(pair.certificate),
    )  # fmt: skip
    return pair


def certificate_info(certificate: bytes) -> CertificateInfo:
    """Serial and expiry of a PEM or DER certificate."""
    form = "PEM" if certificate.lstrip().startswith(b"-----BEGIN") else "DER"
    output = _openssl("x509", "-inform", form, "-noout", "-serial", "-enddate", stdin=certificate)
    fields = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    not_after = dt.datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z")
    return CertificateInfo(fields["serial"], not_after.replace(tzinfo=dt.UTC))


def _openssl(*arguments: str, stdin: bytes = b"") -> str:
    require_tools("openssl")
    return run(["openssl", *arguments], stdin=stdin)


def _new_ec_key(key: Path) -> tuple[str, ...]:
    return ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key))


def _serial() -> str:
    return f"0x{secrets.randbits(64):x}"


def _san(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


def _config(path: Path, common_name: str, *extensions: str) -> Path:
    # An explicit config: the system openssl.cnf would add its own v3_ca extensions.
    sections = ["[req]", "distinguished_name = dn", "prompt = no", "[dn]", f"CN = {common_name}"]
    path.write_text("\n".join([*sections, "[ext]", *extensions]) + "\n")
    return path
