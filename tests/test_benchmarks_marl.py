"""Fast tests of the benchmark harness's multi-agent path (QMIX / VDN): profiles, runs, resume, sizes, summary."""

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.methods import check_method, method_kwargs, model_class
from benchmarks.profile import RunSpec, load_profile, parse_profile
from benchmarks.runner import evaluate, find_checkpoint, make_env, run_one
from benchmarks.summary import write_summary

pytest.importorskip("mpe2")

ENV = "simple_spread_v3"  # 25-step episodes, 3 agents
#: QMIX small enough for a few hundred steps: a gradient step per episode once 4 episodes are stored.
SMALL = {"batch_size": 4, "buffer_size": 20, "target_update_interval": 4}

PROFILE = f"""
name: tiny-marl
total_timesteps: 200
eval_freq: 100
n_eval_episodes: 2
checkpoint_freq: 100
final_evals: 1
policy: RnnPolicy
algo_kwargs: {json.dumps(SMALL)}
algorithms: {{qmix: {{}}, vdn: {{}}}}
envs: [{ENV}]
seeds: [0]
methods:
  - dense
  - {{method: tiny, sparsity: 0.9}}
  - {{method: mast, sparsity: 0.9, kwargs: {{topology_update_interval: 50}}}}
"""


def spec_of(method: str, sparsity: float | None = None, algo: str = "qmix", **kwargs) -> RunSpec:
    settings = dict(total_timesteps=200, eval_freq=100, n_eval_episodes=2, checkpoint_freq=1000, final_evals=1)
    settings.update(kwargs)
    label = method if sparsity is None else f"{method}-{sparsity:g}"
    return RunSpec(
        profile="test", algo=algo, env_id=ENV, label=label, method=method, seed=0, sparsity=sparsity,
        algo_kwargs=dict(SMALL), policy="RnnPolicy", **settings,
        method_kwargs={} if method in ("dense", "tiny") else {"topology_update_interval": 50},  # the recipes': 10k steps
    )  # fmt: skip


def test_parse_marl_profiles():
    specs = parse_profile(yaml.safe_load(PROFILE))
    assert [s.run_id for s in specs] == [
        f"qmix/{ENV}/dense/seed0", f"qmix/{ENV}/tiny-0.9/seed0", f"qmix/{ENV}/mast-0.9/seed0",
        f"vdn/{ENV}/dense/seed0", f"vdn/{ENV}/tiny-0.9/seed0", f"vdn/{ENV}/mast-0.9/seed0",
    ]  # fmt: skip
    assert all(s.policy == "RnnPolicy" and s.algo_kwargs == SMALL for s in specs)
    _, marl = load_profile("marl")
    assert len(marl) == 36 and {s.algo for s in marl} == {"qmix"} and {s.seed for s in marl} == {0, 1, 2}
    assert {s.label for s in marl} == {"dense", "tiny-0.9", "static-0.9", "rigl-0.9", "mast-0.9", "mast-dense"}
    assert {s.env_id: s.total_timesteps for s in marl} == {"Foraging-5x5-2p-1f-coop-v3": 100_000, ENV: 100_000}
    assert all(s.eval_freq * 10 == s.total_timesteps for s in marl)  # an evaluation every 10% of the run
    _, full = load_profile("marl-full")
    assert {s.algo for s in full} == {"qmix", "vdn"} and len({s.seed for s in full}) == 5
    assert {s.total_timesteps for s in full} == {2_000_000} and len({s.env_id for s in full}) == 3
    assert len(full) == len({s.run_id for s in full})


@pytest.mark.parametrize(
    "algo,method,error",
    [("sac", "tiny", "choose 'dense' or a recipe"), ("qmix", "gmp", "not valid for qmix"), ("vdn", "mst", "not valid")],
)
def test_marl_methods_are_checked(algo, method, error):
    with pytest.raises(ValueError, match=error):
        check_method(algo, method)
    data = yaml.safe_load(PROFILE)
    data.update(algorithms=[algo], methods=[method])
    with pytest.raises(ValueError, match=error):
        parse_profile(data)


def test_marl_method_kwargs():
    from sb3_sparse.marl import QMIX, VDN

    assert model_class("qmix", "dense") is model_class("qmix", "mast") is QMIX and model_class("vdn", "tiny") is VDN
    assert method_kwargs("dense", ENV, None, "qmix") == method_kwargs("tiny", ENV, 0.9, "qmix") == {}
    mast = method_kwargs("mast", ENV, 0.8, "qmix")
    assert mast["sparsity"] == 0.8 and mast["target_operator"] == "soft_mellowmax" and mast["replay_buffer_class"] == "dual"
    assert method_kwargs("static", ENV, None, "vdn") == {**method_kwargs("static", ENV, None, "qmix")}


