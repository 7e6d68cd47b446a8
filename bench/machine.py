"""What the figures were measured on: without this a table of numbers means nothing."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

from bench.cores import CoreLayout
from bench.cpu import CoreMeter

_TOOLS = {
    "nginx": ["nginx", "-v"],
    "openssl": ["openssl", "version"],
    "wrk": ["wrk", "-v"],
    "h2load": ["h2load", "--version"],
}


def machine_facts(cores: CoreLayout) -> dict[str, str]:
    facts = {
        # Anything else running skews every figure: worth knowing before reading them.
        "busy before the run": f"{_busy(cores.server | cores.client):.0%} of the cores in use",
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "os": _os_name(),
        "cores": cores.describe(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
    }
    facts.update({name: _first_line(command) for name, command in _TOOLS.items()})
    return facts


def _busy(cores: frozenset[int], seconds: float = 1.0) -> float:
    meter = CoreMeter(cores)
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _first_line(command: list[str]) -> str:
    # `wrk -v` exits 1 and `nginx -v` writes to stderr: take whatever came first.
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError:
        return "not installed"
    output = (result.stdout + result.stderr).strip()
    return output.splitlines()[0] if output else "unknown"
