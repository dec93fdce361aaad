"""Drop-and-grow of one masked layer (:func:`rewire_layer`) and the masked layer itself."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_sparse import MaskedLinear, SparseTD3Policy
from sb3_sparse.common.topology import reset_optimizer_state, rewire_layer


def make_layer(n_in: int, n_out: int, n_active: int, seed: int) -> tuple[MaskedLinear, th.optim.Adam]:
    """A masked layer with distinct non-zero active weights and a filled-in Adam state."""
    th.manual_seed(seed)
    layer = MaskedLinear(n_in, n_out)
    layer.init_mask(n_active, "random")
    optimizer = th.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        layer(th.randn(8, n_in)).pow(2).sum().backward()
        optimizer.step()
        layer.apply_mask()
    with th.no_grad():
        # Distinct magnitudes (no ties), random signs, only at active positions.
        magnitudes = th.randperm(n_in * n_out).float().add(1.0).view(n_out, n_in) / (n_in * n_out)
        signs = th.randint(0, 2, (n_out, n_in)).float().mul(2.0).sub(1.0)
        layer.weight.copy_(magnitudes * signs * layer.mask)
        layer.dense_grad = th.rand(n_out, n_in) + 0.01
    return layer, optimizer


def is_active(layer: MaskedLinear) -> th.Tensor:
    """The mask as booleans (whatever dtype the layer stores it in), checking it holds only 0 and 1."""
    assert ((layer.mask == 0) | (layer.mask == 1)).all()
    return layer.mask.bool()


def snapshot(layer: MaskedLinear, optimizer: th.optim.Optimizer) -> dict[str, th.Tensor]:
    state = optimizer.state[layer.weight]
    return {
        "mask": is_active(layer).clone(),
        "weight": layer.weight.detach().clone(),
        "bias": layer.bias.detach().clone(),
        "exp_avg": state["exp_avg"].clone(),
        "exp_avg_sq": state["exp_avg_sq"].clone(),
        "step": state["step"].clone(),
    }


def check_rewire(before: dict[str, th.Tensor], layer: MaskedLinear, optimizer: th.optim.Optimizer, moved: int) -> None:
    """Every invariant of one drop-and-grow step."""
    old, new = before["mask"], is_active(layer)
    weight = layer.weight.detach()
    state = optimizer.state[layer.weight]
    dropped = old & ~new
    grown = ~old & new
    kept = old & new
    # Active count unchanged; as many dropped as grown; the return value is that count.
    assert int(new.sum()) == int(old.sum())
    assert int(dropped.sum()) == int(grown.sum()) == moved
    # Grown positions were inactive before the update (so never the just-dropped ones).
    assert not (grown & old).any()
    # Dropped positions were the smallest-|w| active ones.
    if moved and kept.any():
        assert before["weight"][dropped].abs().max() <= before["weight"][kept].abs().min()
    # Grown and dropped weights are exactly 0, pruned weights stay 0, the others are untouched.
    assert (weight[grown] == 0).all()
    assert (weight[~new] == 0).all()
    assert th.equal(weight[kept], before["weight"][kept])
    assert th.equal(layer.bias.detach(), before["bias"])
    # Adam state reset at grown positions, untouched elsewhere.
    for key in ("exp_avg", "exp_avg_sq"):
        assert (state[key][grown] == 0).all()
        assert th.equal(state[key][~grown], before[key][~grown])
    assert th.equal(state["step"], before["step"])


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    drop_fraction=st.floats(0.0, 1.0),
    grow_method=st.sampled_from(["random", "gradient"]),
    seed=st.integers(0, 2**16),
)
def test_rewire_invariants(n_in, n_out, density, drop_fraction, grow_method, seed):
    numel = n_in * n_out
    n_active = round(density * numel)
    layer, optimizer = make_layer(n_in, n_out, n_active, seed)
    before = snapshot(layer, optimizer)
    moved = rewire_layer(layer, drop_fraction, grow_method, optimizer)
    assert moved == min(math.floor(drop_fraction * n_active), numel - n_active)
    check_rewire(before, layer, optimizer, moved)
    if grow_method == "gradient" and moved:
        # The grown positions are the top-k dense-gradient positions among the inactive ones.
        scores = layer.dense_grad.masked_fill(before["mask"], -1.0).flatten()
        expected = th.zeros(numel, dtype=th.bool)
        expected[th.topk(scores, moved).indices] = True
        assert th.equal((~before["mask"] & is_active(layer)).flatten(), expected)


def test_rewire_counts_example():
    layer, optimizer = make_layer(10, 10, 40, seed=0)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 0.25, "random", optimizer) == 10
    check_rewire(before, layer, optimizer, 10)
    # Dropped exactly the 10 smallest active magnitudes.
    active_magnitudes = before["weight"][before["mask"]].abs()
    smallest = active_magnitudes.sort().values[:10]
    assert th.equal(before["weight"][before["mask"] & ~is_active(layer)].abs().sort().values, smallest)


def test_rigl_uses_dense_gradient():
    """Inactive weights are 0, so their masked gradient is 0; growth must rank the dense gradient."""
    th.manual_seed(3)
    layer = MaskedLinear(12, 8)
    layer.init_mask(48, "random")
    optimizer = th.optim.Adam(layer.parameters(), lr=1e-3)
    layer.track_dense_grad = True
    x, target = th.randn(32, 12), th.randn(32, 8)
    ((layer(x) - target) ** 2).mean().backward()
    grad = layer.weight.grad.clone()
    inactive = ~is_active(layer)
    # The gradient at inactive positions is not zero (dense forward with zero weights) ...
    assert (grad[inactive] != 0).all()
    # ... while the masked gradient is 0 there: ranking it would pick arbitrary positions.
    assert ((grad * layer.mask)[inactive] == 0).all()
    layer.capture_dense_grad()
    assert th.equal(layer.dense_grad, grad.abs())
    optimizer.step()
    layer.apply_mask()
    before_mask = is_active(layer).clone()
    moved = rewire_layer(layer, 0.25, "gradient", optimizer)
    assert moved == 12
    expected = th.zeros(96, dtype=th.bool)
    expected[th.topk(grad.abs().masked_fill(before_mask, -1.0).flatten(), moved).indices] = True
    grown = (~before_mask & is_active(layer)).flatten()
    assert th.equal(grown, expected)


def test_rigl_without_dense_gradient_raises():
    layer = MaskedLinear(4, 4)
    layer.init_mask(8)
    with pytest.raises(RuntimeError, match="dense gradient"):
        rewire_layer(layer, 0.5, "gradient")


def test_policy_hooks_capture_dense_gradient_and_reapply_masks():
    """The sparse policy's optimizer hooks store |dense grad| before the step and re-mask after it."""
    th.manual_seed(0)
    policy = SparseTD3Policy(
        gym.spaces.Box(-1, 1, (5,), np.float32),
        gym.spaces.Box(-1, 1, (2,), np.float32),
        lambda _: 1e-2,
        net_arch=[16, 16],
        sparsity=0.7,
    )
    layers = [layer for _, layer in policy.masked_layers("actor")]
    assert len(layers) == 2
    for layer in layers:
        layer.track_dense_grad = True
    policy.actor.optimizer.zero_grad()
    policy.actor(th.randn(16, 5)).pow(2).sum().backward()
    grads = [layer.weight.grad.clone() for layer in layers]
    policy.actor.optimizer.step()
    for layer, grad in zip(layers, grads, strict=True):
        active = is_active(layer)
        assert th.equal(layer.dense_grad, grad.abs())
        assert (layer.dense_grad[~active] > 0).any()
        # Adam moved every weight, the post-step hook put the pruned ones back to exactly 0.
        assert (layer.weight[~active] == 0).all()
        assert (layer.weight[active] != 0).all()


