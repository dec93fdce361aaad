"""Fast tests of the benchmark harness: profiles, resumable runs, summaries, the throughput script."""

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml

from benchmarks.methods import build_model, method_kwargs, policy_architecture, resolve_policy, width_net_arch
from benchmarks.profile import REPO_ROOT, RunSpec, load_profile, parse_profile, profile_results_dir
from benchmarks.run import interleave
from benchmarks.runner import POLICY_FILE, _stale, find_checkpoint, run_one, size_metrics, sparse_metrics
from benchmarks.summary import analyse, iqm, time_ratio, write_summary
from benchmarks.throughput import CLOCKS, DENSE, FUSED_DENSE, ONE_XLA_THREAD, SBX_DENSE, SPARSE, main, thread_count
from sb3_sparse import load_policy, module_sparsity
from sb3_sparse.core.masking import sparsify
from sb3_sparse.core.update import init_mask

PROFILE = """
name: tiny
total_timesteps: 1000
eval_freq: 250
algo_kwargs: {learning_starts: 100}
algorithms:
  sac: {}
  td3: {algo_kwargs: {action_noise_std: 0.1, learning_starts: 50}}
envs:
  Pendulum-v1: {}
  InvertedPendulum-v5: {total_timesteps: 2000}
seeds: [0, 1]
methods:
  - dense
  - {method: set, sparsity: 0.5}
  - {method: rigl, sparsity: 0.9, kwargs: {sparsity_distribution: erk}, eval_freq: 500}
"""


def test_parse_profile():
    specs = parse_profile(yaml.safe_load(PROFILE))
    assert len(specs) == 2 * 2 * 2 * 3
    assert [s.run_id for s in specs[:4]] == [
        "sac/Pendulum-v1/dense/seed0",
        "sac/Pendulum-v1/set-0.5/seed0",
        "sac/Pendulum-v1/rigl-0.9/seed0",
        "td3/Pendulum-v1/dense/seed0",
    ]
    assert all(s.seed == 0 for s in specs[:12]) and all(s.seed == 1 for s in specs[12:])
    td3_cartpole = next(s for s in specs if s.algo == "td3" and s.env_id == "InvertedPendulum-v5")
    assert td3_cartpole.algo_kwargs == {"learning_starts": 50, "action_noise_std": 0.1}
    assert td3_cartpole.total_timesteps == 2000 and td3_cartpole.profile == "tiny"
    rigl = next(s for s in specs if s.label == "rigl-0.9")
    assert rigl.eval_freq == 500 and rigl.sparsity == 0.9 and rigl.method_kwargs == {"sparsity_distribution": "erk"}
    assert RunSpec.from_dict(rigl.to_dict()) == rigl


@pytest.mark.parametrize("bad", ["methods: [dense, dense]", "algorithms: [ddpg]", "seeds: null"])
def test_parse_profile_errors(bad):
    data = yaml.safe_load(PROFILE)
    data.update(yaml.safe_load(bad))
    if data["seeds"] is None:
        del data["seeds"]
    with pytest.raises(ValueError):
        parse_profile(data)


@pytest.mark.parametrize(
    "name,count",
    [
        ("smoke", 30),
        ("quick", 35),
        ("reduced", 72),
        ("paper", 250),
        ("scaling", 36),
        ("scaling-full", 160),
        ("regimes", 24),
        ("mujoco", 75),
        ("mujoco-full", 105),
        ("ppo", 25),
    ],
)
def test_shipped_profiles(name, count):
    _, specs = load_profile(name)
    assert len(specs) == count and len({s.run_id for s in specs}) == count


def test_a_method_for_some_algorithms_and_committed_results():
    data = yaml.safe_load(PROFILE)
    data["methods"].append({"method": "ds_td3", "algorithms": ["td3"]})
    specs = parse_profile(data)
    assert {s.algo for s in specs if s.method == "ds_td3"} == {"td3"} and len(specs) == 2 * 2 * (3 + 4)
    assert profile_results_dir(data, "tiny") == REPO_ROOT / "benchmarks" / "results" / "tiny"
    mujoco_data, mujoco = load_profile("mujoco")
    assert profile_results_dir(mujoco_data, "mujoco") == REPO_ROOT / "docs" / "benchmarks" / "mujoco" / "runs"
    rlx2 = next(s for s in mujoco if s.label == "rlx2-0.9")
    assert rlx2.method_kwargs["replay_buffer_kwargs"]["n_step_start"] == 30000


