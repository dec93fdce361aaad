"""The update schedule: when a module's mask is updated, and what each update does (core.schedules.UpdateSchedule)."""

import itertools
import math
from typing import Any

import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.callbacks import BaseCallback
from test_core import build, counts, masks, shapes, train_step

from sb3_sparse import SparseSAC
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.distributions import active_count
from sb3_sparse.core.engine import SparseEngine
from sb3_sparse.core.regimes import NE, get_regime
from sb3_sparse.core.schedules import UpdateSchedule


def schedule(horizon: int = 1000, **settings: Any) -> UpdateSchedule:
    config = ModuleConfig(**settings)
    return UpdateSchedule(config, get_regime(config.regime), horizon)


@given(
    interval=st.integers(1, 50),
    start=st.integers(0, 200),
    steps=st.lists(st.integers(0, 120), max_size=30),
)
def test_boundaries_between_readings_are_neither_lost_nor_repeated(interval, start, steps):
    """However the clock is split into readings, the boundaries crossed are every multiple of the interval once."""
    update = schedule(topology_update_interval=interval)
    readings = [start]
    for step in steps:
        readings.append(readings[-1] + step)
    crossed = [b for previous, now in itertools.pairwise(readings) for b in update.boundaries(previous, now)]
    assert crossed == [b for b in range(start + 1, readings[-1] + 1) if b % interval == 0]


def test_window_from_fractions_and_steps():
    update = schedule(horizon=1000, topology_update_interval=100, topology_update_start=0.1, topology_update_end=0.45)
    assert (update.start, update.end) == (100, 450)
    # the interval that ends at a boundary began inside the window
    assert [b for b in range(0, 1001, 100) if update.in_window(b)] == [100, 200, 300, 400, 500]
    assert update.progress(100) == 0.0 and update.progress(275) == 0.5 and update.progress(900) == 1.0
    # a step end before a fraction start: an empty window at the start
    empty = schedule(horizon=1000, topology_update_start=0.5, topology_update_end=100)
    assert (empty.start, empty.end) == (500, 500)
    assert schedule(horizon=1000, topology_update_start=30, topology_update_end=700).end == 700


def test_next_update_says_when_a_run_has_none():
    update = schedule(horizon=500, topology_update_interval=1000)
    assert update.next_update(0) is None  # the first boundary is past the run
    assert schedule(horizon=5000, topology_update_interval=1000).next_update(0) == 1000
    assert schedule(horizon=5000, topology_update_interval=1000, topology_update_end=0.1).next_update(600) == 1000
    assert schedule(horizon=5000, topology_update_interval=1000, topology_update_end=0.1).next_update(1000) is None
    assert schedule(horizon=5000, regime="static", topology_update_interval=100).next_update(0) is None


SHAPES = [(24, 6), (24, 24)]


@pytest.mark.parametrize("regime", ["set", "rigl", "static", "dense"])
def test_constant_regimes_keep_their_counts_and_swap_by_the_drop_fraction(regime):
    update = schedule(regime=regime, drop_fraction=0.4, drop_fraction_schedule="cosine", topology_update_end=800)
    current = [70, 290]
    for progress in (0.0, 0.5, 1.0):
        assert update.active_counts(SHAPES, current, progress) == current
        fraction = 0.2 * (1 + math.cos(math.pi * progress)) if regime in ("set", "rigl") else 0.0
        assert [update.swap_count(n, n, progress) for n in current] == [math.floor(fraction * n) for n in current]


@pytest.mark.parametrize(("regime", "initial"), [("gmp", 0.0), ("ne", 0.8)])
def test_changing_regimes_follow_the_cubic_schedule(regime, initial):
    final = 0.5 if regime == "gmp" else 0.3
    update = schedule(regime=regime, sparsity=final, initial_sparsity=initial, drop_fraction=0.25)
    for progress in (0.0, 0.3, 1.0):
        sparsity = final + (initial - final) * (1.0 - progress) ** 3
        assert update.sparsity(progress) == pytest.approx(sparsity)
        assert update.active_counts(SHAPES, [1, 1], progress) == [active_count(shape, 1 - sparsity) for shape in SHAPES]
    if regime == "gmp":  # prunes only
        assert update.swap_count(100, 60, 0.5) == 0
    else:  # grows 50 / (1 - r), prunes r of that; at its target, swaps by the drop fraction
        assert update.swap_count(100, 150, 0.5) == round(NE.PRUNE_RATIO / (1 - NE.PRUNE_RATIO) * 50)
        assert update.swap_count(100, 100, 0.5) == 25


