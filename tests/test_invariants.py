"""Sparsity invariants checked during real (short) training for every regime, and the layers each configuration masks."""

from copy import deepcopy
from typing import Any

import pytest
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import polyak_update

from sb3_sparse import SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy, TopologyUpdateCallback
from sb3_sparse.common.deploy import export_policy, load_policy
from sb3_sparse.core.distributions import active_count, erdos_renyi_scale
from sb3_sparse.core.masking import get_mask, is_sparse, sparse_weights
from sb3_sparse.core.regimes import get_regime

SMALL = {"net_arch": [32, 32]}
ALGOS = {"sac": SparseSAC, "td3": SparseTD3}
REGIMES = ["dense", "static", "set", "rigl", "gmp", "ne", "srigl"]


def networks(policy: Any) -> dict[str, tuple[str, Any]]:
    """The masked weights of every online and target network of the sparse modules: ``{network: (module, weights)}``
    (a module's weights only: not those of another module inside its network, such as an encoder)."""
    result = {}
    for module, binding in policy.sparse_bindings().items():
        result[module] = (module, binding.weights())
        if binding.target is not None:
            result[f"{module}_target"] = (module, binding.weights(target=True))
    return result


def mask_of(module: Any, name: str) -> th.Tensor:
    mask = get_mask(module, name)
    assert ((mask == 0) | (mask == 1)).all()
    return mask.bool()


def masks(policy: Any) -> dict[str, th.Tensor]:
    """Every mask of every (online and target) network, by full name."""
    return {
        f"{network}.{name}": mask_of(module, weight).clone()
        for network, (_, net) in networks(policy).items()
        for name, module, weight in net
    }


def active_counts(policy: Any) -> dict[str, int]:
    return {name: int(mask.sum()) for name, mask in masks(policy).items()}


def check_exact_zeros(policy: Any) -> None:
    """Pruned weights are exactly 0 (as stored) in every online and target network."""
    for network, (_, net) in networks(policy).items():
        for name, module, weight in net:
            pruned = getattr(module, weight)[~mask_of(module, weight)]
            assert (pruned == 0).all(), f"{network}.{name}: {int((pruned != 0).sum())} pruned weights are not 0"


def check_targets_match(policy: Any) -> None:
    """Target masks equal the online masks (same layers)."""
    for module_name, binding in policy.sparse_bindings().items():
        if binding.target is None:
            continue
        online = {name: get_mask(module, weight) for name, module, weight in binding.weights()}
        target = {name: get_mask(module, weight) for name, module, weight in binding.weights(target=True)}
        # the same layers; only an encoder may have an online copy without target (SAC's actor's encoder)
        assert target.keys() == online.keys() or (module_name == "encoder" and target.keys() < online.keys())
        for name, mask in target.items():
            assert th.equal(online[name], mask), name


class InvariantChecker(BaseCallback):
    """Checks, after every env step, every sparsity invariant; records when masks changed.

    :param expected_density: the initial density of each module's sparse layers
    :param count_trend: per module, how the active counts may move: ``"constant"``, ``"down"`` (gmp) or ``"up"`` (ne)
    """

    def __init__(self, expected_density: dict[str, float], count_trend: dict[str, str] | None = None):
        super().__init__()
        self.expected_density = expected_density
        self.count_trend = count_trend or {}
        self.n_checks = 0
        self.mask_changes: list[int] = []
        self.counts: dict[str, int] = {}
        self.previous: dict[str, th.Tensor] = {}

    def _on_training_start(self) -> None:
        policy = self.model.policy
        for network, (module, net) in networks(policy).items():
            for name, owner, weight in net:
                # Per-layer active count matches its initial density within one weight (a whole number of weights
                # per unit with constant fan-in).
                n_active = int(mask_of(owner, weight).sum())
                shape = tuple(getattr(owner, weight).shape)
                expected = active_count(shape, self.expected_density[module])
                regime = get_regime(policy.module_configs[module].regime)
                assert abs(n_active - regime.layer_count(shape, expected)) <= 1, (network, name)
        self.counts = active_counts(policy)
        self.previous = masks(policy)
        check_exact_zeros(policy)
        check_targets_match(policy)

    def _on_step(self) -> bool:
        policy = self.model.policy
        check_exact_zeros(policy)
        check_targets_match(policy)
        current = masks(policy)
        counts = {key: int(mask.sum()) for key, mask in current.items()}
        for key, count in counts.items():
            trend = self.count_trend.get(key.split(".")[0].removesuffix("_target"), "constant")
            if trend == "constant":
                assert count == self.counts[key], f"{key} changed its active count"
            elif trend == "down":
                assert count <= self.counts[key], f"{key} grew"
            else:
                assert count >= self.counts[key], f"{key} shrank"
        self.counts = counts
        if any(not th.equal(current[key], self.previous[key]) for key in current):
            self.mask_changes.append(self.num_timesteps)
        self.previous = current
        self.n_checks += 1
        return True


