"""Plasticity diagnostics: metrics with known answers, neuron-layer discovery, armed-only hooks, ReDo recycling,
the ``plasticity/`` keys of a real run, the switch, and the ``plot run`` panels."""

import copy
import csv
import inspect
import math
from typing import Any

import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib.common.torch_layers import BatchRenorm1d
from stable_baselines3.common.logger import KVWriter, Logger
from torch import nn

from sb3_sparse import SparseCrossQ, SparseDQN, SparseSAC, SparseTD3, SparseTQC
from sb3_sparse.core.config import MODULE_SETTINGS, ModuleConfig
from sb3_sparse.core.engine import ModuleBinding, SparseEngine, sparsify_module
from sb3_sparse.core.masking import get_mask, sparse_weights, sparsify
from sb3_sparse.core.plasticity import (
    NEAR_ZERO_THRESHOLD,
    PlasticityProbe,
    dormant_scores,
    dormant_units,
    feature_rank,
    is_unitwise,
    near_zero_fraction,
    neuron_layers,
)
from sb3_sparse.core.update import init_mask
from sb3_sparse.zoo.callbacks import PLASTICITY_FILE, SparsityLogCallback

ALGORITHMS = (SparseSAC, SparseTD3, SparseTQC, SparseCrossQ, SparseDQN)
METRICS = ("dormant_ratio", "feature_rank", "near_zero_fraction", "weight_norm", "grad_norm")


# --- metrics with known answers ------------------------------------------------------------------------


def test_dormant_scores_follow_redo():
    """Score = mean |activity| / the layer's mean; tau = 0 finds only silent units, tau = 0.1 the near-silent too."""
    activity = th.tensor([[1.0, -1.0, 2.0, 0.05, 0.0]]).repeat(8, 1)
    activity[::2] *= -1  # the sign does not matter: |activity|
    scores = dormant_scores(activity)
    mean = (1 + 1 + 2 + 0.05) / 5
    assert th.allclose(scores, th.tensor([1.0, 1.0, 2.0, 0.05, 0.0]) / mean)
    assert dormant_units(activity, 0.0).tolist() == [4]
    assert dormant_units(activity, 0.1).tolist() == [3, 4]
    assert dormant_units(th.zeros(4, 3), 0.0).tolist() == [0, 1, 2]  # a silent layer: every unit is dormant


def test_a_unit_forced_dead_is_dormant():
    th.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    with th.no_grad():
        net[0].weight[2] = 0.0
        net[0].bias[2] = -1.0  # ReLU(-1) = 0 for every input
    probe = PlasticityProbe()
    probe.arm(net)
    net(th.randn(64, 4))
    dormant = {layer.name: units.tolist() for layer, units in probe.dormant(0.0).items()}
    assert dormant["0"] == [2]
    metrics = probe.metrics(0.0)
    assert metrics["dormant_ratio"] == pytest.approx(len(dormant["0"] + dormant["2"]) / 12)
    assert "grad_norm" not in metrics  # no optimizer was given


@settings(max_examples=20, deadline=None)
@given(rank=st.integers(1, 12), seed=st.integers(0, 1000))
def test_feature_rank_of_a_known_rank_matrix(rank, seed):
    """Equal singular values: the top rank - 1 hold (rank - 1) / rank < 99% of the sum, so srank = rank."""
    generator = th.Generator().manual_seed(seed)
    left = th.linalg.qr(th.randn(64, rank, generator=generator, dtype=th.float64))[0]
    right = th.linalg.qr(th.randn(16, rank, generator=generator, dtype=th.float64))[0]
    assert feature_rank((left @ right.T).float()) == rank


def test_feature_rank_keeps_99_percent_of_the_spectrum():
    left = th.linalg.qr(th.randn(32, 3, dtype=th.float64))[0]
    right = th.linalg.qr(th.randn(8, 3, dtype=th.float64))[0]
    features = left @ th.diag(th.tensor([10.0, 1.0, 0.05], dtype=th.float64)) @ right.T
    assert feature_rank(features) == 2  # (10 + 1) / 11.05 >= 0.99: the third direction is not counted
    assert feature_rank(features, delta=0.001) == 3
    assert feature_rank(th.zeros(8, 4)) == 0


