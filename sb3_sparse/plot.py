"""``python -m sb3_sparse.plot ...``: the same as ``sb3-sparse plot ...``."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["plot", *sys.argv[1:]]))
