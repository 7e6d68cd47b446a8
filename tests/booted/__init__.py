"""Tests that boot the VM's user data on a Debian 12 guest (lab/booted/)."""

import os

import pytest

from lab.processes import LabUnavailable, require_tools

BOOT_TOOLS = (
    "systemd-nspawn", "slirp4netns", "mmdebstrap", "nsenter", "losetup", "pebble", "mkfs.xfs",
    "dumpe2fs",
)  # fmt: skip


def require_booted_lab() -> None:
    """Skip, saying what is missing, where a guest cannot boot."""
    if os.geteuid() != 0:
        pytest.skip("the booted lab needs root (nspawn, loop devices, cgroups)")
    try:
        require_tools(*BOOT_TOOLS)
    except LabUnavailable as missing:
        pytest.skip(str(missing))
