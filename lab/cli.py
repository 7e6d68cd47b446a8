"""`python -m lab`: try secure-qdrant without AWS.

Runs the VM's real bootstrap, from the real rendered user data, on loopback: a loop device as the
data volume, moto as SSM Parameter Store, pebble as Let's Encrypt, Debian's nginx and certbot. Then
a Qdrant test double starts from the API keys the bootstrap fetched (the env file the Qdrant
container would read), every `verify` check runs against the edge, and everything stops again.
`--serve` keeps it up for your own curl and qdrant-client experiments (`lab.serve_guide` prints
how, `lab.credentials` hands out the keys and tokens). Needs root (loop device, private mount
namespace); nothing leaks into the machine.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lab.booted.demo import run_booted
from lab.demo import DEMO_COLLECTION, DEMO_TOKENS, DEMO_VECTORS, STOP_SIGNALS, run_lab
from lab.processes import LabUnavailable
from verify.arguments import OneLineParser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m lab", description=__doc__)
    parser.add_argument(
        "--serve", action="store_true", help="keep the lab running until Ctrl-C or SIGTERM"
    )
    parser.add_argument(
        "--booted",
        action="store_true",
        help="boot a real Debian 12 host (systemd-nspawn) from the user data instead",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    # Python dies of these by default, leaving every server the lab started running: turned into
    # what Ctrl-C raises, they unwind the lab however early they arrive.
    for signum in STOP_SIGNALS - {signal.SIGINT}:
        signal.signal(signum, signal.default_int_handler)
    # In /tmp: run as root, nginx's workers are `nobody` and must be able to reach the webroot.
    workdir = Path(tempfile.mkdtemp(prefix="secure-qdrant-lab-"))
    workdir.chmod(0o755)
    try:
        if args.booted:
            return run_booted(workdir, DEMO_TOKENS, DEMO_COLLECTION, DEMO_VECTORS)
        return run_lab(workdir, args.serve)
    except LabUnavailable as missing:
        print(
            f"lab unavailable: {missing} (scripts/test installs every tool it needs)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("lab stopped before it was up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
