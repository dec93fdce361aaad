"""The cost of DST itself: each sparse algorithm against its SB3 algorithm at SB3's default sizes (a benchmark
script, not a timed test).

Models, each built once and warmed up (on-policy: one rollout and its optimisation phase; off-policy: the random
warm-up and as many training steps), then timed ``--repeats`` times on ``learn(--steps)`` in an order rotated from
repeat to repeat (interleaved, see :func:`benchmarks.throughput.interleaved`)::

    python -m benchmarks.overhead --algo ppo --env Pendulum-v1 --clock cpu --threads 1
    python -m benchmarks.overhead --algo sac --steps 1000

- ``dense SB3``: SB3's algorithm with its defaults (PPO / A2C: 64-64 MLPs, PPO rollouts of 2048 env steps and 10
  epochs of 64-sample minibatches, A2C rollouts of 5 env steps with RMSprop; SAC / TD3: 256-256 MLPs, a gradient
  step per env step);
- ``dense, fused Adam``: the same with PyTorch's fused Adam, the kernel the sparse policies pick (not A2C: its
  RMSprop is the same for both), the fair baseline for the cost of DST itself;
- ``dense regime``: the sparse algorithm with ``regime="dense"`` (the engine, the callback and the policy's
  module views run; no weight is masked);
- ``set 0.5``: the sparse algorithm's defaults (SET at 50%, an update every 1000 env steps);
- ``rigl 0.9``: PPO: Graesser et al.'s PPO recipe (``sparse_recipe("graesser_ppo")``: RigL at 90% ERK on every
  layer, an update every 250 gradient steps, so dense gradients are kept during many optimisation phases);
  SAC / TD3: ``sparse_recipe("rigl")`` (RigL at 90%). Not A2C.

Each ratio is the median [min, max] over repeats of a model's time over a baseline's in the same repeat; the
baselines are SB3's algorithm, the same with fused Adam, and the dense regime (DST's own cost). Topology
updates inside the timed steps are included, as in real training.
"""

import argparse
import statistics
import sys
from typing import Any

import torch as th
from stable_baselines3 import A2C, PPO, SAC, TD3

from benchmarks.throughput import (
    CLOCKS,
    DENSE,
    FUSED_DENSE,
    Variant,
    interleaved,
    machine,
    ratio,
    thread_count,
    time_learn,
)
from sb3_sparse import SparseA2C, SparsePPO, SparseSAC, SparseTD3, sparse_recipe

DENSE_REGIME = "dense regime"
SET = "set"
RIGL = "rigl"
#: algorithm -> (SB3's class, ours, its default width, the arguments of the RigL variant, Adam's eps)
ALGORITHMS: dict[str, tuple[Any, Any, int, dict[str, Any] | None, float]] = {
    "ppo": (PPO, SparsePPO, 64, sparse_recipe("graesser_ppo", algorithm="sparse_ppo"), 1e-5),
    "a2c": (A2C, SparseA2C, 64, None, 1e-5),
    "sac": (SAC, SparseSAC, 256, sparse_recipe("rigl", algorithm="sparse_sac"), 1e-8),
    "td3": (TD3, SparseTD3, 256, sparse_recipe("rigl", algorithm="sparse_td3"), 1e-8),
}


def variants(algo: str) -> list[Variant]:
    """The models compared for ``algo``."""
    _, _, width, rigl_kwargs, _ = ALGORITHMS[algo]
    fused = [Variant(width, FUSED_DENSE)] if algo != "a2c" else []
    rigl = [Variant(width, RIGL, 0.9, "auto")] if rigl_kwargs is not None else []
    return [Variant(width, DENSE), *fused, Variant(width, DENSE_REGIME), Variant(width, SET, 0.5, "auto"), *rigl]


def make_model(variant: Variant, algo: str, env: str, seed: int) -> Any:
    """The model of ``variant``, warmed up (untimed): one rollout and its optimisation, or off-policy the random
    warm-up and as many training steps."""
    dense_class, sparse_class, _, rigl_kwargs, eps = ALGORITHMS[algo]
    if variant.kind == DENSE:
        model = dense_class("MlpPolicy", env, seed=seed)
    elif variant.kind == FUSED_DENSE:
        model = dense_class("MlpPolicy", env, seed=seed, policy_kwargs={"optimizer_kwargs": {"eps": eps, "fused": True}})
    elif variant.kind == DENSE_REGIME:
        model = sparse_class("MlpPolicy", env, seed=seed, regime="dense")
    elif variant.kind == SET:
        model = sparse_class("MlpPolicy", env, seed=seed)
    else:
        model = sparse_class("MlpPolicy", env, seed=seed, **(rigl_kwargs or {}))
    on_policy = hasattr(model, "n_steps")
    model.learn(model.n_steps * model.n_envs if on_policy else 2 * model.learning_starts)
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="ppo", choices=list(ALGORITHMS))
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=4096, help="timed env steps per run (PPO: 2 rollouts; SAC: try 1000)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=thread_count, default=1, help="torch intra-op threads, or 'all'")
    parser.add_argument("--clock", choices=CLOCKS, default="cpu", help="CPU seconds of this process, or wall-clock")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    device = th.device("cpu")
    compared = variants(args.algo)
    models = {variant: make_model(variant, args.algo, args.env, args.seed) for variant in compared}
    times = interleaved(compared, args.repeats, lambda v: time_learn(models[v], args.steps, device, clock), "training")
    # SB3's step, SB3's with the same Adam kernel, and the same code without masks (the cost of DST itself)
    bases = [variant for variant in compared if variant.kind in (DENSE, FUSED_DENSE, DENSE_REGIME)]
    print(f"\n{args.algo.upper()} on {args.env}, {args.steps} env steps x {args.repeats} repeats, {args.clock} clock, ")
    print(f"{args.threads} thread(s), torch {th.__version__}, {machine(device)}")
    print("| model | ms / env step | " + " | ".join(f"vs {base.kind}" for base in bases) + " |")
    print("|---|---|" + "---|" * len(bases))
    results: dict[str, Any] = {}
    for variant in compared:
        cells = []
        for base in bases:
            stats = ratio(times, variant, base)
            assert stats is not None
            cells.append(f"{stats['median']:.3f} [{stats['min']:.3f}, {stats['max']:.3f}]")
            results[f"{variant.label} / {base.kind}"] = stats
        median = statistics.median(times[variant]) * 1e3
        print(f"| {variant.label} | {median:.3f} | " + " | ".join(cells) + " |")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
