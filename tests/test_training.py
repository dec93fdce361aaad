"""Short real training runs: every algorithm x grow method, a MuJoCo env, schedules and logged metrics."""

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
    """(env step, network, changed fraction) of every topology update (the topology callback runs first)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[int, str, float]] = []

    def _on_step(self) -> bool:
        for network, record in self.model.topology_state.networks.items():
            if record["last_update_step"] == self.num_timesteps:
                self.updates.append((self.num_timesteps, network, record["last_changed_fraction"]))
        return True


def masks(model: Any) -> dict[str, th.Tensor]:
    return {
        f"{network}.{name}": layer.mask.clone()
        for network in ("actor", "critic")
        for name, layer in model.policy.masked_layers(network)
    }


def weights(model: Any) -> dict[str, th.Tensor]:
    return {name: value.detach().clone() for name, value in model.policy.named_parameters()}


def assert_exact_zeros(model: Any) -> None:
    for online, target in model.policy.masked_networks().values():
        for net in (online, target):
            if net is not None:
                for module in net.modules():
                    if hasattr(module, "mask"):
                        assert (module.weight[module.mask == 0] == 0).all()


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("grow_method", ["random", "gradient", "none"])
def test_pendulum(algo, grow_method):
    model = ALGOS[algo](
        "MlpPolicy",
        "Pendulum-v1",
        grow_method=grow_method,
        topology_update_interval=100,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
        **SMALL,
    )
    logs = collect_logs(model)
    masks_before, weights_before = masks(model), weights(model)
    model.learn(400, log_interval=1)
    state = model.topology_state.networks
    masks_after = masks(model)
    # Training happened.
    assert model._n_updates >= 340
    assert all(not th.equal(weights_before[name], value) for name, value in weights(model).items() if "weight" in name)
    assert_exact_zeros(model)
    drop_fraction = model.drop_fraction
    if grow_method == "none":
        assert model.topology_state.n_updates == 0
        assert all(th.equal(masks_before[key], masks_after[key]) for key in masks_before)
    else:
        # Updates at 100, 200, 300 (the window ends at 0.95 * 400 = 380).
        for network in ("actor", "critic"):
            assert state[network]["n_updates"] == 3
            assert state[network]["last_update_step"] == 300
            assert 0 < state[network]["last_changed_fraction"] <= drop_fraction
            assert state[network]["last_changed_fraction"] == pytest.approx(drop_fraction, abs=0.01)
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
        # Recorded at the end of the previous step; 0 once past the window (step 380).
        in_window = dump["time/total_timesteps"] - 1 <= 380
        expected_fraction = drop_fraction if grow_method != "none" and in_window else 0.0
        assert dump["sparse/actor_drop_fraction"] == expected_fraction
        assert dump["sparse/critic_drop_fraction"] == expected_fraction
    n_logged = [dump["sparse/n_topology_updates"] for dump in logs.dumps]
    assert n_logged == ([0, 0] if grow_method == "none" else [2, 6])


@pytest.mark.parametrize(("algo", "grow_method"), [("sac", "random"), ("td3", "gradient")])
def test_halfcheetah(tmp_path, capsys, algo, grow_method):
    model = ALGOS[algo](
        "MlpPolicy",
        "HalfCheetah-v5",
        grow_method=grow_method,
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
    assert model.topology_state.networks["critic"]["n_updates"] == 2
    assert model.topology_state.networks["actor"]["n_updates"] == 2
    assert all(not th.equal(masks_before[key], value) for key, value in masks(model).items())
    assert_exact_zeros(model)
    printed = capsys.readouterr().out
    assert "Topology update at step 100: critic moved" in printed
    assert "Topology update at step 200: actor moved" in printed
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows and set(rows[-1]) >= SPARSE_KEYS
    assert float(rows[-1]["sparse/n_topology_updates"]) == 4
    assert float(rows[-1]["sparse/critic_sparsity"]) == pytest.approx(0.8, abs=1e-3)
    # Recorded at step 250, after the end of the update window (0.95 * 250 = 238).
    assert float(rows[-1]["sparse/actor_drop_fraction"]) == 0.0


def test_static_actor_dynamic_critic():
    # MST: the actor keeps its initial mask while the critic is rewired by gradient.
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        grow_method="gradient",
        actor_grow_method="none",
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
    state = model.topology_state.networks
    assert state["actor"]["n_updates"] == 0 and state["actor"]["last_update_step"] == -1
    assert state["critic"]["n_updates"] == 2 and state["critic"]["last_update_step"] == 200
    for key in before:
        assert th.equal(before[key], after[key]) == key.startswith("actor.")
    # Only the critic tracked dense gradients.
    assert all(layer.dense_grad is None for _, layer in model.policy.masked_layers("actor"))
    assert all(layer.dense_grad is not None for _, layer in model.policy.masked_layers("critic"))
    assert logs.dumps[-1]["sparse/actor_drop_fraction"] == 0.0
    assert logs.dumps[-1]["sparse/critic_drop_fraction"] == 0.1
    assert logs.dumps[-1]["sparse/actor_changed_fraction"] == 0.0


def test_actor_interval():
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        topology_update_interval=100,
        actor_topology_update_interval=150,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [32, 32]},
        seed=2,
        **SMALL,
    )
    recorder = UpdateRecorder()
    model.learn(320, callback=recorder)
    assert [(step, network) for step, network, _ in recorder.updates] == [
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
    critic_updates = [(step, fraction) for step, network, fraction in recorder.updates if network == "critic"]
    assert [step for step, _ in critic_updates] == [100, 150, 200, 250, 300, 350]
    # The moved fraction follows the cosine decay from 0.5 (at step 100) towards 0 (at step 400).
    fractions = [fraction for _, fraction in critic_updates]
    assert all(a > b for a, b in itertools.pairwise(fractions))
    for step, fraction in critic_updates:
        expected = 0.25 * (1 + math.cos(math.pi * (step - 100) / 300))
        assert fraction == pytest.approx(expected, abs=0.01)
    # The logged drop fraction (recorded at the end of the previous step): 0 before the window, then the cosine.
    logged = [(dump["time/total_timesteps"], dump["sparse/critic_drop_fraction"]) for dump in logs.dumps]
    assert [step for step, _ in logged] == [50, 100, 150, 200, 250, 300, 350, 400]
    for step, fraction in logged:
        expected = 0.0 if step - 1 < 100 else 0.25 * (1 + math.cos(math.pi * (step - 1 - 100) / 300))
        assert fraction == pytest.approx(expected, abs=1e-9)
    in_window = [fraction for step, fraction in logged if step > 100]
    assert in_window[0] > 0.45
    assert all(a > b for a, b in itertools.pairwise(in_window))


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
    assert [step for step, network, _ in recorder.updates if network == "critic"] == [46, 90, 136, 180]
    assert_exact_zeros(model)


def test_warns_when_the_run_is_too_short_for_any_update():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", learning_starts=50, buffer_size=500, topology_update_interval=1000)
    with pytest.warns(UserWarning, match=r"no topology update of the critic will happen in this run"):
        model.learn(300)
    assert model.topology_state.n_updates == 0
    model = SparseSAC("MlpPolicy", "Pendulum-v1", learning_starts=50, buffer_size=500, topology_update_interval=100)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="no topology update")
        model.learn(300)
    assert model.topology_state.n_updates > 0
