"""Our DST machinery checked against two independent implementations, used as oracles.

- ``rigl-torch`` 0.5.2 (RigL as an optimizer wrapper; ``pip install -e .[oracle]``)
- ``sparsimony`` 0.1.0 (SET and RigL as torch parametrizations, with ERK; ``pip install --no-deps
  sparsimony==0.1.0``: its metadata pins ``numpy==1.*`` but it runs on numpy 2)

On identical weights, masks, dense gradients and settings, our mask update
(:func:`~sb3_sparse.core.update.update_mask` with a regime's scores) must drop exactly the weights they drop
and grow exactly the positions they grow; our layer densities must equal theirs; our drop-fraction schedules
must agree with theirs step by step. Where they differ from us on purpose (or by a bug of theirs), a test
names the difference and asserts it. Each oracle's tests are skipped, saying how to install it, when it is
missing. The last tests need no oracle: the ``dense`` regime of every sparse algorithm trains exactly as
the plain SB3 / sb3-contrib algorithm.
"""

import importlib
import importlib.util
import math
import sys
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import torch as th
from helpers import distinct_layer
from torch import nn
from torch.nn.utils import parametrize

from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.distributions import layer_densities
from sb3_sparse.core.regimes import REGIMES, Regime
from sb3_sparse.core.schedules import DROP_FRACTION_SCHEDULES, UpdateSchedule
from sb3_sparse.core.update import update_mask
from sb3_sparse.registry import ALGORITHMS


def optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def import_rigl_torch() -> ModuleType | None:
    """rigl-torch's ``RigL`` module, or ``None`` when it is not installed.

    Its ``util`` imports ``torchvision`` only to recognise ResNet blocks while listing a model's layers. PyPI's
    torchvision wheels are built for the CUDA build of torch and fail to import with the CPU build, so where
    torchvision cannot be imported the import sees an empty stand-in (classes nothing is an instance of).
    """
    if importlib.util.find_spec("rigl_torch") is None:
        return None
    try:
        importlib.import_module("torchvision")
    except Exception:  # missing, or built for another torch (a RuntimeError at import)
        resnet = SimpleNamespace(Bottleneck=type("Bottleneck", (), {}), BasicBlock=type("BasicBlock", (), {}))
        stand_in = ModuleType("torchvision")
        stand_in.models = SimpleNamespace(resnet=resnet)  # type: ignore[attr-defined]
        with mock.patch.dict(sys.modules, {"torchvision": stand_in}):
            return importlib.import_module("rigl_torch.RigL")
    return importlib.import_module("rigl_torch.RigL")


rigl_torch = import_rigl_torch()
sparsimony_rigl = optional("sparsimony.dst.rigl")
needs_rigl_torch = pytest.mark.skipif(rigl_torch is None, reason="oracle rigl-torch missing: pip install -e .[oracle]")
needs_sparsimony = pytest.mark.skipif(
    sparsimony_rigl is None, reason="oracle sparsimony missing: pip install --no-deps sparsimony==0.1.0"
)

SPARSITY = 0.75  # a binary fraction: n * s is exact in floats, so their floor(n * s) is our n * s
INTERVAL = 10
T_END = 95  # not a multiple of the interval: the boundary after the window differs (see the schedule test)
ALPHA = 0.3


def tanh_mlp() -> nn.Sequential:
    """A small tanh MLP: no dead units, so trained weights and dense gradients rarely tie."""
    th.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))


def regression_loss(model: nn.Module) -> th.Tensor:
    generator = th.Generator().manual_seed(1)
    x, y = th.randn(64, 8, generator=generator), th.randn(64, 4, generator=generator)
    return ((model(x) - y) ** 2).mean()


