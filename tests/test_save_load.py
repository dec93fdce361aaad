"""Saving, loading and copying sparse models: weights, masks and the DST schedule survive a fresh process,
``set_parameters``, ``deepcopy``, policy-only and network-only files, and chunked training."""

import copy
import itertools
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

from sb3_sparse import SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy, TopologyUpdateCallback
from sb3_sparse.core.masking import get_mask, is_sparse, sparse_weights
from sb3_sparse.sac.policies import CnnPolicy as SACCnnPolicy
from sb3_sparse.sac.policies import MultiInputPolicy as SACMultiInputPolicy
from sb3_sparse.td3.policies import CnnPolicy as TD3CnnPolicy
from sb3_sparse.td3.policies import MultiInputPolicy as TD3MultiInputPolicy

ROOT = Path(__file__).resolve().parents[1]
ALGOS = {"sac": (SparseSAC, SparseSACPolicy), "td3": (SparseTD3, SparseTD3Policy)}
REGIMES = ["dense", "static", "set", "rigl", "gmp", "ne", "srigl"]


def small() -> dict[str, Any]:
    # A new dict each time: SB3 adds keys to the policy_kwargs it is given.
    return {"learning_starts": 20, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


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
    saved = {
        "dst_state": model.dst_state,
        "dst_config": model.dst_config,
        "module_configs": {key: config.as_dict() for key, config in model.policy.module_configs.items()},
        "num_timesteps": model.num_timesteps,
        "_n_updates": model._n_updates,
    }
    with open(f"{out}/{name}.json", "w") as file:
        json.dump(saved, file)
"""


def plain(value: Any) -> Any:
    """What a value looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))


def all_sparse_weights(policy: Any) -> list[tuple[str, Any, str]]:
    """(name, owner, weight) of every masked weight of every online and target network."""
    weights = []
    for module, binding in policy.sparse_bindings().items():
        weights += [(f"{module}.{name}", owner, weight) for name, owner, weight in sparse_weights(binding.online)]
        if binding.target is not None:
            weights += [(f"{module}_target.{name}", owner, weight) for name, owner, weight in sparse_weights(binding.target)]
    return weights


def masks(policy: Any) -> dict[str, th.Tensor]:
    return {name: get_mask(owner, weight).clone() for name, owner, weight in all_sparse_weights(policy)}


def assert_exact_zeros(policy: Any) -> None:
    for name, owner, weight in all_sparse_weights(policy):
        assert (getattr(owner, weight)[get_mask(owner, weight) == 0] == 0).all(), name


def assert_state_dicts_equal(first: dict[str, th.Tensor], second: dict[str, th.Tensor]) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert value.dtype == second[key].dtype, key
        assert th.equal(value, second[key]), key


class ZeroChecker(BaseCallback):
    """Checks exact zeros in every online and target network after every env step."""

    def _on_step(self) -> bool:
        assert_exact_zeros(self.model.policy)
        return True


def train_small(cls: type, steps: int = 120, **kwargs: Any) -> Any:
    arguments = {"topology_update_interval": 50, "sparsity": 0.7, "seed": 0, **small(), **kwargs}
    return cls("MlpPolicy", "Pendulum-v1", **arguments).learn(steps)


def n_updates(model: Any) -> int:
    return sum(record["n_updates"] for record in model.dst_state["modules"].values())


def test_save_load_in_fresh_process(tmp_path):
    models = {
        "sac": train_small(SparseSAC, sparse_layers="all", sparsity_distribution="erk", mask_init="magnitude"),
        "td3": train_small(SparseTD3, regime="rigl", drop_fraction=0.3, modules={"actor": {"sparsity": 0.9}}),
    }
    paths = {}
    for name, model in models.items():
        assert n_updates(model) == 4  # actor and critic at steps 50 and 100
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
        assert any(key.endswith("weight_mask") for key in loaded_state)
        with open(tmp_path / f"{name}.json") as file:
            saved = json.load(file)
        assert saved["dst_state"] == plain(model.dst_state)
        assert saved["dst_config"] == plain(model.dst_config)
        assert saved["module_configs"] == plain({key: config.as_dict() for key, config in model.policy.module_configs.items()})
        assert saved["num_timesteps"] == model.num_timesteps
        assert saved["_n_updates"] == model._n_updates