class StepChecker:
    """Optimizer post-step hooks checking exact zeros (online and target) after every gradient step."""

    def __init__(self, policy: Any):
        self.policy = policy
        self.n_steps = 0
        for binding in policy.sparse_bindings().values():
            binding.optimizer.register_step_post_hook(self)

    def __call__(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        check_exact_zeros(self.policy)
        self.n_steps += 1


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"regime": "set"},
        {"regime": "rigl", "train_freq": 2, "gradient_steps": 2, "sparse_layers": "all", "sparsity": 0.8},
    ],
    ids=["set", "rigl-multi-step"],
)
@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_invariants_during_training(algo, kwargs, backend):
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
        backend=backend,
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
        assert model.dst_state["modules"][network]["n_updates"] == 4
        assert model.dst_state["modules"][network]["last_update_step"] == 240


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_every_regime_keeps_the_invariants(algo, regime, backend):
    """Exact zeros in online and target networks after every env and gradient step, target masks equal to the
    online ones, active counts constant (gmp: only down, ne: only up), masks changing only at updates."""
    sparsity, initial = {"gmp": (0.8, 0.0), "ne": (0.3, 0.8)}.get(regime, (0.6, 0.6))
    model = ALGOS[algo](
        "MlpPolicy",
        "Pendulum-v1",
        regime=regime,
        sparsity=sparsity,
        sparse_layers="all",
        learning_starts=30,
        batch_size=32,
        topology_update_interval=40,
        drop_fraction=0.3,
        topology_update_end=120,
        policy_kwargs=dict(SMALL),
        seed=1,
        backend=backend,
    )
    density = 1.0 if regime == "dense" else 1 - initial
    trend = {"gmp": "down", "ne": "up"}.get(regime, "constant")
    checker = InvariantChecker({"actor": density, "critic": density}, {"actor": trend, "critic": trend})
    steps = StepChecker(model.policy)
    initial_counts = active_counts(model.policy)
    model.learn(160, callback=checker)
    assert steps.n_steps >= model._n_updates
    state = model.dst_state["modules"]
    if regime == "dense":
        assert not masks(model.policy)
    if regime in ("dense", "static"):
        assert checker.mask_changes == []
        assert all(record["n_updates"] == 0 for record in state.values())
        return
    assert checker.mask_changes == [40, 80, 120]
    for network in ("actor", "critic"):
        assert state[network]["n_updates"] == 3
    final_counts = active_counts(model.policy)
    if regime in ("set", "rigl", "srigl"):
        assert final_counts == initial_counts
    else:
        # gmp and ne reached their final sparsity at the end of the window (step 120).
        for network, (_, net) in networks(model.policy).items():
            for name, owner, weight in net:
                shape = tuple(getattr(owner, weight).shape)
                assert final_counts[f"{network}.{name}"] == active_count(shape, 1 - sparsity), (network, name)