def rigl_schedule(schedule: str = "cosine") -> UpdateSchedule:
    """Our schedule with the oracles' settings: an update every INTERVAL steps from 0 to T_END."""
    config = ModuleConfig(
        regime="rigl",
        sparsity=SPARSITY,
        drop_fraction=ALPHA,
        drop_fraction_schedule=schedule,
        topology_update_interval=INTERVAL,
        topology_update_start=0,
        topology_update_end=T_END,
    )
    return UpdateSchedule(config, REGIMES["rigl"], T_END)


def our_swap(schedule: UpdateSchedule, step: int, n_active: int) -> int:
    """Connections our schedule exchanges at ``step`` (0 when no update is due there)."""
    if not schedule.boundaries(step - 1, step) or not schedule.mask_update_due(step, lambda: True):
        return 0
    return schedule.swap_count(n_active, n_active, schedule.progress(step))


def our_update(
    regime: type[Regime], weight: th.Tensor, mask: th.Tensor, n_swap: int, dense_grad: th.Tensor | None = None
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """Our update on copies, at a constant count: (new weight, new mask, dropped, grown) as flat indices."""
    weight, mask = weight.clone(), mask.float().clone()
    n_active = int(mask.sum())
    dropped, grown = update_mask(weight, mask, n_active, n_swap, regime.drop_score, regime.grow_score, dense_grad)
    return weight, mask, dropped, grown


def as_set(indices: th.Tensor) -> set[int]:
    return set(indices.tolist())


def unique_choice(scores: th.Tensor, k: int, largest: bool) -> bool:
    """Whether the ``k`` lowest (highest) scores are one set: no tie among the ``k + 1`` extreme ones.

    The oracle tests compare chosen sets exactly, so they check that the choice is unique first (a tie, e.g. the
    exact-zero gradients of units whose outgoing weights are all pruned, would let each side pick either weight).
    """
    extreme = th.topk(scores, min(k + 1, scores.numel()), largest=largest).values
    return bool((extreme[:-1] != extreme[1:]).all())


def check_gradient_update(
    weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor, n_swap: int, new_weight: th.Tensor, new_mask: th.Tensor
) -> bool:
    """Compare one oracle RigL update (``mask`` -> ``new_mask``) with ours on the same inputs.

    Known difference (rigl-torch's and sparsimony's): they grow among every position
    that is inactive *after* the drop, so a weight just dropped can be grown back at once; ours grows only
    positions that were inactive before the update, so every update exchanges exactly ``n_swap`` connections.
    With distinct scores this gives exact relations: each weight they drop we drop; the ones we drop and they
    keep are their regrown ones; each position they newly grow we grow, and our extra growth (one per weight they
    regrew) is our lowest-gradient growth. Without regrowth the masks are equal.

    :return: whether they regrew a just-dropped weight
    """
    before, after = mask.view(-1).bool(), new_mask.view(-1).bool()
    ours_weight, ours_mask, dropped, grown = our_update(REGIMES["rigl"], weight, mask, n_swap, dense_grad)
    score = dense_grad.view(-1).abs()
    candidates = ~before
    candidates[dropped] = True
    assert unique_choice(weight.view(-1)[before].abs(), n_swap, largest=False)
    assert unique_choice(score[~before], n_swap, largest=True) and unique_choice(score[candidates], n_swap, largest=True)
    their_dropped = as_set((before & ~after).nonzero().squeeze(1))
    their_grown = as_set((~before & after).nonzero().squeeze(1))
    regrown = as_set(dropped) - their_dropped
    assert their_dropped <= as_set(dropped) and all(after[i] for i in regrown)
    assert their_grown <= as_set(grown) and len(as_set(grown) - their_grown) == len(regrown)
    if not regrown:
        assert th.equal(ours_mask.view(-1).bool(), after)
    elif their_grown:
        assert score[list(as_set(grown) - their_grown)].max() < score[list(their_grown)].min()
    # Kept weights are untouched and grown ones start at exactly 0, in both
    both = ours_mask.view(-1).bool() & after
    assert th.equal(ours_weight.view(-1)[both], new_weight.view(-1)[both])
    assert not ours_weight.view(-1)[~ours_mask.view(-1).bool()].any()
    assert not ours_weight.view(-1)[grown].any()
    return bool(regrown)


def check_run(updates: list[tuple[int, bool]]) -> None:
    """The oracle updated at the steps where our schedule exchanges connections, and regrowth happened both ways."""
    assert [step for step, _ in updates] == list(range(INTERVAL, T_END, INTERVAL))
    regrew = [regrown for _, regrown in updates]
    assert any(regrew) and not all(regrew), "the run no longer covers both cases: change the seed or the length"


# --- rigl-torch ----------------------------------------------------------------------------------------------


@needs_rigl_torch
def test_rigl_torch_update_drops_and_grows_as_ours():
    """Drive rigl-torch's RigLScheduler through a training loop (the optimizer steps only when the scheduler returns
    True; it returns False at a mask update); before each call snapshot weights, masks and its dense gradients, and
    compare its mask update with ours, and its update steps and drop counts with our schedule's."""
    model = tanh_mlp()
    optimizer = th.optim.SGD(model.parameters(), lr=0.05)
    scheduler = rigl_torch.RigLScheduler(
        model, optimizer, dense_allocation=1 - SPARSITY, T_end=T_END, delta=INTERVAL, alpha=ALPHA, ignore_linear_layers=False
    )
    schedule = rigl_schedule()
    updates = []
    for _ in range(T_END + 2 * INTERVAL):
        optimizer.zero_grad()
        regression_loss(model).backward()
        sparse = [i for i, s in enumerate(scheduler.S) if s > 0]
        before = {
            i: (
                scheduler.W[i].detach().clone(),
                scheduler.backward_masks[i].clone(),
                scheduler.backward_hook_objects[i].dense_grad,
            )
            for i in sparse
        }
        if scheduler():
            optimizer.step()
            assert all(our_swap(schedule, scheduler.step, int(before[i][1].sum())) == 0 for i in sparse)
            continue
        regrew = False
        for i, (weight, mask, dense_grad) in before.items():
            n_active = int(mask.sum())
            n_swap = our_swap(schedule, scheduler.step, n_active)
            assert n_swap == int(n_active * scheduler.cosine_annealing())
            regrew |= check_gradient_update(
                weight, mask, dense_grad, n_swap, scheduler.W[i].detach(), scheduler.backward_masks[i]
            )
        updates.append((scheduler.step, regrew))
    check_run(updates)


@needs_rigl_torch
def test_rigl_torch_uniform_keeps_the_first_layer_dense():
    """Known difference (rigl-torch's RigLScheduler): its 'uniform' distribution keeps the first layer dense (and,
    by default, every linear layer: ignore_linear_layers=True); ours gives every sparse layer the same density
    and leaves the choice of layers to ``sparse_layers``."""
    model = tanh_mlp()
    scheduler = rigl_torch.RigLScheduler(
        model, th.optim.SGD(model.parameters(), lr=0.1), dense_allocation=1 - SPARSITY, T_end=T_END, ignore_linear_layers=False
    )
    assert scheduler.S == [0, SPARSITY, SPARSITY]
    shapes = [tuple(w.shape) for w in scheduler.W]
    assert layer_densities(shapes, SPARSITY, "uniform") == [1 - SPARSITY] * 3


# --- sparsimony ----------------------------------------------------------------------------------------------


def sparsimony_modules(shapes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Sparsimony's layer configs (what its sparsifiers pass to a distribution) for linear layers of ``shapes``."""
    fake_sparsity = importlib.import_module("sparsimony.parametrization.fake_sparsity").FakeSparsity
    groups = []
    for index, (n_out, n_in) in enumerate(shapes):
        module = nn.Linear(n_in, n_out)
        parametrize.register_parametrization(module, "weight", fake_sparsity(th.ones(n_out, n_in)))
        groups.append({"module": module, "tensor_name": "weight", "module_fqn": str(index)})
    return groups


def sparsimony_densities(name: str, shapes: list[tuple[int, int]], sparsity: float) -> list[float]:
    distributions = importlib.import_module("sparsimony.distributions.base")
    distribution = {"uniform": distributions.UniformDistribution, "erk": distributions.ERKDistribution}[name]()
    return [1.0 - float(group["sparsity"]) for group in distribution(sparsity, sparsimony_modules(shapes))]


def sparsimony_schedule(name: str) -> Any:
    schedulers = importlib.import_module("sparsimony.schedulers.base")
    scheduler = {"cosine": schedulers.CosineDecayScheduler, "constant": schedulers.ConstantScheduler}[name]
    return scheduler(ALPHA, T_END, INTERVAL)


@needs_sparsimony
def test_sparsimony_rigl_update_drops_and_grows_as_ours():
    """Drive sparsimony's RigL sparsifier through a training loop (optimizer step, then sparsifier step); before each
    sparsifier step snapshot the masked weights, masks and the dense gradients its parametrization accumulated."""
    from sparsimony.distributions.base import UniformDistribution
    from sparsimony.utils import get_mask, get_parametrization

    model = tanh_mlp()
    optimizer = th.optim.SGD(model.parameters(), lr=0.05)
    sparsifier = sparsimony_rigl.RigL(
        sparsimony_schedule("cosine"), UniformDistribution(), optimizer, sparsity=SPARSITY, init_method=None
    )
    sparsifier.prepare(model, [{"tensor_fqn": f"{i}.weight"} for i in (0, 2, 4)])
    layers = [model[i] for i in (0, 2, 4)]
    schedule = rigl_schedule()
    updates = []
    for _ in range(T_END + 2 * INTERVAL):
        optimizer.zero_grad()
        regression_loss(model).backward()
        optimizer.step()
        before = [(m.weight.detach().clone(), get_mask(m).clone(), get_parametrization(m).dense_grad.clone()) for m in layers]
        updated = sparsifier.step()
        step = sparsifier._step_count
        n_swaps = [our_swap(schedule, step, int(mask.sum())) for _, mask, _ in before]
        if not updated:
            assert all(th.equal(get_mask(m), mask) for m, (_, mask, _) in zip(layers, before, strict=True))
            assert not any(n_swaps)
            continue
        regrew = False
        for module, (weight, mask, dense_grad), n_swap in zip(layers, before, n_swaps, strict=True):
            assert n_swap == int(mask.sum() * sparsimony_schedule("cosine")(step))
            regrew |= check_gradient_update(weight, mask, dense_grad, n_swap, module.weight.detach(), get_mask(module))
        updates.append((step, regrew))
    check_run(updates)


@needs_sparsimony
def test_sparsimony_set_drops_as_ours_and_grows_uniformly():
    """SET: the magnitude drop is deterministic and compared exactly; the random growth is compared as statistics
    (per-position frequencies over many updates), since the two draw different random numbers.

    Known difference (sparsimony's UnstructuredRandomGrower): it draws among every position inactive after the
    drop, so a just-dropped weight is regrown with probability k / (inactive + k); ours never regrows one.
    """
    from sparsimony.pruners.unstructured import UnstructuredMagnitudePruner, UnstructuredRandomGrower

    weight, mask, _ = distinct_layer(6, 8, 12, seed=3)
    density, n_swap, trials = 12 / 48, 3, 3000
    pruned = UnstructuredMagnitudePruner.calculate_mask(n_swap / 12, mask.clone(), weight)
    their_dropped = as_set((mask.bool() & ~pruned.bool()).view(-1).nonzero().squeeze(1))
    ours, theirs = th.zeros(48), th.zeros(48)
    th.manual_seed(0)
    for _ in range(trials):
        _, _, dropped, grown = our_update(REGIMES["set"], weight, mask, n_swap)
        assert as_set(dropped) == their_dropped
        ours[grown] += 1
        theirs += UnstructuredRandomGrower.calculate_mask(1 - density, pruned.clone()).view(-1) - pruned.view(-1)
    inactive = ~mask.view(-1).bool()
    dropped_positions = list(their_dropped)

    def assert_uniform(counts: th.Tensor, candidates: int) -> None:
        p = n_swap / candidates
        tolerance = 5 * math.sqrt(trials * p * (1 - p))  # 5 binomial standard deviations
        assert (counts - trials * p).abs().max() < tolerance

    assert_uniform(ours[inactive], inactive.sum().item())
    assert not ours[dropped_positions].any()
    assert_uniform(theirs[inactive | ~pruned.view(-1).bool()], inactive.sum().item() + n_swap)


@needs_sparsimony
def test_tied_scores_are_compared_as_multisets():
    """With tied scores at the cut-off either side may pick any of the tied entries, so the choices are compared as
    multisets of scores, and exactly for the entries strictly beyond the cut-off (sparsimony's pruner and grower)."""
    from sparsimony.pruners.unstructured import UnstructuredGradientGrower, UnstructuredMagnitudePruner

    generator = th.Generator().manual_seed(4)
    mask = (th.rand(16, 16, generator=generator) < 0.25).float()
    weight = th.randint(1, 4, (16, 16), generator=generator).float() * mask / 10  # |w| in {0.1, 0.2, 0.3}
    # Growth scores tied too; 0 on the active positions, so that sparsimony does not regrow a dropped weight
    dense_grad = th.randint(1, 4, (16, 16), generator=generator).float() * (1 - mask)
    n_swap = int(mask.sum()) // 3
    _, _, dropped, grown = our_update(REGIMES["rigl"], weight, mask, n_swap, dense_grad)
    pruned = UnstructuredMagnitudePruner.calculate_mask(n_swap / mask.sum().item(), mask.clone(), weight)
    regrown = UnstructuredGradientGrower.calculate_mask(1 - mask.mean().item(), pruned.clone(), dense_grad)
    their_dropped = (mask.bool() & ~pruned.bool()).view(-1).nonzero().squeeze(1)
    their_grown = (regrown.bool() & ~pruned.bool()).view(-1).nonzero().squeeze(1)
    for ours, theirs, scores, candidates, largest in (
        (dropped, their_dropped, weight.view(-1).abs(), mask.view(-1).bool(), False),
        (grown, their_grown, dense_grad.view(-1).abs(), ~mask.view(-1).bool(), True),
    ):
        assert not unique_choice(scores[candidates], n_swap, largest)  # a tie at the cut-off: the sets may differ
        assert th.equal(scores[ours].sort().values, scores[theirs].sort().values)
        preference = scores if largest else -scores
        cut = preference[ours].min()
        assert as_set(ours[preference[ours] > cut]) == as_set(theirs[preference[theirs] > cut])


@needs_sparsimony
def test_sparsimony_set_known_differences():
    """Two differences of sparsimony 0.1.0's SET that are bugs of theirs, asserted so that a fixed release shows up.

    - ``SET.grow_mask`` discards the result of the ``torch.where`` meant to set grown weights to ``grown_weights_init``:
      a grown weight takes the value the masked-out parameter still holds (ours start at exactly 0).
    - ``SET._step`` advances its step counter twice per call, so its scheduler sees odd steps only.
    - ``SET._assert_sparsity_level`` checks the active count against ``numel * sparsity`` (not ``1 - sparsity``), so
      its updates pass only at sparsity 0.5, the sparsity used here.
    """
    from sparsimony.distributions.base import UniformDistribution
    from sparsimony.dst.set import SET

    def sparsifier_on_a_layer(sparsity: float) -> tuple[nn.Module, Any]:
        model = tanh_mlp()
        optimizer = th.optim.SGD(model.parameters(), lr=0.05)
        sparsifier = SET(sparsimony_schedule("constant"), UniformDistribution(), optimizer, sparsity, init_method=None)
        sparsifier.prepare(model, [{"tensor_fqn": "2.weight"}])
        return model[2], sparsifier

    layer, sparsifier = sparsifier_on_a_layer(SPARSITY)
    with pytest.raises(AssertionError):
        sparsifier.update_mask(layer, "weight", SPARSITY, ALPHA)
    layer, sparsifier = sparsifier_on_a_layer(0.5)
    parametrization = layer.parametrizations.weight
    mask = parametrization[0].mask
    before, stored = mask.clone(), parametrization.original.detach().clone()
    sparsifier.update_mask(layer, "weight", 0.5, ALPHA)
    grown = mask.bool() & ~before.bool()
    assert grown.any() and layer.weight[grown].ne(0).all()
    assert th.equal(layer.weight[grown], stored[grown])
    sparsifier.step()
    assert sparsifier._step_count == 2


@needs_sparsimony
@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_drop_fraction_schedules_agree_step_by_step(kind):
    """Our drop fraction at each boundary equals sparsimony's scheduler, and rigl-torch's cosine_annealing.

    Known difference: our window contains the boundary whose interval began inside it, so with T_END not a multiple
    of the interval we also update at the first boundary after T_END (100), where the cosine fraction is 0 (nothing
    exchanged); sparsimony updates up to T_END included, rigl-torch before T_END only. Sparsimony's constant scheduler
    keeps the fraction up to T_END; ours keeps it to the same last boundary.
    """
    schedule = rigl_schedule(kind)
    theirs = sparsimony_schedule(kind)
    cosine = DROP_FRACTION_SCHEDULES["cosine"]
    for step in range(1, T_END + 3 * INTERVAL):
        due = bool(schedule.boundaries(step - 1, step)) and schedule.mask_update_due(step, lambda: True)
        ours = DROP_FRACTION_SCHEDULES[kind](ALPHA, schedule.progress(step)) if due else None
        if step == T_END + INTERVAL - T_END % INTERVAL:  # 100: the boundary after the window
            assert theirs(step) is None and ours == (0.0 if kind == "cosine" else ALPHA)
            continue
        assert ours is None if theirs(step) is None else ours == pytest.approx(theirs(step), rel=1e-12, abs=1e-15)
    if rigl_torch is not None:
        model = tanh_mlp()
        scheduler = rigl_torch.RigLScheduler(model, th.optim.SGD(model.parameters(), lr=0.1), 0.25, T_END, alpha=ALPHA)
        for scheduler.step in range(T_END + 1):
            assert scheduler.cosine_annealing() == pytest.approx(
                cosine(ALPHA, schedule.progress(scheduler.step)), rel=1e-12, abs=1e-15
            )


SHAPES = [
    [(256, 17), (256, 256), (6, 256)],  # a SAC actor on HalfCheetah: the input and output layers go dense under ERK
    [(64, 4), (64, 64), (2, 64)],
    [(400, 300), (300, 400), (100, 300)],  # no layer overflows at 50% and more
]


@needs_sparsimony
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.875, 0.9375])
@pytest.mark.parametrize("distribution", ["erk", "uniform"])
def test_layer_densities_equal_theirs(shapes, sparsity, distribution):
    """With binary-fraction sparsities (n * s exact for every layer) the densities are equal to float rounding."""
    assert layer_densities(shapes, sparsity, distribution) == pytest.approx(
        sparsimony_densities(distribution, shapes, sparsity), rel=1e-12
    )