def test_marl_run_resumes_and_records_sizes(tmp_path: Path):
    results = {}
    for method, sparsity in (("dense", None), ("tiny", 0.9), ("mast", 0.9)):
        spec = spec_of(method, sparsity, checkpoint_freq=100)
        run_dir = tmp_path / spec.run_id
        if method == "dense":  # stopped after its 4th episode, at its checkpoint; resumed from there
            assert run_one(spec, tmp_path, stop_at_step=100) == "interrupted", (run_dir / "error.txt").read_text()
            checkpoint = find_checkpoint(run_dir)
            assert checkpoint is not None and {p.name for p in checkpoint.iterdir()} >= {"model.zip", "replay_buffer.pkl"}
            state = json.loads((checkpoint / "state.json").read_text())
            assert state["num_timesteps"] == 100 and state["curve"]["steps"] == [0, 100]
        assert run_one(spec, tmp_path) == "done", (run_dir / "error.txt").read_text()
        assert run_one(spec, tmp_path) == "skipped" and find_checkpoint(run_dir) is None
        results[method] = json.loads((run_dir / "result.json").read_text())

    dense, tiny, mast = results["dense"], results["tiny"], results["mast"]
    assert dense["resumes"] == 1 and tiny["resumes"] == 0
    for result in results.values():  # the fields the summary reads
        assert result["curve"]["steps"] == [0, 100, 200] and result["num_timesteps"] == 200
        assert result["final_return"] == result["curve"]["mean"][-1] < 0  # MPE spread: negative team returns
        assert result["wall_seconds"] >= result["train_seconds"] > 0 and result["seconds_per_step"] > 0
        assert result["policy"] == "QMIXPolicy" and result["device"] == "cpu"
        assert {"inference_flops_ratio", "training_flops_ratio", "run_training_flops"} <= set(result["flops"])
        # one gradient step per episode from the 4th; a checkpoint is taken at the end of an episode, before its
        # gradient step (as in SB3's off-policy loop), so a resumed run goes without that one
        assert result["flops"]["gradient_steps"] == 200 // 25 - SMALL["batch_size"] + 1 - result["resumes"]
    assert dense["flops"]["training_flops_ratio"] == 1.0 and dense["sparsity"]["global"] == 0.0
    assert dense["net_arch"] == {"hidden_dim": 64, "mixing_embed_dim": 32, "hypernet_embed": 64}
    # tiny: a dense policy with about the active weights of the 90%-sparse one, measured against full-size dense
    assert tiny["sparsity"]["global"] == 0.0 and tiny["net_arch"]["hidden_dim"] < 64
    assert tiny["size"]["weights"] == tiny["size"]["active_weights"]
    assert tiny["size"]["weights"] == pytest.approx(0.1 * dense["size"]["weights"], rel=0.15)
    assert tiny["flops"]["reference_weights"] == dense["size"]["weights"]
    assert tiny["flops"]["dense_training_flops"] == dense["flops"]["training_flops"]
    assert 0.05 < tiny["flops"]["training_flops_ratio"] < 0.15 and tiny["flops"]["inference_flops_ratio"] < 0.15
    assert tiny["flops"]["integrated_training_flops_ratio"] == pytest.approx(tiny["flops"]["training_flops_ratio"])
    assert tiny["flops"]["run_training_flops"] < 0.15 * dense["flops"]["run_training_flops"]
    # mast: the 90%-sparse networks of full size
    assert mast["sparsity"]["global"] == pytest.approx(0.9, abs=0.01) and mast["n_topology_updates"] > 0
    assert mast["size"]["weights"] == dense["size"]["weights"]
    assert mast["size"]["active_weights"] == pytest.approx(tiny["size"]["weights"], rel=0.15)
    assert mast["flops"]["training_flops_ratio"] == pytest.approx(0.1, abs=0.01)

    text = write_summary(tmp_path, tmp_path / "docs").read_text()
    assert f"| QMIX {ENV} | dense | 1 |" in text and f"| QMIX {ENV} | tiny-0.9 | 1 |" in text
    assert "## Size and cost per method and width" in text and "hidden_dim:64" in text and "Multi-agent runs" in text
    assert (tmp_path / "docs" / "curves.png").stat().st_size > 1000


def test_vdn_run(tmp_path: Path):
    spec = spec_of("static", 0.9, algo="vdn", total_timesteps=100, eval_freq=50)
    assert run_one(spec, tmp_path) == "done", (tmp_path / spec.run_id / "error.txt").read_text()
    result = json.loads((tmp_path / spec.run_id / "result.json").read_text())
    assert result["policy"] == "VDNPolicy" and result["sparsity"]["global"] == pytest.approx(0.9, abs=0.01)
    assert result["curve"]["steps"] == [0, 50, 100]


def test_marl_env_and_evaluation():
    from sb3_sparse.marl import QMIX

    spec = spec_of("dense", n_eval_episodes=3)
    model = QMIX("RnnPolicy", make_env(spec, 0), seed=0, device="cpu", **SMALL)
    mean, std = evaluate(model, make_env(spec, 1), spec)
    assert mean < 0 and std >= 0
    assert evaluate(model, make_env(spec, 1), spec) == (mean, std)  # the eval env's seed: the same episodes
    assert evaluate(model, make_env(spec, 2), spec) != (mean, std)
    assert model.num_timesteps == 0 and model.replay_buffer.size() == 0  # evaluation does not train
