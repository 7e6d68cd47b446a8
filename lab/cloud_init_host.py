"""cloud-init's own code applied to user data, run by the host's Python (Debian's `cloud-init`).

Not imported by the lab: `lab.cloud_init` runs this file with `/usr/bin/python3 -I`, which sees
Debian's `cloudinit` package and nothing of the lab's environment. It reads the user data as EC2
hands it to the instance (base64 on stdin, decoded like IMDS does) and goes through cloud-init's
own stages: the datasource's user-data processing (gzip, part types), the default part handlers
that merge `#cloud-config` parts, the schema validator, and the `write_files` module.

Commands:
  read                  print JSON: part types, the merged cloud-config, schema problems, and
                        the shell script `runcmd` becomes
  write-files [ROOT]    apply `write_files`; with ROOT, every path is taken relative to ROOT
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import tempfile
from typing import Any

from cloudinit import stages, util
from cloudinit.config import cc_write_files
from cloudinit.config.schema import SchemaValidationError, validate_cloudconfig_schema
from cloudinit.settings import PER_INSTANCE
from cloudinit.sources.DataSourceNone import DataSourceNone
from cloudinit.user_data import is_skippable

LOG = logging.getLogger("secure-qdrant-lab")


class Instance:
    """cloud-init's init stage for one boot, with its state in a scratch dir instead of
    /var/lib/cloud, and user data from the argument instead of IMDS."""

    def __init__(self, user_data: bytes, workdir: str) -> None:
        path_config = {"cloud_dir": f"{workdir}/cloud", "run_dir": f"{workdir}/run"}
        # The system config (/etc/cloud/cloud.cfg) is this machine's, not the VM's: none is read.
        self.init = stages.Init(ds_deps=[])
        self.init._cfg = {"system_info": {"paths": path_config, "distro": "ubuntu"}}
        datasource_config = {"datasource": {"None": {"userdata_raw": user_data}}}
        self.datasource = DataSourceNone(datasource_config, None, self.init.paths)
        self.datasource.get_data()
        self.init.datasource = self.datasource
        self.init.paths.datasource = self.datasource

    def part_types(self) -> list[str]:
        """The content type cloud-init gave each part of the user data (containers aside)."""
        message = self.datasource.get_userdata(apply_filter=True)
        return [part.get_content_type() for part in message.walk() if not is_skippable(part)]

    def cloud_config(self) -> dict[str, Any]:
        """The cloud-config as cloud-init's modules see it: parts merged by the default handlers."""
        self.init._consume_userdata(PER_INSTANCE)
        config: dict[str, Any] = util.read_conf(self.init.paths.get_ipath("cloud_config"))
        return config


def schema_problems(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    try:
        validate_cloudconfig_schema(config, strict=True, log_details=False)
    except SchemaValidationError as error:
        return (
            [f"{problem.path}: {problem.message}" for problem in error.schema_errors],
            [f"{problem.path}: {problem.message}" for problem in error.schema_deprecations],
        )
    return [], []


def read(instance: Instance) -> dict[str, Any]:
    config = instance.cloud_config()
    errors, deprecations = schema_problems(config)
    return {
        "part_types": instance.part_types(),
        "config": config,
        "schema_errors": errors,
        "schema_deprecations": deprecations,
        # What cc_runcmd writes to the instance's scripts dir and scripts_user then executes.
        "runcmd_script": util.shellify(config["runcmd"]) if "runcmd" in config else None,
    }


def write_files(instance: Instance, root: str | None) -> None:
    config = instance.cloud_config()
    if root is not None:
        config["write_files"] = [
            {**entry, "path": os.path.join(root, entry["path"].lstrip("/"))}
            for entry in config.get("write_files", [])
        ]
    cc_write_files.handle("write_files", config, instance.init.cloudify(), LOG, [])


def main(argv: list[str]) -> int:
    if not (argv == ["read"] or (argv[:1] == ["write-files"] and len(argv) <= 2)):
        print(__doc__, file=sys.stderr)
        return 2
    command, *arguments = argv
    user_data = base64.b64decode(sys.stdin.read(), validate=True)
    with tempfile.TemporaryDirectory(prefix="cloud-init-") as workdir:
        instance = Instance(user_data, workdir)
        if command == "read":
            json.dump(read(instance), sys.stdout)
        else:
            write_files(instance, arguments[0] if arguments else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
