"""The value-learning pieces wired into the sparse algorithms: buffers, targets, the rlx2 / mast recipes, YAML and CLI."""

import numpy as np
import pytest
import torch as th
import yaml

from sb3_sparse import SparseCrossQ, SparseDQN, SparseSAC, SparseTD3, SparseTQC, sparse_recipe
from sb3_sparse.common.buffers import (
    DualReplayBuffer,
    DynamicReplayBuffer,
    MultiStepReplayBuffer,
    ReplayBufferCallback,
    find_replay_buffer_class,
)


def small() -> dict:
    """Tiny settings (a new dict each time: SB3 adds ``use_sde`` to the ``policy_kwargs`` it is given)."""
    return {"learning_starts": 20, "batch_size": 16, "buffer_size": 200, "policy_kwargs": {"net_arch": [16, 16]}, "seed": 0}


SOFT_ACTOR_CRITICS = [SparseSAC, SparseTQC, SparseCrossQ]


@pytest.mark.parametrize("algo_class", [*SOFT_ACTOR_CRITICS, SparseTD3])
def test_sparse_actor_critics_attach_their_buffer(algo_class, tmp_path):
    """The sparse classes attach the buffer themselves (entropy terms for the SAC family, the policy for
    the dynamic buffer), hand it their gamma, log it, and save / load it."""
    model = algo_class(
        "MlpPolicy",
        "Pendulum-v1",
        gamma=0.9,
        replay_buffer_class=DynamicReplayBuffer,
        replay_buffer_kwargs={"n_steps": 3, "check_interval": 40, "check_size": 16, "min_size": 50},
        **small(),
    )
    buffer = model.replay_buffer
    assert isinstance(buffer, DynamicReplayBuffer) and buffer.gamma == 0.9 and buffer.entropy_bonus is None
    model.learn(120)
    assert (buffer.entropy_bonus is not None) == (algo_class in SOFT_ACTOR_CRITICS)
    assert buffer.policy_action is not None and buffer.policy_distance is not None
    assert {"buffer/size", "buffer/capacity", "buffer/policy_distance"} <= set(model.logger.name_to_value)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    model.save(tmp_path / "model.zip")
    loaded = algo_class.load(tmp_path / "model.zip", env=model.get_env())
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert loaded.replay_buffer.env_steps == buffer.env_steps and loaded.replay_buffer.policy_action is None
    loaded.learn(40, reset_num_timesteps=False)  # re-attached at the start of training
    assert loaded.replay_buffer.policy_action is not None


def test_user_callback_is_not_doubled():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", replay_buffer_class=MultiStepReplayBuffer, **small())
    callback = ReplayBufferCallback()
    model.learn(30, callback=callback)
    chain = model._with_topology_callback(callback)
    assert sum(isinstance(c, ReplayBufferCallback) for c in chain.callbacks) == 1  # type: ignore[attr-defined]
    plain = SparseSAC("MlpPolicy", "Pendulum-v1", **small())  # SB3's own buffer: nothing to attach
    assert not any(isinstance(c, ReplayBufferCallback) for c in plain._with_topology_callback(None).callbacks)  # type: ignore[attr-defined]


def test_sac_multi_step_targets_include_the_entropy_terms():
    """SparseSAC's n-step reward holds the entropy bonus of the intermediate states; entropy_terms=False drops it."""
    rewards = {}
    for entropy_terms in (True, False):
        model = SparseSAC(
            "MlpPolicy",
            "Pendulum-v1",
            ent_coef=0.5,
            replay_buffer_class=MultiStepReplayBuffer,
            replay_buffer_kwargs={"n_steps": 3, "entropy_terms": entropy_terms},
            **small(),
        )
        model.learn(60)
        th.manual_seed(0)
        np.random.seed(0)
        rewards[entropy_terms] = model.replay_buffer.sample(64).rewards
    assert not th.allclose(rewards[True], rewards[False])


def test_delayed_switch_in_a_sparse_algorithm():
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        replay_buffer_class=MultiStepReplayBuffer,
        replay_buffer_kwargs={"n_steps": 3, "n_step_start": 50},
        **small(),
    )
    model.learn(40)
    assert model.replay_buffer.active_n_steps == 1
    assert th.allclose(model.replay_buffer.sample(32).discounts, th.tensor(model.gamma))
    model.learn(20, reset_num_timesteps=False)
    assert model.replay_buffer.active_n_steps == 3
    assert (model.replay_buffer.sample(256).discounts < model.gamma - 1e-6).any()


def test_rlx2_recipe_is_the_full_method():
    td3 = sparse_recipe("rlx2", algorithm="sparse_td3")
    sac = sparse_recipe("rlx2", algorithm="sparse_sac")
    assert td3["replay_buffer_class"] is DynamicReplayBuffer is sac["replay_buffer_class"]
    assert td3["replay_buffer_kwargs"] == {"n_steps": 3, "n_step_start": 300_000, "min_size": 100_000}
    assert sac["replay_buffer_kwargs"]["min_size"] == 200_000
    assert sparse_recipe("rlx2")["replay_buffer_kwargs"]["min_size"] == 100_000  # a fresh copy each time
    model = SparseSAC("MlpPolicy", "Pendulum-v1", **{**small(), **sac})
    buffer = model.replay_buffer
    assert isinstance(buffer, DynamicReplayBuffer) and (buffer.n_steps, buffer.n_step_start) == (3, 300_000)
    assert buffer.min_size == 200_000 and model.policy.module_configs["critic"].regime == "rigl"


