"""The engine's core on plain torch modules: masks the module enforces, the one mask update, optimizer-state
resets, the engine's schedule for every regime (online and target networks) and its FLOPs accounting."""

import copy
import io
import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch as th
from helpers import distinct_layer
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sb3_sparse.core.accounting import training_step_flops, weight_rows
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.distributions import active_count
from sb3_sparse.core.engine import ModuleBinding, SparseEngine, matrix_shape, sparsify_module
from sb3_sparse.core.masking import (
    commit_dense_gradients,
    get_mask,
    is_sparse,
    sparse_weights,
    sparsify,
    track_dense_gradients,
    weight_state,
)
from sb3_sparse.core.regimes import REGIMES, Regime, get_regime, register_regime
from sb3_sparse.core.update import init_mask, update_mask

# --- masks on any weight ----------------------------------------------------------------------


class Residual(nn.Module):
    """A Linear inside a residual block (the block, not the Linear, is the module that is called)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.out(x + th.relu(self.fc(x)))


class Case:
    """A module, the sub-module that owns the weight made sparse, the weight's name and an input."""

    def __init__(self, build: Callable[[], nn.Module], owner: Callable[[nn.Module], nn.Module], name: str, shape: tuple):
        self.build = build
        self.owner = owner
        self.name = name
        self.shape = shape


CASES = {
    "linear": Case(lambda: nn.Linear(5, 4), lambda m: m, "weight", (3, 5)),
    "conv2d": Case(lambda: nn.Conv2d(2, 3, 3), lambda m: m, "weight", (2, 2, 6, 6)),
    "gru": Case(lambda: nn.GRU(4, 5), lambda m: m, "weight_hh_l0", (3, 2, 4)),
    "residual": Case(lambda: Residual(), lambda m: m.fc, "weight", (3, 6)),
}


def output(module: nn.Module, x: th.Tensor) -> th.Tensor:
    out = module(x)
    return out[0] if isinstance(out, tuple) else out


