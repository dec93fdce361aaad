"""Trained sparse agents shipped with the package: ``sb3-sparse agents`` lists them, ``sb3-sparse enjoy --pretrained``
runs one (and records it with ``--record FOLDER``).

They live in ``sb3_sparse/trained_agents/``, described by ``index.yml``: how each was trained (the command), its
sparsity, its return over deterministic episodes and the size of its file next to that of the same network stored
dense. Each is the file :func:`~sb3_sparse.export_policy` writes (the acting network, its masked weights in CSR
form): a single-agent policy is loaded with :func:`~sb3_sparse.load_policy`; a multi-agent learner's agent network
(QMIX / VDN) with :func:`~sb3_sparse.common.deploy.rebuild_policy`, its agents acting greedily through
:class:`TeamActor`. ``python -m benchmarks.trained_agents`` trains them and writes the index and its table.
"""

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sb3_sparse import registry
from sb3_sparse.zoo import CommandParser, ZooError, check_display

#: The folder of the shipped agents.
AGENTS_DIR = Path(__file__).resolve().parent.parent / "trained_agents"
#: Their index (a YAML list of :class:`TrainedAgent` fields).
INDEX_FILE = AGENTS_DIR / "index.yml"
INDEX_HEADER = "# The trained agents of sb3_sparse/trained_agents/, written by `python -m benchmarks.trained_agents`.\n"


@dataclass(frozen=True)
class TrainedAgent:
    """One entry of the index.

    :param algo: the ``--algo`` name (``"sparse_sac"``, ``"qmix"``)
    :param env: the env id
    :param file: its file, in :data:`AGENTS_DIR`
    :param recipe: the DST recipe, in words (``"RigL, 90% uniform, output layer dense"``)
    :param sparsity: realised sparsity of the acting network's masked weights
    :param mean_return: mean return over ``n_eval_episodes`` deterministic episodes of the file's agent
    :param std_return: their standard deviation
    :param n_eval_episodes: the number of evaluation episodes (seeds 0, 1, ...)
    :param n_timesteps: env steps of training
    :param budget: the budget against the hyperparameter file's (``"rl-zoo3's"`` or ``"reduced from 2M"``)
    :param file_size: bytes of the file
    :param dense_size: bytes of the acting network stored dense (``torch.save`` of its ``state_dict`` without masks)
    :param command: the command that trained it (from the repository root)
    :param date: the day it was trained (UTC)
    :param cpu: the processor it was trained on (one thread)
    """

    algo: str
    env: str
    file: str
    recipe: str
    sparsity: float
    mean_return: float
    std_return: float
    n_eval_episodes: int
    n_timesteps: int
    budget: str
    file_size: int
    dense_size: int
    command: str
    date: str
    cpu: str

    @property
    def path(self) -> Path:
        return AGENTS_DIR / self.file

    @property
    def multi_agent(self) -> bool:
        return self.algo in registry.MULTI_AGENT_ALGORITHMS


def read_index(path: Path = INDEX_FILE) -> list[TrainedAgent]:
    """The agents of the index file (none if it does not exist)."""
    if not path.is_file():
        return []
    return [TrainedAgent(**entry) for entry in yaml.safe_load(path.read_text()) or []]


def write_index(agents: Sequence[TrainedAgent], path: Path = INDEX_FILE) -> None:
    entries = [dataclasses.asdict(agent) for agent in sorted(agents, key=lambda agent: (agent.algo, agent.env))]
    path.write_text(INDEX_HEADER + yaml.safe_dump(entries, sort_keys=False, width=1000))


def find_agent(algo: str, env: str, agents: Sequence[TrainedAgent] | None = None) -> TrainedAgent:
    """The shipped agent for ``algo`` on ``env``; a :class:`ZooError` naming the available ones otherwise."""
    agents = read_index() if agents is None else agents
    for agent in agents:
        if (agent.algo, agent.env) == (algo, env):
            return agent
    available = ", ".join(f"{agent.algo} on {agent.env}" for agent in agents) or "none"
    raise ZooError(f"no pretrained agent for --algo {algo} --env {env}; available: {available} (see 'sb3-sparse agents')")