def test_near_zero_fraction_counts_active_weights_only():
    layer = nn.Linear(4, 2)
    with th.no_grad():
        layer.weight.copy_(th.tensor([[1e-4, -5e-4, 0.5, 0.2], [0.0, 0.3, -2e-4, 0.9]]))
    assert near_zero_fraction(layer) == pytest.approx(4 / 8)
    sparsify(layer, "weight", th.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]]))
    # pruned entries (exact zeros) are not counted: active 1e-4 and -2e-4 are near zero, of 6 active weights
    assert near_zero_fraction(layer) == pytest.approx(2 / 6)
    assert NEAR_ZERO_THRESHOLD == 1e-3


# --- neuron layers -------------------------------------------------------------------------------------


def test_unitwise_modules():
    for module in (nn.ReLU(), nn.Tanh(), nn.LayerNorm(4), nn.BatchNorm1d(4), nn.Dropout(), nn.Identity(), BatchRenorm1d(4)):
        assert is_unitwise(module), module
    for module in (nn.Linear(4, 4), nn.GLU(), nn.Flatten(), nn.Sequential(nn.ReLU()), nn.MultiheadAttention(4, 1)):
        assert not is_unitwise(module), module


def test_neuron_layers_of_sb3_mlps():
    """SB3's MLP ``Linear, ReLU, Linear, ReLU, Linear``: two hidden layers; the output layer ends the Sequential."""
    mlp = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    layers = neuron_layers(mlp)
    assert [(layer.name, layer.tail is None) for layer in layers] == [("0", True), ("2", True), ("4", False)]
    assert layers[0].consumers == [mlp[2]] and layers[1].consumers == [mlp[4]]
    # CrossQ's: BatchRenorm between the activation and the next layer is unit-wise too
    crossq = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), BatchRenorm1d(8), nn.Linear(8, 8), nn.ReLU(), BatchRenorm1d(8))
    assert [layer.name for layer in neuron_layers(crossq) if layer.tail is None] == ["0"]


def test_sac_actor_heads_are_found_in_the_forward_pass():
    """SAC's actor: ``latent_pi`` ends with its last hidden layer, read by the ``mu`` and ``log_std`` heads."""
    model = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8, 8]}, buffer_size=10)
    actor = model.policy.actor
    probe = PlasticityProbe()
    probe.arm(actor, actor.optimizer, ("features_extractor",))
    actor.train()
    actor.action_log_prob(th.randn(16, 3))[0].sum().backward()
    actor.optimizer.step()
    hidden = {layer.name: layer.consumers for layer in probe.hidden_layers()}
    assert hidden == {"latent_pi.0": [actor.latent_pi[2]], "latent_pi.2": [actor.mu, actor.log_std]}
    assert probe.grad_norm is not None and probe.grad_norm > 0
    # the critic's Q-networks: the output layers read by no linear layer are not hidden layers
    critic = model.policy.critic
    probe.arm(critic, critic.optimizer, ("features_extractor",))
    critic.train()
    critic(th.randn(16, 3), th.randn(16, 1))
    assert {layer.name for layer in probe.hidden_layers()} == {"qf0.0", "qf0.2", "qf1.0", "qf1.2"}
    assert probe.metrics(0.1)["feature_rank"] <= 8  # the mean over the two Q-networks' last hidden layers
    probe.reset()


class SimbaBlock(nn.Module):
    """A pre-LayerNorm residual block (SimBa): ``x + Linear(act(Linear(LayerNorm(x))))``."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.layers(x)


class BroBlock(nn.Module):
    """A post-LayerNorm residual block (BRO): ``x + LayerNorm(Linear(act(LayerNorm(Linear(x)))))``."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, width), nn.LayerNorm(width)
        )

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.layers(x)


