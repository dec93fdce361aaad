"""One benchmark run: train with periodic deterministic evaluation, checkpoint, resume, write the result.

Layout of a run directory (``<results>/<algo>/<env>/<label>/seed<k>/``):

- ``checkpoint/``: ``model.zip``, ``replay_buffer.pkl`` and ``state.json`` (eval curve and timings so
  far), replaced atomically every ``checkpoint_freq`` env steps and when a run is stopped;
- ``policy.pt``: a sparse model's acting network, written by :func:`sb3_sparse.export_policy` when the run is
  complete (dense models have none), so that ``benchmarks.trained_agents`` can ship a run's agent; not committed
  with a profile's results (``.gitignore``);
- ``result.json``: written atomically (temporary file, then rename) only when the run is complete.
  A run with a ``result.json`` is skipped; a run with a checkpoint resumes from it. A result or
  checkpoint made for a different spec (the profile entry changed) is set aside and the run redone.

The multi-agent learners (``qmix``, ``vdn``) take the same path; what differs has one helper each: the env
(:func:`make_env`: :func:`~sb3_sparse.marl.envs.make_marl_env`), the evaluation (:func:`evaluate`:
:func:`~sb3_sparse.marl.evaluation.evaluate_marl_policy`), loading a
checkpoint (:func:`load_checkpoint`) and the FLOPs of a gradient step (:func:`sparse_metrics`: a batch of episodes,
the agent network once per agent; ``tiny`` against the full-size dense policy).
"""

import argparse
import inspect
import json
import os
import platform
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from benchmarks.methods import build_model, is_multi_agent, model_class, multi_agent_dense_reference
from benchmarks.profile import RunSpec
from sb3_sparse import export_policy, flops_report, module_sparsity
from sb3_sparse.common.buffers import DynamicReplayBuffer, MultiStepReplayBuffer
from sb3_sparse.common.callbacks import on_policy_rollouts
from sb3_sparse.common.flops import counted_modules
from sb3_sparse.core.crossover_cache import cpu_model

EVAL_SEED_OFFSET = 10_000
#: a finished sparse run's exported acting network, beside its ``result.json``
POLICY_FILE = "policy.pt"