def test_scaling_and_regimes_profiles():
    _, scaling = load_profile("scaling")
    assert {s.width for s in scaling} == {32, 64, 128} and {s.seed for s in scaling} == {0, 1, 2}
    assert {s.label: s.policy for s in scaling} == {
        "dense": "MlpPolicy",
        "dense-simba": "SimbaPolicy",
        "simba-rigl-0.6-all-modules": "SimbaPolicy",
        "simba-mst": "SimbaPolicy",
    }
    assert [s.run_id for s in scaling[:4]] == [
        "sac/Pendulum-v1/dense-w32/seed0",
        "sac/Pendulum-v1/dense-w64/seed0",
        "sac/Pendulum-v1/dense-w128/seed0",
        "sac/Pendulum-v1/dense-simba-w32/seed0",
    ]
    settings = {"learning_starts": 1000, "learning_rate": 0.001}
    assert all(s.total_timesteps == 10_000 and s.algo_kwargs == settings for s in scaling)
    _, full = load_profile("scaling-full")
    assert {s.width for s in full} == {256, 512, 1024, 2048} and {s.total_timesteps for s in full} == {1_000_000}
    assert {s.env_id for s in full} >= {"HalfCheetah-v5", "Humanoid-v5"} and len({s.seed for s in full}) == 5
    _, regimes = load_profile("regimes")
    widths = {s.run_label: s.width for s in regimes if s.seed == 0}
    assert widths == {
        "dense-w128": 128, "dense-same-budget-w81": 81, "static-0.6-w128": 128, "set-0.6-w128": 128,
        "rigl-0.6-w128": 128, "gmp-0.6-w128": 128, "ne-0.6-w128": 128, "mst-0.6-w128": 128,
    }  # fmt: skip
    assert {s.policy for s in regimes} == {"SimbaPolicy"} and {s.sparsity for s in regimes if s.method != "dense"} == {0.6}
    ne = next(s for s in regimes if s.method == "ne")
    assert ne.method_kwargs["initial_sparsity"] == 0.8 and ne.method_kwargs["sparsity_distribution"] == "erk"


WIDTH_PROFILE = """
name: widths
total_timesteps: 100
algorithms: [sac]
envs: [Pendulum-v1]
seeds: [0]
widths: [8, 16]
methods:
  - dense
  - {method: dense, label: dense-simba, policy: SimbaPolicy}
  - {method: mst, policy: SimbaPolicy, width: 12}
"""


def test_parse_profile_with_widths_and_policies():
    specs = parse_profile(yaml.safe_load(WIDTH_PROFILE))
    assert [s.run_id for s in specs] == [
        "sac/Pendulum-v1/dense-w8/seed0",
        "sac/Pendulum-v1/dense-w16/seed0",
        "sac/Pendulum-v1/dense-simba-w8/seed0",
        "sac/Pendulum-v1/dense-simba-w16/seed0",
        "sac/Pendulum-v1/mst-w12/seed0",  # the entry's width replaces the profile's widths
    ]
    assert [s.policy for s in specs] == ["MlpPolicy"] * 2 + ["SimbaPolicy"] * 3
    assert all(RunSpec.from_dict(s.to_dict()) == s for s in specs)
    assert "policy" not in specs[0].to_dict() and specs[2].to_dict()["policy"] == "SimbaPolicy"
    plain = parse_profile(yaml.safe_load(PROFILE))[0]
    assert plain.width is None and "width" not in plain.to_dict() and plain.run_id == "sac/Pendulum-v1/dense/seed0"
    data = yaml.safe_load(WIDTH_PROFILE)
    data["widths"] = [8, 8]
    with pytest.raises(ValueError, match="appears twice"):
        parse_profile(data)
    data["widths"] = []
    with pytest.raises(ValueError, match="widths"):
        parse_profile(data)


def test_interleave_runs_of_several_profiles_seed_by_seed():
    a = parse_profile(yaml.safe_load(WIDTH_PROFILE.replace("seeds: [0]", "seeds: [0, 1]")))
    b = parse_profile(yaml.safe_load(PROFILE))
    runs = interleave([a, b])
    assert len(runs) == len(a) + len(b) and {id(s) for s in runs} == {id(s) for s in a + b}
    expected = [("widths", 0)] * 5 + [("tiny", 0)] * 12 + [("widths", 1)] * 5 + [("tiny", 1)] * 12
    assert [(s.profile, s.seed) for s in runs] == expected


def test_width_rule():
    assert width_net_arch(64, residual=False) == {"pi": [64, 64], "qf": [64, 64]}
    assert width_net_arch(64, residual=True) == {"pi": [16], "qf": [64, 64]}  # SimBa's 1:4 actor:critic ratio
    assert width_net_arch(512, residual=True) == {"pi": [128], "qf": [512, 512]}  # SimBa's default critic and actor
    assert width_net_arch(3, residual=True) == {"pi": [1], "qf": [3, 3]}
    assert width_net_arch(32, residual=False, algo="dqn") == [32, 32]
    with pytest.raises(ValueError, match="positive"):
        width_net_arch(0, residual=False)
    assert policy_architecture("sac", "dense", "SimbaPolicy") == "simba"
    assert policy_architecture("sac", "mst", "BroPolicy") == "bro"
    assert policy_architecture("sac", "dense", "MlpPolicy") is None
    with pytest.raises(ValueError, match="not valid"):
        policy_architecture("sac", "dense", "ResNetPolicy")


