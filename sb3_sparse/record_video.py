"""``python -m sb3_sparse.record_video ...``: the same as ``sb3-sparse record-video ...``."""

import sys

from sb3_sparse.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["record-video", *sys.argv[1:]]))