class Probe:
    """Forward hook: records whether the weights the pass read were exact zeros where pruned (a masked
    ``nn.Linear`` zeroes them inside its forward, other modules in a pre-hook: after the pass, both hold)."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[bool] = []

    def __call__(self, module: nn.Module, args: Any, result: Any) -> None:
        weight = getattr(module, self.name)
        self.seen.append(bool((weight[get_mask(module, self.name) == 0] == 0).all()))


def make(case_name: str, seed: int = 0) -> tuple[nn.Module, nn.Module, th.Tensor, th.Tensor, Probe]:
    """The case's module with half of its weight pruned at random, an input and a probe on the owner."""
    th.manual_seed(seed)
    case = CASES[case_name]
    root = case.build()
    owner = case.owner(root)
    weight = getattr(owner, case.name)
    mask = init_mask(weight, weight.numel() // 2, "random")
    sparsify(owner, case.name, mask)
    probe = Probe(case.name)
    owner.register_forward_hook(probe)
    return root, owner, mask, th.randn(case.shape), probe


def reference(case_name: str, root: nn.Module, mask: th.Tensor, x: th.Tensor) -> th.Tensor:
    """The output of a plain (never sparsified) module holding ``root``'s weights times the mask."""
    case = CASES[case_name]
    plain = case.build()
    with th.no_grad():
        for (_, target), (_, source) in zip(plain.named_parameters(), root.named_parameters(), strict=True):
            target.copy_(source)
        getattr(case.owner(plain), case.name).mul_(mask)
    return output(plain, x)


def qualified(root: nn.Module) -> str:
    (name,) = [name for name, _, _ in sparse_weights(root)]
    return name


def assert_stored_zeros(owner: nn.Module, name: str, mask: th.Tensor) -> None:
    assert (getattr(owner, name)[mask == 0] == 0).all()


def write_fill(root: nn.Module, owner: nn.Module, name: str) -> None:
    with th.no_grad():
        getattr(owner, name).fill_(1.0)


def write_load_state_dict(root: nn.Module, owner: nn.Module, name: str) -> None:
    state = root.state_dict()
    state[qualified(root)] = th.ones_like(state[qualified(root)])  # dense weights, the mask buffer kept
    root.load_state_dict(state)


def write_data(root: nn.Module, owner: nn.Module, name: str) -> None:
    getattr(owner, name).data = th.full_like(getattr(owner, name), 0.5)  # new storage


WRITES = {"fill": write_fill, "load_state_dict": write_load_state_dict, "data": write_data}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("case", CASES)
def test_every_forward_sees_zeros_after_external_writes(case, write):
    root, owner, mask, x, probe = make(case)
    name = CASES[case].name
    assert is_sparse(owner, name)
    assert_stored_zeros(owner, name, mask)
    for _ in range(2):  # a second write after a forward is caught too
        WRITES[write](root, owner, name)
        out = output(root, x)
        assert probe.seen[-1]
        assert th.equal(out, reference(case, root, mask, x))
        assert_stored_zeros(owner, name, mask)
    # The mask itself is untouched by the writes.
    assert th.equal(get_mask(owner, name), mask)
    assert probe.seen == [True, True]


@pytest.mark.parametrize("case", CASES)
def test_writing_the_mask_buffer_masks_the_weights(case):
    """``get_mask`` returns the buffer itself: pruning through it (or loading a state dict) is enforced too."""
    root, owner, mask, x, probe = make(case)
    name = CASES[case].name
    output(root, x)
    smaller = mask * (th.rand_like(mask) < 0.5)
    get_mask(owner, name).copy_(smaller)
    assert th.equal(output(root, x), reference(case, root, smaller, x))
    assert probe.seen == [True, True]
    assert_stored_zeros(owner, name, smaller)
    # The same through load_state_dict of a state dict with another mask.
    state = root.state_dict()
    fewer = smaller * (th.rand_like(smaller) < 0.5)
    state[f"{qualified(root)}_mask"] = fewer
    root.load_state_dict(state)
    assert th.equal(output(root, x), reference(case, root, fewer, x))
    assert_stored_zeros(owner, name, fewer)


@pytest.mark.parametrize("case", CASES)
def test_gradient_is_zero_at_pruned_positions(case):
    root, owner, mask, x, _ = make(case)
    name = CASES[case].name
    write_fill(root, owner, name)
    output(root, x).pow(2).sum().backward()
    grad = getattr(owner, name).grad
    assert (grad[mask == 0] == 0).all()
    assert (grad[mask == 1] != 0).any()


def to_copy(transport: str, root: nn.Module) -> nn.Module:
    if transport == "deepcopy":
        return copy.deepcopy(root)
    if transport == "pickle":
        return pickle.loads(pickle.dumps(root))
    buffer = io.BytesIO()
    th.save(root, buffer)
    buffer.seek(0)
    return th.load(buffer, weights_only=False)


@pytest.mark.parametrize("transport", ["deepcopy", "pickle", "torch_save"])
@pytest.mark.parametrize("case", CASES)
def test_masks_travel_with_the_module(case, transport):
    root, owner, mask, x, _ = make(case)
    name = CASES[case].name
    key = qualified(root)
    write_fill(root, owner, name)  # written, not yet re-masked by a forward
    state = root.state_dict()
    assert (state[key][mask == 0] == 0).all()
    assert th.equal(state[f"{key}_mask"], mask)

    copied = to_copy(transport, root)
    copied_owner = CASES[case].owner(copied)
    assert is_sparse(copied_owner, name)
    assert [n for n, _, _ in sparse_weights(copied)] == [key]
    assert th.equal(get_mask(copied_owner, name), mask)
    assert (copied.state_dict()[key][mask == 0] == 0).all()
    out = output(copied, x)
    assert th.equal(out, reference(case, root, mask, x))
    assert_stored_zeros(copied_owner, name, mask)
    out.pow(2).sum().backward()
    assert (getattr(copied_owner, name).grad[mask == 0] == 0).all()
    # The copy enforces its own mask after writes to it ...
    with th.no_grad():
        getattr(copied_owner, name).fill_(2.0)
    assert th.equal(output(copied, x), reference(case, copied, mask, x))
    assert_stored_zeros(copied_owner, name, mask)
    # ... and the original keeps its own.
    assert th.equal(output(root, x), reference(case, root, mask, x))


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: th.optim.SGD(params, lr=0.1, momentum=0.9),
        lambda params: th.optim.AdamW(params, lr=0.05, weight_decay=0.5),
    ],
    ids=["sgd_momentum", "adamw"],
)
@pytest.mark.parametrize("case", CASES)
def test_pruned_weights_stay_zero_after_replacing_the_optimizer(case, make_optimizer):
    root, owner, mask, x, probe = make(case)
    name = CASES[case].name
    weight = getattr(owner, name)
    optimizer: th.optim.Optimizer = th.optim.Adam(root.parameters(), lr=0.05)
    for step in range(6):
        if step == 3:
            optimizer = make_optimizer(root.parameters())
        before = weight.detach().clone()
        optimizer.zero_grad()
        output(root, x).pow(2).sum().backward()
        optimizer.step()
        # The stored weights, right after the step and before any forward.
        assert_stored_zeros(owner, name, mask)
        assert not th.equal(weight[mask == 1], before[mask == 1])
    assert all(probe.seen)