def test_plain_sac_with_sparse_policy_and_callback():
    dst_config = {"sparsity": 0.8, "regime": "rigl", "topology_update_interval": 80, "drop_fraction": 0.2}
    model = SAC(
        SparseSACPolicy,
        "Pendulum-v1",
        learning_starts=30,
        batch_size=32,
        policy_kwargs={**SMALL, "dst_config": dst_config},
        seed=1,
    )
    initial = masks(model.policy)
    callback = TopologyUpdateCallback()
    checker = InvariantChecker({"actor": 0.2, "critic": 0.2})
    model.learn(200, callback=[callback, checker])
    assert model.dst_state["modules"]["actor"]["n_updates"] == 2
    assert model.dst_state["modules"]["critic"]["n_updates"] == 2
    assert checker.mask_changes == [80, 160]
    after = masks(model.policy)
    assert all(not th.equal(initial[key], after[key]) for key in initial)


def test_plain_td3_with_sparse_policy_and_callback():
    model = TD3(
        SparseTD3Policy,
        "Pendulum-v1",
        learning_starts=30,
        batch_size=32,
        policy_kwargs={**SMALL, "dst_config": {"topology_update_interval": 60, "drop_fraction": 0.2}},
        seed=2,
    )
    callback = TopologyUpdateCallback()
    checker = InvariantChecker({"actor": 0.5, "critic": 0.5})
    model.learn(200, callback=[callback, checker])
    assert checker.mask_changes == [60, 120, 180]
    assert sum(record["n_updates"] for record in model.dst_state["modules"].values()) == 6


# --- which layers are masked ------------------------------------------------------------------

POLICY_KWARGS = {"net_arch": [16, 16]}


def masked_names(model: Any) -> dict[str, list[str]]:
    """The owning modules of the sparse weights of each online module."""
    return {
        module: [name.removesuffix(".weight") for name, _, _ in sparse_weights(binding.online)]
        for module, binding in model.policy.sparse_bindings().items()
    }


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
    model = ALGOS[algo](
        "MlpPolicy", "Pendulum-v1", sparse_layers=sparse_layers, policy_kwargs=dict(POLICY_KWARGS), buffer_size=10
    )
    actor_names, critic_names = (SAC_LAYERS if algo == "sac" else TD3_LAYERS)[sparse_layers]
    assert masked_names(model) == {"actor": actor_names, "critic": critic_names}
    # The other linear layers stay dense; target networks mask the same layers.
    nets = {name: binding.online for name, binding in model.policy.sparse_bindings().items()}
    nets |= {f"{name}_target": b.target for name, b in model.policy.sparse_bindings().items() if b.target is not None}
    for module, net in nets.items():
        linear = {name for name, m in net.named_modules() if isinstance(m, th.nn.Linear)}
        sparse = {name for name, m in net.named_modules() if isinstance(m, th.nn.Linear) and is_sparse(m)}
        assert sparse == set(masked_names(model)[module.removesuffix("_target")])
        assert linear > sparse or sparse_layers == "all"
        # Only weights are masked (never biases).
        assert all(weight == "weight" for _, _, weight in sparse_weights(net))
    # Each masked layer has its uniform 50% sparsity.
    for binding in model.policy.sparse_bindings().values():
        for _, owner, weight in sparse_weights(binding.online):
            assert int(get_mask(owner, weight).sum()) == active_count(tuple(getattr(owner, weight).shape), 0.5)


def test_default_sparse_layers_keep_output_heads_dense():
    sac = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10)
    assert not is_sparse(sac.actor.mu) and not is_sparse(sac.actor.log_std)
    assert all(not is_sparse(q_net[-1]) for q_net in sac.critic.q_networks)
    assert all(is_sparse(q_net[0]) for q_net in sac.critic.q_networks)
    td3 = SparseTD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10)
    assert not is_sparse(td3.actor.mu[-2]) and is_sparse(td3.actor.mu[0])
    assert not is_sparse(td3.actor_target.mu[-2]) and is_sparse(td3.actor_target.mu[0])


def test_sparse_layers_all_inside_a_list_means_all():
    model = SparseSAC(
        "MlpPolicy", "Pendulum-v1", sparse_layers=["hidden", "all"], policy_kwargs=dict(POLICY_KWARGS), buffer_size=10
    )
    for config in model.policy.module_configs.values():
        assert config.sparse_layers == ("input", "hidden", "output")
    assert masked_names(model) == {"actor": SAC_LAYERS["all"][0], "critic": SAC_LAYERS["all"][1]}


