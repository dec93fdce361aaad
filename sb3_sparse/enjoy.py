"""``python -m sb3_sparse.enjoy ...``: the same as ``sb3-sparse enjoy ...``."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["enjoy", *sys.argv[1:]]))
