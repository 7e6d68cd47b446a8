"""``python -m lab.qdrant_double``: see lab.qdrant_double.cli."""

import sys

from lab.qdrant_double.cli import main

if __name__ == "__main__":
    sys.exit(main())