def test_dense_regime_masks_nothing():
    model = SparseSAC(
        "MlpPolicy", "Pendulum-v1", modules={"actor": {"regime": "dense"}}, policy_kwargs=dict(POLICY_KWARGS), buffer_size=10
    )
    assert masked_names(model) == {"actor": [], "critic": SAC_LAYERS[("input", "hidden")][1]}


# --- realised sparsity per distribution -------------------------------------------------------


def layer_stats(model: Any, module: str) -> list[tuple[tuple[int, int], int]]:
    online = model.policy.sparse_bindings()[module].online
    return [
        (tuple(getattr(owner, weight).shape), int(get_mask(owner, weight).sum()))
        for _, owner, weight in sparse_weights(online)
    ]


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
    for module in ("actor", "critic"):
        stats = layer_stats(model, module)
        total = sum(s[0] * s[1] for s, _ in stats)
        active = sum(n for _, n in stats)
        # Module-wide: the target sparsity, within one weight per layer.
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
        modules={"actor": {"sparsity": 0.9}, "critic": {"sparsity": 0.7}},
        policy_kwargs={"net_arch": [64, 64]},
        buffer_size=10,
    )
    for module, sparsity in (("actor", 0.9), ("critic", 0.7)):
        assert model.policy.module_configs[module].sparsity == sparsity
        for shape, n in layer_stats(model, module):
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
    for module in ("actor", "critic"):
        stats = layer_stats(model, module)
        for (first, n_first), (second, n_second) in zip(stats[0::2], stats[1::2], strict=True):
            assert n_first == active_count(first, 2 * erdos_renyi_scale(first))
            assert n_second == active_count(second, 20 * erdos_renyi_scale(second))


@pytest.mark.parametrize("mask_init", ["random", "magnitude"])
def test_target_networks_start_as_copies(mask_init):
    model = SparseTD3("MlpPolicy", "Pendulum-v1", mask_init=mask_init, policy_kwargs=dict(POLICY_KWARGS), buffer_size=10)
    check_targets_match(model.policy)
    check_exact_zeros(model.policy)
    for binding in model.policy.sparse_bindings().values():
        targets = {name: (owner, weight) for name, owner, weight in sparse_weights(binding.target)}
        for name, owner, weight in sparse_weights(binding.online):
            target_owner, target_weight = targets[name]
            assert th.equal(getattr(owner, weight), getattr(target_owner, target_weight)), name


# Writes that bypass autograd's version counter (or not), as users and SB3 make them to a network's weights.
def _shrink_and_perturb(weights: list[th.Tensor]) -> None:
    with th.no_grad():
        th._foreach_mul_(weights, 0.5)
        th._foreach_add_(weights, [th.randn_like(w) for w in weights], alpha=0.1)


def _polyak_from_noise(weights: list[th.Tensor]) -> None:
    polyak_update([th.randn_like(w) for w in weights], weights, tau=0.5)


def _fused_adam_step(weights: list[th.Tensor]) -> None:
    optimizer = th.optim.Adam(weights, lr=0.1, fused=True)
    for weight in weights:
        weight.grad = th.randn_like(weight)  # set by hand: no backward pass, so no gradient mask hook
    optimizer.step()


WRITES = {
    "data.normal_": lambda weights: [w.data.normal_() for w in weights],
    "data.copy_": lambda weights: [w.data.copy_(th.randn_like(w)) for w in weights],
    "nn.init": lambda weights: [th.nn.init.orthogonal_(w) for w in weights],
    "foreach": _shrink_and_perturb,
    "polyak": _polyak_from_noise,
    "fused adam": _fused_adam_step,
}
BACKENDS = ["masked", "csr", "condensed", "auto"]


