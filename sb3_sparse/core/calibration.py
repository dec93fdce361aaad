"""Measuring where sparse products beat dense masked ones on this machine (``sb3-sparse calibrate``).

Times a small network (:func:`calibration_network`: two sparse layers of the width, as the hidden part of an SB3
MLP, and a dense output) with the ``"masked"``, ``"csr"`` and, for products without gradients, the
``"condensed"`` backend, alternating, for each use of a product (:data:`~sb3_sparse.core.backends.MODES`),
batch size and width, at increasing densities. It keeps per (mode, batch, width) the highest density up to
which CSR took at most ``margin`` (0.9) times the masked backend's time at every measured density, and the
highest density up to which the condensed product took at most ``margin`` times the faster of the other two.
The result is written to this machine's calibration file (:mod:`sb3_sparse.core.crossover_cache`), which
``backend="auto"`` then reads::

    sb3-sparse calibrate                  # or: python -m sb3_sparse.core.calibration
    sb3-sparse calibrate --show           # the file and its points
    sb3-sparse calibrate --reset          # delete it: back to the built-in tables

A whole network, not one layer, because what decides narrow layers is what one layer does not show: the
per-call overhead of a sparse product and the layouts passed between layers (at width 256 and density 0.1,
one layer's CSR training pass took 0.83x the masked one's time on the AMD EPYC VM where this package is tested,
the network's 1.11x). The default grid takes one to two minutes on one thread there.
``benchmarks/crossover.py`` measures single layers over a wider grid and prints every ratio.
"""

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch as th
from torch import nn

from sb3_sparse.core.backends import MODES, set_backend
from sb3_sparse.core.crossover_cache import (
    KINDS,
    Table,
    cache_file,
    calibrated_crossover,
    clear_calibration,
    machine_key,
    save_calibration,
)
from sb3_sparse.core.masking import sparsify
from sb3_sparse.core.names import check_choice
from sb3_sparse.core.update import init_mask

DESCRIPTION = (
    "Measure where sparse CSR and condensed products beat dense masked ones on this machine, with torch's thread "
    "count, and write the crossover points to this machine's cache file, which backend 'auto' then reads (set "
    "SB3_SPARSE_CROSSOVER to another file, or to 'builtin' to ignore calibrations). One to two minutes on one thread."
)
#: The default grid: layer widths, batch sizes and densities (measured in increasing order)
WIDTHS = (256, 512, 1024, 2048)
BATCHES = (1, 64, 256)
DENSITIES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
#: CSR counts as faster where its time is at most this fraction of the masked backend's
MARGIN = 0.9
#: Each timing of a calibration lasts at least this long (a batch-1 pass takes microseconds)
MIN_SECONDS = 0.005
#: The input size of :func:`calibration_network` (a MuJoCo critic's observation and action: 17 + 6 for HalfCheetah)
INPUT_SIZE = 32


def layer_time(module: nn.Module, x: th.Tensor, grad: th.Tensor, mode: str, repeats: int, min_seconds: float = 0.0) -> float:
    """Median seconds of one forward (and, when training, backward with ``grad``) pass of ``module`` on ``x``.

    :param min_seconds: time more than ``repeats`` passes until they took this long (short passes are noisy)
    """
    durations: list[float] = []
    while len(durations) < repeats or sum(durations) < min_seconds:
        start = time.perf_counter()
        if mode == "training":
            module(x).backward(grad)
            module.zero_grad(set_to_none=True)
        else:
            with th.no_grad():
                module(x)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def measure(
    width: int,
    density: float,
    batch: int,
    mode: str,
    repeats: int,
    rounds: int,
    warmup: int = 3,
    min_seconds: float = 0.0,
    per_unit: bool = False,
) -> float:
    """Median over ``rounds`` of csr time / masked time for one layer (the two backends alternate).

    :param warmup: untimed passes before each timing (the first builds the CSR layout)
    :param min_seconds: see :func:`layer_time`
    :param per_unit: a mask with constant fan-in (every row the same count, as ``srigl``'s) instead of one drawn
        over the whole layer
    """
    layer = nn.Linear(width, width)
    sparsify(layer, "weight", init_mask(layer.weight, max(1, round(density * width * width)), "random", per_unit))
    # inputs and gradients laid out as inside a network of sparse layers (column by column, see
    # sb3_sparse.core.backends.column_major)
    x = th.randn(width, batch).t().requires_grad_(mode == "training")
    grad = th.randn(width, batch).t()
    ratios = []
    for _ in range(rounds):
        times = {}
        for backend in ("masked", "csr"):
            set_backend(layer, backend, frozen=mode == "frozen")
            layer_time(layer, x, grad, mode, warmup)  # warm-up (and the CSR layout)
            times[backend] = layer_time(layer, x, grad, mode, repeats, min_seconds)
        ratios.append(times["csr"] / times["masked"])
    return statistics.median(ratios)