def table(agents: Sequence[TrainedAgent]) -> str:
    """The agents as a plain-text table (``sb3-sparse agents``)."""
    rows = [("algo", "env", "recipe", "sparsity", "return", "file")]
    for agent in agents:
        size = f"{agent.file} ({agent.file_size / 1024:.0f} KiB, dense {agent.dense_size / 1024:.0f} KiB)"
        score = f"{agent.mean_return:.1f} +/- {agent.std_return:.1f}"
        rows.append((agent.algo, agent.env, agent.recipe, f"{agent.sparsity:.0%}", score, size))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)


def agents_command(argv: Sequence[str]) -> int:
    """``sb3-sparse agents``: list the shipped agents."""
    parser = CommandParser(
        prog="sb3-sparse agents",
        description="List the trained sparse agents shipped with the package; run one with "
        "'sb3-sparse enjoy --algo ALGO --env ENV --pretrained'.",
    )
    parser.parse_args(argv)
    print(table(read_index()))
    print(f"\nfiles in {AGENTS_DIR}; returns: mean +/- std over deterministic episodes (docs: guide/trained_agents)")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# Running an agent


class TeamActor:
    """The greedy agents of a multi-agent learner's exported agent network, with the learners' ``predict``
    (what :func:`~sb3_sparse.marl.evaluation.evaluate_marl_policy` calls): joint actions and the recurrent state.

    :param policy: the policy :func:`~sb3_sparse.common.deploy.rebuild_policy` returns (``QMIXPolicy``)
    """

    def __init__(self, policy: Any):
        self.policy = policy

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        from sb3_sparse.marl.runner import recurrent_actions

        if not deterministic:
            raise ValueError("an exported agent network acts greedily (its exploration rate is not saved)")
        return recurrent_actions(self.policy, observation, state, episode_start, action_masks, 0.0, np.random.default_rng())


def load_agent(agent: TrainedAgent, device: str = "cpu") -> Any:
    """The agent's policy (single-agent: :func:`~sb3_sparse.load_policy`) or :class:`TeamActor` (multi-agent)."""
    from sb3_sparse.common.deploy import load_policy, rebuild_policy

    if agent.multi_agent:
        return TeamActor(rebuild_policy(agent.path, device=device))
    return load_policy(agent.path, device=device)


def make_agent_env(agent: TrainedAgent, render_mode: str | None = None) -> Any:
    """A fresh env of the agent (a multi-agent one through :func:`sb3_sparse.zoo.marl.make_env`)."""
    if agent.multi_agent:
        from sb3_sparse.zoo.marl import make_env

        return make_env(agent.env)
    import gymnasium as gym

    return gym.make(agent.env, render_mode=render_mode)


def play(
    policy: Any,
    env: Any,
    seed: int = 0,
    deterministic: bool = True,
    n_steps: int | None = None,
    n_episodes: int | None = None,
    verbose: bool = False,
) -> list[float]:
    """Act with ``policy.predict`` for ``n_steps`` env steps or ``n_episodes`` episodes, whichever ends first.

    :return: the returns of the episodes that ended (each printed when ``verbose``)
    """
    returns: list[float] = []
    total, steps = 0.0, 0
    obs, _ = env.reset(seed=seed)
    while (n_steps is None or steps < n_steps) and (n_episodes is None or len(returns) < n_episodes):
        action, _ = policy.predict(obs, deterministic=deterministic)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            returns.append(total)
            if verbose:
                print(f"Episode return: {total:.2f}")
            total = 0.0
            obs, _ = env.reset()
    return returns


def evaluate_agent(agent: TrainedAgent, n_episodes: int, seed: int = 0, deterministic: bool = True) -> list[float]:
    """The returns of ``n_episodes`` episodes of the agent, the env seeded with ``seed`` first."""
    env = make_agent_env(agent)
    try:
        if agent.multi_agent:
            from sb3_sparse.marl.evaluation import evaluate_marl_policy

            env.reset(seed=seed)
            returns, _ = evaluate_marl_policy(
                load_agent(agent), env, n_episodes, deterministic=deterministic, return_episode_rewards=True
            )
            return [float(value) for value in returns]
        return play(load_agent(agent), env, seed, deterministic, n_episodes=n_episodes)
    finally:
        env.close()


