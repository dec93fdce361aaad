"""``python -m sb3_sparse.tune ...``: the same as ``sb3-sparse tune ...``."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