class UpdateRecorder(BaseCallback):
    """Env steps at which the critic's mask was updated (the topology callback runs first)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    def _on_step(self) -> bool:
        if self.model.dst_state["modules"]["critic"]["last_update_step"] == self.num_timesteps:
            self.steps.append(self.num_timesteps)
        return True


def test_load_then_learn_continues_schedule(tmp_path):
    model = SparseTD3("MlpPolicy", "Pendulum-v1", topology_update_interval=50, drop_fraction=0.2, seed=3, **small())
    first = UpdateRecorder()
    model.learn(120, callback=first)
    # topology_update_end=0.95 of 120 steps: 114 -> updates at 50 and 100.
    assert first.steps == [50, 100]
    assert model.dst_state["modules"]["critic"]["n_updates"] == 2
    model.save(tmp_path / "td3.zip")

    loaded = SparseTD3.load(tmp_path / "td3.zip", env=gym.make("Pendulum-v1"))
    assert loaded.dst_state == model.dst_state
    assert plain(loaded.dst_config) == plain(model.dst_config)
    assert loaded.policy.module_configs == model.policy.module_configs
    assert loaded.num_timesteps == 120
    masks_before = masks(loaded.policy)
    assert all(th.equal(value, masks(model.policy)[key]) for key, value in masks_before.items())
    second = UpdateRecorder()
    loaded.learn(120, reset_num_timesteps=False, callback=[second, ZeroChecker()])
    assert loaded.num_timesteps == 240
    # The window is now 0.95 of 240 steps (228): updates on the same 50-step grid, n_updates keeps counting.
    assert second.steps == [150, 200]
    for network in ("actor", "critic"):
        assert loaded.dst_state["modules"][network]["n_updates"] == 4
        assert loaded.dst_state["modules"][network]["last_update_step"] == 200
    assert any(not th.equal(value, masks_before[key]) for key, value in masks(loaded.policy).items())
    # The loaded model still keeps the pruned weights at exactly 0.
    assert_exact_zeros(loaded.policy)


def test_learn_twice_continues_schedule():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", topology_update_interval=40, topology_update_end=1.0, seed=4, **small())
    model.learn(60)
    assert model.dst_state["modules"]["critic"]["n_updates"] == 1
    model.learn(60, reset_num_timesteps=False)
    assert model.num_timesteps == 120
    # Updates at 40, then 80 and 120 (on the grid, not at 60 + 40).
    assert model.dst_state["modules"]["critic"]["n_updates"] == 3
    assert model.dst_state["modules"]["critic"]["last_update_step"] == 120


@pytest.mark.parametrize(("algo", "regime"), [("sac", "set"), ("sac", "rigl"), ("td3", "rigl"), ("td3", "set")])
def test_chunked_learning_keeps_rewiring(algo, regime):
    """``learn(n, reset_num_timesteps=False)`` several times: every chunk updates the masks, on one grid."""
    cls = ALGOS[algo][0]
    model = cls("MlpPolicy", "Pendulum-v1", regime=regime, topology_update_interval=30, drop_fraction=0.3, seed=5, **small())
    expected = {80: [30, 60], 160: [90, 120, 150], 240: [180, 210, 240], 320: [270, 300]}
    total = 0
    for end, steps in expected.items():
        recorder = UpdateRecorder()
        before = masks(model.policy)
        model.learn(80, reset_num_timesteps=False, callback=[recorder, ZeroChecker()])
        assert model.num_timesteps == end
        # The window ends at 0.95 of the run so far: the updates of this chunk, and the masks changed.
        assert recorder.steps == steps
        total += len(steps)
        for network in ("actor", "critic"):
            assert model.dst_state["modules"][network]["n_updates"] == total
            assert model.dst_state["modules"][network]["last_update_step"] == steps[-1]
        after = masks(model.policy)
        assert all(not th.equal(after[key], value) for key, value in before.items())


def test_chunked_gmp_never_regrows():
    # Each chunk resolves the fractional window against a longer run, so gmp's target sparsity at the next
    # update can be below the current one: pruning does not regrow, the counts only go down.
    model = SparseSAC("MlpPolicy", "Pendulum-v1", regime="gmp", sparsity=0.8, topology_update_interval=20, seed=6, **small())
    counts = [{key: int(mask.sum()) for key, mask in masks(model.policy).items()}]
    for _ in range(3):
        model.learn(100, reset_num_timesteps=False, callback=ZeroChecker())
        counts.append({key: int(mask.sum()) for key, mask in masks(model.policy).items()})
    for before, after in itertools.pairwise(counts):
        assert all(after[key] <= count for key, count in before.items())
    assert counts[-1] != counts[0]
    assert model.dst_state["modules"]["critic"]["n_updates"] == 14  # 20, 40, ..., 280


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("regime", REGIMES)
def test_save_load_every_regime(tmp_path, algo, regime):
    cls, _ = ALGOS[algo]
    sparsity = {"gmp": 0.8, "ne": 0.3}.get(regime, 0.6)
    model = train_small(cls, 80, regime=regime, sparsity=sparsity, sparse_layers="all", topology_update_interval=30)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"))
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())
    assert loaded.dst_state == model.dst_state
    assert plain(loaded.dst_config) == plain(model.dst_config)
    assert loaded.policy.module_configs == model.policy.module_configs
    assert [name for name, _, _ in all_sparse_weights(loaded.policy)] == [
        name for name, _, _ in all_sparse_weights(model.policy)
    ]
    assert bool(masks(loaded.policy)) == (regime != "dense")
    loaded.learn(60, reset_num_timesteps=False, callback=ZeroChecker())
    assert_exact_zeros(loaded.policy)
    if regime in ("set", "rigl", "gmp", "ne", "srigl"):
        assert loaded.dst_state["modules"]["critic"]["n_updates"] > model.dst_state["modules"]["critic"]["n_updates"]


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_set_parameters_round_trip(algo):
    cls, _ = ALGOS[algo]
    model = train_small(cls, 80, regime="rigl", topology_update_interval=30)
    other = cls("MlpPolicy", "Pendulum-v1", regime="rigl", sparsity=0.7, topology_update_interval=30, seed=1, **small())
    assert any(not th.equal(value, masks(model.policy)[key]) for key, value in masks(other.policy).items())
    other.set_parameters(model.get_parameters())
    assert_state_dicts_equal(model.policy.state_dict(), other.policy.state_dict())
    other.learn(80, callback=ZeroChecker())
    assert other.dst_state["modules"]["critic"]["n_updates"] == 2
    assert_exact_zeros(other.policy)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_deepcopy_of_the_policy_trains_with_exact_zeros(algo):
    cls, _ = ALGOS[algo]
    model = train_small(cls, 80, regime="rigl", topology_update_interval=30)
    original = {key: value.clone() for key, value in model.policy.state_dict().items()}
    other = cls("MlpPolicy", "Pendulum-v1", regime="rigl", sparsity=0.7, topology_update_interval=30, seed=1, **small())
    other.policy = copy.deepcopy(model.policy)
    other._create_aliases()
    assert_state_dicts_equal(original, other.policy.state_dict())
    # The copy trains (its optimizers are copies too), rewires, and keeps its pruned weights at 0.
    other.learn(100, callback=ZeroChecker())
    assert other.dst_state["modules"]["critic"]["n_updates"] == 3
    assert_exact_zeros(other.policy)
    changed = masks(other.policy)
    assert any(not th.equal(value, original[f"{key}_mask"]) for key, value in changed.items())
    # The original is untouched.
    assert_state_dicts_equal(original, model.policy.state_dict())


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_load_with_the_stored_policy_kwargs(tmp_path, algo):
    cls, _ = ALGOS[algo]
    model = train_small(cls, 60, topology_update_interval=30, modules={"actor": {"regime": "static"}})
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"), policy_kwargs=dict(model.policy_kwargs))
    assert loaded.policy_kwargs == model.policy_kwargs
    assert "dst_config" not in loaded.policy_kwargs
    assert loaded.policy.module_configs == model.policy.module_configs
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())
    loaded.learn(60, reset_num_timesteps=False, callback=ZeroChecker())
    assert loaded.dst_state["modules"]["actor"]["n_updates"] == 0
    assert loaded.dst_state["modules"]["critic"]["n_updates"] == 4


def test_numpy_settings_survive_save_load(tmp_path):
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        topology_update_interval=np.int64(30),
        topology_update_start=np.int32(0),
        topology_update_end=np.int64(90),
        seed=0,
        **small(),
    )
    model.learn(100)
    assert model.dst_state["modules"]["critic"]["n_updates"] == 3
    model.save(tmp_path / "model.zip")
    loaded = SparseSAC.load(tmp_path / "model.zip")
    assert loaded.policy.module_configs == model.policy.module_configs
    assert loaded.policy.module_configs["critic"].topology_update_interval == 30
    model.policy.save(tmp_path / "policy.pth")
    assert SparseSACPolicy.load(tmp_path / "policy.pth").module_configs == model.policy.module_configs


def test_plain_sac_file_into_sparse_sac(tmp_path):
    SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match=r"SparseSAC needs a sparse policy .*got SACPolicy.*load it with SAC\.load"):
        SparseSAC.load(tmp_path / "sac.zip")
    TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, buffer_size=10).save(tmp_path / "td3.zip")
    with pytest.raises(ValueError, match=r"SparseTD3 needs a sparse policy .*got TD3Policy.*load it with TD3\.load"):
        SparseTD3.load(tmp_path / "td3.zip")


def test_plain_sac_with_sparse_policy_round_trip(tmp_path):
    dst_config = {"sparsity": 0.8, "regime": "rigl", "topology_update_interval": 30}
    model = SAC(
        SparseSACPolicy,
        "Pendulum-v1",
        learning_starts=20,
        batch_size=32,
        policy_kwargs={"net_arch": [16], "dst_config": dst_config},
        buffer_size=200,
        seed=0,
    )
    model.learn(70, callback=TopologyUpdateCallback())
    assert model.dst_state["modules"]["critic"]["n_updates"] == 2
    model.save(tmp_path / "sac.zip")
    loaded = SAC.load(tmp_path / "sac.zip", env=gym.make("Pendulum-v1"))
    assert isinstance(loaded.policy, SparseSACPolicy)
    assert loaded.policy.module_configs == model.policy.module_configs
    assert loaded.policy.module_configs["critic"].sparsity == 0.8
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())
    # The callback's schedule state was saved with the model and continues.
    assert loaded.dst_state == model.dst_state
    loaded.learn(40, reset_num_timesteps=False, callback=[TopologyUpdateCallback(), ZeroChecker()])
    assert loaded.dst_state["modules"]["critic"]["n_updates"] == 3


@pytest.mark.parametrize(("algo", "regime"), [("sac", "set"), ("sac", "gmp"), ("td3", "rigl"), ("td3", "ne")])
def test_policy_only_save_load(tmp_path, algo, regime):
    cls, policy_cls = ALGOS[algo]
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        regime=regime,
        sparsity=0.75 if regime != "ne" else 0.5,
        sparsity_distribution="erk",
        sparse_layers=["hidden", "output"],
        mask_init="magnitude",
        modules={"critic": {"sparsity": 0.6}},
        policy_kwargs={"net_arch": [16, 16]},
        buffer_size=10,
    )
    model.policy.save(tmp_path / "policy.pth")
    policy = policy_cls.load(tmp_path / "policy.pth")
    assert type(policy) is policy_cls
    assert_state_dicts_equal(model.policy.state_dict(), policy.state_dict())
    assert policy.dst_config == model.policy.dst_config
    assert policy.module_configs == model.policy.module_configs
    assert [name for name, _, _ in all_sparse_weights(policy)] == [name for name, _, _ in all_sparse_weights(model.policy)]
    obs = np.zeros(3, dtype=np.float32)
    assert np.array_equal(policy.predict(obs, deterministic=True)[0], model.policy.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_actor_only_save_load(tmp_path, algo):
    """``model.actor.save`` / ``type(model.actor).load`` rebuild the masked actor (SB3's critics cannot be
    saved alone: ``ContinuousCritic`` does not record its constructor arguments)."""
    cls, _ = ALGOS[algo]
    model = train_small(cls, 80, regime="rigl", sparse_layers="all", topology_update_interval=30)
    actor = model.actor
    actor.save(tmp_path / "actor.pth")
    loaded = type(actor).load(tmp_path / "actor.pth")
    assert type(loaded) is type(actor)
    assert loaded.sparse_config == actor.sparse_config
    assert_state_dicts_equal(actor.state_dict(), loaded.state_dict())
    names = [name for name, _, _ in sparse_weights(loaded)]
    assert names == [name for name, _, _ in sparse_weights(actor)] and names
    obs = th.zeros(1, 3)
    deterministic = {"deterministic": True} if algo == "sac" else {}
    assert th.equal(loaded(obs, **deterministic), actor(obs, **deterministic))
    # The loaded actor enforces its masks after external writes.
    with th.no_grad():
        for _, owner, weight in sparse_weights(loaded):
            getattr(owner, weight).fill_(1.0)
    loaded(obs)
    for _, owner, weight in sparse_weights(loaded):
        assert (getattr(owner, weight)[get_mask(owner, weight) == 0] == 0).all()
        assert (getattr(owner, weight)[get_mask(owner, weight) == 1] == 1).all()


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
    for module, binding in model.policy.sparse_bindings().items():
        for net in (binding.online, binding.target):
            if net is None:
                continue
            assert not any(is_sparse(m) for m in net.features_extractor.modules())
            assert len(list(sparse_weights(net))) == (2 if module == "actor" else 4)
    model.learn(40)
    assert model.dst_state["modules"]["critic"]["n_updates"] == 2
    assert_exact_zeros(model.policy)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")
    assert type(loaded.policy) is policy_cls
    assert_state_dicts_equal(model.policy.state_dict(), loaded.policy.state_dict())


@pytest.fixture
def config_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a :class:`ModuleConfig` is built (its ``__post_init__`` runs once per construction)."""
    from sb3_sparse.core.config import ModuleConfig

    count = [0]
    post_init = ModuleConfig.__post_init__

    def counting(self: ModuleConfig) -> None:
        count[0] += 1
        post_init(self)

    monkeypatch.setattr(ModuleConfig, "__post_init__", counting)
    return count