def test_dense_gradient_is_kept_for_growth():
    """The gradient hook keeps the dense gradient (of the masked network) and returns the masked one."""
    root, owner, mask, x, _ = make("residual", seed=3)
    track_dense_gradients(root, True)
    output(root, x).pow(2).sum().backward()
    plain = Residual()
    with th.no_grad():
        for (_, target), (_, source) in zip(plain.named_parameters(), root.named_parameters(), strict=True):
            target.copy_(source)
    output(plain, x).pow(2).sum().backward()
    dense = plain.fc.weight.grad
    state = weight_state(owner, "weight")
    assert (dense[mask == 0] != 0).any()
    assert th.equal(state.last_dense_grad, dense)
    assert th.equal(owner.weight.grad, dense * mask)
    # Committed (by the engine's optimizer hook, before the step) as the gradient to grow by.
    assert state.dense_grad is None
    commit_dense_gradients(root)
    assert th.equal(state.dense_grad, dense)
    track_dense_gradients(root, False)
    assert state.dense_grad is None and state.last_dense_grad is None


def test_sparsify_errors():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear has no parameter 'kernel' to make sparse"):
        sparsify(layer, "kernel")
    sparsify(layer)
    assert get_mask(layer).sum() == 6  # all ones by default
    with pytest.raises(ValueError, match=r"Linear\.weight is already sparse"):
        sparsify(layer)


# --- the one mask update ----------------------------------------------------------------------


def check_update(
    before_weight: th.Tensor,
    before_mask: th.Tensor,
    weight: th.Tensor,
    mask: th.Tensor,
    dropped_index: th.Tensor,
    grown_index: th.Tensor,
    n_target: int,
) -> tuple[th.Tensor, th.Tensor]:
    """Invariants of every update; returns the dropped and grown positions (boolean)."""
    old, new = before_mask.bool(), mask.bool()
    assert ((mask == 0) | (mask == 1)).all()
    dropped, grown, kept = old & ~new, ~old & new, old & new
    # Exactly n_target active; the returned indices are exactly the changes.
    assert int(new.sum()) == n_target
    assert sorted(dropped_index.tolist()) == dropped.flatten().nonzero().squeeze(1).tolist()
    assert sorted(grown_index.tolist()) == grown.flatten().nonzero().squeeze(1).tolist()
    # Grown positions were inactive before the update (never the just-dropped ones).
    assert not (grown & old).any()
    # Dropped: the smallest |w| of the active weights.
    if dropped.any() and kept.any():
        assert before_weight[dropped].abs().max() <= before_weight[kept].abs().min()
    # Grown and pruned weights are exactly 0, kept ones untouched.
    assert (weight[grown] == 0).all()
    assert (weight[~new] == 0).all()
    assert th.equal(weight[kept], before_weight[kept])
    return dropped, grown