def enjoy_parser(prog: str) -> argparse.ArgumentParser:
    parser = CommandParser(
        prog=prog, description="Run a trained sparse agent shipped with the package (see 'sb3-sparse agents')."
    )
    parser.add_argument("--algo", required=True, help="the agent's algorithm (e.g. sparse_sac)")
    parser.add_argument("--env", required=True, help="the agent's env id (e.g. Pendulum-v1)")
    parser.add_argument("--pretrained", action="store_true", help="run the shipped agent (this command's only mode)")
    parser.add_argument(
        "-n",
        "--n-timesteps",
        type=int,
        default=None,
        help="env steps (default 1000); episodes for a multi-agent learner (default 10)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the env (default: 0)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: deterministic)")
    parser.add_argument("--no-render", action="store_true", help="do not open a window")
    parser.add_argument(
        "--record",
        "-o",
        "--output-folder",
        dest="record",
        default=None,
        metavar="FOLDER",
        help="record the run as an MP4 video in FOLDER (rgb_array rendering, no window; needs moviepy)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    return parser


def enjoy_pretrained(argv: Sequence[str], prog: str = "sb3-sparse enjoy", record: str | None = None) -> int:
    """``sb3-sparse enjoy --pretrained`` (and ``record-video --pretrained``, which records into ``record`` by default)."""
    args = enjoy_parser(prog).parse_args(argv)
    args.record = args.record or record
    if args.n_timesteps is not None and args.n_timesteps <= 0:
        raise ZooError(f"-n {args.n_timesteps} is not valid; it must be a positive integer")
    agent = find_agent(args.algo, args.env)
    if agent.multi_agent and (args.record or args.stochastic):
        flag = "--record" if args.record else "--stochastic"
        raise ZooError(f"{flag} is for single-agent agents ({agent.algo}'s exported agents act greedily, unrendered)")
    print(f"Loading {agent.path} ({agent.recipe}, trained with: {agent.command})")
    if agent.multi_agent:
        n_episodes = args.n_timesteps or 10
        returns = evaluate_agent(agent, n_episodes, seed=args.seed, deterministic=not args.stochastic)
        print(f"Mean return: {np.mean(returns):.2f} +/- {np.std(returns):.2f} over {n_episodes} episodes")
        return 0
    n_steps = args.n_timesteps or 1000
    render_mode = "rgb_array" if args.record else None if args.no_render else "human"
    if render_mode == "human":
        check_display()
    policy = load_agent(agent, device=args.device)
    env = make_agent_env(agent, render_mode)
    if args.record:
        env = _video_recorder(env, args.record, f"{agent.algo}-{agent.env}", n_steps)
    try:
        returns = play(policy, env, args.seed, not args.stochastic, n_steps=n_steps, verbose=True)
    finally:
        env.close()
    if returns:
        print(f"Mean return: {np.mean(returns):.2f} +/- {np.std(returns):.2f} over {len(returns)} episodes")
    if args.record:
        print(f"Video saved in {args.record}")
    return 0


def _video_recorder(env: Any, folder: str, name: str, length: int) -> Any:
    """Gymnasium's ``RecordVideo``: one video of the first ``length`` steps."""
    import importlib.util

    if importlib.util.find_spec("moviepy") is None:
        raise ZooError('--record needs moviepy: pip install "sb3-sparse[zoo]"')
    from gymnasium.wrappers import RecordVideo

    return RecordVideo(env, folder, step_trigger=lambda step: step == 0, video_length=length, name_prefix=name)


def check_index(agents: Sequence[TrainedAgent]) -> list[str]:
    """What is wrong with the index against the folder: missing files, files without an entry, wrong sizes."""
    problems = []
    files = {path.name for path in AGENTS_DIR.glob("*.pt")}
    for agent in agents:
        if not agent.path.is_file():
            problems.append(f"{agent.file}: no such file")
        elif agent.path.stat().st_size != agent.file_size:
            problems.append(f"{agent.file}: {agent.path.stat().st_size} bytes, the index says {agent.file_size}")
        if not math.isfinite(agent.mean_return):
            problems.append(f"{agent.file}: mean return {agent.mean_return}")
    problems += [f"{name}: not in the index" for name in sorted(files - {agent.file for agent in agents})]
    return problems