@needs_sparsimony
@pytest.mark.parametrize("sparsity", [0.8, 0.9, 0.95])
def test_erdos_renyi_equals_erk_without_overflow(sparsity):
    """Our Erdos-Renyi (no layer made dense) equals their ERK where no layer's density would exceed 1."""
    shapes = SHAPES[2]
    theirs = sparsimony_densities("erk", shapes, sparsity)
    assert max(theirs) < 1
    assert layer_densities(shapes, sparsity, "erdos_renyi") == pytest.approx(theirs, rel=1e-9)


@needs_sparsimony
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("sparsity", [0.33, 0.8, 0.9, 0.95])
def test_erk_budget_differs_by_their_per_layer_floor(shapes, sparsity):
    """Known difference (sparsimony's ERKDistribution): it budgets n - floor(n * s) active weights per layer before
    solving, ours (1 - s) * n, so its total exceeds ours by the sum of the fractional parts of n * s (less than one
    weight per layer); the dense layers are the same."""
    ours = layer_densities(shapes, sparsity, "erk")
    theirs = sparsimony_densities("erk", shapes, sparsity)
    sizes = [n_out * n_in for n_out, n_in in shapes]
    assert [d == 1 for d in ours] == [d == 1 for d in theirs]
    surplus = sum(n * sparsity - math.floor(n * sparsity) for n in sizes)
    total = sum(d * n for d, n in zip(theirs, sizes, strict=True)) - sum(d * n for d, n in zip(ours, sizes, strict=True))
    assert total == pytest.approx(surplus, abs=1e-6)