@settings(max_examples=80, deadline=None)
@given(
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    target_density=st.floats(0.0, 1.0),
    swap_fraction=st.floats(0.0, 1.5),
    grow_score=st.sampled_from([None, "random", "gradient"]),
    seed=st.integers(0, 2**16),
)
def test_update_mask(n_in, n_out, density, target_density, swap_fraction, grow_score, seed):
    numel = n_in * n_out
    n_active = round(density * numel)
    n_target = round(target_density * numel)
    n_swap = math.floor(swap_fraction * n_active)
    weight, mask, dense_grad = distinct_layer(n_out, n_in, n_active, seed)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped_index, grown_index = update_mask(weight, mask, n_target, n_swap, "magnitude", grow_score, dense_grad)
    # Without a grow score the count only goes down (GMP never regrows).
    reached = min(n_target, n_active) if grow_score is None else n_target
    dropped, grown = check_update(before_weight, before_mask, weight, mask, dropped_index, grown_index, reached)
    # As many exchanges as asked, limited by the free positions and by the target.
    if grow_score is None:
        expected_grown = 0
    else:
        expected_grown = min(n_swap + max(0, n_target - n_active), numel - n_active, n_target)
    assert int(grown.sum()) == expected_grown
    assert int(dropped.sum()) == n_active + expected_grown - reached
    if grow_score == "gradient" and expected_grown:
        # The grown positions are the top dense-gradient positions among the previously inactive ones.
        scores = dense_grad.abs().masked_fill(before_mask.bool(), -1.0).flatten()
        expected = th.zeros(numel, dtype=th.bool)
        expected[th.topk(scores, expected_grown).indices] = True
        assert th.equal(grown.flatten(), expected)


def test_update_mask_never_grows_without_a_grow_score():
    weight, mask, _ = distinct_layer(4, 4, 8, seed=5)
    before_weight, before_mask = weight.clone(), mask.clone()
    dropped, grown = update_mask(weight, mask, 10, 3, "magnitude", None)
    assert dropped.numel() == grown.numel() == 0
    assert th.equal(weight, before_weight) and th.equal(mask, before_mask)


# --- optimizer state ------------------------------------------------------------------------

