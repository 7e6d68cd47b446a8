"""The user data read by its real consumer: cloud-init's own code (Debian's cloud-init, run by the
system Python), from the bytes EC2 hands the instance, not by a parser of ours.

Settings use the VM's own paths and ports; `write_files` is re-rooted into a scratch dir.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lab.cloud_init import CloudConfig, cloud_init_available, read_user_data, write_files
from model.host_config import config_source
from model.settings import HostSettings, Limits
from model.user_data import (
    CONVERGE_TIMER,
    CONVERGE_UNIT,
    HostFile,
    ec2_user_data,
    loader_files,
)

VOLUME_ID = "vol-0123456789abcdef0"
HOST = HostSettings(
    domain="qdrant.example.com",
    acme_email="ops@example.com",
    acme_server="https://acme-v02.api.letsencrypt.org/directory",
    qdrant_version="v1.18.3",
    limits=Limits(),
    admin_cidrs=("203.0.113.7/32", "2001:db8::/48"),
    region="eu-central-1",
    api_key_parameter="/secure-qdrant/prod/api-key",
    read_only_api_key_parameter="/secure-qdrant/prod/read-only-api-key",
    previous_api_key_parameter="/secure-qdrant/prod/previous-api-key",
)
SOURCE = config_source(HOST.region, "secure-qdrant-prod-config", HOST.name)
USER_DATA = ec2_user_data(HOST, VOLUME_ID, SOURCE)
LOADER = loader_files(HOST, VOLUME_ID, SOURCE)

pytestmark = pytest.mark.skipif(
    not cloud_init_available(), reason="Debian's cloud-init is not installed (scripts/test does it)"
)


@pytest.fixture(scope="module")
def cloud_config() -> CloudConfig:
    return read_user_data(USER_DATA)


def test_cloud_init_reads_the_user_data_as_one_cloud_config(cloud_config: CloudConfig) -> None:
    """Read as anything else (a shell script, an unknown or undecompressed part), none of it is
    applied: the host boots bare, without bootstrap, firewall or TLS."""
    assert cloud_config.part_types == ("text/cloud-config",)


def test_cloud_init_schema_accepts_the_config(cloud_config: CloudConfig) -> None:
    """cloud-init skips or misapplies what its schema rejects, and drops deprecated keys in later
    releases; either leaves the host half-built."""
    assert cloud_config.schema_errors == ()
    assert cloud_config.schema_deprecations == ()


def test_runcmd_only_enables_the_converge_timer_and_starts_its_service_without_waiting(
    cloud_config: CloudConfig,
) -> None:
    """The service fetches the configuration and hands the host to the bootstrap's unit; the
    timer repeats it every minute (changes, drift, rotated keys). cloud-init's final stage runs
    this script and must end: a start that waited would hold cloud-final (and `cloud-init status
    --wait`) for as long as the first run installs boto3 or the bootstrap waits for DNS."""
    commands = [
        ["systemctl", "enable", "--now", "--no-block", CONVERGE_TIMER],
        ["systemctl", "start", "--no-block", CONVERGE_UNIT],
    ]
    assert cloud_config.config["runcmd"] == commands
    lines = "".join(" ".join(f"'{word}'" for word in command) + "\n" for command in commands)
    assert cloud_config.runcmd_script == f"#!/bin/sh\n{lines}"


@pytest.fixture(scope="module")
def written_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("cloud-init's write_files gives the files to root:root, which needs root")
    root = tmp_path_factory.mktemp("vm-root")
    write_files(USER_DATA, root)
    return root


@pytest.mark.parametrize("host_file", LOADER, ids=lambda f: f.path)
def test_write_files_puts_each_loader_file_in_place(
    written_root: Path, host_file: HostFile
) -> None:
    """What cloud-init writes is what the converge unit runs: the exact bytes, with the
    permissions that keep settings root-only and programs unwritable by others, owned by root."""
    written = written_root / host_file.path.lstrip("/")
    status = written.stat()
    assert written.read_text() == host_file.content
    assert oct(stat.S_IMODE(status.st_mode)) == oct(int(host_file.permissions, 8))
    assert (status.st_uid, status.st_gid) == (0, 0)


def test_write_files_writes_nothing_but_the_loader(written_root: Path) -> None:
    """Every file cloud-init puts on the host is one the project reviewed and tests; the rest
    comes from the configuration document."""
    written = [path for path in written_root.rglob("*") if path.is_file()]
    assert sorted(f"/{path.relative_to(written_root)}" for path in written) == sorted(
        f.path for f in LOADER
    )
