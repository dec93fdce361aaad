"""SparsePPO and SparseA2C: exact zeros, counts, save/load/copy, chunked learn, mask updates only between rollouts,
the dense regime trains exactly as SB3, and the three modules sharing the policy's one optimizer."""

import copy
import pickle
from typing import Any

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_sparse import (
    SparseA2C,
    SparseActorCriticPolicy,
    SparsePPO,
    TopologyUpdateCallback,
    module_sparsity,
    sparse_recipe,
)
from sb3_sparse.common.callbacks import Rollouts, on_policy_rollouts
from sb3_sparse.core.engine import SparseEngine
from sb3_sparse.core.masking import get_mask, sparse_weights

# name -> (class, env id, small on-policy settings: rollouts of 32 env steps, 4 gradient steps each for PPO)
ALGORITHMS = {
    "ppo": (SparsePPO, "Pendulum-v1", {"n_steps": 32, "batch_size": 16, "n_epochs": 2}),
    "a2c": (SparseA2C, "CartPole-v1", {"n_steps": 32}),
}
DENSE = {"ppo": PPO, "a2c": A2C}


def build(algo: str, **kwargs: Any) -> Any:
    cls, env, settings = ALGORITHMS[algo]
    return cls("MlpPolicy", env, **{"seed": 0, "policy_kwargs": {"net_arch": [32, 32]}, **settings, **kwargs})


def masks(model: Any) -> dict[str, th.Tensor]:
    return {name: get_mask(module, weight).clone() for name, module, weight in sparse_weights(model.policy)}


def check_exact_zeros(model: Any) -> None:
    weights = list(sparse_weights(model.policy))
    assert weights
    state = model.policy.state_dict()
    for name, module, weight_name in weights:
        pruned = get_mask(module, weight_name) == 0
        assert pruned.any(), name
        assert (getattr(module, weight_name)[pruned] == 0).all(), name
        assert (state[f"{name}"][pruned] == 0).all(), name