OPTIMIZERS: dict[str, Callable[[Any], th.optim.Optimizer]] = {
    "adam": lambda params: th.optim.Adam(params, lr=1e-2, amsgrad=True),
    "adamw": lambda params: th.optim.AdamW(params, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda params: th.optim.RMSprop(params, lr=1e-2, momentum=0.9, centered=True),
    "sgd_momentum": lambda params: th.optim.SGD(params, lr=1e-2, momentum=0.9),
}
STATE_NAMES = {
    "adam": {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "adamw": {"exp_avg", "exp_avg_sq"},
    "rmsprop": {"square_avg", "momentum_buffer", "grad_avg"},
    "sgd_momentum": {"momentum_buffer"},
}


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
def test_optimizer_state_reset_at_grown_and_dropped_positions(optimizer_name):
    th.manual_seed(0)
    layer = nn.Linear(8, 6)
    config = ModuleConfig(regime="set", sparsity=0.5, sparse_layers="all", drop_fraction=0.5)
    sparsify_module(config, [(layer, "weight", "input", 0)])
    optimizer = OPTIMIZERS[optimizer_name](layer.parameters())
    for _ in range(2):
        optimizer.zero_grad()
        layer(th.randn(4, 8)).pow(2).sum().backward()
        optimizer.step()
    state = optimizer.state[layer.weight]
    per_weight = {name for name, value in state.items() if isinstance(value, th.Tensor) and value.shape == layer.weight.shape}
    assert per_weight == STATE_NAMES[optimizer_name]
    with th.no_grad():
        for name in per_weight:  # non-zero everywhere, so that a reset shows
            state[name].copy_(th.rand_like(state[name]) + 0.5)
    before = {name: value.clone() for name, value in state.items() if isinstance(value, th.Tensor)}
    bias_before = {name: value.clone() for name, value in optimizer.state[layer.bias].items()}
    old_mask = get_mask(layer).bool().clone()
    engine = SparseEngine({"layer": config})
    binding = ModuleBinding(layer, None, optimizer)
    engine.attach({"layer": binding})
    assert engine.update("layer", binding, 0.0, 0)
    new_mask = get_mask(layer).bool()
    changed = old_mask ^ new_mask
    assert int((old_mask & ~new_mask).sum()) == int((~old_mask & new_mask).sum()) == 12
    for name in per_weight:
        assert (state[name][changed] == 0).all(), name
        assert th.equal(state[name][~changed], before[name][~changed]), name
    for name, value in before.items():  # e.g. Adam's step count
        if name not in per_weight:
            assert th.equal(state[name], value), name
    for name, value in bias_before.items():
        assert th.equal(optimizer.state[layer.bias][name], value), name
    assert (layer.weight[changed] == 0).all()


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_unsupported_optimizer_raises_when_attached_to_a_dynamic_regime(regime):
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    config = ModuleConfig(regime=regime, sparsity=0.5, sparse_layers="all")
    sparsify_module(config, [(net[0], "weight", "input", 0), (net[2], "weight", "output", 1)])
    engine = SparseEngine({"policy": config})
    bindings = {"policy": ModuleBinding(net, copy.deepcopy(net), th.optim.Adafactor(net.parameters()))}
    if get_regime(regime).dynamic:
        with pytest.raises(ValueError, match=r"optimizer of module 'policy' is Adafactor.*register_optimizer"):
            engine.attach(bindings)
    else:
        engine.attach(bindings)  # nothing to reset: any optimizer


# --- the engine, every regime -----------------------------------------------------------------

#: regime -> (sparsity, initial sparsity): gmp prunes from dense, ne grows from 0.8.
REGIME_SPARSITY = {
    "dense": (0.7, 0.0),
    "static": (0.7, 0.7),
    "set": (0.7, 0.7),
    "rigl": (0.7, 0.7),
    "gmp": (0.8, 0.0),
    "ne": (0.3, 0.8),
    "srigl": (0.7, 0.7),
}
START, END, INTERVAL = 20, 100, 10


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 2))


def build(config: ModuleConfig, make_optimizer: Callable[[Any], th.optim.Optimizer] | None = None) -> ModuleBinding:
    """An MLP made sparse by ``config`` (every layer), its target network and its optimizer."""
    online = mlp()
    sparsify_module(
        config, [(online[0], "weight", "input", 0), (online[2], "weight", "hidden", 1), (online[4], "weight", "output", 2)]
    )
    target = copy.deepcopy(online)
    optimizer = (make_optimizer or (lambda params: th.optim.Adam(params, lr=1e-2)))(online.parameters())
    return ModuleBinding(online, target, optimizer)


def train_step(binding: ModuleBinding, x: th.Tensor, y: th.Tensor) -> None:
    assert binding.optimizer is not None
    binding.optimizer.zero_grad()
    (binding.online(x) - y).pow(2).mean().backward()
    binding.optimizer.step()
    with th.no_grad():  # a soft target update, as SB3's polyak_update does it
        for param, target_param in zip(binding.online.parameters(), binding.target.parameters(), strict=True):
            target_param.data.mul_(0.9).add_(param.data, alpha=0.1)


def masks(network: nn.Module) -> dict[str, th.Tensor]:
    return {name: get_mask(module, weight).clone() for name, module, weight in sparse_weights(network)}


def counts(network: nn.Module) -> list[int]:
    return [int(get_mask(module, weight).sum()) for _, module, weight in sparse_weights(network)]


def shapes(network: nn.Module) -> list[tuple[int, int]]:
    return [matrix_shape(getattr(module, weight)) for _, module, weight in sparse_weights(network)]