def test_build_model_resolves_the_policy_and_the_width():
    from stable_baselines3 import SAC

    from sb3_sparse import SparseSAC
    from sb3_sparse.sac.policies import SimbaSACPolicy, SparseSimbaSACPolicy

    assert resolve_policy("sac", "dense", "SimbaPolicy") is SimbaSACPolicy
    assert resolve_policy("sac", "mst", "SimbaPolicy") == "SimbaPolicy"
    assert resolve_policy("sac", "dense", "MlpPolicy") == "MlpPolicy"
    env = gym.make("Pendulum-v1")
    dense = build_model("sac", "dense", "Pendulum-v1", env, 0, policy="SimbaPolicy", width=16)
    assert type(dense) is SAC and type(dense.policy) is SimbaSACPolicy
    assert dense.policy.net_arch == {"pi": [4], "qf": [16, 16]}
    sparse = build_model("sac", "mst", "Pendulum-v1", env, 0, policy="SimbaPolicy", width=16)
    assert type(sparse) is SparseSAC and type(sparse.policy) is SparseSimbaSACPolicy
    mlp = build_model("sac", "dense", "Pendulum-v1", env, 0, width=8)
    assert mlp.policy.net_arch == {"pi": [8, 8], "qf": [8, 8]}
    # sizes and FLOPs: the sparse model's dense reference is the dense model of the same architecture and width
    dense_size, sparse_size = size_metrics(dense)["size"], size_metrics(sparse)["size"]
    assert (
        dense_size["parameters"]
        == sparse_size["parameters"]
        == sum(p.numel() for name, p in dense.policy.named_parameters() if not name.startswith("critic_target"))
    )
    assert dense_size["active_parameters"] == dense_size["parameters"] and dense_size["weights"] == sparse_size["weights"]
    assert sparse_size["active_weights"] < 0.5 * sparse_size["weights"]
    masked = sparse_size["weights"] - sparse_size["active_weights"]
    assert sparse_size["parameters"] - sparse_size["active_parameters"] == masked
    flops, sparse_flops = sparse_metrics(dense)["flops"], sparse_metrics(sparse)["flops"]
    assert flops["training_flops"] == sparse_flops["dense_training_flops"]
    assert flops["inference_flops"] == sparse_flops["dense_inference_flops"]
    assert sparse_flops["training_flops"] < flops["training_flops"] and sparse_flops["run_training_flops"] == 0
    with pytest.raises(ValueError, match="not both"):
        build_model("sac", "dense", "Pendulum-v1", env, 0, algo_kwargs={"policy_kwargs": {"net_arch": [8]}}, width=8)


def test_method_kwargs():
    assert method_kwargs("dense", "Pendulum-v1", None) == {}
    assert method_kwargs("static", "Pendulum-v1", 0.9) == {"regime": "static", "sparsity": 0.9}
    rigl = method_kwargs("rigl", "Pendulum-v1", 0.8)
    assert rigl["regime"] == "rigl" and rigl["drop_fraction_schedule"] == "cosine" and rigl["sparsity"] == 0.8
    assert method_kwargs("mst", "Pendulum-v1", None)["modules"]["actor"] == {"regime": "static"}  # a recipe, by name
    assert method_kwargs("ds_sac", "Hopper-v5", None)["erdos_renyi_lambdas"] == [7, 20]
    assert method_kwargs("gmp", "CartPole-v1", None, "dqn")["regime"] == "gmp"  # every algorithm of the registry
    with pytest.raises(ValueError, match="not valid"):
        method_kwargs("magic", "Pendulum-v1", 0.5)
    with pytest.raises(ValueError, match="is for sparse_sac"):
        method_kwargs("ds_sac", "Hopper-v5", None, "td3")  # a recipe applied to another algorithm


