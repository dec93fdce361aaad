"""The cost of DST in on-policy training: SparsePPO / SparseA2C against SB3's PPO / A2C at the zoo's default sizes
(a benchmark script, not a timed test).

Models, each built once and warmed up with one untimed rollout and optimisation phase, then timed ``--repeats``
times on ``learn(--steps)`` in an order rotated from repeat to repeat (interleaved, see
:func:`benchmarks.throughput.interleaved`)::

    python -m benchmarks.on_policy_overhead --algo ppo --env Pendulum-v1 --clock cpu --threads 1

- ``dense SB3``: SB3's algorithm with its defaults (64-64 MLPs; PPO: rollouts of 2048 env steps, 10 epochs of
  64-sample minibatches; A2C: rollouts of 5 env steps, RMSprop);
- ``dense, fused Adam``: the same with PyTorch's fused Adam, the kernel the sparse policies pick (PPO only: A2C's
  RMSprop is the same for both), the fair baseline for the cost of DST itself;
- ``dense regime``: the sparse algorithm with ``regime="dense"`` (the engine, the callback and the policy's
  module views run; no weight is masked);
- ``set 0.5``: the sparse algorithm's defaults (SET at 50%, an update every 1000 env steps);
- ``rigl 0.9``: Graesser et al.'s PPO recipe (``sparse_recipe("graesser_ppo")``: RigL at 90% ERK on every layer,
  an update every 250 gradient steps, so dense gradients are kept during many optimisation phases); PPO only.

Each ratio is the median [min, max] over repeats of a model's time over a baseline's in the same repeat. Topology
updates inside the timed steps are included, as in real training.
"""

import argparse
import platform
import statistics
import sys
from typing import Any

import torch as th
from stable_baselines3 import A2C, PPO

from benchmarks.throughput import CLOCKS, DENSE, FUSED_DENSE, Variant, interleaved, ratio, thread_count, time_learn
from sb3_sparse import SparseA2C, SparsePPO, sparse_recipe

DENSE_REGIME = "dense regime"
SET = "set"
RIGL = "rigl"
WIDTH = 64  # SB3's default MLPs


def variants(algo: str) -> list[Variant]:
    """The models compared for ``algo``."""
    fused = [Variant(WIDTH, FUSED_DENSE)] if algo == "ppo" else []
    rigl = [Variant(WIDTH, RIGL, 0.9, "auto")] if algo == "ppo" else []
    return [Variant(WIDTH, DENSE), *fused, Variant(WIDTH, DENSE_REGIME), Variant(WIDTH, SET, 0.5, "auto"), *rigl]


def make_model(variant: Variant, algo: str, env: str, seed: int) -> Any:
    """The model of ``variant``, warmed up with one rollout and its optimisation (untimed)."""
    dense_class, sparse_class = (PPO, SparsePPO) if algo == "ppo" else (A2C, SparseA2C)
    if variant.kind == DENSE:
        model = dense_class("MlpPolicy", env, seed=seed)
    elif variant.kind == FUSED_DENSE:
        model = dense_class("MlpPolicy", env, seed=seed, policy_kwargs={"optimizer_kwargs": {"eps": 1e-5, "fused": True}})
    elif variant.kind == DENSE_REGIME:
        model = sparse_class("MlpPolicy", env, seed=seed, regime="dense")
    elif variant.kind == SET:
        model = sparse_class("MlpPolicy", env, seed=seed)
    else:
        model = sparse_class("MlpPolicy", env, seed=seed, **sparse_recipe("graesser_ppo", algorithm="sparse_ppo"))
    model.learn(model.n_steps * model.n_envs)
    return model


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="ppo", choices=["ppo", "a2c"])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=4096, help="timed env steps per run (PPO: 2 rollouts)")
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
    bases = [variant for variant in compared if variant.kind in (DENSE, FUSED_DENSE)]
    print(f"\n{args.algo.upper()} on {args.env}, {args.steps} env steps x {args.repeats} repeats, {args.clock} clock, ")
    print(f"{args.threads} thread(s), torch {th.__version__}, {platform.processor() or platform.machine()}")
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