def plain_args(args: argparse.Namespace) -> dict[str, Any]:
    """A script's command-line arguments as JSON values (paths as text)."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def write_results(out: Path | None, stem: str, result: dict[str, Any], text: str) -> None:
    """A measurement script's ``<stem>.json`` (``result``) and ``<stem>.md`` (``text``) in ``out`` (if given)."""
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", result)
    (out / f"{stem}.md").write_text(text + "\n")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a temporary file in the same directory, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as file:
        json.dump(data, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def find_checkpoint(run_dir: Path) -> Path | None:
    """The run's complete checkpoint (``state.json`` is written last), if any."""
    for name in ("checkpoint", "checkpoint.old"):
        if (run_dir / name / "state.json").exists():
            return run_dir / name
    return None


def _stale(path: Path, spec: RunSpec) -> bool:
    """Whether the result or checkpoint state at ``path`` was made for another spec (the profile changed)."""
    with open(path) as file:
        stored = json.load(file).get("spec")
    return stored is not None and stored != json.loads(json.dumps(spec.to_dict()))


def is_done(spec: RunSpec, results_dir: str | Path) -> bool:
    """Whether ``spec`` has a result made for this very spec."""
    path = Path(results_dir) / spec.run_id / "result.json"
    return path.exists() and not _stale(path, spec)


def acquire_lock(run_dir: Path) -> bool:
    """Claim ``run_dir`` for this process (``lock`` file: host and pid); a dead local owner's lock is taken over."""
    lock = run_dir / "lock"
    me = f"{platform.node()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            host, _, pid = lock.read_text().partition(" ")
            if host != platform.node() or not pid.isdigit() or _alive(int(pid)):
                return False
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as file:
            file.write(me)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save_checkpoint(model: BaseAlgorithm, state: dict[str, Any], run_dir: Path) -> None:
    """Save model, replay buffer and state into ``checkpoint.tmp/``, then swap it in for ``checkpoint/``."""
    tmp, final, old = run_dir / "checkpoint.tmp", run_dir / "checkpoint", run_dir / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    if hasattr(model, "save_replay_buffer"):  # on-policy models have none
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    write_json(tmp / "state.json", {**state, "num_timesteps": model.num_timesteps})
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


class BenchmarkCallback(BaseCallback):
    """Evaluates every ``eval_freq`` steps, checkpoints every ``checkpoint_freq`` steps and at the deadline.

    Checkpoints are taken at the end of a rollout, once the step's transition is in the replay buffer.
    Time spent evaluating and checkpointing is accumulated in ``overhead`` and ``overhead_cpu`` (excluded from
    training time, on the wall clock and on this process's CPU clock).
    """

    def __init__(
        self,
        spec: RunSpec,
        eval_env: Any,
        state: dict[str, Any],
        run_dir: Path,
        deadline: float | None = None,
        stop_at_step: int | None = None,
    ):
        super().__init__()
        self.spec, self.eval_env, self.state, self.run_dir = spec, eval_env, state, run_dir
        self.deadline, self.stop_at_step = deadline, stop_at_step
        self.overhead = self.overhead_cpu = 0.0
        self.checkpoint_due = self.stop_requested = self.stopped = False

    def _on_training_start(self) -> None:
        (self.start, self.start_cpu), self.overhead, self.overhead_cpu = clocks(), 0.0, 0.0
        self.base_seconds, self.base_cpu = self.state["train_seconds"], self.state["train_cpu_seconds"]
        self.base_wall = self.state.get("wall_seconds", 0.0)

    def update_train_seconds(self) -> None:
        """Training seconds so far, over all sittings (evaluation and checkpoint time excluded), on the wall clock
        and on the CPU clock (``None`` when a sitting of an older harness did not record it), and the wall-clock
        seconds of ``learn`` so far (everything included)."""
        now, now_cpu = clocks()
        self.state["train_seconds"] = self.base_seconds + now - self.start - self.overhead
        self.state["wall_seconds"] = self.base_wall + now - self.start
        if self.base_cpu is not None:
            self.state["train_cpu_seconds"] = self.base_cpu + now_cpu - self.start_cpu - self.overhead_cpu

    def add_overhead(self, start: tuple[float, float]) -> float:
        """Count the time since ``start`` (:func:`clocks`) as overhead, not training; the wall-clock seconds."""
        now, now_cpu = clocks()
        self.overhead += now - start[0]
        self.overhead_cpu += now_cpu - start[1]
        return now - start[0]

    def evaluate(self) -> None:
        start = clocks()
        mean, std = evaluate(self.model, self.eval_env, self.spec)
        curve = self.state["curve"]
        curve["steps"].append(self.num_timesteps)
        curve["mean"].append(mean)
        curve["std"].append(std)
        self.state["eval_seconds"] += self.add_overhead(start)

    def _on_step(self) -> bool:
        if self.stop_requested:
            self.stopped = True
            return False
        step = self.num_timesteps
        if step % self.spec.eval_freq == 0:
            self.evaluate()
        if step % self.spec.checkpoint_freq == 0 and step < self.spec.total_timesteps:
            self.checkpoint_due = True
        if (self.deadline is not None and time.time() >= self.deadline) or step == self.stop_at_step:
            self.checkpoint_due = self.stop_requested = True
        return True

    def _on_rollout_end(self) -> None:
        if self.checkpoint_due:
            self.update_train_seconds()
            start = clocks()
            save_checkpoint(self.model, self.state, self.run_dir)
            self.add_overhead(start)
            self.checkpoint_due = False


def clocks() -> tuple[float, float]:
    """The wall clock and this process's CPU clock, in seconds. The CPU clock leaves out pauses and time the
    process waited for a core, so per-step ratios between runs that shared a machine stay comparable."""
    return time.perf_counter(), time.process_time()


def make_env(spec: RunSpec, seed: int) -> Any:
    """The run's env: a ``VecEnv`` of one env seeded with ``seed``, or (multi-agent) a
    :class:`~sb3_sparse.marl.envs.MultiAgentEnv` reset once with ``seed``, so that its later unseeded resets (the
    evaluation's; the learner seeds its own first reset) go on from there."""
    if not is_multi_agent(spec.algo):
        return make_vec_env(spec.env_id, n_envs=1, seed=seed)
    from sb3_sparse.marl.envs import make_marl_env

    env = make_marl_env(spec.env_id)
    env.reset(seed=seed)
    return env


def evaluate(model: Any, env: Any, spec: RunSpec) -> tuple[float, float]:
    """Mean and std of the returns of ``spec.n_eval_episodes`` deterministic episodes (multi-agent: team returns, by
    :func:`~sb3_sparse.marl.evaluation.evaluate_marl_policy`)."""
    if not is_multi_agent(spec.algo):
        mean, std = evaluate_policy(model, env, spec.n_eval_episodes, deterministic=True)
        return float(mean), float(std)  # type: ignore[arg-type]  # floats without return_episode_rewards
    from sb3_sparse.marl.evaluation import evaluate_marl_policy

    return evaluate_marl_policy(model, env, spec.n_eval_episodes, deterministic=True)


def load_checkpoint(spec: RunSpec, checkpoint: Path, env: Any, device: str = "cpu") -> Any:
    """The model and replay buffer of ``checkpoint``, on the new ``env``, with random generators reseeded
    (``spec.seed`` + steps done) so a resumed run does not replay its first sitting's random draws."""
    model = model_class(spec.algo, spec.method).load(checkpoint / "model.zip", env=env, device=device)
    if hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
    seed = spec.seed + model.num_timesteps
    if not is_multi_agent(spec.algo):
        model._last_obs = None  # the env is new: reset it
    model.set_random_seed(seed)
    return model


def sparse_metrics(model: Any, reference: Any = None) -> dict[str, Any]:
    """Realised sparsity, FLOPs (absolute and relative to the dense model of the same architecture and width)
    and the run's training FLOPs.

    ``flops``: :func:`sb3_sparse.flops_report` of the model (dense models too: ratios 1), without its per-layer
    rows, plus ``run_training_flops``: training FLOPs of the whole run, per-sample FLOPs of a training step
    (each phase at the density it had, for ``gmp`` / ``ne``) x batch size x gradient steps. Multi-agent: a
    sample is a team step (the shared agent network counted once per agent), and a batch holds batch size
    (episodes) x episode limit of them (an upper bound: a batch is unrolled over its longest episode).

    ``reference``: a dense policy the ``dense_*`` FLOPs and the ratios are taken from instead (``tiny``: the
    full-size dense policy; its weight count is ``flops.reference_weights``).
    """
    report = flops_report(model)
    report.pop("layers")
    report.pop("table")
    sparse = hasattr(model.policy, "sparse_bindings")
    metrics: dict[str, Any] = {"sparsity": module_sparsity(model) if sparse else {"global": 0.0}, "flops": report}
    flops = metrics["flops"]
    ratio = flops["integrated_training_flops_ratio"]
    n_updates = int(getattr(model, "_n_updates", 0))
    per_step = flops["training_flops"] if ratio is None else ratio * flops["dense_training_flops"]
    samples = getattr(model, "batch_size", 1) * (model.episode_limit if is_multi_agent_model(model) else 1)
    rollouts = on_policy_rollouts(model)
    if rollouts is not None:  # every epoch passes over the whole rollout, in rollouts.gradient_steps minibatches
        n_rollouts = model.num_timesteps // rollouts.env_steps
        n_updates = n_rollouts * rollouts.gradient_steps
        samples = getattr(model, "n_epochs", 1) * rollouts.env_steps * n_rollouts // max(1, n_updates)
    flops["run_training_flops"] = float(per_step * samples * n_updates)
    flops["gradient_steps"] = n_updates
    if reference is not None:
        dense_report = flops_report(reference)
        if ratio is not None:  # the run's FLOPs over its own dense form -> over the reference's
            flops["integrated_training_flops_ratio"] = (
                ratio * flops["dense_training_flops"] / dense_report["dense_training_flops"]
            )
        for kind in ("inference", "training"):
            flops[f"dense_{kind}_flops"] = dense_report[f"dense_{kind}_flops"]
            flops[f"{kind}_flops_ratio"] = flops[f"{kind}_flops"] / dense_report[f"dense_{kind}_flops"]
        flops["reference_weights"] = dense_report["weights"]
    return metrics


def is_multi_agent_model(model: Any) -> bool:
    """Whether ``model`` is a multi-agent learner (QMIX, VDN): it trains on batches of episodes."""
    return hasattr(model, "env_shape") and hasattr(model, "episode_limit")


def size_metrics(model: BaseAlgorithm) -> dict[str, Any]:
    """Parameter counts of the trained networks (target networks left out).

    ``parameters``: every trainable parameter of the policy (actor and critic, encoders, biases, norms);
    ``active_parameters``: those minus the masked-out weights; ``weights`` / ``active_weights``: the weight
    matrices only (the FLOPs convention), all and active.
    """
    policy: Any = model.policy
    parameters = sum(
        param.numel()
        for name, param in policy.named_parameters()
        if param.requires_grad and not any(part.endswith("_target") or part.endswith("_targets") for part in name.split("."))
    )
    rows = [row for module in counted_modules(policy)[0] for row in module.rows]
    weights = sum(row["weights"] for row in rows)
    active = sum(row["active_weights"] for row in rows)
    return {
        "size": {
            "parameters": parameters,
            "active_parameters": parameters - (weights - active),
            "weights": weights,
            "active_weights": active,
        }
    }


def multi_agent_widths(model: Any) -> dict[str, int] | None:
    """The widths of a multi-agent policy (agent ``hidden_dim``, mixer ``mixing_embed_dim`` / ``hypernet_embed``)."""
    if not is_multi_agent_model(model):
        return None
    return {name: int(getattr(model.policy, name)) for name in ("hidden_dim", "mixing_embed_dim", "hypernet_embed")}


def buffer_metrics(model: BaseAlgorithm) -> dict[str, Any]:
    """What the package's replay buffers measured (dynamic capacity, policy distance); nothing for SB3's."""
    buffer = getattr(model, "replay_buffer", None)
    if not isinstance(buffer, MultiStepReplayBuffer):
        return {}
    metrics: dict[str, Any] = {"size": buffer.size() * buffer.n_envs, "n_steps": buffer.active_n_steps}
    if isinstance(buffer, DynamicReplayBuffer):
        metrics.update(capacity=buffer.capacity * buffer.n_envs, policy_distance=buffer.policy_distance)
    return {"buffer": metrics}


def run_one(
    spec: RunSpec,
    results_dir: str | Path,
    deadline: float | None = None,
    stop_at_step: int | None = None,
    device: str = "cpu",
) -> str:
    """Train ``spec`` to completion (or to ``deadline``, a ``time.time()`` value) on ``device``; return the run's status.

    :return: ``"skipped"`` (already done), ``"done"``, ``"interrupted"`` (checkpoint saved),
        ``"not started"`` (deadline already passed), ``"locked"`` (another process is running it)
        or ``"failed"`` (traceback in ``error.txt``)
    """
    run_dir = Path(results_dir) / spec.run_id
    if (run_dir / "result.json").exists():
        if not _stale(run_dir / "result.json", spec):
            return "skipped"
        (run_dir / "result.json").rename(run_dir / f"result.stale-{int(time.time())}.json")
    if deadline is not None and time.time() >= deadline:
        return "not started"
    th.set_num_threads(1)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not acquire_lock(run_dir):
        return "locked"
    try:
        (run_dir / "error.txt").unlink(missing_ok=True)
        return _train(spec, run_dir, deadline, stop_at_step, device)
    except Exception:
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return "failed"
    finally:
        (run_dir / "lock").unlink(missing_ok=True)


def _train(spec: RunSpec, run_dir: Path, deadline: float | None, stop_at_step: int | None, device: str = "cpu") -> str:
    env = make_env(spec, spec.seed)
    eval_env = make_env(spec, spec.seed + EVAL_SEED_OFFSET)
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None and _stale(checkpoint / "state.json", spec):
        shutil.rmtree(checkpoint)  # made for another spec: start again
        checkpoint = None
    if checkpoint is not None:
        with open(checkpoint / "state.json") as file:
            state = json.load(file)
        model = load_checkpoint(spec, checkpoint, env, device)
        state["resumes"] += 1
        state.setdefault("wall_seconds", 0.0)  # a checkpoint of an older harness
        state.setdefault("train_cpu_seconds", None)  # its first sittings' CPU time is unknown
    else:
        # multi-agent buffers count episodes: QMIX's default (EPyMARL's 5000) unless the profile says otherwise;
        # on-policy models (PPO, A2C) have no replay buffer
        kwargs = dict(spec.algo_kwargs)
        replay = "buffer_size" in inspect.signature(model_class(spec.algo, "dense")).parameters
        if replay and not is_multi_agent(spec.algo):
            kwargs = {"buffer_size": min(1_000_000, spec.total_timesteps), **kwargs}
        model = build_model(
            spec.algo, spec.method, spec.env_id, env, spec.seed, spec.sparsity, kwargs, spec.method_kwargs,
            device=device, policy=spec.policy, width=spec.width,
        )  # fmt: skip
        state = {"spec": spec.to_dict(), "curve": {"steps": [], "mean": [], "std": []}, "train_seconds": 0.0}
        state.update(wall_seconds=0.0, train_cpu_seconds=0.0, eval_seconds=0.0, resumes=0)
    callback = BenchmarkCallback(spec, eval_env, state, run_dir, deadline, stop_at_step)
    outside = time.perf_counter()  # wall-clock seconds outside learn(): the first and last evaluations
    if checkpoint is None:
        callback.model = model
        callback.evaluate()  # step 0: the initial policy
    outside = time.perf_counter() - outside
    model.learn(spec.total_timesteps - model.num_timesteps, callback=callback, reset_num_timesteps=checkpoint is None)
    callback.update_train_seconds()
    state["wall_seconds"] += outside
    if callback.stopped:
        return "interrupted"
    if state["curve"]["steps"][-1] < min(model.num_timesteps, spec.total_timesteps):  # multi-agent: may pass the total
        start = time.perf_counter()
        callback.evaluate()
        state["wall_seconds"] += time.perf_counter() - start
    curve, cpu = state["curve"], state["train_cpu_seconds"]
    result = {
        "spec": spec.to_dict(),
        "curve": curve,
        "final_return": sum(curve["mean"][-spec.final_evals :]) / len(curve["mean"][-spec.final_evals :]),
        "num_timesteps": model.num_timesteps,
        "train_seconds": state["train_seconds"],
        "eval_seconds": state["eval_seconds"],
        "wall_seconds": state.get("wall_seconds"),
        "seconds_per_step": state["train_seconds"] / model.num_timesteps,
        "train_cpu_seconds": cpu,
        "cpu_seconds_per_step": None if cpu is None else cpu / model.num_timesteps,
        "resumes": state["resumes"],
        "n_topology_updates": getattr(model, "dst_state", {}).get("n_updates", 0),  # the agent's mask updates
        **sparse_metrics(model, multi_agent_dense_reference(model, spec)),
        **size_metrics(model),
        **buffer_metrics(model),
        "policy": type(model.policy).__name__,
        "net_arch": getattr(model.policy, "net_arch", None) or multi_agent_widths(model),
        "device": str(model.device),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "processor": platform.processor(), "cpu": cpu_model(), "cpus": os.cpu_count()},
        "versions": {"torch": th.__version__, "python": platform.python_version()},
    }
    if result["sparsity"]["global"] > 0:
        export_policy(model, run_dir / POLICY_FILE)
    write_json(run_dir / "result.json", result)
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
    return "done"
