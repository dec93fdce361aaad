"""Train, export and evaluate the trained agents shipped in ``sb3_sparse/trained_agents/``, and write their index and table.

Each agent is trained by a real ``sb3-sparse train`` command (the shipped hyperparameter file, ``-params`` or
``--recipe`` for the DST recipe, ``-n`` where the budget is reduced), on one thread, into ``logs/trained_agents``,
or is a finished run of a benchmark profile (``run``: the run's own ``python -m benchmarks.run`` command, its acting
network exported by the harness as ``policy.pt``). Its acting network (a multi-agent learner's agent network) is
exported with :func:`sb3_sparse.export_policy`, evaluated over 10 deterministic episodes (env seeded 0) and written to
``sb3_sparse/trained_agents/index.yml`` and the table ``docs/guide/trained_agents_table.md``::

    python -m benchmarks.trained_agents list                       # the agents this script knows
    python -m benchmarks.trained_agents train sparse_sac-Pendulum-v1  # train (one core), export, evaluate
    python -m benchmarks.trained_agents export sparse_sac-Pendulum-v1 # export and evaluate the latest run again
    python -m benchmarks.trained_agents table                      # rewrite the table from the index

Train them one at a time (each run uses one core for a few minutes).
"""

import argparse
import dataclasses
import datetime
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.profile import load_profile, profile_results_dir
from benchmarks.runner import POLICY_FILE
from sb3_sparse import registry
from sb3_sparse.common.flops import module_sparsity
from sb3_sparse.core.crossover_cache import cpu_model
from sb3_sparse.core.masking import mask_name, sparse_weights
from sb3_sparse.zoo import algorithm_class, run_ids
from sb3_sparse.zoo.agents import AGENTS_DIR, TrainedAgent, check_index, evaluate_agent, read_index, write_index

ROOT = Path(__file__).resolve().parent.parent
LOG_FOLDER = "logs/trained_agents"
TABLE_FILE = ROOT / "docs" / "guide" / "trained_agents_table.md"
N_EVAL_EPISODES = 10


@dataclass(frozen=True)
class Spec:
    """How one agent is trained: ``sb3-sparse train --algo ALGO --env ENV`` with the common flags and ``args``, or,
    with ``run`` (``"PROFILE:RUN_ID"``, e.g. ``"mujoco:sac/HalfCheetah-v5/rlx2-0.9/seed1"``), that benchmark run."""

    algo: str
    env: str
    recipe: str
    args: str = ""
    budget: str = "rl-zoo3's"
    run: str = ""

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.env}"

    @property
    def command(self) -> str:
        if self.run:
            profile, run_id = self.run_parts
            _, env, label, seed = run_id.split("/")
            return f"python -m benchmarks.run {profile} --envs {env} --methods {label} --seeds {seed.removeprefix('seed')}"
        common = f"--seed 0 --num-threads 1 --eval-freq -1 -f {LOG_FOLDER}"
        return f"python -m sb3_sparse train --algo {self.algo} --env {self.env} {common} {self.args}".strip()

    @property
    def run_parts(self) -> tuple[str, str]:
        """The profile and run id of the benchmark run ``run``."""
        profile, run_id = self.run.split(":")
        return profile, run_id

    def run_dir(self) -> Path:
        """The folder of the benchmark run ``run``."""
        profile, run_id = self.run_parts
        return profile_results_dir(load_profile(profile)[0], profile) / run_id


SPECS = [
    Spec("sparse_sac", "Pendulum-v1", "RigL, 90% uniform, output layers dense", "-params regime:\"'rigl'\" sparsity:0.9"),
    Spec("sparse_td3", "Pendulum-v1", "SET (DS-TD3), 90% uniform, output layers dense", "-params sparsity:0.9"),
    Spec("sparse_tqc", "Pendulum-v1", "SET, 90% uniform, output layers dense", "-params sparsity:0.9"),
    Spec("sparse_dqn", "CartPole-v1", "RigL, 90% uniform, output layer dense", "-params regime:\"'rigl'\" sparsity:0.9"),
    Spec(
        "qmix",
        "simple_spread_v3",
        "MAST: RigL 90% (agent and mixer), Soft Mellowmax, TD(lambda), dual buffers",
        "--recipe mast -n 100000",
        budget="reduced: 100k of 2M steps",
    ),
    Spec(
        "sparse_sac",
        "InvertedPendulum-v5",
        "SET (DS-SAC), 90% uniform, output layers dense",
        "-n 20000 -params sparsity:0.9",
        budget="reduced: 20k of 1M steps",
    ),
    Spec(
        "sparse_sac",
        "HalfCheetah-v5",
        "RLx2: RigL, actor 90% / critic 85%, 3-step targets, dynamic buffer (the mujoco profile's schedule)",
        budget="reduced: 100k of 1M steps",
        run="mujoco:sac/HalfCheetah-v5/rlx2-0.9/seed1",
    ),
    Spec(
        "sparse_sac",
        "Hopper-v5",
        "RLx2: RigL, actor 90% / critic 85%, 3-step targets, dynamic buffer (the mujoco profile's schedule)",
        budget="reduced: 100k of 1M steps",
        run="mujoco:sac/Hopper-v5/rlx2-0.9/seed1",
    ),
    Spec(
        "sparse_sac",
        "Walker2d-v5",
        "RLx2: RigL, actor 90% / critic 85%, 3-step targets, dynamic buffer (the mujoco profile's schedule)",
        budget="reduced: 100k of 1M steps",
        run="mujoco:sac/Walker2d-v5/rlx2-0.9/seed1",
    ),
]


def spec(name: str) -> Spec:
    for candidate in SPECS:
        if candidate.name == name:
            return candidate
    raise SystemExit(f"unknown agent {name!r}; choose from {', '.join(item.name for item in SPECS)}")