def written_model(backend: str, write: str, network: str) -> Any:
    """A SparseSAC whose ``network``'s sparse weights (pruned positions included) were just written by ``write``."""
    model = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity=0.8, policy_kwargs=dict(SMALL), backend=backend, seed=0)
    th.manual_seed(1)
    WRITES[write]([getattr(owner, weight) for _, owner, weight in sparse_weights(getattr(model.policy, network))])
    return model


def masked_by_hand(network: Any) -> Any:
    """A copy of ``network`` with its pruned weights zeroed here, not by the masks' own machinery."""
    copy = deepcopy(network)
    for _, owner, weight in sparse_weights(copy):
        getattr(owner, weight).data.mul_(get_mask(owner, weight))
    return copy


def pruned_values(network: Any, state: dict[str, th.Tensor], prefix: str = "") -> th.Tensor:
    """The ``state_dict`` values of every pruned weight of ``network``."""
    return th.cat([state[prefix + name][~mask_of(owner, weight)] for name, owner, weight in sparse_weights(network)])


def observations_and_actions(model: Any) -> tuple[th.Tensor, th.Tensor]:
    th.manual_seed(2)
    return th.randn(16, *model.observation_space.shape), th.rand(16, *model.action_space.shape) * 2 - 1


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_written_weight_never_reaches_a_forward_pass(backend, write):
    model = written_model(backend, write, "actor")
    obs, actions = observations_and_actions(model)
    reference = masked_by_hand(model.actor)
    for grad in (False, True):
        with th.set_grad_enabled(grad):
            th.testing.assert_close(model.actor(obs, deterministic=True), reference(obs, deterministic=True))
    model = written_model(backend, write, "critic")
    reference = masked_by_hand(model.critic)
    for got, want in zip(model.critic(obs, actions), reference(obs, actions), strict=True):
        th.testing.assert_close(got, want)


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_written_weight_never_reaches_a_state_dict(backend, write):
    model = written_model(backend, write, "critic")
    assert (pruned_values(model.critic, model.policy.state_dict(), "critic.") == 0).all()
    model = written_model(backend, write, "actor")
    assert (pruned_values(model.actor, model.get_parameters()["policy"], "actor.") == 0).all()


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_written_weight_never_reaches_a_target_network(backend, write):
    """SB3's polyak update straight after the write (no forward pass of the online network in between)."""
    model = written_model(backend, write, "critic")
    polyak_update(model.critic.parameters(), model.critic_target.parameters(), tau=0.5)
    obs, actions = observations_and_actions(model)
    reference = masked_by_hand(model.critic_target)
    with th.no_grad():
        for got, want in zip(model.critic_target(obs, actions), reference(obs, actions), strict=True):
            th.testing.assert_close(got, want)
    assert (pruned_values(model.critic_target, model.critic_target.state_dict()) == 0).all()


# the tracer warns about the argument checks of torch's Normal distribution in SB3's actor
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_written_weight_never_reaches_an_export(backend, write, tmp_path):
    """The compact export (``load_policy`` of it acts as the masked actor) and an ONNX export of the actor."""
    model = written_model(backend, write, "actor")
    obs, _ = observations_and_actions(model)
    with th.no_grad():
        expected = masked_by_hand(model.actor)(obs, deterministic=True)
    loaded = load_policy(export_policy(model, tmp_path / "policy.pt"), device="cpu")
    with th.no_grad():
        th.testing.assert_close(loaded.actor(obs, deterministic=True), expected)
    onnxruntime = pytest.importorskip("onnxruntime")
    model = written_model(backend, write, "actor")
    path = str(tmp_path / "actor.onnx")
    th.onnx.export(ActingActor(model.actor), (obs,), path, dynamo=False, input_names=["obs"])
    (output,) = onnxruntime.InferenceSession(path).run(None, {"obs": obs.numpy()})
    th.testing.assert_close(th.as_tensor(output), expected)


class ActingActor(th.nn.Module):
    """The deterministic action of SB3's actor, as ONNX runs it."""

    def __init__(self, actor: th.nn.Module):
        super().__init__()
        self.actor = actor

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.actor(obs, deterministic=True)
