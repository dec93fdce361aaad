"""Theoretical FLOPs (RigL convention) and realised sparsity reports."""

from typing import Any

import pytest
from stable_baselines3 import SAC
from torch import nn

from sb3_sparse import MaskedLinear, SparseSAC, SparseSACPolicy, SparseTD3, flops_report, network_sparsity

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
    rows = {(row["network"], row["layer"]): row for row in report["layers"]}
    expected_rows = 0
    for network, (online, _) in model.policy.masked_networks().items():
        for name, module in linear_layers(online).items():
            expected_rows += 1
            row = rows[(network, name)]
            assert row["shape"] == tuple(module.weight.shape)
            assert row["weights"] == row["dense_flops"] == module.weight.numel()
            assert row["sparse"] == isinstance(module, MaskedLinear)
            # Active weights are the mask sums (all weights for a dense layer).
            active = int(module.mask.sum()) if isinstance(module, MaskedLinear) else module.weight.numel()
            assert row["active_weights"] == row["flops"] == active
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
    forward = {network: [0, 0] for network in ("actor", "critic")}
    for row in report["layers"]:
        forward[row["network"]][0] += row["flops"]
        forward[row["network"]][1] += row["dense_flops"]
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


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_dense_model(algo):
    report = flops_report(make(algo, sparsity=0.0, sparse_layers="all"))
    assert report["inference_flops_ratio"] == 1.0
    assert report["training_flops_ratio"] == 1.0
    assert report["sparsity"] == 0.0
    assert report["active_weights"] == report["weights"]


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


def test_network_sparsity():
    model = make("td3", actor_sparsity=0.8, critic_sparsity=0.6)
    sparsity = network_sparsity(model)
    assert set(sparsity) == {"actor", "critic", "global"}
    counts = {}
    for network in ("actor", "critic"):
        layers = [layer for _, layer in model.policy.masked_layers(network)]
        counts[network] = (sum(int(layer.mask.sum()) for layer in layers), sum(layer.mask.numel() for layer in layers))
        assert sparsity[network] == pytest.approx(1 - counts[network][0] / counts[network][1])
    assert sparsity["actor"] == pytest.approx(0.8, abs=2e-3)
    assert sparsity["critic"] == pytest.approx(0.6, abs=2e-3)
    active = counts["actor"][0] + counts["critic"][0]
    total = counts["actor"][1] + counts["critic"][1]
    assert sparsity["global"] == pytest.approx(1 - active / total)
    assert flops_report(model)["sparsity"] == sparsity["global"]


def test_model_policy_and_plain_sac():
    model = make("sac", sparsity=0.5)
    assert flops_report(model) == flops_report(model.policy)
    plain = SAC(SparseSACPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [32, 16], "sparsity": 0.5}, buffer_size=10)
    assert flops_report(plain)["inference_flops"] == flops_report(model)["inference_flops"]
    with pytest.raises(TypeError, match="flops_report needs a sparse model or policy, got SAC"):
        flops_report(SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10))


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
