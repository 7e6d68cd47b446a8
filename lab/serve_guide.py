"""What `python -m lab --serve` prints: where the lab listens, what to trust, where each credential
is, and commands that work when pasted as they are.

The lab's domain resolves to loopback on this machine without any help (see `lab.edge.LAB_DOMAIN`),
so the snippets are the README's own examples with only the host, the ports and the lab's CA
changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.credentials import Credential
from model.settings import HostSettings

READY_LINE = "serving; Ctrl-C (or SIGTERM) stops everything and removes these files"
PYTHON_HEADING = "Python (qdrant-client), paste into python3:"


@dataclass(frozen=True)
class Examples:
    """What the snippets show: `key` sent as `api-key`, `token` as a Bearer token reading
    `collection`."""

    key: Credential
    token: Credential
    collection: str


def render_guide(
    host: HostSettings,
    ca_file: Path,
    credentials_dir: Path,
    credentials: Sequence[Credential],
    examples: Examples,
) -> str:
    """Everything a caller needs, with the secrets only as paths."""
    ports, domain = host.ports, host.domain
    rest = f"https://{domain}:{ports.https}"
    width = max(len(credential.label) for credential in credentials)
    key_file, token_file = (credentials_dir / c.file_name for c in (examples.key, examples.token))
    return "\n".join(
        [
            f"REST:  {rest}",
            f"gRPC:  {domain}:{ports.grpc_tls} (TLS)",
            f"HTTP:  http://{domain}:{ports.http} (ACME challenges; anything else redirects to REST)",
            f"CA:    {ca_file} (pebble's root for this run only)",
            "",
            "Credentials, each in an owner-only file:",
            *(
                f"  {c.label:{width}}  {credentials_dir / c.file_name}  {c.scope}"
                for c in credentials
            ),
            "",
            "curl:",
            f'  curl --cacert {ca_file} -H "api-key: $(cat {key_file})" {rest}/collections',
            (
                f'  curl --cacert {ca_file} -H "Authorization: Bearer $(cat {token_file})" '
                f"{rest}/collections/{examples.collection}"
            ),
            "",
            PYTHON_HEADING,
            _python_example(host, ca_file, token_file, examples.collection),
            "",
            READY_LINE,
        ]
    )


def _python_example(
    host: HostSettings, ca_file: Path, credential_file: Path, collection: str
) -> str:
    ports = host.ports
    # No blank line inside: pasted into the interactive interpreter, one would end the input.
    return f"""\
import ssl
from pathlib import Path
from qdrant_client import QdrantClient
host, token = {host.domain!r}, Path({str(credential_file)!r}).read_text()
ca = {str(ca_file)!r}
# The client's start-up version check cannot be told to trust the lab's CA: it is skipped.
lab_ca = dict(verify=ssl.create_default_context(cafile=ca), check_compatibility=False)
grpc = QdrantClient(host=host, port={ports.https}, grpc_port={ports.grpc_tls}, prefer_grpc=True, \
https=True, api_key=token, grpc_options={{"root_certificates": Path(ca).read_bytes()}}, **lab_ca)
rest = QdrantClient(url=f"https://{{host}}", port={ports.https}, api_key=token, **lab_ca)
print(grpc.get_collections(), rest.count({collection!r}))"""