def engine_with(config: ModuleConfig) -> tuple[SparseEngine, Any]:
    th.manual_seed(0)
    binding = build(config)
    engine = SparseEngine({"net": config})
    engine.attach({"net": binding})
    engine.step({"net": binding}, 0, {"net": 100}, {"net": 1000})  # dense gradients kept: the next update is near
    return engine, binding


@pytest.mark.parametrize("regime", ["gmp", "rigl"])
def test_one_call_does_every_update_its_clock_crossed(regime):
    """Three boundaries crossed in one call: three updates, in order, the last at the last boundary's progress
    (rigl ranks all of them with the dense gradient of the last training step)."""
    config = ModuleConfig(
        regime=regime, sparsity=0.9, topology_update_interval=10, topology_update_end=100, schedule_unit="gradient_steps"
    )
    engine, binding = engine_with(config)
    x, y = th.randn(16, 6), th.randn(16, 2)
    for _ in range(35):
        train_step(binding, x, y)
    assert engine.step({"net": binding}, 1, {"net": 100}) == ["net"]
    state = engine.module_state("net")
    assert (state["n_updates"], state["last_update_step"], engine.state["n_updates"]) == (3, 30, 3)
    update = engine.schedule("net")
    assert counts(binding.online) == update.active_counts(shapes(binding.online), counts(binding.online), 0.3)