def expected_counts(regime: str, network: nn.Module, progress: float) -> list[int]:
    """n(t) of each layer (uniform distribution): constant, or on the cubic schedule for gmp / ne."""
    final, initial = REGIME_SPARSITY[regime]
    sparsity = final if regime not in ("gmp", "ne") else final + (initial - final) * (1.0 - progress) ** 3
    return [get_regime(regime).layer_count(shape, active_count(shape, 1.0 - sparsity)) for shape in shapes(network)]


def check_networks(binding: ModuleBinding) -> None:
    """Pruned weights are exactly 0 in the online and target networks, whose masks are the online ones."""
    assert binding.target is not None
    target_masks = masks(binding.target)
    for name, module, weight in sparse_weights(binding.online):
        mask = get_mask(module, weight)
        assert (getattr(module, weight)[mask == 0] == 0).all(), name
        assert th.equal(target_masks[name], mask), name
    for name, module, weight in sparse_weights(binding.target):
        assert (getattr(module, weight)[get_mask(module, weight) == 0] == 0).all(), f"target {name}"


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_engine_follows_the_regime_schedule(regime):
    th.manual_seed(1)
    final, initial = REGIME_SPARSITY[regime]
    config = ModuleConfig(
        regime=regime,
        sparsity=final,
        initial_sparsity=initial,
        sparse_layers="all",
        topology_update_interval=INTERVAL,
        drop_fraction=0.3,
        topology_update_start=START,
        topology_update_end=END,
    )
    binding = build(config)
    bindings = {"net": binding}
    engine = SparseEngine({"net": config})
    engine.attach(bindings)
    if regime == "dense":
        assert not list(sparse_weights(binding.online))
    else:
        assert counts(binding.online) == expected_counts(regime, binding.online, 0.0)
    x, y = th.randn(64, 6), th.randn(64, 2)
    update_steps = []
    previous_counts = counts(binding.online)
    for env_step in range(1, 131):
        train_step(binding, x, y)
        check_networks(binding)
        before_masks = masks(binding.online)
        dense_grads = {name: weight_state(m, w).dense_grad for name, m, w in sparse_weights(binding.online)}
        updated = engine.step(bindings, env_step, {"net": 130})
        state = engine.module_state("net")
        check_networks(binding)
        if not updated:
            assert all(th.equal(value, before_masks[key]) for key, value in masks(binding.online).items())
            continue
        update_steps.append(env_step)
        assert state["last_update_step"] == env_step
        progress = min(1.0, max(0.0, (env_step - START) / (END - START)))
        now = counts(binding.online)
        # The active count is the regime's n(t) after every update.
        assert now == expected_counts(regime, binding.online, progress)
        if regime == "gmp":
            assert all(a <= b for a, b in zip(now, previous_counts, strict=True))
        if regime == "ne":
            assert all(a >= b for a, b in zip(now, previous_counts, strict=True))
        previous_counts = now
        for name, module, weight in sparse_weights(binding.online):
            old, new = before_masks[name].bool(), get_mask(module, weight).bool()
            grown = new & ~old
            # Grown weights start at exactly 0 (online and target).
            assert (getattr(module, weight)[grown] == 0).all()
            target_module = dict(binding.target.named_modules())[name.rsplit(".", 1)[0]]
            assert (getattr(target_module, weight)[grown] == 0).all()
            if regime in ("set", "rigl"):
                assert grown.any() and (old & ~new).any(), name
            if regime == "srigl":  # constant fan-in: living units hold k or k + 1, ablated ones none
                held = new.flatten(1).sum(1)
                living = held[held > 0]
                assert living.max() - living.min() <= 1 and (held > 0).sum() * living.min() <= int(held.sum()), name
            if regime == "rigl" and grown.any():
                # Grown by the dense gradient of the last optimizer step.
                score = dense_grads[name].abs()
                not_grown = ~old & ~new
                assert not not_grown.any() or score[grown].min() >= score[not_grown].max()
    if get_regime(regime).dynamic:
        assert update_steps == list(range(START, END + 1, INTERVAL))
    else:
        assert update_steps == []
    assert engine.module_state("net")["n_updates"] == len(update_steps)
    if regime in ("gmp", "ne"):
        # The final target is reached at the end of the window.
        assert counts(binding.online) == [active_count(shape, 1.0 - final) for shape in shapes(binding.online)]
    if regime != "dense":
        assert counts(binding.target) == counts(binding.online)


