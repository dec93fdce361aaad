"""Saving and loading sparse models: weights, masks and the topology schedule survive a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse import MaskedLinear, SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy
from sb3_sparse.common.policies import masked_layers
from sb3_sparse.sac.policies import CnnPolicy as SACCnnPolicy
from sb3_sparse.sac.policies import MultiInputPolicy as SACMultiInputPolicy
from sb3_sparse.td3.policies import CnnPolicy as TD3CnnPolicy
from sb3_sparse.td3.policies import MultiInputPolicy as TD3MultiInputPolicy

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"learning_starts": 20, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}

# Runs in a fresh interpreter: loads the saved models and writes what they hold.
LOAD_SCRIPT = """
import json, sys
import torch as th
th.set_num_threads(1)
from sb3_sparse import SparseSAC, SparseTD3
out = sys.argv[1]
for name, cls, path in (("sac", SparseSAC, sys.argv[2]), ("td3", SparseTD3, sys.argv[3])):
    model = cls.load(path)
    th.save(model.policy.state_dict(), f"{out}/{name}_policy.pt")
    attributes = {key: getattr(model, key) for key in (
        "sparsity", "sparse_layers", "sparsity_distribution", "mask_init", "topology_update_interval",
        "drop_fraction", "grow_method", "topology_update_end", "num_timesteps", "_n_updates")}
    with open(f"{out}/{name}.json", "w") as file:
        json.dump({"topology_state": model.topology_state.state_dict(), "attributes": attributes}, file)
"""


def all_masked_layers(policy: Any) -> list[tuple[str, MaskedLinear]]:
    layers = []
    for network, (online, target) in policy.masked_networks().items():
        layers += [(f"{network}.{name}", layer) for name, layer in masked_layers(online)]
        if target is not None:
            layers += [(f"{network}_target.{name}", layer) for name, layer in masked_layers(target)]
    return layers


def assert_exact_zeros(policy: Any) -> None:
    for name, layer in all_masked_layers(policy):
        assert (layer.weight[layer.mask == 0] == 0).all(), name


def assert_state_dicts_equal(first: dict[str, th.Tensor], second: dict[str, th.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert value.dtype == second[key].dtype, key
        assert th.equal(value, second[key]), key


def train_small(cls: type, **kwargs: Any) -> Any:
    arguments = {"topology_update_interval": 50, "sparsity": 0.7, "seed": 0, **SMALL, **kwargs}
    return cls("MlpPolicy", "Pendulum-v1", **arguments).learn(120)


def test_save_load_in_fresh_process(tmp_path):
    models = {
        "sac": train_small(SparseSAC, sparse_layers="all", sparsity_distribution="erk", mask_init="magnitude"),
        "td3": train_small(SparseTD3, grow_method="gradient", drop_fraction=0.3),
    }
    paths = {}
    for name, model in models.items():
        assert model.topology_state.n_updates == 4  # actor and critic at steps 50 and 100
        paths[name] = tmp_path / f"{name}.zip"
        model.save(paths[name])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(tmp_path), str(paths["sac"]), str(paths["td3"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name, model in models.items():
        loaded_state = th.load(tmp_path / f"{name}_policy.pt", weights_only=True)
        # Weights (online and target) and masks, bit for bit.
        assert_state_dicts_equal(model.policy.state_dict(), loaded_state)
        assert any(key.endswith(".mask") for key in loaded_state)
        with open(tmp_path / f"{name}.json") as file:
            saved = json.load(file)
        assert saved["topology_state"] == model.topology_state.state_dict()
        for key, value in saved["attributes"].items():
            assert value == getattr(model, key), key


def test_load_then_learn_continues_schedule(tmp_path):
    class UpdateRecorder(BaseCallback):
        """Env steps at which the critic's topology changed (the topology callback runs first)."""

        def __init__(self) -> None:
            super().__init__()
            self.steps: list[int] = []

        def _on_step(self) -> bool:
            if self.model.topology_state.networks["critic"]["last_update_step"] == self.num_timesteps:
                self.steps.append(self.num_timesteps)
            return True

    model = SparseTD3("MlpPolicy", "Pendulum-v1", topology_update_interval=50, drop_fraction=0.2, seed=3, **SMALL)
    first = UpdateRecorder()
    model.learn(120, callback=first)
    # topology_update_end=0.95 of 120 steps: 114 -> updates at 50 and 100.
    assert first.steps == [50, 100]
    assert model.topology_state.networks["critic"]["n_updates"] == 2
    model.save(tmp_path / "td3.zip")

    loaded = SparseTD3.load(tmp_path / "td3.zip", env=gym.make("Pendulum-v1"))
    assert loaded.topology_state.state_dict() == model.topology_state.state_dict()
    assert loaded.num_timesteps == 120
    masks_before = {name: layer.mask.clone() for name, layer in all_masked_layers(loaded.policy)}
    second = UpdateRecorder()
    loaded.learn(120, reset_num_timesteps=False, callback=second)
    assert loaded.num_timesteps == 240
    # The window is now 0.95 of 240 steps (228): updates on the same 50-step grid, n_updates keeps counting.
    assert second.steps == [150, 200]
    for network in ("actor", "critic"):
        assert loaded.topology_state.networks[network]["n_updates"] == 4
        assert loaded.topology_state.networks[network]["last_update_step"] == 200
    assert any(not th.equal(layer.mask, masks_before[name]) for name, layer in all_masked_layers(loaded.policy))
    # The loaded optimizers still re-apply the masks after each step.
    assert_exact_zeros(loaded.policy)