@settings(max_examples=15, deadline=None)
@given(chunks=st.lists(st.integers(0, 25), min_size=1, max_size=8))
def test_the_engine_updates_once_at_every_boundary_however_training_is_split(chunks):
    """Gradient steps between calls in chunks of any size: one update per boundary crossed, at that boundary."""
    config = ModuleConfig(topology_update_interval=7, topology_update_end=10_000, schedule_unit="gradient_steps")
    engine, binding = engine_with(config)
    x, y = th.randn(4, 6), th.randn(4, 2)
    done = 0
    for env_step, chunk in enumerate(chunks, start=1):
        for _ in range(chunk):
            train_step(binding, x, y)
        done += chunk
        engine.step({"net": binding}, env_step, {"net": 10_000})
        state = engine.module_state("net")
        assert state["n_updates"] == done // 7
        assert state["last_update_step"] == (done // 7 * 7 if done >= 7 else -1)
    assert engine.state["n_updates"] == done // 7


def test_dormant_units_are_recycled_once_per_call(monkeypatch):
    """Boundaries caught up in one call share one measurement: a static module recycles its units once."""
    config = ModuleConfig(regime="static", topology_update_interval=5, topology_update_end=100, recycle_dormant=True)
    engine, binding = engine_with(config)
    recycled = []
    monkeypatch.setattr(engine, "recycle", lambda name, binding, dormant: recycled.append(name))
    train_step(binding, th.randn(4, 6), th.randn(4, 2))
    engine.step({"net": binding}, 12, {"net": 100})
    assert recycled == ["net"]


def test_a_state_saved_by_the_previous_version_loads():
    """Keys added since (the agent's count, the drop fraction) get defaults; nothing new is required."""
    old = {"n_updates": 3, "checked_step": 30, "last_update_step": 30, "optimizer_steps": 30}
    old.update({"optimizer_steps_at_update": 30, "accounted_steps": 30, "changed_fraction": 0.1})
    old.update({"train_flops": 1.0, "dense_train_flops": 2.0})
    state = {"modules": {"actor": dict(old), "critic": {**old, "n_updates": 4}}}
    engine = SparseEngine({"actor": ModuleConfig(), "critic": ModuleConfig()}, state)
    assert state["n_updates"] == 4 and state["modules"]["actor"]["drop_fraction"] == 0.0
    assert engine.module_state("critic")["checked_step"] == 30


@pytest.mark.parametrize("regime", ["set", "ne"])
def test_the_drop_fraction_recorded_is_the_one_applied(regime):
    """The engine records the fraction of the active weights that the update exchanged (dropped, and grown
    elsewhere on top of the change in count): for NE while it grows, its prune ratio of the growth."""
    config = ModuleConfig(regime=regime, sparsity=0.5, initial_sparsity=0.6 if regime == "ne" else None, drop_fraction=0.2)
    engine, binding = engine_with(config)
    train_step(binding, th.randn(16, 6), th.randn(16, 2))
    before = masks(binding.online)
    assert engine.update("net", binding, 0.5, 10)
    after = masks(binding.online)
    dropped = sum(int((before[key].bool() & ~after[key].bool()).sum()) for key in before)
    active = sum(int(mask.sum()) for mask in before.values())
    fraction = engine.module_state("net")["drop_fraction"]
    assert fraction == dropped / active
    if regime == "ne":
        growth = sum(counts(binding.online)) - active
        assert growth > 0 and fraction == pytest.approx(2 / 3 * growth / active, abs=0.01)
    else:
        assert fraction == pytest.approx(0.2, abs=0.01)


class DumpRecorder(BaseCallback):
    """The values recorded for the logger at each step (after the topology callback), and the engine state."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[float, float, float]] = []

    def _on_step(self) -> bool:
        values = self.model.logger.name_to_value
        state = self.model.dst_state
        if "sparse/critic_drop_fraction" in values:
            logged = (values["sparse/critic_drop_fraction"], values["sparse/n_topology_updates"])
            self.logged.append((*logged, state["modules"]["critic"]["drop_fraction"]))
        return True


def sac(**kwargs: Any) -> SparseSAC:
    settings = {"learning_starts": 0, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}, "seed": 0, **kwargs}
    return SparseSAC("MlpPolicy", "Pendulum-v1", **settings)


def test_the_logged_drop_fraction_is_the_engines_for_ne():
    model = sac(regime="ne", sparsity=0.3, topology_update_interval=50, topology_update_end=1.0)
    recorder = DumpRecorder()
    model.learn(200, callback=recorder)
    assert recorder.logged
    assert all(logged == state for logged, _, state in recorder.logged)
    # growing, NE exchanges its prune ratio of the growth, not the drop fraction
    drop_fraction = model.policy.module_configs["critic"].drop_fraction
    assert recorder.logged[-1][0] > 0 and recorder.logged[-1][0] != pytest.approx(drop_fraction)
    # the actor and the critic update together: one update of the agent per boundary
    assert recorder.logged[-1][1] == 4 == model.dst_state["modules"]["critic"]["n_updates"]


def long_train_calls(**kwargs: Any) -> SparseSAC:
    """One train() of 200 gradient steps per episode of Pendulum."""
    return sac(
        schedule_unit="gradient_steps",
        gradient_steps=-1,
        train_freq=(1, "episode"),
        topology_update_interval=100,
        **kwargs,
    )


def test_1600_gradient_steps_at_an_interval_of_100_give_16_updates():
    model = long_train_calls(topology_update_end=1.0)
    model.learn(1600)
    for module in ("actor", "critic"):
        state = model.dst_state["modules"][module]
        assert (state["optimizer_steps"], state["n_updates"], state["last_update_step"]) == (1600, 16, 1600)
    assert model.dst_state["n_updates"] == 16


def test_resume_continues_the_schedule(tmp_path):
    """Chunked learn and save/load/resume: every boundary once, the window in steps of the whole run."""
    model = long_train_calls(topology_update_end=1200)
    model.learn(800)
    assert model.dst_state["modules"]["critic"]["n_updates"] == 8
    model.save(tmp_path / "model")
    loaded = SparseSAC.load(tmp_path / "model", env=model.get_env())
    loaded.learn(800, reset_num_timesteps=False)
    state = loaded.dst_state["modules"]["critic"]
    # updates at 100, ..., 1200 (the window's end), then none
    assert (state["n_updates"], state["last_update_step"], loaded.dst_state["n_updates"]) == (12, 1200, 12)
