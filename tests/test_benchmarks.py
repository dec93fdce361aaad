"""Fast tests of the benchmark harness: profiles, resumable runs, summaries, the throughput script."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

from benchmarks.methods import method_kwargs
from benchmarks.profile import RunSpec, load_profile, parse_profile
from benchmarks.runner import _stale, find_checkpoint, run_one
from benchmarks.summary import analyse, iqm, write_summary
from benchmarks.throughput import DENSE, FUSED_DENSE, ONE_XLA_THREAD, SBX_DENSE, SPARSE, main, thread_count

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


@pytest.mark.parametrize("bad", ["methods: [dense, dense]", "algorithms: [ppo]", "seeds: null"])
def test_parse_profile_errors(bad):
    data = yaml.safe_load(PROFILE)
    data.update(yaml.safe_load(bad))
    if data["seeds"] is None:
        del data["seeds"]
    with pytest.raises(ValueError):
        parse_profile(data)


@pytest.mark.parametrize("name,count", [("smoke", 30), ("quick", 30), ("reduced", 72), ("paper", 250)])
def test_shipped_profiles(name, count):
    _, specs = load_profile(name)
    assert len(specs) == count and len({s.run_id for s in specs}) == count


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
    assert result["final_return"] == pytest.approx(np.mean(result["curve"]["mean"][-2:]))
    assert result["sparsity"]["global"] == pytest.approx(0.5, abs=0.01) and result["flops"]["training_flops_ratio"] < 1
    assert find_checkpoint(run_dir) is None
    assert run_one(spec, tmp_path) == "skipped"
    changed = RunSpec.from_dict({**spec.to_dict(), "n_eval_episodes": 2})
    assert _stale(run_dir / "result.json", changed) and not _stale(run_dir / "result.json", spec)


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
    assert "not reached" in text and "| 1.10x |" in text and "PARTIAL" not in text
    for name in ("curves.png", "normalized.png", "aggregate.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 1000
    analysis = analyse([json.loads(p.read_text()) for p in results.rglob("result.json")])
    point, low, high, n_runs, n_tasks = analysis["aggregate"]["set-0.5"]["norm_final"]
    assert low <= point <= high and n_runs == 6 and n_tasks == 2 and point == pytest.approx(0.9, abs=0.02)
    assert analysis["tasks"][("sac", "A-v0")]["methods"]["dense"]["steps_to_dense"] == 1000


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


def test_crossover_is_the_highest_density_below_which_csr_always_won():
    from benchmarks.crossover import crossover

    assert crossover({0.3: 1.2, 0.2: 0.8, 0.1: 0.95, 0.05: 0.5}, 0.9) == 0.05
    assert crossover({0.3: 0.5, 0.1: 0.4}, 0.9) == 0.3
    assert crossover({0.1: 1.0}, 0.9) == 0.0
