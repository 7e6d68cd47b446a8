"""`python -m verify`: the command line lives in verify/cli.py, importable without running it."""

import os
import sys

from verify.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