def train(item: Spec) -> None:
    """Run the agent's command from the repository root, on one thread."""
    command = shlex.split(item.command)
    command[0] = sys.executable
    print(f"$ {item.command}", flush=True)
    subprocess.run(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)


def latest_run(item: Spec) -> Path:
    log_path = ROOT / LOG_FOLDER / item.algo
    ids = run_ids(log_path, item.env)
    if not ids:
        raise SystemExit(f"no run of {item.name} in {log_path}: train it first")
    return log_path / f"{item.env}_{ids[-1]}"


def dense_size(policy: th.nn.Module, module: str) -> int:
    """Bytes of ``torch.save`` of the acting network's ``state_dict`` without its masks: the same network stored dense."""
    network = policy.get_submodule(module)
    state = network.state_dict()
    for key, _, name in sparse_weights(network):
        del state[key.removesuffix(name) + mask_name(name)]
    buffer = io.BytesIO()
    th.save(state, buffer)
    return buffer.getbuffer().nbytes


def from_zoo_run(item: Spec, target: Path) -> tuple[Any, int, str, str]:
    """Export the latest ``sb3-sparse train`` run's agent to ``target``: its policy, steps, day (UTC) and CPU."""
    from sb3_sparse import export_policy

    run = latest_run(item)
    model_file = run / f"{item.env}.zip"
    if (run / item.env / "vecnormalize.pkl").exists():
        raise SystemExit(f"{run} normalises observations: the exported policy would not see what it was trained on")
    if item.algo in registry.MULTI_AGENT_ALGORITHMS:
        model = registry.get_multi_agent_algorithm(item.algo).sparse_class.load(
            model_file, buffer_size=1, batch_size=1, device="cpu"
        )
    else:
        model = algorithm_class(item.algo).load(model_file, buffer_size=1, optimize_memory_usage=False, device="cpu")
    export_policy(model, target)
    date = datetime.datetime.fromtimestamp(model_file.stat().st_mtime, datetime.UTC).date().isoformat()
    return model.policy, int(model.num_timesteps), date, cpu_model()


def from_benchmark_run(item: Spec, target: Path) -> tuple[Any, int, str, str]:
    """Copy a finished benchmark run's exported acting network to ``target``: its policy, steps, day and CPU."""
    from sb3_sparse import load_policy

    run_dir = item.run_dir()
    if not (run_dir / "result.json").exists() or not (run_dir / POLICY_FILE).exists():
        raise SystemExit(f"{run_dir} has no finished run with its {POLICY_FILE}: run `{item.command}` first")
    result = json.loads((run_dir / "result.json").read_text())
    shutil.copyfile(run_dir / POLICY_FILE, target)
    cpu = result["machine"].get("cpu") or cpu_model()
    return load_policy(target, device="cpu"), int(result["num_timesteps"]), result["finished"][:10], cpu


def export(item: Spec) -> TrainedAgent:
    """Export the agent into the package folder, evaluate it and add it to the index."""
    target = AGENTS_DIR / f"{item.name}.pt"
    policy, n_timesteps, date, cpu = (from_benchmark_run if item.run else from_zoo_run)(item, target)
    agent = TrainedAgent(
        algo=item.algo,
        env=item.env,
        file=target.name,
        recipe=item.recipe,
        sparsity=round(module_sparsity(policy)[policy.inference_module], 4),
        mean_return=float("nan"),  # measured below, on the file
        std_return=float("nan"),
        n_eval_episodes=N_EVAL_EPISODES,
        n_timesteps=n_timesteps,
        budget=item.budget,
        file_size=target.stat().st_size,
        dense_size=dense_size(policy, policy.sparse_modules[policy.inference_module].online),
        command=item.command,
        date=date,
        cpu=cpu,
    )
    returns = evaluate_agent(agent, N_EVAL_EPISODES)
    result = dataclasses.replace(
        agent, mean_return=round(float(np.mean(returns)), 2), std_return=round(float(np.std(returns)), 2)
    )
    write_index([*(entry for entry in read_index() if (entry.algo, entry.env) != (item.algo, item.env)), result])
    print(f"{result.file}: {result.mean_return} +/- {result.std_return}, {result.file_size} bytes (dense {result.dense_size})")
    return result


def table_markdown(agents: list[TrainedAgent]) -> str:
    """The Markdown table of the docs (``docs/guide/trained_agents.rst`` includes it)."""
    lines = [
        "| Env | Algorithm | Recipe | Sparsity | Return (10 episodes) | File (dense) | Steps | Command | Trained |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for agent in agents:
        size = f"`{agent.file}`: {agent.file_size / 1024:.1f} KiB ({agent.dense_size / 1024:.1f} KiB)"
        steps = f"{agent.n_timesteps:,} ({agent.budget})"
        lines.append(
            f"| {agent.env} | {agent.algo} | {agent.recipe} | {agent.sparsity:.1%} | {agent.mean_return:.1f} ± "
            f"{agent.std_return:.1f} | {size} | {steps} | `{agent.command}` | {agent.date}, {agent.cpu}, 1 thread |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("verb", choices=["list", "train", "export", "table"])
    parser.add_argument("names", nargs="*", help="agents (default: all)")
    args = parser.parse_args(argv)
    if args.verb == "list":
        for item in SPECS:
            print(f"{item.name}: {item.command}")
        return 0
    names = args.names or [item.name for item in SPECS]
    for name in names if args.verb != "table" else []:
        item = spec(name)
        if args.verb == "train":
            train(item)
        export(item)
    agents = read_index()
    TABLE_FILE.write_text(table_markdown(agents))
    problems = check_index(agents)
    for problem in problems:
        print(f"index: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