# --- the dense regime trains as plain SB3 --------------------------------------------------------------------


def assert_same(ours: Any, theirs: Any, where: str) -> None:
    """Recursive exact equality of parameters and optimizer states."""
    if isinstance(theirs, th.Tensor):
        assert th.equal(ours, theirs), where
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert ours == theirs, where


FUSED = {"fused": True}
#: env, algorithm settings, optimizer_kwargs of the SB3 model (CrossQPolicy's default, betas (0.5, 0.999), applies only
#: when no optimizer_kwargs are given, so they are given with fused=True)
SETTINGS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "sparse_sac": ("Pendulum-v1", {}, FUSED),
    "sparse_td3": ("Pendulum-v1", {}, FUSED),
    "sparse_tqc": ("Pendulum-v1", {}, FUSED),
    "sparse_crossq": ("Pendulum-v1", {}, {"betas": (0.5, 0.999), **FUSED}),
    "sparse_dqn": ("CartPole-v1", {"train_freq": 1, "target_update_interval": 50}, FUSED),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_dense_regime_trains_as_sb3(name: str):
    """``regime="dense"`` with the same seed gives bit-identical parameters and optimizer states after 250 gradient
    steps. Our policies switch Adam to PyTorch's fused kernel (core.optim.prefer_fused), which rounds differently
    from SB3's default kernel (about 5e-3 apart after 250 SAC steps with SB3's default networks), so the SB3 model
    is given fused=True."""
    entry = ALGORITHMS[name]
    env, settings, optimizer_kwargs = SETTINGS[name]
    kwargs: dict[str, Any] = dict(learning_starts=50, batch_size=32, buffer_size=1000, seed=0, device="cpu", **settings)
    net_arch = [64, 64]  # small networks keep the test fast (CrossQ's critic is 2048 wide by default)
    sb3_policy = {"net_arch": net_arch, "optimizer_kwargs": optimizer_kwargs}
    sb3 = entry.dense_class("MlpPolicy", env, policy_kwargs=sb3_policy, **kwargs).learn(300)
    ours = entry.sparse_class("MlpPolicy", env, regime="dense", policy_kwargs={"net_arch": net_arch}, **kwargs).learn(300)
    optimizers = [ours.policy.optimizer] if name == "sparse_dqn" else [ours.actor.optimizer, ours.critic.optimizer]
    assert all(group["fused"] for optimizer in optimizers for group in optimizer.param_groups)
    assert_same(ours.get_parameters(), sb3.get_parameters(), name)
    assert ours.num_timesteps == sb3.num_timesteps == 300 and ours._n_updates == sb3._n_updates == 250