def test_neuron_layers_of_residual_blocks():
    """Only the blocks' inner pairs are units: the skip connection is not a unit-wise path."""
    net = nn.Sequential(nn.Linear(3, 4), SimbaBlock(4), BroBlock(4), nn.LayerNorm(4), nn.Linear(4, 1))
    layers = neuron_layers(net)
    pairs = [(layer.name, layer.consumers) for layer in layers if layer.tail is None]
    assert pairs == [("1.layers.1", [net[1].layers[3]]), ("2.layers.0", [net[2].layers[3]])]
    assert {layer.chain for layer in layers} == {""}  # one network: the outermost Sequential
    probe = PlasticityProbe()
    probe.arm(net)
    net(th.randn(32, 3))
    # the blocks' last layers feed the skip sum and the network's last layer is its output: none is hidden
    assert [layer.name for layer in probe.hidden_layers()] == ["1.layers.1", "2.layers.0"]
    assert probe.metrics(0.1)["feature_rank"] <= 4  # the last hidden layer: the BRO block's
    probe.reset()
    # a residual block given alone (e.g. an encoder of one block) has its pair too
    assert [layer.name for layer in neuron_layers(BroBlock(4)) if layer.tail is None] == ["layers.0"]


def test_excluded_submodules_are_left_out():
    net = nn.ModuleDict({"body": nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), "other": nn.Linear(2, 2)})
    assert [layer.name for layer in neuron_layers(net, exclude=("body",))] == []
    assert [layer.name for layer in neuron_layers(net)] == ["body.0", "body.2"]


# --- hooks: armed only when due ------------------------------------------------------------------------


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def build(config: ModuleConfig) -> ModuleBinding:
    online = mlp()
    sparsify_module(
        config, [(online[0], "weight", "input", 0), (online[2], "weight", "hidden", 1), (online[4], "weight", "output", 2)]
    )
    return ModuleBinding(online, copy.deepcopy(online), th.optim.Adam(online.parameters(), lr=1e-2))


def train_step(binding: ModuleBinding, x: th.Tensor, y: th.Tensor) -> None:
    assert binding.optimizer is not None and binding.target is not None
    binding.online.train()
    binding.optimizer.zero_grad()
    (binding.online(x) - y).pow(2).mean().backward()
    binding.optimizer.step()
    with th.no_grad():
        for param, target_param in zip(binding.online.parameters(), binding.target.parameters(), strict=True):
            target_param.mul_(0.9).add_(param, alpha=0.1)


def hook_count(network: nn.Module) -> int:
    return sum(len(module._forward_pre_hooks) + len(module._forward_hooks) for module in network.modules())


def test_hooks_cost_nothing_between_measurements(monkeypatch):
    """The probe hooks the network only in the step before a boundary, records one forward pass, and its hooks
    are never called between two measurements, however many forward passes (training or acting) run."""
    calls = {"record": 0, "gradient": 0}
    for method, key in (("_record_input", "record"), ("_record_output", "record"), ("_record_gradient", "gradient")):
        original = getattr(PlasticityProbe, method)

        def counted(self: Any, *args: Any, _original: Any = original, _key: str = key) -> None:
            calls[_key] += 1
            _original(self, *args)

        monkeypatch.setattr(PlasticityProbe, method, counted)
    th.manual_seed(0)
    config = ModuleConfig(regime="static", topology_update_interval=10)
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    baseline = hook_count(binding.online)  # the masks' own hooks
    x, y = th.randn(32, 6), th.randn(32, 2)
    armed_steps = []
    for step in range(1, 31):
        train_step(binding, x, y)
        binding.online.eval()
        binding.online(x[:1])  # acting: not recorded
        engine.step({"net": binding}, step, {"net": 30})
        if hook_count(binding.online) > baseline:
            armed_steps.append(step)
    assert armed_steps == [9, 19, 29]  # armed one step (the lookahead) before each boundary, removed at it
    # each armed step: one call of each layer's hook (2 hidden layers, the output layer's Sequential), one gradient
    assert calls == {"record": 3 * 3, "gradient": 3}  # boundaries 10, 20 and 30 read
    assert engine.module_state("net")["plasticity_step"] == 30
    assert set(engine.module_state("net")["plasticity"]) == set(METRICS)
    engine.detach()
    assert hook_count(binding.online) == baseline


def test_switched_off_nothing_is_hooked():
    config = ModuleConfig(regime="static", topology_update_interval=5, plasticity_metrics=False)
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    baseline = hook_count(binding.online)
    x, y = th.randn(8, 6), th.randn(8, 2)
    for step in range(1, 21):
        train_step(binding, x, y)
        engine.step({"net": binding}, step, {"net": 20})
        assert hook_count(binding.online) == baseline
    assert "plasticity" not in engine.module_state("net")


