"""Sparsity invariants checked during real (short) training, and the layers each configuration masks."""

from typing import Any

import pytest
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse import MaskedLinear, SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy, TopologyUpdateCallback
from sb3_sparse.core.distributions import active_count, erdos_renyi_scale
from sb3_sparse.common.policies import masked_layers

SMALL = {"net_arch": [32, 32]}


def is_active(layer: MaskedLinear) -> th.Tensor:
    assert ((layer.mask == 0) | (layer.mask == 1)).all()
    return layer.mask.bool()


def masks(policy: Any) -> dict[str, th.Tensor]:
    """Every mask of every (online and target) network, by full name."""
    return {
        f"{n}.{name}": is_active(layer).clone() for n, layer_list in _all_layers(policy).items() for name, layer in layer_list
    }


def _all_layers(policy: Any) -> dict[str, list[tuple[str, MaskedLinear]]]:
    result = {}
    for network, (online, target) in policy.masked_networks().items():
        result[network] = masked_layers(online)
        if target is not None:
            result[f"{network}_target"] = masked_layers(target)
    return result


def check_exact_zeros(policy: Any) -> None:
    """Pruned weights are exactly 0 in every online and target network."""
    for network, layers in _all_layers(policy).items():
        for name, layer in layers:
            pruned = layer.weight[~is_active(layer)]
            assert (pruned == 0).all(), f"{network}.{name}: {int((pruned != 0).sum())} pruned weights are not 0"


def check_targets_match(policy: Any) -> None:
    """Target masks equal the online masks."""
    for online, target in policy.masked_networks().values():
        if target is None:
            continue
        target_layers = dict(masked_layers(target))
        online_layers = masked_layers(online)
        assert set(target_layers) == {name for name, _ in online_layers}
        for name, layer in online_layers:
            assert th.equal(target_layers[name].mask, layer.mask), name


class InvariantChecker(BaseCallback):
    """Checks, after every env step, every sparsity invariant; records when masks changed."""

    def __init__(self, expected_density: dict[str, float]):
        super().__init__()
        self.expected_density = expected_density
        self.n_checks = 0
        self.mask_changes: list[int] = []
        self.counts: dict[str, int] = {}
        self.previous: dict[str, th.Tensor] = {}

    def _on_training_start(self) -> None:
        policy = self.model.policy
        for network, layers in _all_layers(policy).items():
            for name, layer in layers:
                self.counts[f"{network}.{name}"] = layer.n_active
                # Per-layer active count matches its target density within one weight.
                density = self.expected_density[network.removesuffix("_target")]
                assert abs(layer.n_active - density * layer.mask.numel()) <= 1
        self.previous = masks(policy)
        check_exact_zeros(policy)
        check_targets_match(policy)

    def _on_step(self) -> bool:
        policy = self.model.policy
        check_exact_zeros(policy)
        check_targets_match(policy)
        for network, layers in _all_layers(policy).items():
            for name, layer in layers:
                assert layer.n_active == self.counts[f"{network}.{name}"], f"{network}.{name} changed its active count"
        current = masks(policy)
        if any(not th.equal(current[key], self.previous[key]) for key in current):
            self.mask_changes.append(self.num_timesteps)
        self.previous = current
        self.n_checks += 1
        return True


class StepChecker:
    """Optimizer post-step hooks (registered after the policy's own) checking exact zeros after every gradient step."""

    def __init__(self, policy: Any):
        self.policy = policy
        self.n_steps = 0
        for online, _ in policy.masked_networks().values():
            online.optimizer.register_step_post_hook(self)

    def __call__(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        check_exact_zeros(self.policy)
        self.n_steps += 1


ALGOS = {"sac": SparseSAC, "td3": SparseTD3}


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"grow_method": "random"},
        {"grow_method": "gradient", "train_freq": 2, "gradient_steps": 2, "sparse_layers": "all", "sparsity": 0.8},
    ],
    ids=["set", "rigl-multi-step"],
)
def test_invariants_during_training(algo, kwargs):
    model = ALGOS[algo](
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=30,
        batch_size=32,
        topology_update_interval=60,
        drop_fraction=0.3,
        topology_update_end=1.0,
        policy_kwargs=dict(SMALL),
        seed=0,
        **kwargs,
    )
    sparsity = kwargs.get("sparsity", 0.5)
    checker = InvariantChecker({"actor": 1 - sparsity, "critic": 1 - sparsity})
    steps = StepChecker(model.policy)
    model.learn(250, callback=checker)
    assert checker.n_checks == 250
    gradient_steps = model._n_updates
    assert gradient_steps >= 210
    # Every gradient step of each network was checked (TD3 delays the actor's).
    assert steps.n_steps >= gradient_steps
    # Updates at 60, 120, 180, 240 changed the masks, and only then.
    assert checker.mask_changes == [60, 120, 180, 240]
    for network in ("actor", "critic"):
        assert model.topology_state.networks[network]["n_updates"] == 4
        assert model.topology_state.networks[network]["last_update_step"] == 240


