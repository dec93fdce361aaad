"""Short real training runs: every algorithm x regime, a MuJoCo env, schedules and logged metrics."""

import csv
import itertools
import math
import warnings
from typing import Any

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger, configure

from sb3_sparse import SparseSAC, SparseTD3
from sb3_sparse.core.masking import get_mask, sparse_weights, weight_state

ALGOS = {"sac": SparseSAC, "td3": SparseTD3}
SMALL = {"learning_starts": 50, "batch_size": 32}
SPARSE_KEYS = {
    "sparse/actor_sparsity",
    "sparse/critic_sparsity",
    "sparse/global_sparsity",
    "sparse/actor_changed_fraction",
    "sparse/critic_changed_fraction",
    "sparse/n_topology_updates",
    "sparse/train_flops_ratio",
    "sparse/inference_flops_ratio",
    "sparse/run_train_flops_ratio",
    "sparse/actor_drop_fraction",
    "sparse/critic_drop_fraction",
}


class Collector(KVWriter):
    """Keeps every dump of the SB3 logger in memory."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append({**key_values, "step": step})


def collect_logs(model: Any) -> Collector:
    collector = Collector()
    model.set_logger(Logger(folder=None, output_formats=[collector]))
    return collector


class UpdateRecorder(BaseCallback):
    """(env step, module, changed fraction) of every mask update (the topology callback runs first), and the
    schedule step of each (``last_update_step``: the multiple of the interval that was crossed)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[int, str, float]] = []
        self.schedule_steps: dict[str, list[int]] = {}
        self.n_updates: dict[str, int] = {}

    def _on_step(self) -> bool:
        for module, record in self.model.dst_state["modules"].items():
            if record["n_updates"] > self.n_updates.get(module, 0):
                assert record["n_updates"] == self.n_updates.get(module, 0) + 1
                self.n_updates[module] = record["n_updates"]
                self.updates.append((self.num_timesteps, module, record["changed_fraction"]))
                self.schedule_steps.setdefault(module, []).append(record["last_update_step"])
        return True


def sparse_layers(model: Any, module: str) -> list[tuple[str, Any, str]]:
    return list(sparse_weights(model.policy.sparse_bindings()[module].online))


def masks(model: Any) -> dict[str, th.Tensor]:
    return {
        f"{module}.{name}": get_mask(owner, weight).clone()
        for module in ("actor", "critic")
        for name, owner, weight in sparse_layers(model, module)
    }


def weights(model: Any) -> dict[str, th.Tensor]:
    return {name: value.detach().clone() for name, value in model.policy.named_parameters()}


