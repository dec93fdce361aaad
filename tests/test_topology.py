"""Drop-and-grow of one sparse weight (:func:`~sb3_sparse.core.update.update_mask`, :meth:`SparseEngine.update`),
initial masks, and the dense gradient that RigL grows by."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from helpers import distinct_layer
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sb3_sparse import SparseTD3Policy
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.engine import ModuleBinding, SparseEngine, sparsify_module
from sb3_sparse.core.masking import get_mask, sparse_weights, sparsify, track_dense_gradients, weight_state
from sb3_sparse.core.optim import reset_state
from sb3_sparse.core.update import init_mask, update_mask


def check_swap(before_weight: th.Tensor, before_mask: th.Tensor, weight: th.Tensor, mask: th.Tensor, moved: int) -> None:
    """Every invariant of one drop-and-grow step at a constant active count."""
    old, new = before_mask.bool(), mask.bool()
    dropped, grown, kept = old & ~new, ~old & new, old & new
    assert int(new.sum()) == int(old.sum())
    assert int(dropped.sum()) == int(grown.sum()) == moved
    assert not (grown & old).any()
    if moved and kept.any():
        assert before_weight[dropped].abs().max() <= before_weight[kept].abs().min()
    assert (weight[grown] == 0).all()
    assert (weight[~new] == 0).all()
    assert th.equal(weight[kept], before_weight[kept])


def test_update_mask_example():
    weight, mask, _ = distinct_layer(10, 10, 40, seed=0)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped, grown = update_mask(weight, mask, 40, 10, "magnitude", "random")
    assert dropped.numel() == grown.numel() == 10
    check_swap(before_weight, before_mask, weight, mask, 10)
    # Dropped exactly the 10 smallest active magnitudes.
    smallest = before_weight[before_mask.bool()].abs().sort().values[:10]
    assert th.equal(before_weight.flatten()[dropped].abs().sort().values, smallest)


@pytest.mark.parametrize("grow_score", [None, "random", "gradient"])
def test_no_swap_changes_nothing(grow_score):
    weight, mask, dense_grad = distinct_layer(7, 9, 30, seed=2)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped, grown = update_mask(weight, mask, 30, 0, "magnitude", grow_score, dense_grad)
    assert dropped.numel() == grown.numel() == 0
    assert th.equal(weight, before_weight) and th.equal(mask, before_mask)


def test_no_grow_score_changes_nothing():
    # Static sparse training: whatever swap is asked, nothing moves.
    weight, mask, _ = distinct_layer(7, 9, 30, seed=1)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped, grown = update_mask(weight, mask, 30, 15, "magnitude", None)
    assert dropped.numel() == grown.numel() == 0
    assert th.equal(weight, before_weight) and th.equal(mask, before_mask)


@pytest.mark.parametrize("grow_score", ["random", "gradient"])
def test_dense_layer_changes_nothing(grow_score):
    # Sparsity 0: no inactive position to grow into, so nothing is dropped either.
    weight, mask, dense_grad = distinct_layer(5, 6, 30, seed=3)
    before_weight = weight.clone()
    dropped, grown = update_mask(weight, mask, 30, 15, "magnitude", grow_score, dense_grad)
    assert dropped.numel() == grown.numel() == 0
    assert mask.all() and th.equal(weight, before_weight)


def test_swap_everything_moves_as_many_as_possible():
    # 30 active, 12 inactive: at most 12 can move.
    weight, mask, _ = distinct_layer(7, 6, 30, seed=4)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped, grown = update_mask(weight, mask, 30, 30, "magnitude", "random")
    assert dropped.numel() == grown.numel() == 12
    check_swap(before_weight, before_mask, weight, mask, 12)
    assert mask.bool()[~before_mask.bool()].all()


def test_rigl_without_dense_gradient_raises():
    weight, mask, _ = distinct_layer(4, 4, 8, seed=6)
    with pytest.raises(RuntimeError, match="dense gradient"):
        update_mask(weight, mask, 8, 4, "magnitude", "gradient", None)


def test_engine_skips_a_gradient_update_without_a_dense_gradient():
    layer = nn.Linear(4, 4)
    config = ModuleConfig(regime="rigl", sparsity=0.5, sparse_layers="all")
    sparsify_module(config, [(layer, "weight", "input", 0)])
    mask = get_mask(layer).clone()
    engine = SparseEngine({"layer": config})
    assert not engine.update("layer", ModuleBinding(layer), 0.0, 0)
    assert th.equal(get_mask(layer), mask)
    assert engine.module_state("layer")["n_updates"] == 0


def test_rigl_uses_dense_gradient():
    """Pruned weights are 0, so their masked gradient is 0; growth must rank the dense gradient."""
    th.manual_seed(3)
    layer = nn.Linear(12, 8)
    config = ModuleConfig(regime="rigl", sparsity=0.5, sparse_layers="all", drop_fraction=0.25)
    sparsify_module(config, [(layer, "weight", "input", 0)])
    optimizer = th.optim.Adam(layer.parameters(), lr=1e-3)
    binding = ModuleBinding(layer, None, optimizer)
    engine = SparseEngine({"layer": config})
    engine.attach({"layer": binding})  # hooks the optimizer
    track_dense_gradients(layer, True)  # as the engine does just before an update
    x, target = th.randn(32, 12), th.randn(32, 8)
    ((layer(x) - target) ** 2).mean().backward()
    grad = layer.weight.grad.clone()
    inactive = get_mask(layer) == 0
    dense = weight_state(layer).last_dense_grad
    # The dense gradient at inactive positions is not zero (dense forward with zero weights) ...
    assert (dense[inactive] != 0).all()
    # ... while the gradient the optimizer sees is 0 there: ranking it would pick arbitrary positions.
    assert (grad[inactive] == 0).all()
    assert th.equal(grad, dense * get_mask(layer))
    optimizer.step()  # the engine's pre-step hook keeps this step's dense gradient
    assert th.equal(weight_state(layer).dense_grad, dense)
    before_mask = get_mask(layer).bool().clone()
    assert engine.update("layer", binding, 0.0, 1)
    grown = (~before_mask & get_mask(layer).bool()).flatten()
    assert int(grown.sum()) == 12
    expected = th.zeros(96, dtype=th.bool)
    expected[th.topk(dense.abs().masked_fill(before_mask, -1.0).flatten(), 12).indices] = True
    assert th.equal(grown, expected)


def test_policy_hooks_capture_dense_gradient():
    """With the engine attached, the actor's optimizer keeps the dense gradient of its loss before each step,
    and the pruned weights stay exactly 0 through the step."""
    th.manual_seed(0)
    policy = SparseTD3Policy(
        gym.spaces.Box(-1, 1, (5,), np.float32),
        gym.spaces.Box(-1, 1, (2,), np.float32),
        lambda _: 1e-2,
        net_arch=[16, 16],
        dst_config={"regime": "rigl", "sparsity": 0.7},
    )
    engine = SparseEngine(policy.module_configs)
    engine.attach(policy.sparse_bindings())
    track_dense_gradients(policy.actor, True)  # as the engine does just before an update
    layers = [(module, name) for _, module, name in sparse_weights(policy.actor)]
    assert len(layers) == 2
    policy.actor.optimizer.zero_grad()
    policy.actor(th.randn(16, 5)).pow(2).sum().backward()
    dense = [weight_state(module, name).last_dense_grad.clone() for module, name in layers]
    policy.actor.optimizer.step()
    assert engine.module_state("actor")["optimizer_steps"] == 1
    assert engine.module_state("critic")["optimizer_steps"] == 0
    for (module, name), grad in zip(layers, dense, strict=True):
        active = get_mask(module, name).bool()
        assert th.equal(weight_state(module, name).dense_grad, grad)
        assert (grad[~active] != 0).any()
        weight = getattr(module, name)
        # Adam moved the active weights; the pruned ones (masked gradient) stayed exactly 0.
        assert (weight[~active] == 0).all()
        assert (weight[active] != 0).all()
    # The critic (not stepped) has no committed gradient yet.
    assert all(weight_state(module, name).dense_grad is None for _, module, name in sparse_weights(policy.critic))
    engine.detach()
    track_dense_gradients(policy.actor, False)
    assert all(weight_state(module, name).dense_grad is None for module, name in layers)


def test_update_without_optimizer_leaves_optimizer_state_alone():
    th.manual_seed(5)
    layer = nn.Linear(8, 8)
    config = ModuleConfig(regime="set", sparsity=0.5, sparse_layers="all", drop_fraction=0.5)
    sparsify_module(config, [(layer, "weight", "input", 0)])
    optimizer = th.optim.Adam(layer.parameters(), lr=1e-2)
    layer(th.randn(4, 8)).sum().backward()
    optimizer.step()
    exp_avg = optimizer.state[layer.weight]["exp_avg"].clone()
    engine = SparseEngine({"layer": config})
    assert engine.update("layer", ModuleBinding(layer), 0.0, 0)
    assert int(get_mask(layer).sum()) == 32
    assert engine.module_state("layer")["changed_fraction"] == 0.5
    assert th.equal(optimizer.state[layer.weight]["exp_avg"], exp_avg)


def test_reset_state_sgd_momentum():
    layer = nn.Linear(4, 3)
    optimizer = th.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(th.randn(5, 4)).sum().backward()
    optimizer.step()
    buffer = optimizer.state[layer.weight]["momentum_buffer"]
    assert (buffer != 0).all()
    reset_state(optimizer, layer.weight, th.tensor([0, 5, 11]))
    assert (buffer.view(-1)[[0, 5, 11]] == 0).all()
    assert (buffer.view(-1)[[1, 2, 3, 4, 6, 7, 8, 9, 10]] != 0).all()
    # A parameter without state (never stepped) is fine.
    reset_state(th.optim.Adam([nn.Parameter(th.zeros(3))]), th.zeros(3), th.tensor([0]))


# --- initial masks ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    method=st.sampled_from(["random", "magnitude"]),
)
def test_init_mask(n_in, n_out, density, method):
    layer = nn.Linear(n_in, n_out)
    initial = layer.weight.detach().clone()
    n_active = round(density * n_in * n_out)
    sparsify(layer, mask=init_mask(layer.weight, n_active, method))
    mask = get_mask(layer)
    assert ((mask == 0) | (mask == 1)).all()
    active = mask.bool()
    assert int(active.sum()) == n_active
    assert (layer.weight[~active] == 0).all()
    assert th.equal(layer.weight[active], initial[active])
    if method == "magnitude" and 0 < n_active < n_in * n_out:
        assert initial[active].abs().min() >= initial[~active].abs().max()


def test_bad_mask_init():
    with pytest.raises(ValueError, match=r"mask_init='largest' is not valid; choose one of 'random', 'magnitude'"):
        ModuleConfig(mask_init="largest")


def test_sparse_layer_state_dict():
    linear = nn.Linear(5, 4)
    weight, bias = linear.weight.detach().clone(), linear.bias.detach().clone()
    sparsify(linear)
    # A new mask is all ones: the weights are untouched.
    assert get_mask(linear).all()
    assert th.equal(linear.weight, weight) and th.equal(linear.bias, bias)
    linear.weight_mask.copy_(init_mask(linear.weight, 10, "random"))
    # The mask is a buffer: it travels with the state_dict (weights masked in it).
    state = linear.state_dict()
    assert set(state) == {"weight", "bias", "weight_mask"}
    assert (state["weight"][state["weight_mask"] == 0] == 0).all()
    copy = nn.Linear(5, 4)
    sparsify(copy)
    copy.load_state_dict(state)
    assert th.equal(get_mask(copy), get_mask(linear))
    assert int(get_mask(copy).sum()) == 10
    assert th.equal(copy(th.ones(2, 5)), linear(th.ones(2, 5)))
