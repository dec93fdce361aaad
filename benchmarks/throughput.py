"""Wall-clock per training step, sparse vs dense (a benchmark script, not a timed test).

Default (a few minutes): SparseSAC at 50% sparsity (256-256, SET: random growth every 1000 steps)
against SB3's dense SAC on the same env and seed, and against dense SAC with PyTorch's fused Adam
(the kernel the sparse policies use by default, see ``sb3_sparse.core.optim.prefer_fused``: the
fair baseline for the cost of DST itself); prints the median time ratios (target <= 1.05x) and the
cost of one mask update::

    python -m benchmarks.throughput
    python -m benchmarks.throughput --sparsities 0.5 0.8 0.9 0.95 --widths 256 1024 --steps 500

Each variant is built and warmed up once (``learning_starts`` random steps and a few training
steps, not timed); then every repeat times ``model.learn(steps)`` of each variant, in an order
rotated from repeat to repeat (interleaved), with one torch thread. The ratio is the median over
repeats of sparse time / dense time of the same repeat. Topology updates inside the timed steps
are included, as in real training; the cost of one update is also timed on its own.
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from benchmarks.methods import build_model
from sb3_sparse.core.engine import SparseEngine

#: The dense variant with PyTorch's fused Adam, the optimizer kernel the sparse policies use by default.
FUSED_DENSE = "dense, fused Adam"


def make_variant(algo: str, env_id: str, width: int, sparsity: float | str | None, args: argparse.Namespace) -> BaseAlgorithm:
    """A model (dense if ``sparsity`` is None or FUSED_DENSE), warmed up: buffer filled, a few training steps done."""
    kwargs: dict[str, Any] = {
        "learning_starts": args.learning_starts,
        "buffer_size": args.learning_starts + args.steps * (args.repeats + 1) + 1000,
        "policy_kwargs": {"net_arch": [width, width]},
    }
    if sparsity == FUSED_DENSE:
        kwargs["policy_kwargs"]["optimizer_kwargs"] = {"fused": True}
    if sparsity is None or sparsity == FUSED_DENSE:
        model = build_model(algo, "dense", env_id, env_id, args.seed, algo_kwargs=kwargs)
    else:
        extra = {"topology_update_interval": args.interval}
        model = build_model(algo, args.method, env_id, env_id, args.seed, sparsity, kwargs, extra)
    model.learn(args.learning_starts + args.warmup_steps)
    return model


def time_learn(model: BaseAlgorithm, steps: int) -> float:
    """Seconds per env step of ``model.learn(steps)`` (continuing the model's run)."""
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return (time.perf_counter() - start) / steps


def topology_update_cost(model: BaseAlgorithm, repeats: int = 20) -> float:
    """Median seconds of one mask update of every module (the engine's update, target sync included)."""
    policy: Any = model.policy
    engine = SparseEngine(policy.module_configs, {})
    bindings = policy.sparse_bindings()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        for name, binding in bindings.items():
            engine.update(name, binding, progress=0.0, step=model.num_timesteps)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="sac", choices=["sac", "td3", "tqc", "crossq"])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5])
    parser.add_argument("--widths", type=int, nargs="+", default=[256])
    parser.add_argument("--method", default="set", help="a recipe name: set (random growth), rigl (gradient growth), ...")
    parser.add_argument("--interval", type=int, default=1000, help="topology update interval (env steps)")
    parser.add_argument("--steps", type=int, default=2000, help="timed training steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--warmup-steps", type=int, default=200, help="untimed training steps after learning_starts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write results.json and results.md into this directory")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    variants: dict[tuple[int, float | str | None], BaseAlgorithm] = {}
    for width in args.widths:
        for sparsity in [None, FUSED_DENSE, *args.sparsities]:
            variants[(width, sparsity)] = make_variant(args.algo, args.env, width, sparsity, args)
    keys = list(variants)
    times: dict[tuple[int, float | str | None], list[float]] = {key: [] for key in keys}
    for repeat in range(args.repeats):
        shift = repeat % len(keys)
        for key in keys[shift:] + keys[:shift]:
            times[key].append(time_learn(variants[key], args.steps))
        print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(f"{k}: {t[-1] * 1e3:.2f} ms" for k, t in times.items()))

    rows = []
    for (width, sparsity), model in variants.items():
        ratios = [t / d for t, d in zip(times[(width, sparsity)], times[(width, None)], strict=True)]
        fused = [t / d for t, d in zip(times[(width, sparsity)], times[(width, FUSED_DENSE)], strict=True)]
        row: dict[str, Any] = {
            "width": width,
            "sparsity": sparsity,
            "ms_per_step": 1e3 * statistics.median(times[(width, sparsity)]),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "ratio_fused": statistics.median(fused),
            "ratio_fused_min": min(fused),
            "ratio_fused_max": max(fused),
        }
        if isinstance(sparsity, float):
            row["update_ms"] = 1e3 * topology_update_cost(model)
            row["update_per_step_ms"] = row["update_ms"] / args.interval
        rows.append(row)

    header = (
        f"{args.algo.upper()} on {args.env}, {args.steps} timed steps x {args.repeats} interleaved repeats, "
        f"{args.threads} torch thread(s), method {args.method!r}, mask updates every {args.interval} steps; "
        f"{platform.processor() or platform.machine()}, torch {th.__version__}"
    )
    lines = [
        header,
        "",
        "| width | sparsity | ms / step (median) | time vs dense SB3 (median [min, max]) "
        "| time vs dense with fused Adam (median [min, max]) | one mask update (all modules) | update amortised per step |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        sparse = isinstance(row["sparsity"], float)
        update = "| - | - |"
        if sparse:
            update = f"| {row['update_ms']:.2f} ms | {row['update_per_step_ms']:.4f} ms |"
        lines.append(
            f"| {row['width']} | {row['sparsity'] if row['sparsity'] is not None else 'dense'} | {row['ms_per_step']:.2f} "
            f"| {row['ratio']:.3f}x [{row['ratio_min']:.3f}, {row['ratio_max']:.3f}] "
            f"| {row['ratio_fused']:.3f}x [{row['ratio_fused_min']:.3f}, {row['ratio_fused_max']:.3f}] {update}"
        )
    text = "\n".join(lines)
    print(text)
    for row in rows:
        if isinstance(row["sparsity"], float):
            verdict = "meets" if max(row["ratio"], row["ratio_fused"]) <= 1.05 else "misses"
            print(
                f"width {row['width']}, sparsity {row['sparsity']}: median ratio {row['ratio']:.3f}x vs dense SB3, "
                f"{row['ratio_fused']:.3f}x vs dense with fused Adam ({verdict} the 1.05x target)"
            )
    result = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "rows": rows}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(result, indent=1))
        (args.out / "results.md").write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
