"""Weighted bags against PyTorch's CSR kernel: where :data:`sb3_sparse.core.backends.BAG_MIN_BATCH` comes from.

Times one CSR product ``x @ W.T + b`` of a square layer (a random mask of the density, a column-major ``x`` as the
backends pass it) two ways, interleaved, with one torch thread: PyTorch's CSR kernel (``torch.addmm`` on a CSR
tensor) and weighted bags over the same CSR structure (:func:`sb3_sparse.core.backends.bag_linear`). The products
of a training pass are all of this kind but the weight gradient (``torch.sparse.sampled_addmm`` either way); the
input gradient is the same product with the transposed weight. Prints the median time ratio bags / kernel::

    python -m benchmarks.bags --out docs/benchmarks/throughput/bags
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch as th

from benchmarks.throughput import machine, report_cpu_rows
from sb3_sparse.core.backends import CsrLayout, bag_linear, column_major
from sb3_sparse.core.update import init_mask


def csr_matrix(width: int, density: float) -> th.Tensor:
    """A ``width`` x ``width`` CSR weight of a random mask with ``density`` of its entries active."""
    weight = th.randn(width, width)
    layout = CsrLayout.of(init_mask(weight, max(1, round(density * width * width)), "random"))
    values = weight.view(-1).index_select(0, layout.gather)
    return th.sparse_csr_tensor(layout.crow, layout.col, values, (width, width), check_invariants=False)


def timed(product: Any, passes: int) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        product()
    return (time.perf_counter() - start) / passes


def ratio(width: int, density: float, batch: int, args: argparse.Namespace) -> float:
    """Median over interleaved rounds of the bags' time / the kernel's time."""
    matrix, bias = csr_matrix(width, density), th.randn(width)
    x = column_major(th.randn(batch, width))
    with th.no_grad():
        products = {
            "kernel": lambda: th.addmm(bias.unsqueeze(1), matrix, x.t()).t(),
            "bags": lambda: bag_linear(x, matrix, bias),
        }
        th.testing.assert_close(products["bags"](), products["kernel"](), rtol=1e-4, atol=1e-4)
        passes = max(1, round(args.min_seconds / max(timed(products["kernel"], 3), 1e-6)))
        ratios = []
        for round_index in range(args.rounds):
            order = list(products) if round_index % 2 == 0 else list(products)[::-1]
            times = {name: timed(products[name], passes) for name in order}
            ratios.append(times["bags"] / times["kernel"])
    return statistics.median(ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.2, 0.1, 0.02])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 64, 256])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median ratio is kept)")
    parser.add_argument("--min-seconds", type=float, default=0.02, help="time per product and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write bags.json and bags.md here")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    rows = []
    for width in args.widths:
        for density in args.densities:
            ratios = {batch: ratio(width, density, batch, args) for batch in args.batches}
            rows.append({"width": width, "density": density, "ratios": ratios})
            print(f"width {width} density {density}: " + ", ".join(f"b{b} {r:.2f}" for b, r in ratios.items()), flush=True)
    lines = [
        f"Time of weighted bags / time of PyTorch's CSR kernel for one product `x @ W.T + b` of a square layer "
        f"(median of {args.rounds} interleaved rounds, {args.threads} thread(s)); {machine(th.device('cpu'))}, "
        f"torch {th.__version__}",
        "",
        "| width | density | " + " | ".join(f"batch {batch}" for batch in args.batches) + " |",
        "|---|---|" + "---|" * len(args.batches),
    ]
    for row in rows:
        cells = " | ".join(f"{row['ratios'][batch]:.2f}" for batch in args.batches)
        lines.append(f"| {row['width']} | {row['density']} | {cells} |")
    return report_cpu_rows("bags", args, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
