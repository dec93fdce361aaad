"""``python -m sb3_sparse <command> ...``: the same as the ``sb3-sparse`` command."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
