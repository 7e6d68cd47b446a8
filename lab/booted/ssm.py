"""SSM Parameter Store, CloudWatch, CloudWatch Logs and S3 for a booted guest: moto behind their
real names, over TLS.

Debian 12's boto3 (1.26) predates `AWS_ENDPOINT_URL`, so nothing in the host's environment can
point it elsewhere: the guest resolves `ssm.<region>.amazonaws.com` (the bootstrap's keys),
`monitoring.<region>.amazonaws.com` (the metrics publisher), `logs.<region>.amazonaws.com` (the
audit log's shipper) and S3's names (the configuration document) to slirp's gateway, which is this
machine's 127.0.0.1, where moto listens on HTTPS's port and presents a certificate for those names
from a CA the guest trusts. (A proxy on the guest's own port 443 would keep nginx from binding it.)
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import pki
from lab.config_store import LAB_BUCKET
from lab.processes import LOOPBACK, LabUnavailable, Service, accepts_connections

HTTPS_PORT = 443


def aws_hostnames(region: str) -> tuple[str, ...]:
    """SSM's, CloudWatch's, CloudWatch Logs' and S3's endpoints in `region`, as botocore names
    them: S3's by the lab's bucket too (botocore addresses a bucket with a DNS-safe name by its
    virtual host)."""
    return (
        f"ssm.{region}.amazonaws.com",
        f"monitoring.{region}.amazonaws.com",
        f"logs.{region}.amazonaws.com",
        f"s3.{region}.amazonaws.com",
        f"{LAB_BUCKET}.s3.{region}.amazonaws.com",
    )


@dataclass(frozen=True)
class TlsSsm:
    region: str
    port: int
    """On 127.0.0.1 of this machine: HTTPS's, as boto3 dials it."""
    ca: Path
    """The CA of its certificate: the guest must trust it."""

    def put(self, name: str, value: str) -> None:
        self.client().put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    def metric_maxima(self, namespace: str, dimension: tuple[str, str]) -> dict[str, float]:
        """Each metric the guest sent under `namespace` and `dimension` (name, value): its highest
        value over the last ten minutes."""
        cloudwatch = self.client("cloudwatch")
        dimensions = _dimensions(dimension)
        now = dt.datetime.now(dt.UTC)
        listed = cloudwatch.list_metrics(Namespace=namespace, Dimensions=dimensions)["Metrics"]
        maxima = {}
        for metric in listed:
            points = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric["MetricName"],
                Dimensions=dimensions,
                StartTime=now - dt.timedelta(minutes=10),
                EndTime=now + dt.timedelta(minutes=1),
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
            if points:
                maxima[metric["MetricName"]] = max(point["Maximum"] for point in points)
        return maxima

    def metric_values(
        self,
        namespace: str,
        metric: str,
        dimension: tuple[str, str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> tuple[int, float]:
        """How many values of `metric` the guest sent with a timestamp from `start` (whole seconds)
        to before `end`, and their sum: (1, value) for a window around one publisher run."""
        points = self.client("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=_dimensions(dimension),
            StartTime=start,
            EndTime=end,
            # CloudWatch's periods are whole minutes; one period spans the whole window.
            Period=60 * math.ceil((end - start).total_seconds() / 60),
            Statistics=["SampleCount", "Sum"],
        )["Datapoints"]
        return (
            int(sum(point["SampleCount"] for point in points)),
            sum(point["Sum"] for point in points),
        )

    def log_messages(self, group: str, stream: str) -> list[str]:
        return log_messages(self.client("logs"), group, stream)

    def client(self, service: str = "ssm") -> Any:
        import boto3  # only the lab needs it

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=f"https://{LOOPBACK}:{self.port}",
            verify=str(self.ca),
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
        )


def log_messages(logs: Any, group: str, stream: str) -> list[str]:
    """Every message of `stream` in `group` (a CloudWatch Logs client's), oldest first, page after
    page (one holds at most 1 MB); none before the stream exists."""
    messages: list[str] = []
    token = None
    while True:
        try:
            page = logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=True,
                **({"nextToken": token} if token else {}),
            )  # fmt: skip
        except logs.exceptions.ResourceNotFoundException:
            return messages
        messages += [event["message"] for event in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def _dimensions(dimension: tuple[str, str]) -> list[dict[str, str]]:
    name, value = dimension
    return [{"Name": name, "Value": value}]


@contextmanager
def tls_moto_ssm(workdir: Path, region: str) -> Iterator[TlsSsm]:
    try:
        import moto.server  # noqa: F401  (only checking that it is installed)
    except ImportError as missing:
        raise LabUnavailable('not installed: moto ("moto[server,ssm]")') from missing
    workdir.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca(workdir / "ca", "secure-qdrant-lab-aws")
    listener = pki.issue(ca, workdir / "listener", [*aws_hostnames(region), LOOPBACK])
    port = HTTPS_PORT
    if accepts_connections(port):
        raise LabUnavailable(
            f"{LOOPBACK}:{port} is taken: SSM's and CloudWatch's stand-in needs it"
        )
    command = [
        sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port),
        "-c", str(listener.certificate), "-k", str(listener.key),
    ]  # fmt: skip
    with Service("moto", command, workdir / "moto.log") as service:
        service.wait_for_port(port, timeout=30)
        yield TlsSsm(region, port, ca.certificate)
