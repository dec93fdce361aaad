"""The constant fan-in regime (``srigl``): initial masks, the per-unit update with neuron ablation, and training."""

import copy
import math
from typing import Any

import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from sb3_sparse import SparseSAC, SparseTD3, sparse_recipe
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.engine import ModuleBinding, SparseEngine, sparsify_module
from sb3_sparse.core.masking import get_mask, sparse_weights, weight_state
from sb3_sparse.core.regimes import Regime, get_regime, register_regime
from sb3_sparse.core.update import init_mask, update_fan_in

SMALL = {"net_arch": [32, 32]}


def fan_ins(mask: th.Tensor) -> th.Tensor:
    """The active count of each unit (row) of a mask."""
    return mask.flatten(1).sum(1).long()


def check_fan_in(mask: th.Tensor, n_active: int) -> None:
    """``n_active`` entries; the living units hold ``n_active // m`` each, the remainder one more each; others 0."""
    held = fan_ins(mask)
    living = int((held > 0).sum())
    assert int(held.sum()) == n_active
    k, extra = divmod(n_active, living)
    assert int((held == k + 1).sum()) == extra if extra else bool((held[held > 0] == k).all())
    assert int(((held == k) | (held == k + 1) | (held == 0)).sum()) == held.numel()


@settings(max_examples=40, deadline=None)
@given(
    n_out=st.integers(1, 12),
    n_in=st.integers(1, 12),
    density=st.floats(0.01, 1.0),
    method=st.sampled_from(["random", "magnitude"]),
)
def test_initial_masks_have_constant_fan_in(n_out, n_in, density, method):
    layer = nn.Linear(n_in, n_out)
    config = ModuleConfig(regime="srigl", sparsity=1.0 - density if density < 1.0 else 0.0, mask_init=method)
    sparsify_module(config, [(layer, "weight", "input", 0)])
    held = fan_ins(get_mask(layer))
    k = get_regime("srigl").layer_count((n_out, n_in), max(1, round(density * n_out * n_in))) // n_out
    assert 1 <= k <= n_in and (held == k).all()
    assert (layer.weight[get_mask(layer) == 0] == 0).all()
    assert weight_state(layer).role == "input"


def test_layer_count_is_a_whole_number_of_weights_per_unit():
    regime = get_regime("srigl")
    assert regime.layer_count((256, 256), 6554) == 256 * 26  # 90%: 25.6 per unit -> 26
    assert regime.layer_count((256, 256), 6528) == 256 * 26  # 25.5 -> 26
    assert regime.layer_count((256, 256), 6527) == 256 * 25
    assert regime.layer_count((256, 3), 10) == 256  # at least one weight per unit
    assert regime.layer_count((4, 3), 12) == 12
    assert get_regime("rigl").layer_count((256, 256), 6554) == 6554