def test_grow_none_changes_nothing():
    layer, optimizer = make_layer(9, 7, 30, seed=1)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 0.5, "none", optimizer) == 0
    after = snapshot(layer, optimizer)
    for key, value in before.items():
        assert th.equal(value, after[key]), key


@pytest.mark.parametrize("grow_method", ["random", "gradient"])
def test_drop_fraction_zero_changes_nothing(grow_method):
    layer, optimizer = make_layer(9, 7, 30, seed=2)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 0.0, grow_method, optimizer) == 0
    after = snapshot(layer, optimizer)
    for key, value in before.items():
        assert th.equal(value, after[key]), key


@pytest.mark.parametrize("grow_method", ["random", "gradient"])
def test_dense_layer_changes_nothing(grow_method):
    # Sparsity 0: no inactive position to grow into, so nothing is dropped either.
    layer, optimizer = make_layer(6, 5, 30, seed=3)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 0.5, grow_method, optimizer) == 0
    assert th.equal(is_active(layer), before["mask"])
    assert th.equal(layer.weight.detach(), before["weight"])


def test_drop_fraction_one_swaps_as_many_as_possible():
    # 30 active, 12 inactive: at most 12 can move.
    layer, optimizer = make_layer(6, 7, 30, seed=4)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 1.0, "random", optimizer) == 12
    check_rewire(before, layer, optimizer, 12)
    assert is_active(layer)[~before["mask"]].all()


