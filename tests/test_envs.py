"""DeepMind Control ids (``dmc/<domain>-<task>-v0``, :mod:`sb3_sparse.common.envs`): spaces, episodes, seeding,
the error without the dmc extra, the shipped hyperparameter entries, SparseSAC and the zoo command on one task."""

import importlib.util
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import yaml

from sb3_sparse import SparseSAC, registry, sparse_recipe
from sb3_sparse.common.envs import DMC_INSTALL_HINT, DMC_TASKS, ActionRepeat, DMCEnv, dmc_env_id, register_dmc_envs
from sb3_sparse.common.flops import module_sparsity
from sb3_sparse.zoo import hyperparams_path

# (id, observation size, number of actions) of the tasks with shipped hyperparameter entries
TASKS = [
    ("dmc/dog-run-v0", 223, 38),
    ("dmc/humanoid-run-v0", 67, 21),
    ("dmc/cheetah-run-v0", 17, 6),
    ("dmc/walker-walk-v0", 24, 6),
    ("dmc/quadruped-run-v0", 78, 12),
    ("dmc/hopper-hop-v0", 15, 4),
]
DMC_FILES = ("sparse_sac", "sparse_td3", "sparse_tqc")


def has_dm_control() -> bool:
    """Whether the dmc extra is installed (without importing dm_control, which probes OpenGL at import)."""
    return all(importlib.util.find_spec(name) is not None for name in ("dm_control", "shimmy"))


needs_dmc = pytest.mark.skipif(not has_dm_control(), reason='needs the dmc extra: pip install "sb3-sparse[dmc]"')


