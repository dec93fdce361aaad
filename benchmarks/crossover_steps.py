"""Whole training steps under ``"auto"``'s built-in crossover points against another table, interleaved in one process.

Single layers (``benchmarks/crossover.py``, ``sb3-sparse calibrate``) do not show what a whole step adds: per-call
overheads, the layouts that one layer's product hands the next, the dense layers around the sparse ones. This script
builds each case twice, one model under the built-in :data:`sb3_sparse.core.backends.CROSSOVER` and one under the
table in ``--against`` (a JSON file holding a calibration's ``crossover`` entry: ``mode -> {batch: [[width, highest
density], ...]}``), warms both up (their layers' choices are then made and kept, as no mask changes), and times
``model.train(--steps, batch)`` of each in alternating order (CPU time of this process, one torch thread). The ratio
is the median over the repeats of the built-in table's time / the other table's::

    python -m benchmarks.crossover_steps --against docs/benchmarks/crossover-steps/previous-table.json \\
        --out docs/benchmarks/crossover-steps

With ``--against-row-major`` instead, the other model is built under the same table, and the layers that feed sparse
products return their outputs row-major (unmarked, :func:`sb3_sparse.core.backends.mark_column_major_producers`):
what the column-major hand-over saves on whole steps::

    python -m benchmarks.crossover_steps --against-row-major --out docs/benchmarks/crossover-steps/column-major
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch as th

from benchmarks.methods import build_model
from benchmarks.throughput import report_cpu_rows
from sb3_sparse.core import backends
from sb3_sparse.core.crossover_cache import BUILTIN, parse_table, use_calibration
from sb3_sparse.core.masking import COLUMN_MAJOR_ATTRIBUTE


class Case(NamedTuple):
    env: str
    method: str
    sparsity: float
    width: int
    kwargs: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.env} {self.method} {self.sparsity:g} width {self.width}"


#: The quick profile's RigL (ERK, every layer sparse), the MuJoCo profile's RigL and RLx2, and SET at 80% at two widths.
CASES = (
    Case("Pendulum-v1", "rigl", 0.9, 256, {"sparsity_distribution": "erk", "sparse_layers": "all"}),
    Case("HalfCheetah-v5", "rigl", 0.9, 256, {"sparsity_distribution": "erk"}),
    Case("HalfCheetah-v5", "rlx2", 0.9, 256, {}),
    Case("Pendulum-v1", "set", 0.8, 256, {}),
    Case("HalfCheetah-v5", "set", 0.8, 1024, {}),
)


def build(case: Case, table: dict[str, Any], args: argparse.Namespace) -> Any:
    """The case's SparseSAC with ``table`` as the CPU's crossover points while its layers choose their products."""
    saved = backends.CROSSOVER["cpu"]
    backends.CROSSOVER["cpu"] = table
    try:
        algo_kwargs = {
            "learning_starts": args.learning_starts,
            "buffer_size": args.learning_starts + 1000,
            "policy_kwargs": {"net_arch": [case.width, case.width]},
        }
        extra = {**case.kwargs, "topology_update_interval": 10**9}  # no mask changes: the choices stay made
        model = build_model("sac", case.method, case.env, case.env, args.seed, case.sparsity, algo_kwargs, extra)
        model.learn(args.learning_starts + 100)
        model.train(5, args.batch_size)  # type: ignore[attr-defined]  # every product of a step has chosen (cached per layer and batch)
    finally:
        backends.CROSSOVER["cpu"] = saved
    return model


def row_major_producers(model: Any) -> Any:
    """``model`` with every layer returning its output row-major (as before the column-major hand-over)."""
    for module in model.policy.modules():
        module.__dict__.pop(COLUMN_MAJOR_ATTRIBUTE, None)
    return model


def measure(case: Case, against: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    builtin = copy.deepcopy(backends.CROSSOVER["cpu"])
    other = build(case, against, args) if against is not None else row_major_producers(build(case, builtin, args))
    models = {"built-in": build(case, builtin, args), "against": other}
    times: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(args.repeats):
        for name in list(models)[:: 1 if repeat % 2 == 0 else -1]:
            start = time.process_time()
            models[name].train(args.steps, args.batch_size)
            times[name].append((time.process_time() - start) / args.steps)
    ratios = [new / old for new, old in zip(times["built-in"], times["against"], strict=True)]
    return {
        "case": case.label,
        "ms_against": 1e3 * statistics.median(times["against"]),
        "ms_builtin": 1e3 * statistics.median(times["built-in"]),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    other_model = parser.add_mutually_exclusive_group(required=True)
    other_model.add_argument("--against", type=Path, help="JSON file of the other table (a calibration's crossover)")
    other_model.add_argument(
        "--against-row-major", action="store_true", help="the same table, the layers feeding sparse products row-major"
    )
    parser.add_argument("--steps", type=int, default=50, help="gradient steps per timed call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="*", type=int, help="indices into CASES (default: all)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    th.set_num_threads(1)
    use_calibration(BUILTIN)
    against = None if args.against is None else parse_table(json.loads(args.against.read_text()))
    other = "row-major hand-over" if against is None else f"`{args.against.name}`"
    cases = [CASES[index] for index in args.cases] if args.cases else list(CASES)
    rows = [measure(case, against, args) for case in cases]
    lines = [
        f"SAC training steps (`model.train`), batch {args.batch_size}, {args.steps} steps x {args.repeats} alternating "
        f"repeats, CPU time, one thread; ratio: built-in table / {other}, median [min, max].",
        "",
        f"| case | ms / step, {other} | ms / step, built-in | ratio |",
        "|---|---|---|---|",
        *(
            f"| {row['case']} | {row['ms_against']:.2f} | {row['ms_builtin']:.2f} | "
            f"{row['ratio']:.3f}x [{row['ratio_min']:.3f}, {row['ratio_max']:.3f}] |"
            for row in rows
        ),
    ]
    return report_cpu_rows("crossover_steps", args, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