def assert_exact_zeros(model: Any) -> None:
    for binding in model.policy.sparse_bindings().values():
        for net in (binding.online, binding.target):
            if net is not None:
                for name, owner, weight in sparse_weights(net):
                    assert (getattr(owner, weight)[get_mask(owner, weight) == 0] == 0).all(), name


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("regime", ["set", "rigl", "static"])
def test_pendulum(algo, regime):
    model = ALGOS[algo](
        "MlpPolicy",
        "Pendulum-v1",
        regime=regime,
        topology_update_interval=100,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
        **SMALL,
    )
    logs = collect_logs(model)
    masks_before, weights_before = masks(model), weights(model)
    model.learn(400, log_interval=1)
    state = model.dst_state["modules"]
    masks_after = masks(model)
    # Training happened.
    assert model._n_updates >= 340
    assert all(not th.equal(weights_before[name], value) for name, value in weights(model).items() if "weight" in name)
    assert_exact_zeros(model)
    drop_fraction = model.policy.module_configs["critic"].drop_fraction
    assert drop_fraction == (0.1 if algo == "sac" else 0.05)
    if regime == "static":
        assert all(record["n_updates"] == 0 and record["last_update_step"] == -1 for record in state.values())
        assert all(th.equal(masks_before[key], masks_after[key]) for key in masks_before)
    else:
        # Updates at 100, 200, 300 and 400 (the window ends at 0.95 * 400 = 380: the interval that ends at
        # 400 began inside it).
        for module in ("actor", "critic"):
            assert state[module]["n_updates"] == 4
            assert state[module]["last_update_step"] == 400
            assert 0 < state[module]["changed_fraction"] <= drop_fraction
            assert state[module]["changed_fraction"] == pytest.approx(drop_fraction, abs=0.01)
        assert all(not th.equal(masks_before[key], masks_after[key]) for key in masks_before)
        # Same number of active weights per layer.
        assert all(int(masks_before[key].sum()) == int(masks_after[key].sum()) for key in masks_before)
    # The sparse/ metrics reach the logger at every dump (episodes of 200 steps).
    assert len(logs.dumps) == 2
    for dump in logs.dumps:
        assert set(dump) >= SPARSE_KEYS
        assert dump["sparse/actor_sparsity"] == pytest.approx(0.5, abs=1e-3)
        assert dump["sparse/critic_sparsity"] == pytest.approx(0.5, abs=1e-3)
        assert 0.5 < dump["sparse/train_flops_ratio"] < 1.0
        # Constant densities: the run so far cost the current ratio (SAC), or, as TD3 trains its actor
        # at half the critic's pace, a mix of the two modules' ratios.
        assert 0.5 < dump["sparse/run_train_flops_ratio"] < 1.0
        if algo == "sac":
            assert dump["sparse/run_train_flops_ratio"] == pytest.approx(dump["sparse/train_flops_ratio"])
        # the fraction exchanged by the last update (the drop fraction, rounded down per layer)
        expected_fraction = 0.0 if regime == "static" else drop_fraction
        assert dump["sparse/actor_drop_fraction"] == pytest.approx(expected_fraction, abs=0.01)
        assert dump["sparse/critic_drop_fraction"] == pytest.approx(expected_fraction, abs=0.01)
    # Recorded at each update (before the dump of the same step) and at the end of each rollout; the actor and
    # the critic update at the same steps: one update of the agent each time.
    n_logged = [dump["sparse/n_topology_updates"] for dump in logs.dumps]
    assert n_logged == ([0, 0] if regime == "static" else [2, 4])


@pytest.mark.parametrize(("algo", "regime"), [("sac", "set"), ("td3", "rigl")])
def test_halfcheetah(tmp_path, capsys, algo, regime):
    model = ALGOS[algo](
        "MlpPolicy",
        "HalfCheetah-v5",
        regime=regime,
        sparsity=0.8,
        topology_update_interval=100,
        verbose=1,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        **SMALL,
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    masks_before = masks(model)
    # HalfCheetah episodes last 1000 steps: nothing is dumped during the run, so dump what was recorded last.
    model.learn(250)
    model.logger.dump(model.num_timesteps)
    assert model.dst_state["modules"]["critic"]["n_updates"] == 2
    assert model.dst_state["modules"]["actor"]["n_updates"] == 2
    assert all(not th.equal(masks_before[key], value) for key, value in masks(model).items())
    assert_exact_zeros(model)
    printed = capsys.readouterr().out
    assert "Mask update at step 100: critic changed" in printed
    assert "Mask update at step 200: actor changed" in printed
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows and set(rows[-1]) >= SPARSE_KEYS
    assert float(rows[-1]["sparse/n_topology_updates"]) == 2  # actor and critic at steps 100 and 200
    assert float(rows[-1]["sparse/critic_sparsity"]) == pytest.approx(0.8, abs=1e-3)
    assert float(rows[-1]["sparse/actor_drop_fraction"]) == pytest.approx(model.dst_state["modules"]["actor"]["drop_fraction"])
    assert float(rows[-1]["sparse/actor_drop_fraction"]) == pytest.approx(
        model.policy.module_configs["actor"].drop_fraction, abs=0.01
    )


def test_static_actor_dynamic_critic():
    # MST: the actor keeps its initial mask while the critic is rewired by gradient.
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        regime="rigl",
        modules={"actor": {"regime": "static"}},
        topology_update_interval=100,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [32, 32]},
        seed=1,
        **SMALL,
    )
    logs = collect_logs(model)
    before = masks(model)
    model.learn(200, log_interval=1)
    after = masks(model)
    state = model.dst_state["modules"]
    assert state["actor"]["n_updates"] == 0 and state["actor"]["last_update_step"] == -1
    assert state["critic"]["n_updates"] == 2 and state["critic"]["last_update_step"] == 200
    for key in before:
        assert th.equal(before[key], after[key]) == key.startswith("actor.")
    # The static actor never kept dense gradients.
    assert all(weight_state(owner, weight).dense_grad is None for _, owner, weight in sparse_layers(model, "actor"))
    assert logs.dumps[-1]["sparse/actor_drop_fraction"] == 0.0
    assert logs.dumps[-1]["sparse/critic_drop_fraction"] == pytest.approx(0.1, abs=0.01)
    assert logs.dumps[-1]["sparse/actor_changed_fraction"] == 0.0
    assert logs.dumps[-1]["sparse/critic_changed_fraction"] == pytest.approx(0.1, abs=0.01)