@settings(max_examples=60, deadline=None)
@given(
    n_out=st.integers(2, 16),
    n_in=st.integers(2, 16),
    k=st.integers(1, 16),
    swap=st.floats(0.0, 1.0),
    threshold=st.sampled_from([0.0, 0.3, 0.6, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_update_keeps_counts_and_constant_fan_in(n_out, n_in, k, swap, threshold, seed):
    k = min(k, n_in)
    th.manual_seed(seed)
    weight = th.randn(n_out, n_in)
    mask = init_mask(weight, n_out * k, "random", per_unit=True)
    weight *= mask
    grad = th.randn(n_out, n_in) * th.rand(n_out, 1)  # some units with small gradients
    old_mask, old_weight = mask.bool().clone(), weight.clone()
    n_swap = math.floor(swap * n_out * k)
    dropped, grown = update_fan_in(weight, mask, n_out * k, n_swap, "magnitude", "gradient", grad, threshold)
    new_mask = mask.bool()
    check_fan_in(mask, n_out * k)
    # enough living units to hold the layer's count
    assert int((fan_ins(mask) > 0).sum()) >= math.ceil(n_out * k / n_in)
    if threshold == 0.0:
        assert (fan_ins(mask) == k).all()
    # dropped were active, grown were inactive before; both exactly 0 now, as is every pruned weight
    assert old_mask.view(-1)[dropped].all() and not old_mask.view(-1)[grown].any()
    assert th.equal(th.sort(dropped).values, (old_mask & ~new_mask).view(-1).nonzero().squeeze(1))
    assert th.equal(th.sort(grown).values, (new_mask & ~old_mask).view(-1).nonzero().squeeze(1))
    assert (weight.view(-1)[grown] == 0).all() and (weight[~new_mask] == 0).all()
    kept = old_mask & new_mask
    assert th.equal(weight[kept], old_weight[kept])


def test_each_unit_drops_its_smallest_and_grows_its_largest_gradients():
    th.manual_seed(0)
    n_out, n_in, k, s = 6, 10, 5, 2
    weight = th.randn(n_out, n_in)
    mask = init_mask(weight, n_out * k, "random", per_unit=True)
    weight *= mask
    grad = th.randn(n_out, n_in)
    old = mask.bool().clone()
    magnitude = weight.abs().masked_fill(~old, math.inf)
    gradient = grad.abs().masked_fill(old, -math.inf)
    update_fan_in(weight, mask, n_out * k, n_out * s, "magnitude", "gradient", grad, 0.0)
    new = mask.bool()
    for unit in range(n_out):
        assert set((old[unit] & ~new[unit]).nonzero().flatten().tolist()) == set(
            th.topk(magnitude[unit], s, largest=False).indices.tolist()
        )
        assert set((new[unit] & ~old[unit]).nonzero().flatten().tolist()) == set(th.topk(gradient[unit], s).indices.tolist())


def test_units_of_low_saliency_are_ablated_and_come_back():
    th.manual_seed(1)
    n_out, n_in, k = 8, 12, 4
    weight = th.randn(n_out, n_in)
    mask = init_mask(weight, n_out * k, "random", per_unit=True)
    weight *= mask
    grad = th.randn(n_out, n_in)
    weight[:2] *= 1e-3  # units 0 and 1: the smallest weights and gradients of the layer
    grad[:2] *= 1e-3
    update_fan_in(weight, mask, n_out * k, n_out * k // 2, "magnitude", "gradient", grad, 0.3)
    held = fan_ins(mask)
    assert held[:2].tolist() == [0, 0] and (weight[:2] == 0).all()
    check_fan_in(mask, n_out * k)  # 32 weights on 6 units: 5 each, the 2 most salient 6
    assert sorted(held[2:].tolist()) == [5, 5, 5, 5, 6, 6]
    grad[:2] *= 1e6  # their gradients are now the largest: the units are grown again
    update_fan_in(weight, mask, n_out * k, n_out * k // 2, "magnitude", "gradient", grad, 0.3)
    assert (fan_ins(mask)[:2] > 0).all()
    check_fan_in(mask, n_out * k)


def test_ablation_leaves_room_for_the_layer_count():
    """However many units fall below the threshold, the living ones can still hold the layer's count."""
    n_out, n_in = 8, 4
    scale = th.arange(1.0, n_out + 1).unsqueeze(1)  # unit 7 has the largest weights and gradients
    mask = init_mask(th.randn(n_out, n_in), n_out * 3, "random", per_unit=True)
    weight, grad = scale * mask, scale.expand(n_out, n_in).clone()
    # saliency: units 3-7 4, unit 2 2, units 0 and 1 1; three are below 1.0 x 3, but 24 weights need 6 units
    update_fan_in(weight, mask, n_out * 3, 8, "magnitude", "gradient", grad, 1.0)
    assert fan_ins(mask).tolist() == [0, 0, 4, 4, 4, 4, 4, 4]


def test_the_engine_never_ablates_an_output_layer():
    th.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8))
    config = ModuleConfig(regime="srigl", sparsity=0.5, sparse_layers="all", ablation_threshold=1.0, drop_fraction=0.5)
    sparsify_module(config, [(net[0], "weight", "input", 0), (net[2], "weight", "output", 1)])
    optimizer = th.optim.Adam(net.parameters())
    engine = SparseEngine({"net": config})
    binding = ModuleBinding(net, copy.deepcopy(net), optimizer)
    engine.attach({"net": binding})
    engine._keep_dense_gradients("net", binding, True)
    optimizer.zero_grad()
    net(th.randn(32, 6)).pow(2).sum().backward()
    optimizer.step()
    assert engine.update("net", binding, 0.0, 0)
    assert (fan_ins(get_mask(net[2])) == 8).all()  # 50% of 16 inputs per unit, no unit ablated
    assert (fan_ins(get_mask(net[0])) == 0).any()  # the threshold 1.0 ablates hidden units
    assert th.equal(get_mask(binding.target[0]), get_mask(net[0]))


@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_optimizer_state_of_changed_weights_is_fresh(backend):
    th.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 12))
    config = ModuleConfig(regime="srigl", sparsity=0.5, sparse_layers="all", drop_fraction=0.5, backend=backend)
    sparsify_module(config, [(net[0], "weight", "hidden", 0)])
    optimizer = th.optim.Adam(net.parameters())
    engine = SparseEngine({"net": config})
    binding = ModuleBinding(net, None, optimizer)
    engine.attach({"net": binding})
    engine._keep_dense_gradients("net", binding, True)
    for _ in range(3):
        optimizer.zero_grad()
        net(th.randn(16, 8)).pow(2).sum().backward()
        optimizer.step()
    state = optimizer.state[net[0].weight]
    before = {name: state[name].clone() for name in ("exp_avg", "exp_avg_sq")}
    old = get_mask(net[0]).bool().clone()
    assert engine.update("net", binding, 0.0, 0)
    changed = old ^ get_mask(net[0]).bool()
    assert changed.any()
    for name, value in before.items():
        assert (state[name][changed] == 0).all() and th.equal(state[name][~changed], value[~changed])


def all_layers(policy: Any) -> dict[str, tuple[nn.Module, str]]:
    """Every masked weight of the online and target networks of every sparse module, by name."""
    result = {}
    for module, binding in policy.sparse_bindings().items():
        for target in (False, True):
            for name, owner, weight in binding.weights(target=target):
                result[f"{module}{'_target' if target else ''}.{name}"] = (owner, weight)
    return result


def all_masks(policy: Any) -> dict[str, th.Tensor]:
    return {name: get_mask(owner, weight).clone() for name, (owner, weight) in all_layers(policy).items()}


class FanInChecker(BaseCallback):
    """After every env step: each sparse layer of every online and target network has constant fan-in, its count."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.masks: dict[str, th.Tensor] = {}
        self.changes = 0

    def _on_training_start(self) -> None:
        self.masks = all_masks(self.model.policy)
        self.counts = {name: int(mask.sum()) for name, mask in self.masks.items()}
        for name, mask in self.masks.items():
            check_fan_in(mask, self.counts[name])

    def _on_step(self) -> bool:
        masks = all_masks(self.model.policy)
        layers = all_layers(self.model.policy)
        for name, mask in masks.items():
            check_fan_in(mask, self.counts[name])
            if weight_state(*layers[name]).role == "output":
                assert (fan_ins(mask) > 0).all(), name
        self.changes += any(not th.equal(mask, self.masks[name]) for name, mask in masks.items())
        self.masks = masks
        return True


@pytest.mark.parametrize("algo", [SparseSAC, SparseTD3])
def test_training_keeps_constant_fan_in_and_survives_save_load_copy(algo, tmp_path):
    model = algo(
        "MlpPolicy",
        "Pendulum-v1",
        regime="srigl",
        sparsity=0.8,
        sparse_layers="all",
        learning_starts=30,
        batch_size=32,
        topology_update_interval=40,
        drop_fraction=0.5,
        topology_update_end=1.0,
        ablation_threshold=0.6,
        policy_kwargs=dict(SMALL),
        seed=0,
    )
    checker = FanInChecker()
    model.learn(170, callback=checker)
    assert checker.changes == 4  # updates at 40, 80, 120 and 160
    masks = all_masks(model.policy)
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", env=model.get_env())
    copied = copy.deepcopy(model)
    for other in (loaded, copied):
        assert all_masks(other.policy).keys() == masks.keys()
        for name, mask in all_masks(other.policy).items():
            assert th.equal(mask, masks[name]), name
        roles = {n: weight_state(m, w).role for n, m, w in sparse_weights(other.policy)}
        assert roles == {n: weight_state(m, w).role for n, m, w in sparse_weights(model.policy)}
    loaded.learn(50, reset_num_timesteps=False, callback=FanInChecker())  # and goes on with constant fan-in


def test_bad_ablation_threshold_raises():
    with pytest.raises(ValueError, match=r"ablation_threshold=1.5 is not valid; it must be a number in \[0, 1\]"):
        SparseSAC("MlpPolicy", "Pendulum-v1", regime="srigl", ablation_threshold=1.5)


def test_srigl_recipe():
    kwargs = sparse_recipe("srigl")
    assert kwargs["regime"] == "srigl" and kwargs["ablation_threshold"] == 0.3
    rigl = {**sparse_recipe("rigl"), "regime": "srigl", "ablation_threshold": 0.3}
    assert kwargs == rigl
    model = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL), **kwargs)
    for _, owner, weight in sparse_weights(model.policy):
        held = fan_ins(get_mask(owner, weight))
        assert (held == held[0]).all()


def test_a_constant_fan_in_regime_must_grow():
    class NoGrowth(Regime):
        name = "no_growth"
        dynamic = True
        constant_fan_in = True

    with pytest.raises(ValueError, match="NoGrowth has constant_fan_in but no grow_score"):
        register_regime(NoGrowth)