def test_mast_recipe_builds_sparse_dqn_and_learns():
    kwargs = sparse_recipe("mast", algorithm="sparse_dqn")
    with pytest.raises(ValueError, match="recipe 'mast' is for sparse_dqn, qmix, vdn, not 'sparse_sac'"):
        sparse_recipe("mast", algorithm="sparse_sac")
    model = SparseDQN("MlpPolicy", "CartPole-v1", **{**small(), **kwargs})
    assert model.target_operator == "soft_mellowmax" and model.mellowmax_omega == 10.0
    assert isinstance(model.replay_buffer, DualReplayBuffer) and model.replay_buffer.n_steps == 3
    assert model.policy.module_configs["q_net"].regime == "rigl" and model.policy.module_configs["q_net"].sparsity == 0.9
    model.learn(100)
    assert "train/loss" in model.logger.name_to_value


@pytest.mark.parametrize(
    ("recipe", "algo_class", "env_id"), [("mast", SparseDQN, "CartPole-v1"), ("rlx2", SparseTD3, "Pendulum-v1")]
)
def test_recipe_round_trips_through_yaml(recipe, algo_class, env_id, tmp_path):
    """A recipe written into a hyperparameter file (the buffer by name) and read back builds the same model."""
    from sb3_sparse.zoo.validation import check_hyperparams

    kwargs = sparse_recipe(recipe, algorithm="sparse_dqn" if algo_class is SparseDQN else "sparse_td3")
    entry = {**kwargs, "replay_buffer_class": kwargs["replay_buffer_class"].__name__}
    text = yaml.safe_dump({env_id: entry})
    read = yaml.safe_load(text)[env_id]
    read["replay_buffer_class"] = find_replay_buffer_class(read["replay_buffer_class"])
    assert read == kwargs
    check_hyperparams(algo_class, read, env_id)
    model = algo_class("MlpPolicy", env_id, **{**small(), **read})
    assert type(model.replay_buffer) is kwargs["replay_buffer_class"]


def test_find_replay_buffer_class():
    assert find_replay_buffer_class("dual") is DualReplayBuffer
    assert find_replay_buffer_class("DynamicReplayBuffer") is DynamicReplayBuffer
    assert find_replay_buffer_class("sb3_sparse.common.buffers.MultiStepReplayBuffer") is MultiStepReplayBuffer
    assert find_replay_buffer_class("HerReplayBuffer") is None and find_replay_buffer_class(None) is None


def test_cli_trains_the_shipped_mast_entry(tmp_path, monkeypatch, capsys):
    """`sb3-sparse train -conf hyperparams/sparse_dqn_mast.yml`: the buffer by name, the operator, the masks."""
    pytest.importorskip("rl_zoo3")
    from sb3_sparse.zoo import hyperparams_path
    from sb3_sparse.zoo.cli import main

    monkeypatch.chdir(tmp_path)
    conf = hyperparams_path("sparse_dqn").parent / "sparse_dqn_mast.yml"
    args = ["--algo", "sparse_dqn", "--env", "CartPole-v1", "-conf", str(conf), "-n", "300", "--eval-freq", "-1"]
    small = ["-params", "learning_starts:50", "train_freq:4", "gradient_steps:1", "buffer_size:1000"]
    assert main(["train", *args, *small, "--num-threads", "1", "--seed", "0"]) == 0
    model = SparseDQN.load(tmp_path / "logs" / "sparse_dqn" / "CartPole-v1_1" / "CartPole-v1.zip", buffer_size=1)
    assert model.target_operator == "soft_mellowmax" and model.replay_buffer_class is DualReplayBuffer
    assert model.replay_buffer_kwargs["recent_size"] == 5000 and model.replay_buffer_kwargs["n_steps"] == 3


@pytest.mark.parametrize("algo", ["sparse_td3", "td3"])
def test_cli_trains_with_a_dynamic_buffer_by_name(algo, tmp_path, monkeypatch):
    """A file names the buffer; the sparse and the plain algorithm both train with it attached (policy distance)."""
    pytest.importorskip("rl_zoo3")
    from stable_baselines3 import TD3

    from sb3_sparse.zoo.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "td3.yml").write_text(
        "Pendulum-v1:\n  n_timesteps: 300\n  policy: MlpPolicy\n  learning_starts: 50\n  buffer_size: 1000\n"
        "  policy_kwargs: dict(net_arch=[16, 16])\n  replay_buffer_class: 'DynamicReplayBuffer'\n"
        "  replay_buffer_kwargs: dict(n_steps=3, n_step_start=100, check_interval=100, check_size=64, min_size=100)\n"
    )
    args = ["--algo", algo, "--env", "Pendulum-v1", "-conf", "td3.yml", "--eval-freq", "-1", "--seed", "0"]
    assert main(["train", *args, "--num-threads", "1", "--save-replay-buffer"]) == 0
    run = tmp_path / "logs" / algo / "Pendulum-v1_1"
    model = (SparseTD3 if algo == "sparse_td3" else TD3).load(run / "Pendulum-v1.zip")
    model.load_replay_buffer(run / "replay_buffer.pkl")
    buffer = model.replay_buffer
    assert isinstance(buffer, DynamicReplayBuffer) and buffer.env_steps == 300 and buffer.active_n_steps == 3
    assert buffer.policy_distance is not None  # measured at 100, 200 and 300 steps: the policy was attached


def test_sb3_n_steps_argument_still_serves():
    """SB3's own ``n_steps`` (its NStepReplayBuffer) works with the sparse classes, as with SB3's."""
    from stable_baselines3.common.buffers import NStepReplayBuffer

    model = SparseDQN("MlpPolicy", "CartPole-v1", n_steps=3, target_operator="soft_mellowmax", **small())
    assert type(model.replay_buffer) is NStepReplayBuffer and model.replay_buffer.n_steps == 3
    model.learn(60)
    assert "train/loss" in model.logger.name_to_value