def test_run_resumes_from_checkpoint(tmp_path):
    spec = RunSpec(
        profile="test", algo="sac", env_id="Pendulum-v1", label="set-0.5", method="set", seed=0, sparsity=0.5,
        total_timesteps=120, eval_freq=40, n_eval_episodes=1, checkpoint_freq=1000, final_evals=2,
        algo_kwargs={"learning_starts": 30, "batch_size": 32}, method_kwargs={"topology_update_interval": 20},
    )  # fmt: skip
    run_dir = tmp_path / spec.run_id
    assert run_one(spec, tmp_path, deadline=0.0) == "not started"
    assert run_one(spec, tmp_path, stop_at_step=80) == "interrupted"
    checkpoint = find_checkpoint(run_dir)
    assert checkpoint is not None and not (run_dir / "result.json").exists()
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["num_timesteps"] == 80 and state["curve"]["steps"] == [0, 40, 80] and state["train_seconds"] > 0
    assert run_one(spec, tmp_path) == "done"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["curve"]["steps"] == [0, 40, 80, 120] and result["num_timesteps"] == 120
    assert result["resumes"] == 1 and result["n_topology_updates"] > 0 and result["train_seconds"] > state["train_seconds"]
    assert result["train_cpu_seconds"] > state["train_cpu_seconds"] > 0  # the CPU clock goes on across sittings
    assert result["cpu_seconds_per_step"] == pytest.approx(result["train_cpu_seconds"] / 120)
    assert result["final_return"] == pytest.approx(np.mean(result["curve"]["mean"][-2:]))
    assert result["sparsity"]["global"] == pytest.approx(0.5, abs=0.01) and result["flops"]["training_flops_ratio"] < 1
    assert find_checkpoint(run_dir) is None
    acting = load_policy(run_dir / POLICY_FILE, device="cpu")  # the finished run's actor, ready to ship
    assert module_sparsity(acting)["actor"] == pytest.approx(0.5, abs=0.01)
    assert run_one(spec, tmp_path) == "skipped"
    changed = RunSpec.from_dict({**spec.to_dict(), "n_eval_episodes": 2})
    assert _stale(run_dir / "result.json", changed) and not _stale(run_dir / "result.json", spec)


@pytest.mark.parametrize("method,policy", [("dense", "SimbaPolicy"), ("mst", "SimbaPolicy"), ("dense", "MlpPolicy")])
def test_run_records_size_flops_and_wall_clock(tmp_path, method, policy):
    spec = RunSpec(
        profile="test", algo="sac", env_id="Pendulum-v1", label=method, method=method, seed=0, total_timesteps=60,
        eval_freq=30, n_eval_episodes=1, checkpoint_freq=1000, final_evals=1,
        algo_kwargs={"learning_starts": 20, "batch_size": 16}, policy=policy, width=8,
    )  # fmt: skip
    assert spec.run_id == f"sac/Pendulum-v1/{method}-w8/seed0"
    assert run_one(spec, tmp_path, stop_at_step=30) == "interrupted"  # a residual policy resumes too
    assert run_one(spec, tmp_path) == "done"
    result = json.loads((tmp_path / spec.run_id / "result.json").read_text())
    assert result["spec"]["width"] == 8 and result["device"] == "cpu" and result["resumes"] == 1
    assert (tmp_path / spec.run_id / POLICY_FILE).exists() == (method != "dense")  # only sparse runs export theirs
    residual = policy == "SimbaPolicy"
    assert result["net_arch"] == ({"pi": [2], "qf": [8, 8]} if residual else {"pi": [8, 8], "qf": [8, 8]})
    expected_policy = {"dense": "SimbaSACPolicy", "mst": "SparseSimbaSACPolicy"}[method] if residual else "SACPolicy"
    assert result["policy"] == expected_policy
    size, flops = result["size"], result["flops"]
    assert 0 < size["active_weights"] <= size["weights"] < size["parameters"]
    assert (size["active_weights"] < size["weights"]) == (method != "dense")
    assert flops["training_flops"] > 0 and flops["inference_flops"] > 0 and flops["gradient_steps"] > 0
    assert flops["training_flops"] / flops["dense_training_flops"] == pytest.approx(flops["training_flops_ratio"])
    assert flops["run_training_flops"] > flops["training_flops"] * 16
    assert result["wall_seconds"] >= result["train_seconds"] > 0


@pytest.mark.parametrize("method", ["dense", "graesser_ppo"])
def test_on_policy_run_resumes_without_a_replay_buffer(tmp_path, method):
    """PPO in the runner: built without buffer_size, checkpointed and resumed without a replay buffer, FLOPs counted
    per minibatch sample."""
    spec = RunSpec(
        profile="test", algo="ppo", env_id="CartPole-v1", label=method, method=method, seed=0, total_timesteps=128,
        eval_freq=64, n_eval_episodes=1, checkpoint_freq=1000, final_evals=1,
        algo_kwargs={"n_steps": 32, "batch_size": 16, "n_epochs": 2, "policy_kwargs": {"net_arch": [16]}},
    )  # fmt: skip
    assert run_one(spec, tmp_path, stop_at_step=64) == "interrupted"
    assert run_one(spec, tmp_path) == "done", (tmp_path / spec.run_id / "error.txt").read_text()
    result = json.loads((tmp_path / spec.run_id / "result.json").read_text())
    assert result["resumes"] == 1 and result["num_timesteps"] == 128
    flops = result["flops"]
    assert flops["gradient_steps"] == 4 * 4  # 4 rollouts of 2 epochs of 2 minibatches
    assert flops["run_training_flops"] == pytest.approx(flops["training_flops"] * 4 * 2 * 32, rel=0.01)  # constant density
    assert (result["sparsity"]["global"] > 0.5) == (method != "dense")