def test_learn_twice_continues_schedule():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", topology_update_interval=40, topology_update_end=1.0, seed=4, **SMALL)
    model.learn(60)
    assert model.topology_state.networks["critic"]["n_updates"] == 1
    model.learn(60, reset_num_timesteps=False)
    assert model.num_timesteps == 120
    # Updates at 40, then 80 and 120 (on the grid, not at 60 + 40).
    assert model.topology_state.networks["critic"]["n_updates"] == 3
    assert model.topology_state.networks["critic"]["last_update_step"] == 120


def test_plain_sac_file_into_sparse_sac(tmp_path):
    SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"SparseSAC needs a sparse policy .*got SACPolicy.*load it with SAC\.load"):
        SparseSAC.load(tmp_path / "sac.zip")
    TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "td3.zip")
    with pytest.raises(ValueError, match=r"SparseTD3 needs a sparse policy .*got TD3Policy.*load it with TD3\.load"):
        SparseTD3.load(tmp_path / "td3.zip")


def test_sparse_file_into_plain_algorithm(tmp_path):
    SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"This file was saved by SparseSAC: load it with SparseSAC\.load"):
        SAC.load(tmp_path / "sac.zip")
    SparseTD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "td3.zip")
    with pytest.raises(ValueError, match=r"This file was saved by SparseTD3: load it with SparseTD3\.load"):
        TD3.load(tmp_path / "td3.zip")


def test_plain_sac_with_sparse_policy_round_trip(tmp_path):
    model = SAC(SparseSACPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [16], "sparsity": 0.8}, buffer_size=10)
    model.save(tmp_path / "sac.zip")
    loaded = SAC.load(tmp_path / "sac.zip")
    assert isinstance(loaded.policy, SparseSACPolicy)
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())


@pytest.mark.parametrize(("cls", "policy_cls"), [(SparseSAC, SparseSACPolicy), (SparseTD3, SparseTD3Policy)])
def test_policy_only_save_load(tmp_path, cls, policy_cls):
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        sparsity=0.75,
        sparsity_distribution="erk",
        sparse_layers=["hidden", "output"],
        mask_init="magnitude",
        policy_kwargs={"net_arch": [16, 16]},
        buffer_size=10,
    )
    model.policy.save(tmp_path / "policy.pth")
    policy = policy_cls.load(tmp_path / "policy.pth")
    assert_state_dicts_equal(model.policy.state_dict(), policy.state_dict())
    assert policy.sparsity_config == model.policy.sparsity_config
    assert [name for name, _ in all_masked_layers(policy)] == [name for name, _ in all_masked_layers(model.policy)]
    obs = np.zeros(3, dtype=np.float32)
    assert np.array_equal(policy.predict(obs, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0])


# --- CnnPolicy / MultiInputPolicy -------------------------------------------------------------


class TinyImageEnv(gym.Env):
    """36x36 grey images (the smallest NatureCNN accepts), 10-step episodes."""

    observation_space = gym.spaces.Box(0, 255, (36, 36, 1), np.uint8)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return self.observation_space.sample(), float(-abs(action[0])), False, self.t >= 10, {}


class TinyDictEnv(TinyImageEnv):
    observation_space = gym.spaces.Dict(
        {"position": gym.spaces.Box(-1, 1, (3,), np.float32), "velocity": gym.spaces.Box(-1, 1, (2,), np.float32)}
    )


@pytest.mark.parametrize(
    ("cls", "alias", "policy_cls", "env_cls"),
    [
        (SparseSAC, "CnnPolicy", SACCnnPolicy, TinyImageEnv),
        (SparseSAC, "MultiInputPolicy", SACMultiInputPolicy, TinyDictEnv),
        (SparseTD3, "CnnPolicy", TD3CnnPolicy, TinyImageEnv),
        (SparseTD3, "MultiInputPolicy", TD3MultiInputPolicy, TinyDictEnv),
    ],
)
def test_policy_aliases(tmp_path, cls, alias, policy_cls, env_cls):
    policy_kwargs: dict[str, Any] = {"net_arch": [16, 16]}
    if alias == "CnnPolicy":
        policy_kwargs["features_extractor_kwargs"] = {"features_dim": 32}
    model = cls(
        alias,
        env_cls(),
        buffer_size=100,
        learning_starts=10,
        batch_size=8,
        topology_update_interval=15,
        drop_fraction=0.3,
        policy_kwargs=policy_kwargs,
        seed=0,
    )
    assert type(model.policy) is policy_cls
    # The features extractors stay dense; the MLP layers after them are masked.
    for network, (online, target) in model.policy.masked_networks().items():
        for net in (online, target):
            if net is None:
                continue
            assert not any(isinstance(m, MaskedLinear) for m in net.features_extractor.modules())
            assert len(masked_layers(net)) == (2 if network == "actor" else 4)
    model.learn(40)
    assert model.topology_state.networks["critic"]["n_updates"] == 2
    assert_exact_zeros(model.policy)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")
    assert type(loaded.policy) is policy_cls
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())