def test_actor_interval():
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        topology_update_interval=100,
        modules={"actor": {"topology_update_interval": 150}},
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [32, 32]},
        seed=2,
        **SMALL,
    )
    recorder = UpdateRecorder()
    model.learn(320, callback=recorder)
    assert [(step, module) for step, module, _ in recorder.updates] == [
        (100, "critic"),
        (150, "actor"),
        (200, "critic"),
        (300, "actor"),
        (300, "critic"),
    ]


def test_cosine_schedule_and_window():
    # Short episodes so that the logger dumps often.
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = SparseTD3(
        "MlpPolicy",
        env,
        drop_fraction=0.5,
        drop_fraction_schedule="cosine",
        topology_update_interval=50,
        topology_update_start=100,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [32, 32]},
        seed=3,
        **SMALL,
    )
    logs = collect_logs(model)
    recorder = UpdateRecorder()
    model.learn(400, callback=recorder, log_interval=1)
    # No update before topology_update_start; one every 50 steps after it, up to the end of the run.
    critic_updates = [(step, fraction) for step, module, fraction in recorder.updates if module == "critic"]
    assert [step for step, _ in critic_updates] == [100, 150, 200, 250, 300, 350, 400]
    # The moved fraction follows the cosine decay from 0.5 (at step 100) to 0 (at step 400).
    fractions = [fraction for _, fraction in critic_updates]
    assert all(a > b for a, b in itertools.pairwise(fractions))
    assert fractions[-1] == 0.0
    for step, fraction in critic_updates:
        expected = 0.25 * (1 + math.cos(math.pi * (step - 100) / 300))
        assert fraction == pytest.approx(expected, abs=0.01)
    # The logged drop fraction: the fraction exchanged by the update of the dump's step (0 before the first).
    logged = [(dump["time/total_timesteps"], dump["sparse/critic_drop_fraction"]) for dump in logs.dumps]
    assert logged == [(50, 0.0), *critic_updates]


def test_topology_updates_need_training():
    # No gradient step before learning_starts: the due updates are skipped.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=250,
        topology_update_interval=100,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [16]},
        seed=4,
    )
    recorder = UpdateRecorder()
    model.learn(300, callback=recorder)
    assert [step for step, _, _ in recorder.updates] == [300, 300]