def test_plain_sac_with_sparse_policy_and_callback():
    model = SAC(
        SparseSACPolicy,
        "Pendulum-v1",
        learning_starts=30,
        batch_size=32,
        policy_kwargs={**SMALL, "sparsity": 0.8},
        seed=1,
    )
    initial = masks(model.policy)
    callback = TopologyUpdateCallback(topology_update_interval=80, grow_method="gradient", drop_fraction=0.2)
    checker = InvariantChecker({"actor": 0.2, "critic": 0.2})
    model.learn(200, callback=[callback, checker])
    assert callback.state.networks["actor"]["n_updates"] == 2
    assert callback.state.networks["critic"]["n_updates"] == 2
    assert checker.mask_changes == [80, 160]
    after = masks(model.policy)
    assert all(not th.equal(initial[key], after[key]) for key in initial)


def test_plain_td3_with_sparse_policy_and_callback():
    model = TD3(SparseTD3Policy, "Pendulum-v1", learning_starts=30, batch_size=32, policy_kwargs=dict(SMALL), seed=2)
    callback = TopologyUpdateCallback(topology_update_interval=60, drop_fraction=0.2)
    checker = InvariantChecker({"actor": 0.5, "critic": 0.5})
    model.learn(200, callback=[callback, checker])
    assert checker.mask_changes == [60, 120, 180]
    assert callback.state.n_updates == 6


# --- which layers are masked ------------------------------------------------------------------

POLICY_KWARGS = {"net_arch": [16, 16]}


def masked_names(model: Any) -> dict[str, list[str]]:
    return {network: [name for name, _ in model.policy.masked_layers(network)] for network in ("actor", "critic")}


SAC_LAYERS = {
    # latent_pi.0 (input), latent_pi.2 (hidden), mu and log_std (output heads)
    ("input", "hidden"): (["latent_pi.0", "latent_pi.2"], ["qf0.0", "qf0.2", "qf1.0", "qf1.2"]),
    "all": (["latent_pi.0", "latent_pi.2", "mu", "log_std"], ["qf0.0", "qf0.2", "qf0.4", "qf1.0", "qf1.2", "qf1.4"]),
    ("hidden",): (["latent_pi.2"], ["qf0.2", "qf1.2"]),
    ("input",): (["latent_pi.0"], ["qf0.0", "qf1.0"]),
    ("output",): (["mu", "log_std"], ["qf0.4", "qf1.4"]),
    ("hidden", "output"): (["latent_pi.2", "mu", "log_std"], ["qf0.2", "qf0.4", "qf1.2", "qf1.4"]),
}
TD3_LAYERS = {
    ("input", "hidden"): (["mu.0", "mu.2"], ["qf0.0", "qf0.2", "qf1.0", "qf1.2"]),
    "all": (["mu.0", "mu.2", "mu.4"], ["qf0.0", "qf0.2", "qf0.4", "qf1.0", "qf1.2", "qf1.4"]),
    ("hidden",): (["mu.2"], ["qf0.2", "qf1.2"]),
    ("input",): (["mu.0"], ["qf0.0", "qf1.0"]),
    ("output",): (["mu.4"], ["qf0.4", "qf1.4"]),
    ("hidden", "output"): (["mu.2", "mu.4"], ["qf0.2", "qf0.4", "qf1.2", "qf1.4"]),
}


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("sparse_layers", list(SAC_LAYERS), ids=str)
def test_masked_layers(algo, sparse_layers):
    model = ALGOS[algo]("MlpPolicy", "Pendulum-v1", sparse_layers=sparse_layers, policy_kwargs=POLICY_KWARGS, buffer_size=10)
    actor_names, critic_names = (SAC_LAYERS if algo == "sac" else TD3_LAYERS)[sparse_layers]
    assert masked_names(model) == {"actor": actor_names, "critic": critic_names}
    # The other linear layers stay plain nn.Linear; target networks mask the same layers.
    for network, (online, target) in model.policy.masked_networks().items():
        for net in (online, target):
            if net is None:
                continue
            linear = {name for name, m in net.named_modules() if isinstance(m, th.nn.Linear)}
            assert {name for name, _ in masked_layers(net)} == set(masked_names(model)[network])
            assert linear > set(masked_names(model)[network]) or sparse_layers == "all"
    # Each masked layer has its uniform 50% sparsity.
    for network in ("actor", "critic"):
        for _, layer in model.policy.masked_layers(network):
            assert layer.n_active == active_count(tuple(layer.weight.shape), 0.5)


