"""`lab.vm_ports`: the edge lab on the VM's ports in a network namespace of its own, which it
must take down whole. Needs root; skips, saying why, without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.processes import LabUnavailable
from lab.vm_ports import CREDENTIALS_DIR, vm_ports_lab


def processes_in_namespace(namespace: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns" / "net") == namespace:
                found.append(int(entry.name))
        except OSError:
            pass  # gone meanwhile, or not ours to inspect
    return found


def test_stopping_the_lab_ends_every_process_in_its_namespace_and_removes_the_keys(tmp_path):
    """nginx, pebble and the double run where nothing else can see them; left running they would
    hold the namespace, its ports and a master key."""
    try:
        with vm_ports_lab(tmp_path) as lab:
            namespace = os.readlink(f"/proc/{lab.namespace_pid}/ns/net")
            assert namespace != os.readlink("/proc/self/ns/net")
            assert len(processes_in_namespace(namespace)) > 1, "only the lab's own process"
    except LabUnavailable as missing:
        pytest.skip(f"lab unavailable: {missing}")

    assert processes_in_namespace(namespace) == []
    assert not (tmp_path / CREDENTIALS_DIR).exists()
