"""The host's configuration in the lab's S3 (moto): what `pulumi up` publishes, and the status the
host's converge program reports back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from lab.moto import LAB_REGION
from model.host_config import (
    ConfigSource,
    config_source,
    host_config_document,
    render_host_config,
)
from model.settings import HostSettings

LAB_BUCKET = "secure-qdrant-lab-config"


class AwsClients(Protocol):
    """A moto server, on loopback (lab.moto) or behind AWS's names (lab.booted.ssm)."""

    def client(self, service: str) -> Any: ...


def lab_source(host: HostSettings) -> ConfigSource:
    return config_source(LAB_REGION, LAB_BUCKET, host.name)


@dataclass(frozen=True)
class ConfigStore:
    moto: AwsClients
    source: ConfigSource

    def _s3(self) -> Any:
        return self.moto.client("s3")

    def publish_text(self, text: str) -> None:
        s3 = self._s3()
        if self.source.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(
                Bucket=self.source.bucket,
                CreateBucketConfiguration={"LocationConstraint": self.source.region},
            )
        s3.put_object(Bucket=self.source.bucket, Key=self.source.config_key, Body=text.encode())

    def publish(self, host: HostSettings, data_volume_id: str) -> str:
        """`host`'s document, as `pulumi up` publishes it; returns its version."""
        config = render_host_config(host, data_volume_id)
        self.publish_text(host_config_document(config))
        return config.version

    def status(self) -> dict[str, Any]:
        """What the host last reported."""
        answer = self._s3().get_object(Bucket=self.source.bucket, Key=self.source.status_key)
        status: dict[str, Any] = json.loads(answer["Body"].read())
        return status
