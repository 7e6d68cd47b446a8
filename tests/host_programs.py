"""The host's Python programs (cloud-init/*.py) as modules, for the tests of their pure halves: they
are files run on the host, not importable packages."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from model.user_data import CLOUD_INIT_DIR


def load_host_program(file_name: str, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, CLOUD_INIT_DIR / file_name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
