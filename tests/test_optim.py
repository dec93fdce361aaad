"""Optimizer state of changed weights: reset to what a fresh optimizer of the same type and settings holds."""

import pytest
import torch as th
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from torch import nn

from sb3_sparse.core import optim
from sb3_sparse.core.optim import check_optimizer, fresh_state, register_optimizer, reset_state

# optimizer factory, {per-weight state: the value a fresh optimizer starts it at} (from each optimizer's own definition)
OPTIMIZERS = {
    "SGD-momentum": (lambda p: th.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01), {"momentum_buffer": 0.0}),
    "Adam": (lambda p: th.optim.Adam(p, lr=1e-2, amsgrad=True), {"exp_avg": 0.0, "exp_avg_sq": 0.0, "max_exp_avg_sq": 0.0}),
    "Adam-fused": (lambda p: th.optim.Adam(p, lr=1e-2, fused=True), {"exp_avg": 0.0, "exp_avg_sq": 0.0}),
    "AdamW": (lambda p: th.optim.AdamW(p, lr=1e-2), {"exp_avg": 0.0, "exp_avg_sq": 0.0}),
    "Adamax": (lambda p: th.optim.Adamax(p, lr=1e-2), {"exp_avg": 0.0, "exp_inf": 0.0}),
    "NAdam": (lambda p: th.optim.NAdam(p, lr=1e-2), {"exp_avg": 0.0, "exp_avg_sq": 0.0}),
    "RAdam": (lambda p: th.optim.RAdam(p, lr=1e-2), {"exp_avg": 0.0, "exp_avg_sq": 0.0}),
    "RMSprop-centered": (
        lambda p: th.optim.RMSprop(p, lr=1e-2, momentum=0.9, centered=True),
        {"square_avg": 0.0, "momentum_buffer": 0.0, "grad_avg": 0.0},
    ),
    "Adagrad": (lambda p: th.optim.Adagrad(p, lr=1e-2, initial_accumulator_value=0.3), {"sum": 0.3}),
    "Adadelta": (lambda p: th.optim.Adadelta(p), {"square_avg": 0.0, "acc_delta": 0.0}),
    "Rprop": (lambda p: th.optim.Rprop(p, lr=0.02), {"prev": 0.0, "step_size": 0.02}),
    "RMSpropTFLike": (
        lambda p: RMSpropTFLike(p, lr=1e-2, momentum=0.9, centered=True),
        {"square_avg": 1.0, "momentum_buffer": 0.0, "grad_avg": 0.0},
    ),
}
CHANGED = th.tensor([0, 5, 11])


def trained(name: str) -> tuple[nn.Linear, th.optim.Optimizer]:
    """A layer and its optimizer after three steps on random data: every state entry away from its start."""
    th.manual_seed(0)
    layer = nn.Linear(4, 3)
    optimizer = OPTIMIZERS[name][0](layer.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        layer(th.randn(8, 4)).pow(2).sum().backward()
        optimizer.step()
    return layer, optimizer


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_reset_positions_hold_a_fresh_optimizers_state(name):
    """The definition: the state a fresh optimizer holds before its first update (what it creates for a new
    weight), at the reset positions; the other positions and the per-tensor step counter are untouched."""
    layer, optimizer = trained(name)
    check_optimizer(optimizer, "policy")
    state = optimizer.state[layer.weight]
    expected = OPTIMIZERS[name][1]
    before = {key: value.clone() for key, value in state.items() if isinstance(value, th.Tensor)}
    assert all(not th.all(before[key].view(-1)[CHANGED] == fresh) for key, fresh in expected.items())
    reset_state(optimizer, layer.weight, CHANGED)
    kept = th.ones(layer.weight.numel(), dtype=th.bool)
    kept[CHANGED] = False
    for key, value in state.items():
        if not isinstance(value, th.Tensor):
            continue
        if key in expected:
            assert th.all(value.view(-1)[CHANGED] == expected[key]), key
            assert th.equal(value.view(-1)[kept], before[key].view(-1)[kept]), key
        else:  # per-tensor entries such as Adam's step
            assert th.equal(value, before[key]), key
    assert {key for key, value in before.items() if value.shape == layer.weight.shape} == set(expected)


@pytest.mark.parametrize("name", ["SGD-momentum", "RMSprop-centered", "RMSpropTFLike", "Adagrad", "Adadelta"])
def test_a_reset_weight_steps_as_a_fresh_optimizers_first_step(name):
    """Optimizers without a step-dependent factor: after the reset, a reset weight moves exactly as a fresh
    optimizer (same settings) moves the same weight from the same gradient."""
    layer, optimizer = trained(name)
    reset_state(optimizer, layer.weight, CHANGED)
    fresh_layer = nn.Linear(4, 3)
    fresh_layer.load_state_dict(layer.state_dict())
    fresh = OPTIMIZERS[name][0](fresh_layer.parameters())
    x = th.randn(8, 4)
    for net, opt in ((layer, optimizer), (fresh_layer, fresh)):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
    th.testing.assert_close(layer.weight.view(-1)[CHANGED], fresh_layer.weight.view(-1)[CHANGED], rtol=0, atol=1e-7)


def test_fresh_state_follows_the_param_groups_settings():
    """Each parameter group's own settings make its fresh state (here Adagrad's accumulator)."""
    first, second = nn.Linear(2, 2), nn.Linear(2, 2)
    optimizer = th.optim.Adagrad(
        [{"params": first.parameters()}, {"params": second.parameters(), "lr": 0.5}], initial_accumulator_value=0.7
    )
    assert th.all(fresh_state(optimizer, second.weight)["sum"] == 0.7)
    with pytest.raises(ValueError, match="not one that this Adagrad steps"):
        fresh_state(optimizer, nn.Parameter(th.zeros(2)))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: th.optim.Adafactor(p), r"its state 'row_var' has shape \(3, 1\) for a weight of shape \(3, 4\)"),
        (lambda p: th.optim.LBFGS(p), "a fresh LBFGS could not be made and stepped"),
    ],
)
def test_optimizer_whose_state_cannot_be_reset_is_refused(make, reason):
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=rf"optimizer of module 'critic' is \w+, .*{reason}.*register_optimizer"):
        check_optimizer(make(layer.parameters()), "critic")


def test_registered_reset_is_used_for_an_optimizer_the_engine_cannot_derive(monkeypatch):
    monkeypatch.setattr(optim, "STATE_RESETS", dict(optim.STATE_RESETS))
    calls = []
    register_optimizer(th.optim.Adafactor, lambda optimizer, param, index: calls.append(index.tolist()))
    layer = nn.Linear(4, 3)
    optimizer = th.optim.Adafactor(layer.parameters())
    check_optimizer(optimizer, "critic")  # accepted now
    layer(th.randn(2, 4)).sum().backward()
    optimizer.step()
    reset_state(optimizer, layer.weight, CHANGED)
    assert calls == [CHANGED.tolist()]