def test_gradient_steps_unit_counts_optimizer_steps():
    """With ``schedule_unit="gradient_steps"`` the clock is the module's own optimizer steps."""
    th.manual_seed(2)
    config = ModuleConfig(
        regime="set", sparsity=0.5, topology_update_interval=10, topology_update_end=1.0, schedule_unit="gradient_steps"
    )
    binding = build(config)
    bindings = {"net": binding}
    engine = SparseEngine({"net": config})
    engine.attach(bindings)
    x, y = th.randn(16, 6), th.randn(16, 2)
    updates = []
    for env_step in range(1, 21):
        for _ in range(3):  # three gradient steps per env step
            train_step(binding, x, y)
        if engine.step(bindings, env_step, {"net": 60}):
            updates.append((env_step, engine.module_state("net")["last_update_step"]))
    assert engine.module_state("net")["optimizer_steps"] == 60
    assert engine.clock("net", 20) == 60
    # Optimizer steps 12, 21, 30, ... crossed the multiples of 10 (at env steps 4, 7, 10, ...).
    assert updates == [(4, 10), (7, 20), (10, 30), (14, 40), (17, 50), (20, 60)]


def test_replaced_optimizer_is_hooked_again():
    config = ModuleConfig(
        regime="rigl", sparsity=0.5, topology_update_interval=5, topology_update_end=1.0, schedule_unit="gradient_steps"
    )
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    x, y = th.randn(16, 6), th.randn(16, 2)
    train_step(binding, x, y)
    old_optimizer = binding.optimizer
    binding = ModuleBinding(binding.online, binding.target, th.optim.SGD(binding.online.parameters(), lr=0.1, momentum=0.9))
    engine.attach({"net": binding})
    for _ in range(5):
        train_step(binding, x, y)
    assert engine.module_state("net")["optimizer_steps"] == 6
    assert old_optimizer is not None
    old_optimizer.step()  # the replaced optimizer is no longer counted
    assert engine.module_state("net")["optimizer_steps"] == 6
    # RigL's update is due, but no dense gradient was kept (the engine was not stepped before): it waits
    assert engine.step({"net": binding}, 6, {"net": 100}) == []
    train_step(binding, x, y)
    assert engine.step({"net": binding}, 7, {"net": 100}) == ["net"]
    check_networks(binding)
    engine.detach()
    train_step(binding, x, y)
    assert engine.module_state("net")["optimizer_steps"] == 7


def run_flops(regime: str, sparsity: float) -> tuple[float, float]:
    """(integrated training FLOPs ratio of a run, training FLOPs ratio at its final masks)."""
    th.manual_seed(3)
    config = ModuleConfig(
        regime=regime, sparsity=sparsity, sparse_layers="all", topology_update_interval=10, topology_update_end=0.8
    )
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    x, y = th.randn(16, 6), th.randn(16, 2)
    for env_step in range(1, 101):
        train_step(binding, x, y)
        engine.step({"net": binding}, env_step, {"net": 100})
    state = engine.module_state("net")
    sparse, dense = training_step_flops(weight_rows("net", binding.online), True)
    return state["train_flops"] / state["dense_train_flops"], sparse / dense


def test_integrated_flops_of_a_gmp_run_lie_between_final_density_and_dense():
    integrated, final = run_flops("gmp", 0.9)
    assert final == pytest.approx(0.1, abs=0.01)
    assert final < integrated < 1.0
    # Static sparse training costs its density throughout; dense costs 1.
    integrated, final = run_flops("static", 0.9)
    assert integrated == pytest.approx(final)
    assert run_flops("dense", 0.9)[0] == 1.0


