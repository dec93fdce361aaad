"""Quick start: train a sparse SAC agent on Pendulum-v1 (about 2-3 minutes on one CPU core).

Run: ``python examples/quickstart.py [--steps N]``
"""

import argparse

import gymnasium as gym
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_sparse import SparseSAC, flops_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000, help="env steps to train")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    # 50% sparse actor and critics, rewired every 1000 steps (the DS-SAC defaults).
    model = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity=0.5, verbose=1, seed=args.seed)
    model.learn(args.steps, progress_bar=True, log_interval=10)
    model.save("sparse_sac_pendulum")

    model = SparseSAC.load("sparse_sac_pendulum")
    mean_return, std_return = evaluate_policy(model, Monitor(gym.make("Pendulum-v1")), n_eval_episodes=5)
    report = flops_report(model)
    print(f"mean return over 5 episodes: {mean_return:.1f} +- {std_return:.1f}")
    print(f"sparsity {report['sparsity']:.2f}, active weights {report['active_weights']}/{report['weights']}")
    print(
        f"training FLOPs {report['training_flops_ratio']:.2f}x dense, "
        f"inference FLOPs {report['inference_flops_ratio']:.2f}x dense"
    )


if __name__ == "__main__":
    main()
