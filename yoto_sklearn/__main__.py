"""``python -m yoto_sklearn``: the ``yoto-sklearn`` command line."""

from __future__ import annotations

import sys

from yoto_sklearn.cli import main

if __name__ == "__main__":
    sys.exit(main())