def fake_result(algo: str, env_id: str, label: str, seed: int, final: float, sps: float) -> dict:
    steps = [0, 500, 1000]
    return {
        "spec": {"profile": "fake", "algo": algo, "env_id": env_id, "label": label, "seed": seed,
                 "total_timesteps": 1000, "eval_freq": 500, "n_eval_episodes": 10, "final_evals": 1},
        "curve": {"steps": steps, "mean": [0.0, final / 2 + 10 * (label == "set-0.5"), final], "std": [0.0] * 3},
        "final_return": final,
        "seconds_per_step": sps,
        "sparsity": {"global": 0.0 if label == "dense" else 0.5},
        "flops": {"training_flops_ratio": 1.0 if label == "dense" else 0.5, "inference_flops_ratio": 1.0},
        "finished": "2026-01-01T00:00:00+00:00",
        "machine": {"node": "test", "cpus": 2},
    }  # fmt: skip


def test_summary(tmp_path: Path):
    results = tmp_path / "results"
    for env_id in ("A-v0", "B-v0"):
        for seed in range(3):
            for label, final, sps in (("dense", 100.0 + seed, 0.01), ("set-0.5", 90.0 + seed, 0.011)):
                path = results / "sac" / env_id / label / f"seed{seed}" / "result.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(fake_result("sac", env_id, label, seed, final, sps)))
    out = write_summary(results, tmp_path / "docs")
    text = out.read_text()
    assert "| SAC A-v0 | dense | 3 | 101.0 ± 0.8 | 1.00 ± 0.01 |" in text
    assert "| SAC A-v0 | set-0.5 | 3 | 91.0 ± 0.8 | 0.90 ± 0.01 |" in text
    assert "not reached" in text and "| 1.10x wall |" in text and "PARTIAL" not in text
    for name in ("curves.png", "normalized.png", "aggregate.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 1000
    analysis = analyse([json.loads(p.read_text()) for p in results.rglob("result.json")])
    point, low, high, n_runs, n_tasks = analysis["aggregate"]["set-0.5"]["norm_final"]
    assert low <= point <= high and n_runs == 6 and n_tasks == 2 and point == pytest.approx(0.9, abs=0.02)
    assert analysis["tasks"][("sac", "A-v0")]["methods"]["dense"]["steps_to_dense"] == 1000
    assert "Runs not started" not in text


def test_time_ratio_is_on_the_cpu_clock_where_every_run_has_it():
    dense = [{"seconds_per_step": 1.0, "cpu_seconds_per_step": 0.5} for _ in range(3)]
    paused = [{"seconds_per_step": 3.0, "cpu_seconds_per_step": 0.6}, {"seconds_per_step": 2.0, "cpu_seconds_per_step": 0.4}]
    assert time_ratio(paused, dense) == (pytest.approx(1.0), "CPU")  # the pauses (wall clock) do not count
    older = [*dense[:2], {"seconds_per_step": 1.0, "cpu_seconds_per_step": None}]  # an older harness's run
    assert time_ratio(paused, older) == (pytest.approx(2.5), "wall")
    assert time_ratio(older, paused) == (pytest.approx(0.4), "wall")


def test_resumed_checkpoint_of_an_older_harness_has_no_cpu_time(tmp_path):
    spec = RunSpec(
        profile="test", algo="sac", env_id="Pendulum-v1", label="dense", method="dense", seed=0, total_timesteps=60,
        eval_freq=30, n_eval_episodes=1, checkpoint_freq=1000, final_evals=1, algo_kwargs={"learning_starts": 20},
    )  # fmt: skip
    assert run_one(spec, tmp_path, stop_at_step=30) == "interrupted"
    state_file = find_checkpoint(tmp_path / spec.run_id) / "state.json"
    state = json.loads(state_file.read_text())
    del state["train_cpu_seconds"]  # as an older harness wrote it
    state_file.write_text(json.dumps(state))
    assert run_one(spec, tmp_path) == "done"
    result = json.loads((tmp_path / spec.run_id / "result.json").read_text())
    assert result["train_cpu_seconds"] is None and result["cpu_seconds_per_step"] is None and result["train_seconds"] > 0


def test_summary_lists_the_runs_not_started(tmp_path: Path):
    data = yaml.safe_load(PROFILE)
    specs = parse_profile(data)
    done = specs[0]
    path = tmp_path / "results" / done.run_id / "result.json"
    path.parent.mkdir(parents=True)
    result = fake_result(done.algo, done.env_id, done.label, done.seed, 100.0, 0.01)
    path.write_text(json.dumps({**result, "spec": done.to_dict()}))
    text = write_summary(tmp_path / "results", tmp_path / "docs", data, specs).read_text()
    assert f"## Runs not started ({len(specs) - 1})" in text
    assert "| SAC Pendulum-v1 | dense | 1 |" in text and "| SAC Pendulum-v1 | set-0.5 | 0, 1 |" in text


def fake_sized_result(label: str, width: int, seed: int, final: float) -> dict:
    """A result of the newer harness (width, policy, size, absolute FLOPs, wall-clock)."""
    result = fake_result("sac", "Pendulum-v1", label, seed, final, 0.01)
    sparse = label != "dense"
    weights = 10 * width * width
    result["spec"].update(profile="fake-scaling", width=width, policy="SimbaPolicy")
    result["curve"]["mean"] = [-1500.0, (final - 1500.0) / 2, final]  # Pendulum-like: the untrained policy is worse
    result["flops"] = {
        "training_flops": 4 * weights * (0.4 if sparse else 1), "dense_training_flops": 4 * weights,
        "training_flops_ratio": 0.4 if sparse else 1.0, "integrated_training_flops_ratio": 0.45 if sparse else None,
        "inference_flops": width * (0.4 if sparse else 1), "dense_inference_flops": width,
        "inference_flops_ratio": 0.4 if sparse else 1.0, "run_training_flops": 1e9 * width, "gradient_steps": 900,
    }  # fmt: skip
    result["size"] = {"parameters": weights + 50, "active_parameters": int(weights * (0.4 if sparse else 1)) + 50}
    result["size"].update(weights=weights, active_weights=int(weights * (0.4 if sparse else 1)))
    result.update(wall_seconds=100.0 + width + seed, policy="SimbaSACPolicy", net_arch={"pi": [width // 4], "qf": [width] * 2})
    return result


def test_summary_of_widths(tmp_path: Path):
    results = tmp_path / "results"
    for width in (8, 16):
        for seed in range(3):
            for label, final in (("dense", -200.0 + seed), ("mst", -180.0 - 10 * seed)):
                path = results / "sac" / "Pendulum-v1" / f"{label}-w{width}" / f"seed{seed}" / "result.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(fake_sized_result(label, width, seed, final)))
    profile = {"reference": "dense-w16"}
    text = write_summary(results, tmp_path / "docs", profile).read_text()
    assert "## Size and cost per method and width" in text and "Here *dense* in the normalised columns is `dense-w16`" in text
    assert "| SAC Pendulum-v1 | mst | 16 | SimbaSACPolicy {pi:[4],qf:[16,16]} | 3 | -190.0 [-200.0, -180.0] " in text
    assert "| 1.07k / 2.61k | 4.1k (0.45x) | 6.4 (0.40x) | 16G | 117 (116-118) |" in text
    assert "| SAC Pendulum-v1 | dense-w16 | 3 |" in text  # the generic table: one row per method and width
    for name in ("scaling.png", "curves.png", "normalized.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 1000
    analysis = analyse([json.loads(p.read_text()) for p in results.rglob("result.json")], reference="dense-w16")
    assert analysis["tasks"][("sac", "Pendulum-v1")]["methods"]["dense-w16"]["norm_final"].mean() == pytest.approx(1.0)


def test_iqm():
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 1.5, 2.5])) == pytest.approx(1.75)


#: A tiny throughput run (seconds): two backends at width 16 on Pendulum.
THROUGHPUT_ARGV = ["--env", "Pendulum-v1", "--widths", "16", "--sparsities", "0.5", "--backends", "masked", "csr"]
THROUGHPUT_ARGV += ["--steps", "3", "--repeats", "2", "--learning-starts", "20", "--warmup-steps", "2", "--latency-calls", "2"]


def test_throughput(tmp_path: Path):
    threads = str(th.get_num_threads())  # the script sets torch's threads for the whole process: keep them
    result = main([*THROUGHPUT_ARGV, "--no-sbx", "--threads", threads, "--out", str(tmp_path)])
    training = {(row["kind"], row["backend"]): row for row in result["training"]}
    assert set(training) == {(DENSE, None), (FUSED_DENSE, None), (SPARSE, "masked"), (SPARSE, "csr")}
    assert training[(DENSE, None)]["vs"][DENSE] == {"median": 1.0, "min": 1.0, "max": 1.0}
    assert training[(SPARSE, "csr")]["vs"][FUSED_DENSE]["median"] > 0 and training[(SPARSE, "csr")]["vs"][SBX_DENSE] is None
    assert training[(SPARSE, "csr")]["update_ms"] > 0 and "update_ms" not in training[(DENSE, None)]
    inference = {(row["kind"], row["backend"]): row for row in result["inference"]}
    assert set(inference) == {(DENSE, None), (SPARSE, "masked"), (SPARSE, "csr")}
    sparse = inference[(SPARSE, "csr")]
    assert set(sparse["latency_us"]) == {"1", "256"} and sparse["latency_vs_dense"]["1"]["median"] > 0
    assert sparse["saved_bytes"] > 0 and sparse["actor_bytes"] > 0
    assert inference[(DENSE, None)]["actor_vs_dense"] == 1.0
    assert result["context"]["threads"] == int(threads) and result["context"]["device"] == "cpu"
    assert json.loads((tmp_path / "results.json").read_text())["context"] == result["context"]
    assert "| 16 | sparse | 0.5 | csr |" in (tmp_path / "results.md").read_text()
    assert thread_count("all") == os.cpu_count() and thread_count("2") == 2


def test_throughput_on_the_cpu_clock(monkeypatch: pytest.MonkeyPatch):
    """``--clock cpu`` times every measurement with the CPU clock (here a fake one that advances 1 s per reading)."""
    readings = iter(range(10**6))
    monkeypatch.setitem(CLOCKS, "cpu", lambda: float(next(readings)))
    threads = str(th.get_num_threads())
    result = main([*THROUGHPUT_ARGV, "--no-sbx", "--threads", threads, "--clock", "cpu"])
    steps = int(THROUGHPUT_ARGV[THROUGHPUT_ARGV.index("--steps") + 1])
    assert all(row["ms_per_step"] == 1e3 / steps for row in result["training"])
    assert all(row["update_ms"] == 1e3 for row in result["training"] if row["kind"] == SPARSE)
    assert all(latency == 1e6 for row in result["inference"] for latency in row["latency_us"].values())
    assert result["context"]["clock"] == "cpu"


@pytest.mark.slow
def test_throughput_sbx(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("sbx")
    monkeypatch.setenv("XLA_FLAGS", "")  # restored after the test: with one thread the script sets XLA's flag
    threads = th.get_num_threads()
    result = main([*THROUGHPUT_ARGV, "--threads", str(threads)])
    sbx = next(row for row in result["training"] if row["kind"] == SBX_DENSE)
    assert sbx["ms_per_step"] > 0 and sbx["vs"][SBX_DENSE]["median"] == 1.0
    assert all(row["vs"][SBX_DENSE]["median"] > 0 for row in result["training"])
    assert result["context"]["sbx"].startswith("sbx ")
    assert (ONE_XLA_THREAD in result["context"]["xla_flags"]) == (threads == 1)


def test_crossover_measures_each_mode_and_writes_its_table(tmp_path):
    from benchmarks import crossover

    tiny = ["--widths", "16", "--densities", "0.5", "0.1", "--batches", "4", "--repeats", "2", "--rounds", "1"]
    result = crossover.main([*tiny, "--out", str(tmp_path)])
    assert [row["mode"] for row in result["rows"]] == ["training", "inference", "frozen"]
    assert all(set(row["ratios"]) == {0.5, 0.1} and row["ratios"][0.1] > 0 for row in result["rows"])
    assert (tmp_path / "crossover.json").exists() and "| frozen | 4 | 16 |" in (tmp_path / "crossover.md").read_text()


def test_crossover_times_the_condensed_backend(tmp_path):
    from benchmarks import crossover

    tiny = ["--widths", "16", "--densities", "0.25", "--batches", "4", "--modes", "inference", "--repeats", "2"]
    result = crossover.main([*tiny, "--rounds", "1", "--condensed", "--masks", "random", "--out", str(tmp_path)])
    assert [set(row["ratios"]) for row in result["rows"]] == [{"csr", "condensed"}]
    assert "| inference | 4 | 16 | 0.25 |" in (tmp_path / "condensed-random.md").read_text()
    layer = th.nn.Linear(8, 6)
    sparsify(layer, "weight", init_mask(layer.weight, 18, "random", per_unit=True))
    x = th.randn(3, 8)
    for product in (crossover.gathered_sum, crossover.embedding_bag):
        th.testing.assert_close(crossover.Condensed(layer, product)(x), layer(x))


def test_crossover_is_the_highest_density_below_which_csr_always_won():
    from benchmarks.crossover import crossover

    assert crossover({0.3: 1.2, 0.2: 0.8, 0.1: 0.95, 0.05: 0.5}, 0.9) == 0.05
    assert crossover({0.3: 0.5, 0.1: 0.4}, 0.9) == 0.3
    assert crossover({0.1: 1.0}, 0.9) == 0.0


def test_step_variants_ensemble_computes_the_separate_critics_gradients(tmp_path: Path):
    from benchmarks import step_variants

    critics = step_variants.twin_critics(8)
    x = th.randn(5, step_variants.INPUT_SIZE)
    weights, biases = step_variants.stacked(critics)
    step_variants.separate_step(critics, x)
    step_variants.ensemble_step(weights, biases, x)
    linear = [[m for m in network if isinstance(m, th.nn.Linear)] for network in critics]
    for index, weight in enumerate(weights):
        for member in range(2):
            assert th.allclose(weight.grad[member], linear[member][index].weight.grad, atol=1e-6)
    threads = str(th.get_num_threads())  # the script sets torch's threads for the whole process: keep them
    arguments = ["--widths", "8", "--passes", "1", "--repeats", "2", "--no-compile", "--threads", threads]
    result = step_variants.main([*arguments, "--out", str(tmp_path)])
    assert set(result["rows"][0]["ratios"]) == {"ensemble"} and (tmp_path / "step_variants.md").exists()


def test_overhead_script():
    from benchmarks.overhead import main as overhead

    threads = str(th.get_num_threads())  # the script sets torch's threads for the whole process: keep them
    result = overhead(["--algo", "a2c", "--steps", "20", "--repeats", "2", "--threads", threads])
    labels = (DENSE, "dense regime", "set 0.5 auto")
    assert set(result) == {f"{label} / {base}" for label in labels for base in (DENSE, "dense regime")}
    assert result[f"{DENSE} / {DENSE}"]["median"] == 1.0 and result[f"set 0.5 auto / {DENSE}"]["median"] > 0


def test_bags_script(tmp_path: Path):
    from benchmarks.bags import main as bags

    threads = str(th.get_num_threads())  # the script sets torch's threads for the whole process: keep them
    arguments = ["--widths", "16", "--densities", "0.2", "--batches", "1", "40", "--rounds", "1", "--min-seconds", "0"]
    result = bags([*arguments, "--threads", threads, "--out", str(tmp_path)])
    assert set(result["rows"][0]["ratios"]) == {1, 40} and (tmp_path / "bags.md").exists()


def test_crossover_steps_builds_each_model_under_its_own_table(tmp_path: Path):
    import argparse

    from benchmarks import crossover_steps
    from sb3_sparse.core.backends import CROSSOVER
    from sb3_sparse.core.crossover_cache import parse_table
    from sb3_sparse.core.masking import is_sparse, weight_state

    def choices(model: Any) -> set[str]:
        layouts = [weight_state(layer).csr_layout for layer in model.policy.modules() if is_sparse(layer)]
        return {choice for layout in layouts if layout is not None for choice in layout.choices.values()}

    masked_everywhere = {mode: {"1": [[0, 0.0]]} for mode in ("training", "inference", "frozen")}
    args = argparse.Namespace(learning_starts=100, batch_size=256, seed=0)
    case = crossover_steps.CASES[0]  # the quick profile's RigL at 90%: CSR products under the built-in points
    assert "csr" not in choices(crossover_steps.build(case, parse_table(masked_everywhere), args))
    assert "csr" in choices(crossover_steps.build(case, CROSSOVER["cpu"], args))
    file = tmp_path / "masked.json"
    file.write_text(json.dumps(masked_everywhere))
    argv = ["--against", str(file), "--cases", "0", "--steps", "1", "--repeats", "2", "--learning-starts", "100"]
    result = crossover_steps.main([*argv, "--out", str(tmp_path)])
    assert [row["case"] for row in result["rows"]] == [case.label] and result["rows"][0]["ratio"] > 0
    assert "| Pendulum-v1 rigl 0.9 width 256 |" in (tmp_path / "crossover_steps.md").read_text()


def test_crossover_steps_against_row_major_producers(tmp_path: Path):
    """``--against-row-major`` times the model against itself with every layer's output row-major."""
    import argparse

    from benchmarks import crossover_steps
    from sb3_sparse.core.backends import CROSSOVER
    from sb3_sparse.core.masking import COLUMN_MAJOR_ATTRIBUTE

    def marked(model: Any) -> int:
        return sum(COLUMN_MAJOR_ATTRIBUTE in module.__dict__ for module in model.policy.modules())

    args = argparse.Namespace(learning_starts=100, batch_size=256, seed=0)
    model = crossover_steps.build(crossover_steps.CASES[0], CROSSOVER["cpu"], args)
    assert marked(model) > 0 and marked(crossover_steps.row_major_producers(model)) == 0
    argv = ["--against-row-major", "--cases", "0", "--steps", "1", "--repeats", "2", "--learning-starts", "100"]
    result = crossover_steps.main([*argv, "--out", str(tmp_path)])
    assert result["rows"][0]["ratio"] > 0 and "row-major hand-over" in (tmp_path / "crossover_steps.md").read_text()