def calibration_network(width: int, density: float) -> nn.Sequential:
    """What a calibration times: :data:`INPUT_SIZE` inputs, two sparse layers of ``width`` units at ``density``
    (random masks over the whole layer) with ReLUs, and a dense output unit, as an SB3 critic's MLP."""
    hidden = [nn.Linear(INPUT_SIZE, width), nn.Linear(width, width)]
    for layer in hidden:
        sparsify(layer, "weight", init_mask(layer.weight, max(1, round(density * layer.weight.numel())), "random"))
    return nn.Sequential(hidden[0], nn.ReLU(), hidden[1], nn.ReLU(), nn.Linear(width, 1))


def network_times(
    width: int, density: float, batch: int, mode: str, backends: Sequence[str], repeats: int, rounds: int
) -> dict[str, float]:
    """Per backend, the median over ``rounds`` of one pass of :func:`calibration_network` (the backends alternate
    within each round), in seconds."""
    network = calibration_network(width, density)
    x, grad = th.randn(batch, INPUT_SIZE), th.randn(batch, 1)
    times: dict[str, list[float]] = {backend: [] for backend in backends}
    for _ in range(rounds):
        for backend in backends:
            set_backend(network, backend, frozen=mode == "frozen")
            layer_time(network, x, grad, mode, 1)  # warm-up (and the CSR layout)
            times[backend].append(layer_time(network, x, grad, mode, repeats, MIN_SECONDS))
    return {backend: statistics.median(measured) for backend, measured in times.items()}


def crossover(ratios: dict[float, float], margin: float = MARGIN) -> float:
    """The highest density up to which a backend was faster at every measured density (0.0: at none)."""
    highest = 0.0
    for density in sorted(ratios):
        if ratios[density] > margin:
            break
        highest = density
    return highest


def crossover_range(ratios: dict[float, float], margin: float = MARGIN) -> tuple[float, float]:
    """The lowest and highest density of the first run of measured densities at which a backend was faster
    ((0.0, 0.0): at none)."""
    faster = [density for density in sorted(ratios) if ratios[density] <= margin]
    if not faster:
        return 0.0, 0.0
    lowest = faster[0]
    return lowest, crossover({d: r for d, r in ratios.items() if d >= lowest}, margin)