def test_import_registers_ids_without_dm_control():
    """``import sb3_sparse`` registers every id cheaply and imports neither dm_control nor shimmy."""
    code = (
        "import sys, time, gymnasium as gym\n"
        "import sb3_sparse\n"
        "from sb3_sparse.common.envs import DMC_TASKS, dmc_env_id, register_dmc_envs\n"
        "assert all(dmc_env_id(d, t) in gym.registry for d, t in DMC_TASKS)\n"
        "assert 'dm_control' not in sys.modules and 'shimmy' not in sys.modules, 'dm_control imported'\n"
        "for d, t in DMC_TASKS:\n    del gym.registry[dmc_env_id(d, t)]\n"
        "start = time.perf_counter(); register_dmc_envs(); print(time.perf_counter() - start)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 0.05  # seconds, for all the ids
    assert register_dmc_envs() == [dmc_env_id(d, t) for d, t in DMC_TASKS]  # idempotent
    spec = gym.spec("dmc/dog-run-v0")
    assert spec.entry_point == "sb3_sparse.common.envs:DMCEnv" and spec.max_episode_steps is None
    assert spec.kwargs == {"domain": "dog", "task": "run"}


def test_error_without_dm_control(monkeypatch):
    """Without the dmc extra, making an id says which extra to install (gymnasium's DependencyNotInstalled)."""
    monkeypatch.setitem(sys.modules, "dm_control", None)  # "import dm_control" now raises ImportError
    with pytest.raises(gym.error.DependencyNotInstalled, match="the dmc extra") as error:
        gym.make("dmc/cheetah-run-v0")
    assert 'pip install "sb3-sparse[dmc]"' in str(error.value)
    assert DMC_INSTALL_HINT in str(error.value)


@needs_dmc
def test_error_with_an_incompatible_mujoco(monkeypatch):
    """A MuJoCo that dm_control was not built for fails inside dm_control; the error names both and the extra."""
    with warnings.catch_warnings():  # dm_control probes OpenGL at import (GLFW warns without a display)
        warnings.simplefilter("ignore")
        from dm_control import suite

    def load(*args, **kwargs):
        raise AttributeError("'MjModel' object has no attribute 'flex_vertedge'")

    monkeypatch.setattr(suite, "load", load)
    with pytest.raises(gym.error.DependencyNotInstalled, match=r"does not work with mujoco .*sb3-sparse\[dmc\]"):
        gym.make("dmc/cheetah-run-v0")


@needs_dmc
@pytest.mark.parametrize(("env_id", "n_obs", "n_actions"), TASKS)
def test_spaces(env_id, n_obs, n_actions):
    env = gym.make(env_id)
    try:
        assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.dtype == np.float32
        assert env.action_space.shape == (n_actions,)
        assert np.all(env.action_space.low >= -1.0) and np.all(env.action_space.high <= 1.1)
        observation, _ = env.reset(seed=0)
        assert observation.dtype == np.float32 and observation in env.observation_space
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert observation in env.observation_space and isinstance(reward, float)
        assert not terminated and not truncated
    finally:
        env.close()


@needs_dmc
def test_flattening_follows_gymnasiums_flatten_of_shimmys_env():
    """The vector is shimmy's dict flattened as gymnasium's FlattenObservation does it (keys sorted), in float32."""
    ours = gym.make("dmc/walker-walk-v0")
    import shimmy  # noqa: F401  (registers dm_control/...)

    theirs = gym.make("dm_control/walker-walk-v0")
    try:
        observation, _ = ours.reset(seed=3)
        dict_observation, _ = theirs.reset(seed=3)
        expected = gym.spaces.flatten(theirs.observation_space, dict_observation)
        np.testing.assert_array_equal(observation, expected.astype(np.float32))
    finally:
        ours.close()
        theirs.close()


@needs_dmc
def test_episode_is_dmc_s_1000_steps_and_action_repeat_halves_it():
    env = gym.make("dmc/cheetah-run-v0")
    repeated = ActionRepeat(gym.make("dmc/cheetah-run-v0"), repeat=2)
    try:
        for wrapped, length in ((env, 1000), (repeated, 500)):
            wrapped.reset(seed=0)
            action = np.zeros(wrapped.action_space.shape, np.float32)
            steps, truncated = 0, False
            while not truncated:
                _, _, terminated, truncated, _ = wrapped.step(action)
                steps += 1
                assert not terminated and steps <= length
            assert steps == length
        assert repeated.unwrapped.dt == pytest.approx(0.01)
        assert repeated.metadata["render_fps"] == 50 and env.metadata["render_fps"] == 100
    finally:
        env.close()
        repeated.close()


@needs_dmc
def test_action_repeat_sums_the_rewards_of_the_repeated_steps():
    single, repeated = gym.make("dmc/walker-walk-v0"), ActionRepeat(gym.make("dmc/walker-walk-v0"), repeat=3)
    try:
        single.reset(seed=1)
        repeated.reset(seed=1)
        rng = np.random.default_rng(0)
        for _ in range(5):
            action = rng.uniform(-1, 1, single.action_space.shape).astype(np.float32)
            total = 0.0
            for _ in range(3):
                expected, reward, *_ = single.step(action)
                total += float(reward)
            observation, reward, *_ = repeated.step(action)
            assert reward == pytest.approx(total)
            np.testing.assert_array_equal(observation, expected)
    finally:
        single.close()
        repeated.close()
    with pytest.raises(ValueError, match="repeat must be an integer >= 1"):
        ActionRepeat(gym.make("dmc/walker-walk-v0"), repeat=0)


@needs_dmc
def test_seeding_is_reproducible():
    def rollout(seed: int) -> tuple[np.ndarray, list[float]]:
        env = gym.make("dmc/hopper-hop-v0")
        observations = [env.reset(seed=seed)[0]]
        rewards = []
        for _ in range(20):
            observation, reward, *_ = env.step(np.full(env.action_space.shape, 0.3, np.float32))
            observations.append(observation)
            rewards.append(reward)
        env.close()
        return np.stack(observations), rewards

    first, again, other = rollout(5), rollout(5), rollout(6)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not np.array_equal(first[0][0], other[0][0])  # the initial state depends on the seed


@needs_dmc
def test_dmc_env_arguments_are_checked():
    with pytest.raises(ValueError, match="render_mode"):
        DMCEnv("cheetah", "run", render_mode="video")


def dmc_entries(algo: str) -> dict[str, dict]:
    """The shipped DeepMind Control entries of ``<algo>.yml``."""
    entries = yaml.safe_load(hyperparams_path(algo).read_text())
    return {env_id: entry for env_id, entry in entries.items() if env_id.startswith("dmc/")}


@pytest.mark.parametrize("algo", DMC_FILES)
def test_shipped_dmc_entries(algo):
    """Every DMC entry: one of the tasks, SimBa's settings, MST's DST (= sparse_recipe("mst")), valid for the zoo."""
    from rl_zoo3 import exp_manager

    from sb3_sparse.zoo.validation import check_hyperparams

    text = hyperparams_path(algo).read_text()
    entries = dmc_entries(algo)
    assert set(entries) == {env_id for env_id, _, _ in TASKS}
    assert "[SimBa]" in text and "[MST]" in text
    recipe = sparse_recipe("mst")
    algo_class = registry.ALGORITHMS[algo].sparse_class
    for env_id, _, n_actions in TASKS:
        entry = dict(entries[env_id])
        assert entry["env_wrapper"] == [{"sb3_sparse.common.envs.ActionRepeat": {"repeat": 2}}]
        assert entry["policy"] == "SimbaPolicy"
        assert entry["learning_rate"] == 1e-4 and entry["batch_size"] == 256 and entry["gradient_steps"] == 2
        assert entry["gamma"] == 0.99 and entry["tau"] == 0.005 and entry["learning_starts"] == 5000
        hard = env_id.split("/")[1].split("-")[0] in ("dog", "humanoid")
        assert entry["n_timesteps"] == (5e5 if hard else 2.5e5)  # 1M / 500k control steps at action repeat 2
        if algo != "sparse_td3":
            assert entry["ent_coef"] == "auto_0.01" and entry["target_entropy"] == -n_actions / 2
        assert {key: entry[key] for key in recipe} == recipe
        for key in ("n_timesteps", "env_wrapper", "noise_type", "noise_std"):  # rl-zoo3's own keys
            entry.pop(key, None)
        if isinstance(entry.get("policy_kwargs"), str):
            entry["policy_kwargs"] = eval(entry["policy_kwargs"], vars(exp_manager))
        check_hyperparams(algo_class, entry, env_id)


@needs_dmc
def test_shipped_dmc_entry_builds_with_its_wrapper():
    """The action repeat of a file's env_wrapper, as rl-zoo3 reads it; the SAC entry builds its model."""
    from rl_zoo3 import exp_manager
    from rl_zoo3.utils import get_wrapper_class

    entry = dict(dmc_entries("sparse_sac")["dmc/cheetah-run-v0"])
    wrapper = get_wrapper_class(entry)
    assert wrapper is not None
    env = wrapper(gym.make("dmc/cheetah-run-v0"))
    assert isinstance(env, ActionRepeat) and env.repeat == 2
    for key in ("n_timesteps", "env_wrapper"):
        del entry[key]
    entry["policy_kwargs"] = eval(entry["policy_kwargs"], vars(exp_manager))
    entry["policy_kwargs"]["net_arch"] = {"pi": [32], "qf": [32, 32]}  # SimBa's widths, smaller
    model = SparseSAC(env=env, **{**entry, "buffer_size": 1})
    assert model.policy.critic.n_critics == 1 and model.target_entropy == -3.0
    assert model.log_ent_coef.exp().item() == pytest.approx(0.01)
    sparsity = module_sparsity(model)  # MST: encoder dense, actor and critic 60% sparse
    assert sparsity.get("encoder", 0.0) == 0.0
    assert sparsity["actor"] == pytest.approx(0.6, abs=0.02) and sparsity["critic"] == pytest.approx(0.6, abs=0.02)
    model.env.close()


@needs_dmc
def test_sparse_sac_trains_on_a_dmc_task():
    """200 env steps of SparseSAC (a mask update included) on dog-run, SimBa's networks at small widths."""
    env = ActionRepeat(gym.make("dmc/dog-run-v0"), repeat=2)
    recipe = sparse_recipe("mst")
    recipe["modules"]["critic"]["topology_update_interval"] = 50
    model = SparseSAC(
        "SimbaPolicy",
        env,
        learning_starts=100,
        batch_size=32,
        buffer_size=1000,
        policy_kwargs={"n_critics": 1, "net_arch": {"pi": [32], "qf": [32, 32]}},
        seed=0,
        **recipe,
    )
    model.learn(200)
    assert model.num_timesteps == 200
    configs = model.policy.module_configs
    assert configs["actor"].regime == "static" and configs["critic"].regime == "rigl"
    assert model.dst_state["modules"]["critic"]["n_updates"] >= 1
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (38,) and np.all(np.abs(action) <= 1.0)
    env.close()


@needs_dmc
def test_zoo_trains_and_enjoys_a_dmc_task(tmp_path, capsys, monkeypatch):
    """``sb3-sparse train`` finds the id and its shipped entry, evaluates with the same action repeat; enjoy loads it."""
    pytest.importorskip("rl_zoo3")
    from sb3_sparse.zoo.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    small = "policy_kwargs:dict(n_critics=1, net_arch=dict(pi=[32], qf=[32, 32]))"
    train = ["train", "--algo", "sparse_sac", "--env", "dmc/cheetah-run-v0", "-n", "600", "--seed", "0"]
    options = ["--eval-freq", "550", "--eval-episodes", "1", "--num-threads", "1"]
    assert main([*train, *options, "-params", "learning_starts:100", "batch_size:32", "gradient_steps:1", small]) == 0
    run = tmp_path / "logs" / "sparse_sac" / "dmc-cheetah-run-v0_1"
    for name in ("dmc-cheetah-run-v0.zip", "evaluations.npz", "0.monitor.csv", "sparsity.csv"):
        assert (run / name).is_file(), name
    config = yaml.unsafe_load((run / "dmc-cheetah-run-v0" / "config.yml").read_text())
    assert dict(config)["env_wrapper"] == [{"sb3_sparse.common.envs.ActionRepeat": {"repeat": 2}}]
    # the evaluation env repeats actions too: one episode of 500 agent steps = 1000 control steps (Monitor inside)
    assert np.load(run / "evaluations.npz")["ep_lengths"].tolist() == [[1000]]
    lines = (run / "0.monitor.csv").read_text().splitlines()
    assert lines[2].split(",")[1] == "1000"  # the first training episode, in control steps
    capsys.readouterr()
    enjoy = ["enjoy", "--algo", "sparse_sac", "--env", "dmc/cheetah-run-v0", "-f", "logs", "--no-render", "-n", "510"]
    assert main(enjoy) == 0
    out = capsys.readouterr().out
    assert "Loading logs/sparse_sac/dmc-cheetah-run-v0_1/dmc-cheetah-run-v0.zip" in out
    assert "Episode Length 500" in out  # enjoy repeats actions as in training
