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

``--masks constant_fan_in`` measures masks with constant fan-in (``srigl``'s) instead of masks drawn over the
whole layer. ``--condensed`` times the ``"csr"`` and ``"condensed"`` backends as time ratios to the masked
backend, and on constant fan-in masks also the condensed formulations the backend does not use (each unit's
input indices ``[out, k]`` and a dense value matrix ``[out, k]``: the gathered weighted sum ``x[:, idx] * W``,
eager and compiled by ``torch.compile`` where it works, and ``F.embedding_bag`` with gradients)::

    python -m benchmarks.crossover --condensed --masks constant_fan_in --widths 256 1024 --densities 0.1 0.02 \\
        --batches 1 256 --modes training inference --out docs/benchmarks/throughput/condensed
"""

import argparse
import platform
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th
import torch.nn.functional as F
from torch import nn

from benchmarks.runner import plain_args, write_results
from sb3_sparse.core.backends import MODES, set_backend
from sb3_sparse.core.calibration import MARGIN, MIN_SECONDS, crossover, layer_time, measure
from sb3_sparse.core.masking import get_mask, sparsify
from sb3_sparse.core.regimes import REGIMES
from sb3_sparse.core.update import init_mask

Product = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]


def gathered_sum(x: th.Tensor, values: th.Tensor, columns: th.Tensor) -> th.Tensor:
    """``y[b, o] = sum_k values[o, k] x[b, columns[o, k]]`` by indexing (materialises ``[batch, out, k]``)."""
    return (x[:, columns] * values).sum(-1)


def embedding_bag(x: th.Tensor, values: th.Tensor, columns: th.Tensor) -> th.Tensor:
    """The same product as weighted bags of the rows of ``x.T`` (the ``"condensed"`` backend's, without gradients)."""
    return F.embedding_bag(columns, x.t(), per_sample_weights=values, mode="sum").t()


class Condensed(nn.Module):
    """A condensed formulation of the product as a layer, on the same masked weight (gathered at every call)."""

    def __init__(self, layer: nn.Linear, product: Product):
        super().__init__()
        mask = get_mask(layer).bool()
        self.index = mask.view(-1).nonzero().squeeze(1).view(mask.shape[0], -1)
        self.columns = self.index % mask.shape[1]
        self.weight = nn.Parameter(layer.weight.detach().clone())
        self.bias = nn.Parameter(layer.bias.detach().clone())
        self.product = product

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.product(x, self.weight.view(-1)[self.index], self.columns) + self.bias


def other_products() -> dict[str, Product]:
    """The condensed formulations that the backend does not use (in training, or at all): the gathered sum, eager
    and compiled where ``torch.compile`` works here, and ``F.embedding_bag``."""
    products: dict[str, Product] = {"gather": gathered_sum, "embedding_bag": embedding_bag}
    try:
        compiled = th.compile(gathered_sum, dynamic=False)
        compiled(th.ones(1, 2), th.ones(2, 1), th.zeros(2, 1, dtype=th.long))
        products["gather_compiled"] = compiled
    except Exception as error:  # no compiler on this machine: measure the others
        print(f"torch.compile unavailable ({type(error).__name__}): no compiled gather")
    return products


def measure_condensed(
    width: int,
    density: float,
    batch: int,
    mode: str,
    repeats: int,
    rounds: int,
    products: dict[str, Product],
    per_unit: bool = True,
) -> dict[str, float]:
    """Median over ``rounds`` of each product's time / the masked backend's, for one layer with constant fan-in:
    the ``"csr"`` and ``"condensed"`` backends and the other formulations ``products`` (each timing lasts at
    least :data:`MIN_SECONDS`); ``per_unit=False``: a mask drawn over the whole layer, the backends only."""
    th._dynamo.reset()  # a new shape per layer: keep clear of the recompile limit
    layer = nn.Linear(width, width)
    count = REGIMES["srigl"].layer_count((width, width), round(density * width * width))
    sparsify(layer, "weight", init_mask(layer.weight, count, "random", per_unit))
    x = th.randn(width, batch).t().requires_grad_(mode == "training")
    grad = th.randn(width, batch).t()
    others = {name: Condensed(layer, product) for name, product in products.items()} if per_unit else {}
    with th.no_grad():
        expected = layer(x)
        for name, module in others.items():
            th.testing.assert_close(module(x), expected, rtol=1e-4, atol=1e-4, msg=name)
    ratios: dict[str, list[float]] = {name: [] for name in ("csr", "condensed", *others)}
    for _ in range(rounds):
        times = {}
        for backend in ("masked", "csr", "condensed"):
            set_backend(layer, backend)
            layer_time(layer, x, grad, mode, 3)
            times[backend] = layer_time(layer, x, grad, mode, repeats, MIN_SECONDS)
        for name, module in others.items():
            layer_time(module, x, grad, mode, 3)  # type: ignore[arg-type]
            times[name] = layer_time(module, x, grad, mode, repeats, MIN_SECONDS)  # type: ignore[arg-type]
        for name, values in ratios.items():
            values.append(times[name] / times["masked"])
    return {name: statistics.median(values) for name, values in ratios.items()}


def condensed_main(args: argparse.Namespace) -> dict[str, Any]:
    per_unit = args.masks == "constant_fan_in"
    products = other_products() if per_unit else {}
    rows = []
    for mode in args.modes:
        for batch in args.batches:
            for width in args.widths:
                for density in args.densities:
                    ratios = measure_condensed(width, density, batch, mode, args.repeats, args.rounds, products, per_unit)
                    rows.append({"mode": mode, "batch": batch, "width": width, "density": density, "ratios": ratios})
                    print(f"{mode} batch {batch} width {width} d={density}: {ratios}", flush=True)
    names = list(rows[0]["ratios"]) if rows else []
    header = (
        f"time / masked time of one {args.threads}-thread square linear layer, {args.masks} masks (median of "
        f"{args.rounds} rounds x {args.repeats} passes); {platform.processor() or platform.machine()}, torch {th.__version__}"
    )
    lines = [header, "", "| mode | batch | width | density | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 4)]
    for row in rows:
        cells = " | ".join(f"{row['ratios'][name]:.2f}" for name in names)
        lines.append(f"| {row['mode']} | {row['batch']} | {row['width']} | {row['density']} | {cells} |")
    text = "\n".join(lines)
    print(text)
    result = {"args": plain_args(args), "rows": rows}
    write_results(args.out, f"condensed-{args.masks}", result, text)
    return result


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
    parser.add_argument("--masks", choices=["random", "constant_fan_in"], default="random", help="how masks are drawn")
    parser.add_argument("--condensed", action="store_true", help="time the condensed formulations (constant fan-in)")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    if args.condensed:
        return condensed_main(args)
    per_unit = args.masks == "constant_fan_in"
    rows = []
    for mode in args.modes:
        for batch in args.batches:
            for width in args.widths:
                ratios = {
                    d: measure(width, d, batch, mode, args.repeats, args.rounds, per_unit=per_unit) for d in args.densities
                }
                highest = crossover(ratios, args.margin)
                rows.append({"mode": mode, "batch": batch, "width": width, "ratios": ratios, "crossover": highest})
                print(
                    f"{mode} batch {batch} width {width}: "
                    + ", ".join(f"d={d}: {r:.2f}" for d, r in ratios.items())
                    + f" -> CSR up to density {rows[-1]['crossover']}"
                )
    header = (
        f"csr / masked time of one {args.threads}-thread square linear layer, {args.masks} masks (median of "
        f"{args.rounds} rounds x {args.repeats} passes); {platform.processor() or platform.machine()}, torch {th.__version__}"
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