# --- ReDo recycling ------------------------------------------------------------------------------------


def kill_units(binding: ModuleBinding, units: dict[int, list[int]]) -> None:
    """Force units dead: zero incoming weights, bias -1 (ReLU(-1) = 0 for every input)."""
    with th.no_grad():
        for index, rows in units.items():
            binding.online[index].weight[rows] = 0.0
            binding.online[index].bias[rows] = -1.0


@pytest.mark.parametrize("regime", ["static", "dense", "set"])
def test_recycling_dormant_units(regime):
    th.manual_seed(1)
    config = ModuleConfig(
        regime=regime, sparsity=0.5, topology_update_interval=10, recycle_dormant=True, dormant_threshold=0.0
    )
    binding = build(config)
    assert binding.target is not None and binding.optimizer is not None
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    dead = {0: [3, 7], 2: [5]}
    kill_units(binding, dead)
    x, y = th.randn(64, 6), th.randn(64, 2)
    for step in range(1, 10):
        train_step(binding, x, y)
        engine.step({"net": binding}, step, {"net": 100})
    train_step(binding, x, y)  # recorded: the probe was armed at step 9
    optimizer = binding.optimizer
    for state in optimizer.state.values():  # stale state everywhere, to see what is reset
        state["exp_avg"].fill_(1.0)
        state["exp_avg_sq"].fill_(1.0)
    online = binding.online
    before = {name: param.detach().clone() for name, param in online.named_parameters()}
    masks_before = {name: get_mask(module, weight).clone() for name, module, weight in sparse_weights(online)}
    engine.step({"net": binding}, 10, {"net": 100})
    recycled = {}  # a recycled unit has a fresh bias; nothing else writes biases at an update
    for index in (0, 2):
        recycled[index] = (online[index].bias != before[f"{index}.bias"]).nonzero().squeeze(1).tolist()
        assert set(dead[index]) <= set(recycled[index])  # the dead ones, and any other silent unit of the batch
    assert engine.module_state("net")["plasticity"]["recycled_units"] == len(recycled[0]) + len(recycled[2])
    for index, rows in recycled.items():
        producer, consumer = online[index], online[index + 2]
        weight, bias = producer.weight, producer.bias
        mask = get_mask(producer, "weight") if regime != "dense" else th.ones_like(weight)
        bound = 1 / math.sqrt(weight.shape[1])
        # incoming weights drawn again (nn.Linear's default initialisation), pruned positions exactly 0, and the
        # outgoing weights of the previous layer's recycled units 0 (the deepest layer is recycled first)
        drawn = mask[rows].clone()
        if index == 2:
            drawn[:, recycled[0]] = 0
        assert (weight[rows][drawn == 1] != 0).all() and (weight[rows].abs() <= bound).all()
        assert (weight[rows][mask[rows] == 0] == 0).all()
        assert (bias[rows].abs() <= bound).all()
        # outgoing weights 0; optimizer state of all of them fresh
        assert (consumer.weight[:, rows] == 0).all()
        for param, positions in ((weight, (rows, slice(None))), (bias, rows), (consumer.weight, (slice(None), rows))):
            for key in ("exp_avg", "exp_avg_sq"):
                assert (optimizer.state[param][key][positions] == 0).all()
        # the other units are untouched (their weights and state; set rewires weights as usual)
        alive = [row for row in range(weight.shape[0]) if row not in rows]
        inputs = [column for column in range(weight.shape[1]) if index == 0 or column not in recycled[0]]
        assert th.equal(weight[alive][:, inputs], before[f"{index}.weight"][alive][:, inputs]) or regime == "set"
        assert (optimizer.state[bias]["exp_avg"][alive] == 1).all()
    if regime != "set":  # static and dense: the masks do not change; set rewired its masks as usual
        assert all(th.equal(get_mask(m, w), masks_before[n]) for n, m, w in sparse_weights(online))
    assert (regime == "dense") == (not masks_before)
    target_masks = {name: get_mask(module, weight) for name, module, weight in sparse_weights(binding.target)}
    for name, module, weight in sparse_weights(online):
        assert th.equal(target_masks[name], get_mask(module, weight))
        assert (getattr(module, weight)[get_mask(module, weight) == 0] == 0).all()


