"""The lab's credentials as `python -m lab --serve` hands them out: one owner-only file each.

A secret never goes to the terminal, whose scrollback, shared screens and CI logs keep it; the file's
path does, with the scope the credential grants, which is no secret (a stack exports token scopes
as the plain `tokenScopes` output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verify.target import Token

MASTER_KEY_FILE = "master-api-key"
READ_ONLY_KEY_FILE = "read-only-api-key"


@dataclass(frozen=True)
class Credential:
    label: str
    file_name: str
    secret: str = field(repr=False)
    scope: str
    """What Qdrant lets it do: for a token, its claims as JSON."""


@dataclass(frozen=True)
class LabCredentials:
    master: Credential
    read_only: Credential
    tokens: Mapping[str, Credential]
    """By token name."""

    @property
    def all(self) -> tuple[Credential, ...]:
        return (self.master, self.read_only, *self.tokens.values())


def lab_credentials(
    api_key: str, read_only_api_key: str, tokens: Sequence[Token]
) -> LabCredentials:
    return LabCredentials(
        master=Credential(
            "master key", MASTER_KEY_FILE, api_key, "manage everything; signs tokens"
        ),
        read_only=Credential(
            "read-only key", READ_ONLY_KEY_FILE, read_only_api_key, "read everything"
        ),
        tokens={
            t.name: Credential(
                f"token {t.name}", f"token-{t.name}", t.jwt, json.dumps(dict(t.claims))
            )
            for t in tokens
        },
    )


def write_owner_only(directory: Path, credentials: Sequence[Credential]) -> None:
    """Each secret alone in its file (so `$(cat FILE)` is the secret), 0600 in a new 0700
    directory."""
    directory.mkdir(mode=0o700)
    # mkdir's mode passes through the umask, which could leave the directory unusable.
    directory.chmod(0o700)
    for credential in credentials:
        # Created with its final mode: there is no moment when another user could open it.
        descriptor = os.open(
            directory / credential.file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        with os.fdopen(descriptor, "w") as out:
            out.write(credential.secret)