def test_default_sparse_layers_keep_output_heads_dense():
    sac = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, buffer_size=10)
    assert not isinstance(sac.actor.mu, MaskedLinear) and not isinstance(sac.actor.log_std, MaskedLinear)
    assert all(not isinstance(q_net[-1], MaskedLinear) for q_net in sac.critic.q_networks)
    assert all(isinstance(q_net[0], MaskedLinear) for q_net in sac.critic.q_networks)
    td3 = SparseTD3("MlpPolicy", "Pendulum-v1", policy_kwargs=POLICY_KWARGS, buffer_size=10)
    assert not isinstance(td3.actor.mu[-2], MaskedLinear) and isinstance(td3.actor.mu[0], MaskedLinear)
    assert not isinstance(td3.actor_target.mu[-2], MaskedLinear) and isinstance(td3.actor_target.mu[0], MaskedLinear)


def test_sparse_layers_all_inside_a_list_means_all():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", sparse_layers=["hidden", "all"], policy_kwargs=POLICY_KWARGS, buffer_size=10)
    assert model.sparse_layers == ["input", "hidden", "output"]
    assert masked_names(model) == {"actor": SAC_LAYERS["all"][0], "critic": SAC_LAYERS["all"][1]}


# --- realised sparsity per distribution -------------------------------------------------------


def layer_stats(model: Any, network: str) -> list[tuple[tuple[int, int], int]]:
    return [(tuple(layer.weight.shape), layer.n_active) for _, layer in model.policy.masked_layers(network)]


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize(
    ("distribution", "sparsity", "sparse_layers"),
    [
        ("uniform", 0.5, ("input", "hidden")),
        ("uniform", 0.9, "all"),
        ("erk", 0.8, "all"),
        ("erk", 0.5, ("input", "hidden")),
        ("erdos_renyi", 0.9, ("input", "hidden")),
        ("erdos_renyi", 0.95, "all"),
    ],
)
def test_realised_sparsity(algo, distribution, sparsity, sparse_layers):
    model = ALGOS[algo](
        "MlpPolicy",
        "Pendulum-v1",
        sparsity=sparsity,
        sparsity_distribution=distribution,
        sparse_layers=sparse_layers,
        policy_kwargs={"net_arch": [64, 64]},
        buffer_size=10,
    )
    for network in ("actor", "critic"):
        stats = layer_stats(model, network)
        total = sum(s[0] * s[1] for s, _ in stats)
        active = sum(n for _, n in stats)
        # Network-wide: the target sparsity, within one weight per layer.
        assert abs(active - (1 - sparsity) * total) <= len(stats)
        densities = [n / (s[0] * s[1]) for s, n in stats]
        assert all(0 < d <= 1 for d in densities)
        if distribution == "uniform":
            assert all(abs(n - (1 - sparsity) * s[0] * s[1]) <= 0.5 for s, n in stats)
        else:
            # ER proportions among the layers that are not dense (ERK densifies overflowing ones).
            ratios = [n / (s[0] * s[1]) / erdos_renyi_scale(s) for s, n in stats if n < s[0] * s[1]]
            assert max(ratios) == pytest.approx(min(ratios), rel=0.05)
            if distribution == "erk":
                # Dense layers are the ones with the largest ER scale.
                dense = [erdos_renyi_scale(s) for s, n in stats if n == s[0] * s[1]]
                sparse_ = [erdos_renyi_scale(s) for s, n in stats if n < s[0] * s[1]]
                assert not dense or min(dense) >= max(sparse_)


def test_actor_and_critic_sparsity():
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        actor_sparsity=0.9,
        critic_sparsity=0.7,
        policy_kwargs={"net_arch": [64, 64]},
        buffer_size=10,
    )
    for network, sparsity in (("actor", 0.9), ("critic", 0.7)):
        for shape, n in layer_stats(model, network):
            assert n == active_count(shape, 1 - sparsity)


def test_erdos_renyi_lambdas_per_depth():
    # One lambda per depth: the first layers of both critics share lambda 2, the second ones 20.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        sparsity_distribution="erdos_renyi",
        erdos_renyi_lambdas=[2, 20],
        policy_kwargs={"net_arch": [64, 64]},
        buffer_size=10,
    )
    for network in ("actor", "critic"):
        (first, n_first), (second, n_second) = layer_stats(model, network)[:2]
        assert n_first == active_count(first, 2 * erdos_renyi_scale(first))
        assert n_second == active_count(second, 20 * erdos_renyi_scale(second))


@pytest.mark.parametrize("mask_init", ["random", "magnitude"])
def test_target_networks_start_as_copies(mask_init):
    model = SparseTD3("MlpPolicy", "Pendulum-v1", mask_init=mask_init, policy_kwargs=POLICY_KWARGS, buffer_size=10)
    check_targets_match(model.policy)
    check_exact_zeros(model.policy)
    for online, target in model.policy.masked_networks().values():
        for (name, layer), (_, target_layer) in zip(masked_layers(online), masked_layers(target), strict=True):
            assert th.equal(layer.weight, target_layer.weight), name
