"""``python -m sb3_sparse.train ...``: the same as ``sb3-sparse train ...``."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