def test_recycling_happens_only_at_updates_inside_the_window():
    """A static module recycles at the boundaries of its window, like a dynamic one updates."""
    config = ModuleConfig(regime="static", topology_update_interval=10, topology_update_end=15, recycle_dormant=True)
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    x, y = th.randn(16, 6), th.randn(16, 2)
    recycled = []
    for step in range(1, 41):
        kill_units(binding, {0: [0]})
        train_step(binding, x, y)
        engine.step({"net": binding}, step, {"net": 40})
        if step % 10 == 0:
            recycled.append("recycled_units" in engine.module_state("net")["plasticity"])
    assert recycled == [True, True, False, False]  # boundaries 10 and 20 (its interval began before 15)


def test_ne_resets_the_state_of_dormant_units_incoming_weights():
    """NE resets (does not recycle) the optimizer state of the incoming weights of its dormant units."""
    th.manual_seed(2)
    config = ModuleConfig(regime="ne", sparsity=0.3, topology_update_interval=10, topology_update_end=1.0)
    binding = build(config)
    assert binding.optimizer is not None
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    kill_units(binding, {0: [4]})
    x, y = th.randn(64, 6), th.randn(64, 2)
    for step in range(1, 10):
        train_step(binding, x, y)
        engine.step({"net": binding}, step, {"net": 100})
    train_step(binding, x, y)
    layer = binding.online[0]
    for state in binding.optimizer.state.values():
        state["exp_avg"].fill_(1.0)
    assert engine.step({"net": binding}, 10, {"net": 100}) == ["net"]
    assert (binding.optimizer.state[layer.weight]["exp_avg"][4] == 0).all()
    assert (binding.optimizer.state[layer.bias]["exp_avg"] == 1).all()  # not recycled: bias state kept
    assert (layer.bias[4] == -1.0).all()


# --- settings ------------------------------------------------------------------------------------------


def test_settings_are_validated():
    config = ModuleConfig()
    assert (config.plasticity_metrics, config.dormant_threshold, config.recycle_dormant) == (True, 0.1, False)
    assert ModuleConfig(dormant_threshold=0, plasticity_metrics=np.bool_(False)).as_dict()["plasticity_metrics"] is False
    for kwargs, message in (
        ({"plasticity_metrics": "yes"}, r"plasticity_metrics='yes' is not valid; give True or False"),
        ({"recycle_dormant": 1}, r"recycle_dormant=1 is not valid; give True or False"),
        ({"dormant_threshold": 1.0}, r"dormant_threshold=1\.0 is not valid; it must be a number in \[0, 1\)"),
        ({"dormant_threshold": -0.1}, r"dormant_threshold=-0\.1 is not valid"),
    ):
        with pytest.raises(ValueError, match=message):
            ModuleConfig(**kwargs)
        with pytest.raises(ValueError, match=message):
            SparseSAC("MlpPolicy", "Pendulum-v1", buffer_size=10, **kwargs)


@pytest.mark.parametrize("cls", ALGORITHMS)
def test_every_module_setting_is_a_documented_argument(cls):
    parameters = inspect.signature(cls).parameters
    for name in MODULE_SETTINGS:
        assert name in parameters, name
        assert f":param {name}:" in (cls.__doc__ or ""), name
    defaults = ModuleConfig()
    for name in ("plasticity_metrics", "dormant_threshold", "recycle_dormant"):  # others have algorithm defaults
        assert parameters[name].default == getattr(defaults, name), name


def test_zoo_files_accept_the_settings():
    from sb3_sparse.zoo import ZooError
    from sb3_sparse.zoo.validation import check_hyperparams

    entry = {"policy": "MlpPolicy", "plasticity_metrics": False, "modules": {"critic": {"recycle_dormant": True}}}
    check_hyperparams(SparseSAC, entry, "x")
    with pytest.raises(ZooError, match=r"dormant_threshold=2 is not valid"):
        check_hyperparams(SparseSAC, {"policy": "MlpPolicy", "dormant_threshold": 2}, "x")


# --- a real run ----------------------------------------------------------------------------------------


