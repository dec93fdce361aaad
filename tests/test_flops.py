"""Theoretical FLOPs (RigL convention), realised sparsity reports, and FLOPs integrated over a run."""

from typing import Any

import pytest
from gymnasium import spaces
from stable_baselines3 import DQN, PPO, SAC, TD3
from torch import nn

from sb3_sparse import SparseDQN, SparseSAC, SparseSACPolicy, SparseTD3, flops_report, module_sparsity
from sb3_sparse.core.accounting import forward_flops
from sb3_sparse.core.masking import get_mask, is_sparse
from sb3_sparse.marl import QMIXPolicy, VDNPolicy

ALGOS = {"sac": SparseSAC, "td3": SparseTD3}


def make(algo: str, **kwargs: Any) -> Any:
    return ALGOS[algo]("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 16]}, buffer_size=10, **kwargs)


def linear_layers(net: Any) -> dict[str, nn.Linear]:
    return {
        name: m for name, m in net.named_modules() if isinstance(m, nn.Linear) and not name.startswith("features_extractor")
    }


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("sparse_layers", [("input", "hidden"), "all"])
def test_per_layer_numbers(algo, sparse_layers):
    model = make(algo, sparsity=0.7, sparse_layers=sparse_layers, sparsity_distribution="erk")
    report = flops_report(model)
    rows = {(row["module"], row["layer"]): row for row in report["layers"]}
    expected_rows = 0
    for module_name, binding in model.policy.sparse_bindings().items():
        for name, module in linear_layers(binding.online).items():
            expected_rows += 1
            row = rows[(module_name, f"{name}.weight")]
            assert row["shape"] == tuple(module.weight.shape)
            assert row["weights"] == module.weight.numel()
            assert row["sparse"] == is_sparse(module)
            # Active weights are the mask sums (all weights for a dense layer).
            active = int(get_mask(module).sum()) if is_sparse(module) else module.weight.numel()
            assert row["active_weights"] == active
            assert row["density"] == pytest.approx(active / module.weight.numel())
    assert len(report["layers"]) == expected_rows
    # SAC: 2 body layers + mu + log_std, 2 x 3 critic layers; TD3: 3 actor layers, 2 x 3 critic layers.
    assert expected_rows == (10 if algo == "sac" else 9)
    assert report["weights"] == sum(row["weights"] for row in report["layers"])
    assert report["active_weights"] == sum(row["active_weights"] for row in report["layers"])


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_totals_convention(algo):
    model = make(algo, sparsity=0.6)
    report = flops_report(model)
    forward = {module: [0, 0] for module in ("actor", "critic")}
    for row in report["layers"]:
        # One multiply-add per active weight per sample (dense: every weight).
        forward[row["module"]][0] += row["active_weights"]
        forward[row["module"]][1] += row["weights"]
    # Inference: one actor forward pass.
    assert report["inference_flops"] == forward["actor"][0]
    assert report["dense_inference_flops"] == forward["actor"][1]
    # Training: 3x the forward pass of actor and critics, plus a forward pass of each target network
    # (SAC: critic target only; TD3: actor and critic targets).
    targets = ["critic"] if algo == "sac" else ["actor", "critic"]
    for index, key in ((0, "training_flops"), (1, "dense_training_flops")):
        expected = 3 * (forward["actor"][index] + forward["critic"][index]) + sum(forward[n][index] for n in targets)
        assert report[key] == expected
    assert report["inference_flops_ratio"] == report["inference_flops"] / report["dense_inference_flops"]
    assert report["training_flops_ratio"] == report["training_flops"] / report["dense_training_flops"]
    # The output heads stay dense by default: ratios above the 40% density of the sparse layers.
    assert 0.4 < report["inference_flops_ratio"] < 1.0
    assert 0.4 < report["training_flops_ratio"] < 1.0
    # Before training there is no run to integrate over.
    assert report["integrated_training_flops_ratio"] is None
    assert "training FLOPs over the run" not in report["table"]
    assert "inference FLOPs:" in report["table"]
    assert ("latent_pi.0.weight" if algo == "sac" else "mu.0.weight") in report["table"]


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_dense_model(algo):
    # Sparsity 0 (masks of ones) and the dense regime (no masks) both cost dense.
    report = flops_report(make(algo, sparsity=0.0, sparse_layers="all"))
    assert report["inference_flops_ratio"] == 1.0
    assert report["training_flops_ratio"] == 1.0
    assert report["sparsity"] == 0.0
    assert report["active_weights"] == report["weights"]
    dense = flops_report(make(algo, regime="dense"))
    assert dense["inference_flops_ratio"] == dense["training_flops_ratio"] == 1.0
    assert dense["weights"] == report["weights"] == dense["active_weights"]
    assert not any(row["sparse"] for row in dense["layers"])
    assert dense["sparsity"] == 0.0


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95])
def test_ratio_is_active_fraction(algo, sparsity):
    # Every layer sparse, uniform: every FLOPs ratio is the active fraction (up to rounding to whole weights).
    model = make(algo, sparsity=sparsity, sparse_layers="all")
    report = flops_report(model)
    assert report["sparsity"] == pytest.approx(sparsity, abs=2e-3)
    assert report["active_weights"] / report["weights"] == pytest.approx(1 - sparsity, abs=2e-3)
    assert report["inference_flops_ratio"] == pytest.approx(1 - sparsity, abs=5e-3)
    assert report["training_flops_ratio"] == pytest.approx(1 - sparsity, abs=5e-3)