def test_register_regime():
    @register_regime
    class Frozen(Regime):
        """A test regime: static, under another name."""

        name = "test_frozen"

    try:
        assert get_regime("test_frozen") is Frozen
        assert ModuleConfig(regime="test_frozen").start_sparsity == 0.5
    finally:
        del REGIMES["test_frozen"]
    with pytest.raises(ValueError, match="is not a Regime subclass with a name"):
        register_regime(int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"regime='sett' is not valid \(did you mean 'set'\?\)"):
        get_regime("sett")


def test_prefer_fused_only_where_no_kernel_was_chosen():
    """Sparse policies switch a new Adam / AdamW to the fused kernel, unless the user chose one."""
    from sb3_sparse.core.optim import prefer_fused

    layer = nn.Linear(4, 3)
    adam = th.optim.Adam(layer.parameters())
    assert prefer_fused(adam) and all(group["fused"] for group in adam.param_groups)
    assert not prefer_fused(th.optim.AdamW(layer.parameters(), foreach=True))
    assert not prefer_fused(th.optim.Adam(layer.parameters(), fused=False))
    assert not prefer_fused(th.optim.SGD(layer.parameters(), lr=0.1))
    stepped = th.optim.Adam(layer.parameters())
    layer(th.randn(2, 4)).sum().backward()
    stepped.step()
    assert not prefer_fused(stepped)  # it has state already: left as it is


def test_sparse_policies_use_fused_adam_by_default():
    from sb3_sparse import SparseSAC

    model = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]})
    assert model.actor.optimizer.param_groups[0]["fused"] and model.critic.optimizer.param_groups[0]["fused"]
    chosen = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], "optimizer_kwargs": {"foreach": True}})
    assert chosen.critic.optimizer.param_groups[0]["fused"] is None


@pytest.mark.parametrize("lookahead", [1, 3])
def test_dense_gradients_are_kept_only_just_before_a_gradient_update(lookahead):
    """RigL ranks the dense gradient of the last step before an update; it is kept only within ``lookahead``
    steps of the next update (it costs a dense product on the sparse compute backend)."""
    config = ModuleConfig(regime="rigl", sparsity=0.5, topology_update_interval=10, topology_update_end=1.0)
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    x, y = th.randn(16, 6), th.randn(16, 2)
    kept = []
    for env_step in range(1, 31):
        updated = engine.step({"net": binding}, env_step, {"net": 100}, {"net": lookahead})
        assert updated == (["net"] if env_step in (10, 20, 30) else [])
        kept.append(all(weight_state(m, w).track_dense_grad for _, m, w in sparse_weights(binding.online)))
        train_step(binding, x, y)
    assert [step for step, keep in enumerate(kept, start=1) if keep] == [
        step for step in range(1, 31) if 10 - step % 10 <= lookahead
    ]


def test_loaded_masks_of_any_dtype_become_the_float_buffer():
    """Masks are saved in the weight's dtype; a mask given as bool or integers loads as the 0/1 float buffer."""
    th.manual_seed(0)
    layer = nn.Linear(6, 4)
    sparsify(layer, "weight", init_mask(layer.weight, 9, "random"))
    state = layer.state_dict()
    assert state["weight_mask"].dtype == th.float32
    for dtype in (th.bool, th.uint8, th.float64):
        other = nn.Linear(6, 4)
        sparsify(other, "weight")
        other.load_state_dict({**state, "weight_mask": (state["weight_mask"] * 3).to(dtype)})
        assert get_mask(other).dtype == th.float32
        assert th.equal(get_mask(other), get_mask(layer)) and th.equal(other.weight, layer.weight)


def test_a_state_dict_perturbed_entry_by_entry_loads_back():
    """SB3's save/load tests fill every entry of get_parameters() with random values: masks included."""
    layer = nn.Linear(5, 3)
    sparsify(layer, "weight", init_mask(layer.weight, 6, "random"))
    state = {key: th.rand_like(value) for key, value in layer.state_dict().items()}
    layer.load_state_dict(state)
    mask = get_mask(layer)
    assert mask.dtype == th.float32 and th.equal(mask, (state["weight_mask"] != 0).float())
    assert (layer.state_dict()["weight"][mask == 0] == 0).all()  # stored (and used) weights are masked
