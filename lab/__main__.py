"""`python -m lab`: the command line lives in lab/cli.py, importable without running it."""

import sys

from lab.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
