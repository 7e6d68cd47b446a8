"""A moto server on loopback: the lab's SSM Parameter Store (the API keys) and S3 (the host's
configuration document and its status report), reached by the standard AWS environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.processes import LOOPBACK, LabUnavailable, Service, free_port

# moto only serves real region names.
LAB_REGION = "eu-central-1"


@dataclass(frozen=True)
class Ssm:
    endpoint: str

    def client(self, service: str = "ssm") -> Any:
        import boto3  # only the lab needs it; the program never talks to AWS itself

        return boto3.client(
            service,
            region_name=LAB_REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
        )

    def put(self, name: str, value: str) -> None:
        self.client().put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    def delete(self, name: str) -> None:
        self.client().delete_parameter(Name=name)

    @property
    def environment(self) -> dict[str, str]:
        """No AWS config of this machine may leak in, only the standard variables pointing here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "lab",
            "AWS_SECRET_ACCESS_KEY": "lab",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }


@contextmanager
def moto_ssm(workdir: Path) -> Iterator[Ssm]:
    """A moto server on loopback standing in for SSM Parameter Store and S3."""
    try:
        import moto.server  # noqa: F401  (only checking that it is installed)
    except ImportError as missing:
        raise LabUnavailable('not installed: moto ("moto[server,ssm,s3]")') from missing
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    with Service("moto", command, workdir / "moto.log") as service:
        service.wait_for_port(port, timeout=30)
        yield Ssm(f"http://{LOOPBACK}:{port}")