@pytest.mark.parametrize(("policy", "n_modules"), [("MlpPolicy", 2), ("SimbaPolicy", 3)])
def test_settings_are_resolved_once_per_module(config_count: list[int], policy: str, n_modules: int, tmp_path: Path) -> None:
    """The algorithm resolves its DST settings once; the policy and the networks (targets included) get the
    resolved ones; a load resolves the saved settings once."""
    model = SparseSAC(policy, "Pendulum-v1", regime="rigl", sparsity=0.7, policy_kwargs={"net_arch": [8]})
    assert config_count[0] == n_modules
    assert all(model.policy.module_configs[name] is config for name, config in model.module_configs.items())
    assert model.policy.critic_target.sparse_config is model.module_configs["critic"]
    model.save(tmp_path / "model")
    config_count[0] = 0
    loaded = SparseSAC.load(tmp_path / "model")
    assert config_count[0] == n_modules
    assert loaded.policy.module_configs == model.policy.module_configs
    config_count[0] = 0
    SparseSAC.load(tmp_path / "model", sparsity=0.6)  # a DST argument given to load: resolved once too
    assert config_count[0] == n_modules


def test_plain_sb3_policy_resolves_once(config_count: list[int]) -> None:
    dst_config = {"sparsity": 0.8, "regime": "rigl"}
    model = SAC(SparseSACPolicy, "Pendulum-v1", policy_kwargs={"net_arch": [8], "dst_config": dst_config})
    assert config_count[0] == 2
    assert model.policy.module_configs["critic"].sparsity == 0.8
    assert model.policy.dst_config == {"sparsity": 0.8, "regime": "rigl"}  # plain data, as given (what is saved)


