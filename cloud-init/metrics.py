"""The host's metrics to CloudWatch, every minute (secure-qdrant-metrics.timer): metrics.py SETTINGS.
Fails when it cannot publish; the QdrantUp alarm takes a silent host for a down one."""

import datetime as dt
import json
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request

# $time_local, $status and the gRPC status of LOG_FORMAT (model/nginx_config.py).
LINE = re.compile(r'\[([^]]+)\] "[^"]*" (\d{3}) .* grpc_status=(\S+)')


def read_settings(text):
    return dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines() if "=" in line)


def days_left(enddate, now):
    """From `openssl x509 -enddate`: notAfter=Mar  1 12:00:00 2027 GMT."""
    return (ssl.cert_time_to_seconds(enddate.strip()[9:]) - now.timestamp()) // 86400


def refused_last_minute(lines, now):
    """401s (gRPC: UNAUTHENTICATED, 16) and 429s of the clock minute before `now`'s: each line
    is one run's while every run starts within its minute (the 60 s before `now` counted some
    twice)."""
    end = now.replace(second=0, microsecond=0)
    counts = {"401": 0, "429": 0}
    for match in filter(None, map(LINE.search, lines)):
        when = dt.datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z")
        status = "401" if match[3] == "16" else match[2]
        if 0 < (end - when).total_seconds() <= 60 and status in counts:
            counts[status] += 1
    return counts


def used_percent(usage):
    # As df: blocks reserved for root are neither used nor available.
    return round(100 * usage.used / (usage.used + usage.free), 1)


def qdrant_up(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status == 200)
    except OSError:
        return 0


def edge_serves(env):
    """1 when nginx answers here over TLS for the public name, with a certificate valid for it.
    Anchored at certbot's lineage, not the system's roots: a staging certificate counts, an
    unreadable one (nginx's next start fails on it) does not. Qdrant's state is QdrantUp's."""
    try:
        tls = ssl.create_default_context(cafile=env["CERTIFICATE"])
        tls.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        with socket.create_connection(("127.0.0.1", int(env["HTTPS_PORT"])), timeout=5) as raw:
            with tls.wrap_socket(raw, server_hostname=env["DOMAIN"]) as edge:
                edge.sendall(f"GET /healthz HTTP/1.1\r\nHost: {env['DOMAIN']}\r\n\r\n".encode())
                return int(edge.makefile("rb").readline().startswith(b"HTTP/"))
    except OSError:
        return 0


def config_rejected(path):
    """1 while the converge program refuses the latest configuration (its state file, written
    every run), 0 otherwise: before its first run there is nothing refused."""
    try:
        with open(path, encoding="utf-8") as state:
            return int(json.load(state).get("rejected") is not None)
    except (FileNotFoundError, ValueError):
        return 0


def tail(path, size=8 << 20):
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, 2) - size))
            return log.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def measure(env, now):
    refused = refused_last_minute(tail(env["NGINX_ACCESS_LOG"]), now)
    values = {
        "QdrantUp": (qdrant_up(env["QDRANT_REST_PORT"]), "None"),
        "EdgeServes": (edge_serves(env), "None"),
        "Unauthorized401": (refused["401"], "Count"),
        "RateLimited429": (refused["429"], "Count"),
        "DataVolumeUsedPercent": (used_percent(shutil.disk_usage(env["DATA_MOUNT"])), "Percent"),
        "ConfigRejected": (config_rejected(env["CONFIG_STATE_FILE"]), "None"),
    }
    enddate = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", env["CERTIFICATE"]],
        capture_output=True,
        text=True,
        check=False,
    )
    # None before the first certificate: no figure rather than a false one.
    if enddate.returncode == 0:
        values["CertificateDaysLeft"] = (days_left(enddate.stdout, now), "None")
    return values


def publish(cloudwatch, env, now):
    dimensions = [{"Name": "Host", "Value": env["METRICS_HOST"]}]
    cloudwatch.put_metric_data(
        Namespace=env["METRICS_NAMESPACE"],
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": value,
                "Unit": unit,
            }
            for name, (value, unit) in measure(env, now).items()
        ],
    )


if __name__ == "__main__":
    import boto3

    with open(sys.argv[1]) as file:
        env = read_settings(file.read())
    cloudwatch = boto3.client("cloudwatch", region_name=env["AWS_REGION"])
    publish(cloudwatch, env, dt.datetime.now(dt.UTC))