class OptimizerStepsAtUpdates(BaseCallback):
    """At every mask update of a module, its optimizer steps so far (the topology callback runs first)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, list[tuple[int, int]]] = {"actor": [], "critic": []}
        self.n_updates = {"actor": 0, "critic": 0}

    def _on_step(self) -> bool:
        for module, record in self.model.dst_state["modules"].items():
            if record["n_updates"] > self.n_updates[module]:
                self.n_updates[module] = record["n_updates"]
                self.seen[module].append((self.num_timesteps, record["optimizer_steps"]))
        return True


def test_td3_actor_is_rewired_only_after_it_was_trained():
    # The critic is trained first at step 99 (gradient step 1); TD3 trains the actor at even gradient steps,
    # so at step 100 only the critic has been trained: the actor's first update waits for step 200.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=98,
        batch_size=32,
        topology_update_interval=100,
        policy_kwargs={"net_arch": [16]},
        seed=6,
    )
    assert model.policy_delay == 2
    recorder = OptimizerStepsAtUpdates()
    model.learn(210, callback=recorder)
    assert [step for step, _ in recorder.seen["critic"]] == [100, 200]
    assert [step for step, _ in recorder.seen["actor"]] == [200]
    # An update every env step: the actor is rewired only after each of its own optimizer steps.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        regime="rigl",
        learning_starts=30,
        batch_size=32,
        topology_update_interval=1,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [16]},
        seed=7,
    )
    recorder = OptimizerStepsAtUpdates()
    model.learn(70, callback=recorder)
    for module in ("actor", "critic"):
        steps = [optimizer_steps for _, optimizer_steps in recorder.seen[module]]
        assert steps[0] > 0
        assert all(a < b for a, b in itertools.pairwise(steps))
    assert len(recorder.seen["critic"]) == 39  # steps 32 to 70
    assert len(recorder.seen["actor"]) == 19  # after each actor step but the last (gradient steps 2, 4, ..., 38)
    assert model.dst_state["modules"]["actor"]["optimizer_steps"] == 20
    assert model.dst_state["modules"]["critic"]["optimizer_steps"] == 40


def test_gradient_steps_schedule_unit():
    # Each module's clock is its own optimizer steps: TD3's actor (policy_delay=2) runs at half the critic's pace.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=20,
        batch_size=32,
        topology_update_interval=20,
        schedule_unit="gradient_steps",
        policy_kwargs={"net_arch": [16]},
        seed=8,
    )
    recorder = UpdateRecorder()
    model.learn(120, callback=recorder)
    state = model.dst_state["modules"]
    assert state["critic"]["optimizer_steps"] == 100
    assert state["actor"]["optimizer_steps"] == 50
    # Critic: optimizer steps 20, 40, 60, 80 crossed during the run, 100 by its last training step (updated at the
    # end of learn, after the user's last callback).
    assert (state["critic"]["n_updates"], state["critic"]["last_update_step"]) == (5, 100)
    # Actor: its window ends at 0.95 of its 50 expected steps; updates at its steps 20 and 40.
    assert (state["actor"]["n_updates"], state["actor"]["last_update_step"]) == (2, 40)
    assert [step for step, module, _ in recorder.updates if module == "actor"] == [61, 101]
    assert recorder.schedule_steps == {"critic": [20, 40, 60, 80], "actor": [20, 40]}
    assert [step for step, module, _ in recorder.updates if module == "critic"] == [41, 61, 81, 101]


def test_vectorized_env():
    # With 2 envs the step count jumps by 2: an update happens at the first step past each multiple of the interval.
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=5)
    model = SparseTD3(
        "MlpPolicy",
        env,
        learning_starts=20,
        batch_size=32,
        topology_update_interval=45,
        policy_kwargs={"net_arch": [16]},
        seed=5,
    )
    recorder = UpdateRecorder()
    model.learn(200, callback=recorder)
    assert [step for step, module, _ in recorder.updates if module == "critic"] == [46, 90, 136, 180]
    # The schedule step of an update is the multiple of the interval that was crossed.
    assert recorder.schedule_steps["critic"] == [45, 90, 135, 180]
    assert_exact_zeros(model)


def test_short_run_says_so_without_python_warnings(capsys):
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=500,
        topology_update_interval=1000,
        policy_kwargs={"net_arch": [16]},
        verbose=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(300)
    printed = capsys.readouterr().out
    assert "no mask update of module 'critic' in this run" in printed
    assert "no mask update of module 'actor' in this run" in printed
    assert all(record["n_updates"] == 0 for record in model.dst_state["modules"].values())
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=500,
        topology_update_interval=100,
        policy_kwargs={"net_arch": [16]},
        verbose=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(300)
    assert "no mask update" not in capsys.readouterr().out
    assert all(record["n_updates"] > 0 for record in model.dst_state["modules"].values())