def test_rewire_without_optimizer():
    layer, optimizer = make_layer(8, 8, 32, seed=5)
    before = snapshot(layer, optimizer)
    assert rewire_layer(layer, 0.5, "random") == 16
    assert layer.n_active == 32
    # No optimizer given: its state is left alone.
    assert th.equal(optimizer.state[layer.weight]["exp_avg"], before["exp_avg"])


def test_rewire_unknown_grow_method():
    layer = MaskedLinear(4, 4)
    with pytest.raises(ValueError, match=r"grow_method='magnitude'.*'random', 'gradient', 'none'"):
        rewire_layer(layer, 0.5, "magnitude")


def test_reset_optimizer_state_sgd_momentum():
    layer = MaskedLinear(4, 3)
    optimizer = th.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(th.randn(5, 4)).sum().backward()
    optimizer.step()
    buffer = optimizer.state[layer.weight]["momentum_buffer"]
    assert (buffer != 0).all()
    reset_optimizer_state(optimizer, layer.weight, th.tensor([0, 5, 11]))
    assert (buffer.view(-1)[[0, 5, 11]] == 0).all()
    assert (buffer.view(-1)[[1, 2, 3, 4, 6, 7, 8, 9, 10]] != 0).all()
    # A parameter without state (never stepped) is fine.
    reset_optimizer_state(th.optim.Adam([th.nn.Parameter(th.zeros(3))]), th.zeros(3), th.tensor([0]))


# --- MaskedLinear -----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    method=st.sampled_from(["random", "magnitude"]),
)
def test_init_mask(n_in, n_out, density, method):
    layer = MaskedLinear(n_in, n_out)
    initial = layer.weight.detach().clone()
    n_active = round(density * n_in * n_out)
    layer.init_mask(n_active, method)
    assert layer.n_active == n_active
    assert layer.density == pytest.approx(n_active / (n_in * n_out))
    active = is_active(layer)
    assert (layer.weight[~active] == 0).all()
    assert th.equal(layer.weight[active], initial[active])
    if method == "magnitude" and 0 < n_active < n_in * n_out:
        assert initial[active].abs().min() >= initial[~active].abs().max()


def test_init_mask_bad_inputs():
    layer = MaskedLinear(3, 2)
    with pytest.raises(ValueError, match=r"n_active=7 is outside \[0, 6\]"):
        layer.init_mask(7)
    with pytest.raises(ValueError, match="mask_init='largest'"):
        layer.init_mask(3, "largest")


def test_masked_linear_from_linear_and_state_dict():
    linear = th.nn.Linear(5, 4)
    layer = MaskedLinear.from_linear(linear)
    assert th.equal(layer.weight, linear.weight) and th.equal(layer.bias, linear.bias)
    assert is_active(layer).all()
    layer.init_mask(10)
    # The mask is a buffer: it travels with the state_dict.
    copy = MaskedLinear(5, 4)
    copy.load_state_dict(layer.state_dict())
    assert th.equal(copy.mask, layer.mask)
    assert "density=0.500" in repr(layer)
