"""Where sparse CSR products beat dense masked ones: the crossover points of ``backend="auto"``.

Times one square masked ``nn.Linear`` layer with the ``"masked"`` and the ``"csr"`` backend, for
training (forward, input and weight gradients), inference (forward without gradients) and frozen
inference (the CSR values gathered once, as in a deployed policy), over a
grid of widths, densities and batch sizes, interleaved, with one torch thread by default. Prints the
time ratios and, per (mode, batch, width), the highest density up to which CSR was at least
``--margin`` faster at every measured density: the table :data:`sb3_sparse.core.backends.CROSSOVER` encodes.
``sb3-sparse calibrate`` (:mod:`sb3_sparse.core.calibration`, whose measuring code this script uses) measures a
smaller grid and saves it for ``"auto"`` on the machine it runs on::

    python -m benchmarks.crossover
    python -m benchmarks.crossover --widths 256 1024 --batches 256 --out docs/benchmarks/crossover
"""

import argparse
import platform
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.runner import plain_args, write_results
from sb3_sparse.core.backends import MODES
from sb3_sparse.core.calibration import MARGIN, crossover, measure


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.3, 0.2, 0.15, 0.12, 0.1, 0.05, 0.02])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per backend and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median ratio is kept)")
    parser.add_argument("--margin", type=float, default=MARGIN, help="CSR counts as faster below this time ratio")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write crossover.json and crossover.md here")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    rows = []
    for mode in args.modes:
        for batch in args.batches:
            for width in args.widths:
                ratios = {d: measure(width, d, batch, mode, args.repeats, args.rounds) for d in args.densities}
                highest = crossover(ratios, args.margin)
                rows.append({"mode": mode, "batch": batch, "width": width, "ratios": ratios, "crossover": highest})
                print(
                    f"{mode} batch {batch} width {width}: "
                    + ", ".join(f"d={d}: {r:.2f}" for d, r in ratios.items())
                    + f" -> CSR up to density {rows[-1]['crossover']}"
                )
    header = (
        f"csr / masked time of one {args.threads}-thread square linear layer (median of {args.rounds} rounds x "
        f"{args.repeats} passes); {platform.processor() or platform.machine()}, torch {th.__version__}"
    )
    lines = [header, "", "| mode | batch | width | " + " | ".join(f"d={d}" for d in args.densities) + " | CSR up to |"]
    lines.append("|" + "---|" * (len(args.densities) + 4))
    for row in rows:
        cells = " | ".join(f"{row['ratios'][d]:.2f}" for d in args.densities)
        lines.append(f"| {row['mode']} | {row['batch']} | {row['width']} | {cells} | {row['crossover']} |")
    text = "\n".join(lines)
    print(text)
    result = {"args": plain_args(args), "rows": rows}
    write_results(args.out, "crossover", result, text)
    return result


if __name__ == "__main__":
    main()