class KeyCapture(KVWriter):
    """An SB3 logger output that keeps the keys of every dump."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.keys |= set(key_values)


def short_sac_run(tmp_path: Any = None, **kwargs: Any) -> tuple[SparseSAC, set[str]]:
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        batch_size=32,
        topology_update_interval=100,
        policy_kwargs={"net_arch": [16, 16]},
        seed=0,
        **kwargs,
    )
    capture = KeyCapture()
    model.set_logger(Logger(None, [capture]))
    callback = None if tmp_path is None else SparsityLogCallback(str(tmp_path))
    model.learn(300, log_interval=1, callback=callback)
    return model, capture.keys | set(model.logger.name_to_value)


def test_plasticity_keys_are_logged_in_a_sac_run(tmp_path):
    model, keys = short_sac_run(tmp_path)
    expected = {f"plasticity/{module}_{metric}" for module in ("actor", "critic") for metric in METRICS}
    assert expected <= keys
    states = model.dst_state["modules"]
    assert states["actor"]["plasticity_step"] == states["critic"]["plasticity_step"] == 300
    with open(tmp_path / PLASTICITY_FILE, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["timesteps"], row["module"]) for row in rows] == [
        (str(step), module) for step in (100, 200, 300) for module in ("actor", "critic")
    ]
    assert all(0.0 <= float(row["dormant_ratio"]) <= 1.0 and float(row["feature_rank"]) >= 1 for row in rows)
    assert all(row["recycled_units"] == "" for row in rows)  # recycling is off by default

    from sb3_sparse.zoo.plots import PLASTICITY_PANELS, run_figure

    fig, notes = run_figure(str(tmp_path))
    assert [ax.get_title() for ax in fig.axes[3:]] == [title for _, title, _ in PLASTICITY_PANELS]
    assert [ax.get_title() for ax in fig.axes[3:]] == [
        "dormant units (ReDo score <= tau)",
        "feature rank of the last hidden layer (srank)",
        "active weights with |w| < 0.001",
    ]
    for ax in fig.axes[3:]:
        assert [text.get_text() for text in ax.get_legend().get_texts()] == ["actor", "critic"] and not ax.texts
    assert not any(PLASTICITY_FILE in note for note in notes)


def test_plasticity_switched_off_logs_nothing(tmp_path):
    model, keys = short_sac_run(tmp_path, plasticity_metrics=False)
    assert not any(key.startswith("plasticity/") for key in keys)
    assert "sparse/actor_sparsity" in keys
    assert all("plasticity" not in state for state in model.dst_state["modules"].values())
    assert not (tmp_path / PLASTICITY_FILE).exists()
    from sb3_sparse.zoo.plots import run_figure

    fig, notes = run_figure(str(tmp_path))  # still plots, saying why the plasticity panels are empty
    assert any(note.startswith(f"no {PLASTICITY_FILE} in") and "plasticity_metrics=False" in note for note in notes)
    assert all("plasticity_metrics=False" in " ".join(text.get_text() for text in ax.texts) for ax in fig.axes[3:])
    assert fig.axes[3].get_title() == "dormant units (ReDo score <= tau)"


def test_recycling_in_a_sac_run_with_a_static_actor():
    model, keys = short_sac_run(recycle_dormant=True, modules={"actor": {"regime": "static"}})
    assert "plasticity/actor_recycled_units" in keys and "plasticity/critic_recycled_units" in keys
    for name, module, weight in sparse_weights(model.policy.critic):
        assert (getattr(module, weight)[get_mask(module, weight) == 0] == 0).all(), name
    target = {name: get_mask(module, weight) for name, module, weight in sparse_weights(model.policy.critic_target)}
    assert all(
        th.equal(target[name], get_mask(module, weight)) for name, module, weight in sparse_weights(model.policy.critic)
    )


def test_a_probe_changes_nothing():
    """Arming and reading a probe changes no weight, mask or optimizer state."""
    th.manual_seed(3)
    layer = nn.Linear(5, 4)
    sparsify(layer, "weight", init_mask(layer.weight, 10, "random"))
    net = nn.Sequential(layer, nn.ReLU(), nn.Linear(4, 1))
    state = copy.deepcopy(net.state_dict())
    probe = PlasticityProbe()
    probe.arm(net)
    net(th.randn(8, 5))
    probe.metrics(0.1)
    probe.reset()
    assert all(th.equal(value, state[key]) for key, value in net.state_dict().items())