class MaskWatch(BaseCallback):
    """Records, at every env step, whether the masks differ from those at the start of the rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.changed_in_rollout = 0
        self.changed_between = 0
        self.last: dict[str, th.Tensor] = {}

    def _on_rollout_start(self) -> None:
        current = masks(self.model)
        if self.last and any(not th.equal(current[k], self.last[k]) for k in current):
            self.changed_between += 1
        self.last = current

    def _on_step(self) -> bool:
        current = masks(self.model)
        self.changed_in_rollout += any(not th.equal(current[k], self.last[k]) for k in current)
        return True

    def _on_rollout_end(self) -> None:
        self._on_step()


@pytest.fixture(scope="module", params=list(ALGORITHMS))
def trained(request: pytest.FixtureRequest) -> tuple[str, Any, dict[str, th.Tensor], MaskWatch]:
    """A model trained 8 rollouts (rigl, 80%, an update every 64 env steps), its initial masks, and the watch."""
    model = build(request.param, regime="rigl", sparsity=0.8, topology_update_interval=64)
    initial = masks(model)
    watch = MaskWatch()
    model.learn(256, callback=watch)
    return request.param, model, initial, watch


def test_masks_change_only_between_rollouts(trained):
    _, model, initial, watch = trained
    assert watch.changed_in_rollout == 0
    assert watch.changed_between == 3  # boundaries 64, 128, 192 at rollout starts; 256 at the end of training
    assert model.dst_state["n_updates"] == 4
    assert any(not th.equal(initial[k], v) for k, v in masks(model).items())


def test_exact_zeros_and_counts(trained):
    _, model, initial, _ = trained
    check_exact_zeros(model)
    for name, mask in masks(model).items():
        assert int(mask.sum()) == int(initial[name].sum()), name  # set / rigl swap: counts constant
    sparsity = module_sparsity(model)
    assert sparsity["actor"] == pytest.approx(0.8, abs=0.01) and sparsity["critic"] == pytest.approx(0.8, abs=0.01)
    assert sparsity["encoder"] == 0.0  # dense unless named
    # the output heads are dense by default
    assert not hasattr(model.policy.action_net, "weight_mask") and not hasattr(model.policy.value_net, "weight_mask")


def test_save_load_keeps_masks_and_schedule(trained, tmp_path):
    algo, model, _, _ = trained
    model.save(tmp_path / "model.zip")
    loaded = ALGORITHMS[algo][0].load(tmp_path / "model.zip")
    for name, mask in masks(model).items():
        assert th.equal(masks(loaded)[name], mask), name
    assert loaded.dst_state == model.dst_state
    obs = th.as_tensor(model.observation_space.sample()[None])
    with th.no_grad():
        th.testing.assert_close(loaded.policy.predict_values(obs), model.policy.predict_values(obs))


def test_copies_keep_and_enforce_masks(trained):
    _, model, _, _ = trained
    # SB3's action distribution keeps the last training batch's graph, which deepcopy refuses (as with SB3's PPO)
    model.policy.predict(model.observation_space.sample())
    for copied in (copy.deepcopy(model.policy), pickle.loads(pickle.dumps(model.policy))):
        for name, module, weight in sparse_weights(copied):
            pruned = get_mask(module, weight) == 0
            getattr(module, weight).data.fill_(1.0)
            copied.predict_values(th.as_tensor(model.observation_space.sample()[None]))
            copied.get_distribution(th.as_tensor(model.observation_space.sample()[None]))
            assert (getattr(module, weight)[pruned] == 0).all(), name


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_chunked_learn_continues_the_schedule(algo):
    whole = build(algo, topology_update_interval=64)
    whole.learn(256)
    chunked = build(algo, topology_update_interval=64)
    chunked.learn(128)
    chunked.learn(128, reset_num_timesteps=False)
    assert chunked.dst_state == whole.dst_state
    for name, mask in masks(whole).items():
        assert th.equal(masks(chunked)[name], mask), name


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_gradient_step_schedule(algo):
    """The clock is the optimizer steps: PPO makes 4 per rollout (2 epochs of 2 minibatches), A2C 1."""
    per_rollout = {"ppo": 4, "a2c": 1}[algo]
    model = build(algo, schedule_unit="gradient_steps", topology_update_interval=2 * per_rollout)
    assert on_policy_rollouts(model) == Rollouts(32, per_rollout)
    watch = MaskWatch()
    model.learn(256, callback=watch)  # 8 rollouts: boundaries after rollouts 2, 4, 6 (and 8, at the end)
    state = model.dst_state["modules"]
    assert {name: state[name]["optimizer_steps"] for name in state} == dict.fromkeys(state, 8 * per_rollout)
    assert state["actor"]["n_updates"] == state["critic"]["n_updates"] == 4
    assert state["encoder"]["n_updates"] == 0
    assert watch.changed_in_rollout == 0 and watch.changed_between == 3


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_dense_regime_trains_as_sb3(algo):
    _, env, settings = ALGORITHMS[algo]
    # the same Adam kernel on both sides (the sparse policy picks the fused one unless one is named)
    optimizer = {"optimizer_kwargs": {"eps": 1e-5, "foreach": False}} if algo == "ppo" else {}
    kwargs = {"seed": 0, "policy_kwargs": {"net_arch": [32, 32], **optimizer}, **settings}
    # one after the other: both draw from the global random generators, which each seeds at construction
    sparse = ALGORITHMS[algo][0]("MlpPolicy", env, regime="dense", **kwargs).learn(128)
    dense = DENSE[algo]("MlpPolicy", env, **copy.deepcopy(kwargs)).learn(128)
    sparse_state, dense_state = sparse.policy.state_dict(), dense.policy.state_dict()
    assert sparse_state.keys() == dense_state.keys()
    for key, value in dense_state.items():
        assert th.equal(sparse_state[key], value), key


def test_plain_ppo_with_sparse_policy_and_callback():
    dst_config = {"regime": "set", "sparsity": 0.7, "topology_update_interval": 64}
    policy_kwargs = {"net_arch": [32, 32], "dst_config": dst_config}
    model = PPO(SparseActorCriticPolicy, "CartPole-v1", n_steps=32, batch_size=16, n_epochs=1, policy_kwargs=policy_kwargs)
    before = masks(model)
    model.learn(128, callback=TopologyUpdateCallback())
    assert model.dst_state["n_updates"] == 2  # at the rollout start at step 64, and at the end of training
    assert any(not th.equal(before[k], v) for k, v in masks(model).items())


class LinearExtractor(BaseFeaturesExtractor):
    """A features extractor with weights (SB3's FlattenExtractor has none)."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 16):
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Linear(observation_space.shape[0], 32), nn.ReLU(), nn.Linear(32, features_dim))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.net(observations)