def calibrate(
    widths: Sequence[int] = WIDTHS,
    batches: Sequence[int] = BATCHES,
    modes: Sequence[str] = MODES,
    densities: Sequence[float] = DENSITIES,
    margin: float = MARGIN,
    repeats: int = 3,
    rounds: int = 2,
    path: str | None = None,
    verbose: bool = False,
) -> Path:
    """Measure the crossover points of this machine with torch's current thread count and save them.

    :param path: the calibration file (default: the one ``"auto"`` reads,
        :func:`~sb3_sparse.core.crossover_cache.cache_file`)
    :param verbose: print each measured (mode, batch, width)
    :return: the file written; its tables are ``mode -> {batch: [(width, highest density), ...]}`` (below the
        smallest width: 0), one for CSR and one for condensed products (modes without gradients)
    """
    for mode in modes:
        check_choice("modes", mode, MODES)
    for name, values in (("widths", widths), ("batches", batches), ("repeats", [repeats]), ("rounds", [rounds])):
        if not values or any(int(value) != value or value < 1 for value in values):
            raise ValueError(f"{name} must be whole numbers of at least 1, got {list(values)}")
    if not densities or not all(0 < density <= 1 for density in densities):
        raise ValueError(f"densities must lie in (0, 1], got {list(densities)}")
    if not 0 < margin:
        raise ValueError(f"margin must be positive (CSR counts as faster at most at this time ratio), got {margin}")
    tables: dict[str, Table] = {
        kind: {mode: {batch: [(0, 0.0)] for batch in sorted(batches)} for mode in modes if kind == "csr" or mode != "training"}
        for kind in KINDS
    }
    rows = []
    with th.random.fork_rng(devices=[]):  # the random masks leave the caller's random state alone
        th.manual_seed(0)
        for mode, batch, width in itertools.product(modes, sorted(batches), sorted(widths)):
            ratios = density_ratios(width, batch, mode, densities, margin, repeats, rounds)
            ranges = {backend: crossover_range(by_density, margin) for backend, by_density in ratios.items()}
            tables["csr"][mode][batch].append((width, crossover(ratios["csr"], margin)))
            if "condensed" in ranges:
                lowest, highest = ranges["condensed"]
                tables["condensed"][mode][batch].append((width, highest))
                tables["condensed_lowest"][mode][batch].append((width, lowest))
            rows.append({"mode": mode, "batch": batch, "width": width, "ratios": ratios})
            if verbose:
                measured = "; ".join(
                    f"{backend} " + ", ".join(f"d={d}: {r:.2f}" for d, r in by_density.items())
                    for backend, by_density in ratios.items()
                )
                chosen = ", ".join(
                    f"{backend} at densities {low}-{high}" if high else f"{backend} nowhere"
                    for backend, (low, high) in ranges.items()
                )
                print(f"{mode} batch {batch} width {width}: {measured} -> {chosen}")
    settings = {"margin": margin, "repeats": repeats, "rounds": rounds}
    condensed = (tables["condensed"], tables["condensed_lowest"])
    return save_calibration(tables["csr"], path, condensed=condensed, settings=settings, measured=rows)


def density_ratios(
    width: int, batch: int, mode: str, densities: Sequence[float], margin: float, repeats: int, rounds: int
) -> dict[str, dict[float, float]]:
    """At increasing densities, up to the first where neither is faster: the CSR product's time over the masked
    one's and, without gradients, the condensed product's time over the faster of those two."""
    backends = ("masked", "csr") if mode == "training" else ("masked", "csr", "condensed")
    ratios: dict[str, dict[float, float]] = {backend: {} for backend in backends[1:]}
    for density in sorted(densities):
        times = network_times(width, density, batch, mode, backends, repeats, rounds)
        ratios["csr"][density] = times["csr"] / times["masked"]
        if "condensed" in ratios:
            ratios["condensed"][density] = times["condensed"] / min(times["masked"], times["csr"])
        if all(by_density[density] > margin for by_density in ratios.values()):
            break
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    """``sb3-sparse calibrate``: measure, show or reset this machine's crossover points."""
    parser = argparse.ArgumentParser(prog="sb3-sparse calibrate", description=DESCRIPTION)
    parser.add_argument("--show", action="store_true", help="print the calibration file that 'auto' reads and its points")
    parser.add_argument("--reset", action="store_true", help="delete that file: 'auto' uses the built-in table")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    parser.add_argument("--margin", type=float, default=MARGIN, help="CSR counts as faster at most at this time ratio")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per backend and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (the median ratio is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's current count)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        th.set_num_threads(args.threads)
    file = cache_file()
    if args.reset:
        removed = clear_calibration()
        print(f"removed {removed}" if removed else f"nothing to remove ({file or 'the built-in table is in use'})")
        return 0
    if args.show:
        csr, condensed = calibrated_crossover(), calibrated_crossover("condensed")
        lowest = calibrated_crossover("condensed_lowest") or {}
        print(f"machine: {machine_key()}\nfile: {file}")
        if not csr:
            print("not calibrated: 'auto' uses the built-in tables")
        for kind, table in (("CSR", csr), ("condensed", condensed)):
            for mode, batches in (table or {}).items():
                for batch, sizes in batches.items():
                    floors = dict(lowest.get(mode, {}).get(batch, []))
                    points = ", ".join(
                        f"width >= {width}: density "
                        + (f"<= {density}" if kind == "CSR" else f"{floors.get(width, 0.0)}-{density}")
                        for width, density in sizes
                        if width and density
                    )
                    print(f"{mode}, batch >= {batch}: {kind} at {points or 'no width'}")
        return 0
    start = time.perf_counter()
    try:
        written = calibrate(
            args.widths, args.batches, args.modes, args.densities, args.margin, args.repeats, args.rounds, verbose=True
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"calibrated in {time.perf_counter() - start:.0f} s: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