def test_module_sparsity():
    model = make("td3", modules={"actor": {"sparsity": 0.8}, "critic": {"sparsity": 0.6}})
    sparsity = module_sparsity(model)
    assert set(sparsity) == {"actor", "critic", "global"}
    counts = {}
    for module, binding in model.policy.sparse_bindings().items():
        layers = [m for m in binding.online.modules() if isinstance(m, nn.Linear) and is_sparse(m)]
        counts[module] = (sum(int(get_mask(m).sum()) for m in layers), sum(m.weight.numel() for m in layers))
        assert sparsity[module] == pytest.approx(1 - counts[module][0] / counts[module][1])
    assert sparsity["actor"] == pytest.approx(0.8, abs=2e-3)
    assert sparsity["critic"] == pytest.approx(0.6, abs=2e-3)
    active = counts["actor"][0] + counts["critic"][0]
    total = counts["actor"][1] + counts["critic"][1]
    assert sparsity["global"] == pytest.approx(1 - active / total)
    assert flops_report(model)["sparsity"] == sparsity["global"]


def test_model_policy_and_plain_sac():
    model = make("sac", sparsity=0.5)
    assert flops_report(model) == flops_report(model.policy)
    plain = SAC(
        SparseSACPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [32, 16], "dst_config": {"sparsity": 0.5}}, buffer_size=10
    )
    assert flops_report(plain)["inference_flops"] == flops_report(model)["inference_flops"]
    dense_ppo = flops_report(PPO("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, n_steps=8, batch_size=8))
    assert dense_ppo["training_flops_ratio"] == dense_ppo["inference_flops_ratio"] == 1.0
    assert {row["module"] for row in dense_ppo["layers"]} == {"actor", "critic"}
    with pytest.raises(TypeError, match=r"FLOPs are counted for SB3's models .* got Linear"):
        flops_report(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="needs a sparse model"):
        module_sparsity(SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10))


def test_features_extractor_not_counted():
    # A dense features extractor (here a NatureCNN-like linear) is left out of the counts.
    import gymnasium as gym
    import numpy as np

    from sb3_sparse.sac.policies import CnnPolicy

    policy = CnnPolicy(
        gym.spaces.Box(0, 255, (1, 36, 36), np.uint8),
        gym.spaces.Box(-1, 1, (2,), np.float32),
        lambda _: 1e-3,
        net_arch=[8],
        features_extractor_kwargs={"features_dim": 16},
    )
    report = flops_report(policy)
    assert all(not row["layer"].startswith("features_extractor") for row in report["layers"])
    # actor: latent_pi.0 (16 -> 8), mu, log_std; critic: 2 x (18 -> 8, 8 -> 1)
    assert report["dense_inference_flops"] == 16 * 8 + 8 * 2 + 8 * 2
    assert report["weights"] == 16 * 8 + 8 * 2 * 2 + 2 * (18 * 8 + 8)


PLAIN = {
    "sac": (SAC, SparseSAC, "Pendulum-v1"),
    "td3": (TD3, SparseTD3, "Pendulum-v1"),
    "dqn": (DQN, SparseDQN, "CartPole-v1"),
}


@pytest.mark.parametrize("algo", PLAIN)
def test_plain_sb3_models_get_a_dense_report(algo):
    """A plain SB3 model is counted as the sparse form of the same architecture counts its dense form."""
    plain_class, sparse_class, env = PLAIN[algo]
    kwargs = {"policy_kwargs": {"net_arch": [32, 16]}, "buffer_size": 10}
    report = flops_report(plain_class("MlpPolicy", env, **kwargs))
    sparse = flops_report(sparse_class("MlpPolicy", env, sparsity=0.8, sparse_layers="all", **kwargs))
    assert report["inference_flops_ratio"] == report["training_flops_ratio"] == 1.0
    assert report["sparsity"] == 0.0 and report["integrated_training_flops_ratio"] is None
    assert report["active_weights"] == report["weights"] == sparse["weights"]
    assert not any(row["sparse"] for row in report["layers"])
    for kind in ("inference", "training"):
        assert report[f"{kind}_flops"] == report[f"dense_{kind}_flops"] == sparse[f"dense_{kind}_flops"]
    assert report.keys() == sparse.keys()


@pytest.mark.parametrize("policy_class", [QMIXPolicy, VDNPolicy])
def test_a_shared_agent_network_counts_once_per_agent(policy_class):
    n_agents = 3
    policy = policy_class(
        spaces.Box(-1, 1, (5,)), spaces.Discrete(4), lambda _: 1e-3, n_agents, 7, hidden_dim=16, dst_config={"sparsity": 0.8}
    )
    report = flops_report(policy)
    layers = {"agent": [], "mixer": []}
    for row in report["layers"]:
        layers[row["module"]].append(row)
    agent = forward_flops(layers["agent"])
    assert (report["inference_flops"], report["dense_inference_flops"]) == (n_agents * agent[0], n_agents * agent[1])
    step = [n_agents * 4 * agent[i] + 4 * forward_flops(layers["mixer"])[i] for i in (0, 1)]
    assert [report["training_flops"], report["dense_training_flops"]] == step
    # the weights of the shared network count once
    assert report["weights"] == sum(row["weights"] for row in report["layers"])
    assert len({row["layer"] for row in layers["agent"]}) == len(layers["agent"])


# --- FLOPs over a run -------------------------------------------------------------------------


def run(algo: str, **kwargs: Any) -> Any:
    arguments = {
        "learning_starts": 20,
        "batch_size": 16,
        "sparse_layers": "all",
        "topology_update_interval": 20,
        "topology_update_end": 0.8,
        "policy_kwargs": {"net_arch": [32, 32]},
        "seed": 0,
        **kwargs,
    }
    return ALGOS[algo]("MlpPolicy", "Pendulum-v1", **arguments).learn(150)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_integrated_flops_of_a_gmp_run(algo):
    """Dense to 90% sparse between 20% and 80% of the run: the run cost between its final density's and dense."""
    model = run(algo, regime="gmp", sparsity=0.9, topology_update_start=0.2, topology_update_end=0.8)
    report = flops_report(model)
    assert report["sparsity"] == pytest.approx(0.9, abs=5e-3)
    assert report["training_flops_ratio"] == pytest.approx(0.1, abs=0.01)
    assert report["training_flops_ratio"] < report["integrated_training_flops_ratio"] < 1.0
    assert "training FLOPs over the run so far" in report["table"]
    # The run's totals add up per module.
    modules = model.dst_state["modules"]
    assert report["integrated_training_flops_ratio"] == pytest.approx(
        sum(m["train_flops"] for m in modules.values()) / sum(m["dense_train_flops"] for m in modules.values())
    )


@pytest.mark.parametrize("regime", ["static", "set", "ne"])
def test_integrated_flops_of_other_regimes(regime):
    sparsity = 0.3 if regime == "ne" else 0.8
    report = flops_report(run("sac", regime=regime, sparsity=sparsity))
    if regime == "ne":
        # Sparse to denser: the run cost less than the final masks do now.
        assert report["integrated_training_flops_ratio"] < report["training_flops_ratio"] < 1.0
        assert report["sparsity"] == pytest.approx(0.3, abs=5e-3)
    else:
        # A constant density: the run cost exactly the current ratio.
        assert report["integrated_training_flops_ratio"] == pytest.approx(report["training_flops_ratio"])


def test_the_benchmarks_numbers_are_flops_reports():
    """The benchmark runner's FLOPs are ``flops_report``'s, and its run total follows from them (multi-agent: per
    team step, the shared agent network once per agent, x the episodes' steps in a batch)."""
    from test_marl import SMALL, match_env

    from benchmarks.runner import size_metrics, sparse_metrics
    from sb3_sparse.marl import QMIX

    models = [
        SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 32]}, learning_starts=20, batch_size=16).learn(40),
        run("sac", regime="gmp", sparsity=0.8),
        QMIX("MlpPolicy", match_env(), seed=0, sparsity=0.8, **SMALL).learn(60),
    ]
    for model, samples in zip(models, (16, 16, SMALL["batch_size"] * 6), strict=True):
        report, flops = flops_report(model), sparse_metrics(model)["flops"]
        assert {key: flops[key] for key in report if key not in ("layers", "table")} == {
            key: value for key, value in report.items() if key not in ("layers", "table")
        }
        assert model._n_updates > 0
        per_step = report["training_flops"]
        if report["integrated_training_flops_ratio"] is not None:
            per_step = report["integrated_training_flops_ratio"] * report["dense_training_flops"]
        assert flops["run_training_flops"] == pytest.approx(per_step * samples * model._n_updates)
        assert size_metrics(model)["size"]["weights"] == report["weights"]