@pytest.mark.parametrize("share", [True, False])
def test_encoder_module(share):
    policy_kwargs = {"net_arch": [32], "features_extractor_class": LinearExtractor, "share_features_extractor": share}
    model = build("ppo", regime="static", modules={"encoder": {"regime": "set", "sparsity": 0.5}}, policy_kwargs=policy_kwargs)
    extractors = {id(model.policy.pi_features_extractor), id(model.policy.vf_features_extractor)}
    assert len(model.policy.encoders) == len(extractors) == (1 if share else 2)
    encoder_weights = list(sparse_weights(model.policy.encoders))
    assert len(encoder_weights) == 2 * len(extractors)
    model.learn(128)
    check_exact_zeros(model)
    assert module_sparsity(model)["encoder"] == pytest.approx(0.5, abs=0.01)
    state = model.dst_state["modules"]
    assert state["encoder"]["n_updates"] == 0 and state["actor"]["n_updates"] == 0  # 1000-step interval


def test_shared_optimizer_resets_only_the_updated_modules_state():
    """Three modules bind the policy's one optimizer: an update of one resets the state of its changed weights only."""
    model = build("ppo", regime="set", sparsity=0.5, modules={"critic": {"regime": "static"}})
    model.learn(64)
    optimizer = model.policy.optimizer
    before = {param: {k: v.clone() for k, v in optimizer.state[param].items()} for param in model.policy.parameters()}
    bindings = model.policy.sparse_bindings()
    assert all(binding.optimizer is optimizer for binding in bindings.values())
    actor_masks = {name: get_mask(m, w).clone() for name, m, w in sparse_weights(bindings["actor"].online)}
    engine = SparseEngine(model.policy.module_configs, model.dst_state)
    assert engine.update("actor", bindings["actor"], progress=0.0, step=64)
    actor_params = {id(getattr(m, w)) for _, m, w in sparse_weights(bindings["actor"].online)}
    for param in model.policy.parameters():
        if id(param) not in actor_params:
            for key, value in before[param].items():
                assert th.equal(optimizer.state[param][key], value)
    for name, module, weight in sparse_weights(bindings["actor"].online):
        grown = (get_mask(module, weight) == 1) & (actor_masks[name] == 0)
        assert grown.any()
        state = optimizer.state[getattr(module, weight)]
        assert (state["exp_avg"][grown] == 0).all() and (state["exp_avg_sq"][grown] == 0).all()


@pytest.mark.parametrize("name", ["graesser_ppo", "gmp_ppo"])
def test_ppo_recipes(name):
    """Graesser et al.'s PPO settings: ERK 90% on every layer, in training steps; GMP prunes from dense to 90%."""
    model = build("ppo", **sparse_recipe(name, algorithm="sparse_ppo"))
    configs = model.policy.module_configs
    for module in ("actor", "critic"):
        assert configs[module].regime == {"graesser_ppo": "rigl", "gmp_ppo": "gmp"}[name]
        assert configs[module].schedule_unit == "gradient_steps" and configs[module].sparsity == 0.9
    assert configs["encoder"].regime == "dense"
    if name == "graesser_ppo":
        assert module_sparsity(model)["critic"] == pytest.approx(0.9, abs=0.01)
        assert hasattr(model.policy.value_net, "weight_mask")  # output layers sparse too
    else:
        assert module_sparsity(model)["critic"] == 0.0
    model.learn(64)
    assert model.dst_state["modules"]["critic"]["optimizer_steps"] == 8  # 2 rollouts of 2 epochs of 2 minibatches


def test_maskable_ppo_with_sparse_policy_and_callback(tmp_path):
    """sb3-contrib's MaskablePPO with the sparse maskable policy: masks evolve between rollouts, the invalid actions
    stay masked, and the model saves and loads with its masks."""
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.envs import InvalidActionEnvDiscrete

    from sb3_sparse.common.actor_critic import SparseMaskableActorCriticPolicy

    env = InvalidActionEnvDiscrete(dim=20, n_invalid_actions=10)
    dst_config = {"regime": "rigl", "sparsity": 0.8, "topology_update_interval": 64}
    policy_kwargs = {"net_arch": [32, 32], "dst_config": dst_config}
    model = MaskablePPO(
        SparseMaskableActorCriticPolicy, env, n_steps=32, batch_size=16, n_epochs=2, seed=0, policy_kwargs=policy_kwargs
    )
    initial = masks(model)
    watch = MaskWatch()
    model.learn(256, callback=[TopologyUpdateCallback(), watch])
    assert model.dst_state["n_updates"] == 4 and watch.changed_in_rollout == 0
    assert any(not th.equal(initial[k], v) for k, v in masks(model).items())
    check_exact_zeros(model)
    model.save(tmp_path / "maskable.zip")
    loaded = MaskablePPO.load(tmp_path / "maskable.zip")
    for name, mask in masks(model).items():
        assert th.equal(masks(loaded)[name], mask), name
    obs, _ = env.reset(seed=0)
    action, _ = loaded.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[action]