def test_saved_settings_are_plain_data(tmp_path: Path) -> None:
    """What the zip holds of the DST settings is a dict of plain values, not the resolved objects."""
    import zipfile

    SparseSAC("MlpPolicy", "Pendulum-v1", sparsity=0.7, policy_kwargs={"net_arch": [8]}).save(tmp_path / "model.zip")
    data = json.loads(zipfile.ZipFile(tmp_path / "model.zip").read("data"))
    assert "module_configs" not in data and ":serialized:" not in data["dst_config"]  # JSON, not a pickle
    assert data["dst_config"]["sparsity"] == 0.7 and data["dst_config"]["modules"] is None
    assert "dst_config" not in data["policy_kwargs"]


#: Models saved by sb3-sparse 0.1.0 (tests/data), and their deterministic action for OBSERVATION.
SAVED_0_1_0 = {
    "sparse_sac_simba_v0_1_0": ("SparseSAC", "SparseSimbaSACPolicy", 0.36857032775878906),
    "sac_simba_dense_v0_1_0": ("SAC", "SimbaSACPolicy", -1.3354792594909668),
    "sparse_td3_mlp_v0_1_0": ("SparseTD3", "SparseTD3Policy", -0.582249641418457),
}
OBSERVATION = np.array([[0.5, -0.2, 0.1]], dtype=np.float32)


@pytest.mark.parametrize("name", SAVED_0_1_0)
def test_files_saved_by_0_1_0_load(name: str) -> None:
    """Files of the previous layout (policy classes named by their old module paths, settings as then saved) load
    into the same networks, masks included, and train on."""
    algorithm, policy, action = SAVED_0_1_0[name]
    cls = {"SparseSAC": SparseSAC, "SAC": SAC, "SparseTD3": SparseTD3}[algorithm]
    model = cls.load(ROOT / "tests" / "data" / name, env=gym.make("Pendulum-v1"))
    assert type(model.policy).__name__ == policy
    # recorded on an Intel CPU: other CPUs' float kernels round differently (1.3e-6 relative on an AMD EPYC)
    np.testing.assert_allclose(model.predict(OBSERVATION, deterministic=True)[0], [[action]], rtol=1e-5)
    for _, module, weight in sparse_weights(model.policy):
        assert (getattr(module, weight)[get_mask(module, weight) == 0] == 0).all()
    model.learn(30, reset_num_timesteps=False)
