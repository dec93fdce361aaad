"""The multi-agent env adapter: arrays, masks, departures, episode ends, seeding and the env-id registry."""

import copy
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("pettingzoo")
from pettingzoo import ParallelEnv

from sb3_sparse.marl import envs as marl_envs
from sb3_sparse.marl.envs import (
    MARL_ENVS,
    GymParallelEnv,
    MultiAgentEnv,
    make_marl_env,
    register_marl_env,
)

# id, n_agents, obs_dim, n_actions, published episode length, package
FAMILIES = [
    ("Foraging-8x8-2p-2f-coop-v3", 2, 12, 6, 50, "lbforaging"),
    ("rware-tiny-2ag-v2", 2, 71, 5, 500, "rware"),
    ("simple_spread_v3", 3, 18, 5, 25, "mpe2"),
]
FAMILY_IDS = [family[0] for family in FAMILIES]


class TinyEnv(ParallelEnv):
    """
    Three agents of different sizes: ``a`` has a Dict observation with an action_mask, ``b`` an info action_mask,
    ``c`` a 2x2 observation and Discrete(3, start=1) actions and leaves at step ``leave_at``. The team ends at ``end_at``
    (terminated, or truncated with ``truncate=True``). Rewards per step: a=1, b=2, c=4.
    """

    metadata = {"name": "tiny_v0"}

    def __init__(self, leave_at=2, end_at=5, truncate=False, with_state=False, max_cycles=10):
        self.possible_agents = ["a", "b", "c"]
        self.agents = []
        self.leave_at, self.end_at, self.truncate = leave_at, end_at, truncate
        if max_cycles is not None:
            self.max_cycles = max_cycles
        if with_state:
            self.state_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self._spaces = {
            "a": spaces.Dict(
                {"observation": spaces.Box(-np.inf, np.inf, (3,), np.float32), "action_mask": spaces.MultiBinary(4)}
            ),
            "b": spaces.Box(-np.inf, np.inf, (5,), np.float32),
            "c": spaces.Box(-np.inf, np.inf, (2, 2), np.float32),
        }
        self._actions = {"a": spaces.Discrete(4), "b": spaces.Discrete(2), "c": spaces.Discrete(3, start=1)}
        self.t = 0
        self.offset = 0.0
        self.received = []

    def observation_space(self, agent):
        return self._spaces[agent]

    def action_space(self, agent):
        return self._actions[agent]

    def _obs(self, agent):
        t = self.t + self.offset
        if agent == "a":
            mask = np.array([1, 1, 0, 1] if self.t % 2 == 0 else [1, 0, 1, 1], dtype=np.int8)
            return {"observation": np.full(3, t, np.float32), "action_mask": mask}
        if agent == "b":
            return np.arange(5, dtype=np.float32) + t
        return np.full((2, 2), -t, np.float32)

    def _infos(self, agents):
        return {agent: ({"action_mask": np.array([0, 1])} if agent == "b" else {}) for agent in agents}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        self.offset = float(seed or 0)
        self.received = []
        return {agent: self._obs(agent) for agent in self.agents}, self._infos(self.agents)

    def step(self, actions):
        self.received.append(dict(actions))
        assert set(actions) == set(self.agents)
        self.t += 1
        acting = list(self.agents)
        obs = {agent: self._obs(agent) for agent in acting}
        rewards = {agent: {"a": 1.0, "b": 2.0, "c": 4.0}[agent] for agent in acting}
        over = self.t >= self.end_at
        terminations = {agent: (over and not self.truncate) or (agent == "c" and self.t >= self.leave_at) for agent in acting}
        truncations = {agent: over and self.truncate for agent in acting}
        self.agents = [agent for agent in acting if not (terminations[agent] or truncations[agent])]
        return obs, rewards, terminations, truncations, self._infos(acting)

    def state(self):
        return np.array([self.t, -self.t], np.float32)


def parallel_env(**kwargs):
    """Lets this test module stand for a 'package.module' env id."""
    return TinyEnv(**kwargs)


def rollout(env, seed, rng_seed=0, max_steps=None):
    """Random available actions until the episode ends; every array of the episode."""
    rng = np.random.default_rng(rng_seed)
    obs, state, avail = env.reset(seed=seed)
    record = {"obs": [obs], "state": [state], "avail": [avail], "reward": [], "agent_rewards": []}
    while True:
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in avail])
        obs, state, avail, reward, terminated, truncated, info = env.step(actions)
        for key, value in (("obs", obs), ("state", state), ("avail", avail), ("reward", reward)):
            record[key].append(value)
        record["agent_rewards"].append(info["rewards"])
        if terminated or truncated or (max_steps is not None and len(record["reward"]) >= max_steps):
            return record, terminated, truncated


@pytest.mark.parametrize("env_id, n_agents, obs_dim, n_actions, limit, package", FAMILIES, ids=FAMILY_IDS)
def test_family_arrays_and_published_length(env_id, n_agents, obs_dim, n_actions, limit, package):
    pytest.importorskip(package)
    env = make_marl_env(env_id)
    assert (env.n_agents, env.obs_dim, env.n_actions, env.episode_limit) == (n_agents, obs_dim, n_actions, limit)
    assert env.state_dim == n_agents * obs_dim
    assert env.env_id == env_id and len(env.agents) == n_agents
    assert env.get_env_info() == {
        "n_agents": n_agents,
        "obs_shape": obs_dim,
        "state_shape": n_agents * obs_dim,
        "n_actions": n_actions,
        "episode_limit": limit,
    }
    obs, state, avail = env.reset(seed=1)
    assert obs.shape == (n_agents, obs_dim) and obs.dtype == np.float32
    assert state.shape == (env.state_dim,) and state.dtype == np.float32
    assert avail.shape == (n_agents, n_actions) and avail.dtype == np.float32
    assert np.all(avail == 1.0) and np.any(obs != 0)
    # no-op actions: no food is ever collected, so each family runs to its published length, as a truncation
    steps = 0
    while True:
        obs, state, avail, reward, terminated, truncated, info = env.step(np.zeros(n_agents, dtype=np.int64))
        steps += 1
        assert isinstance(reward, float) and info["rewards"].shape == (n_agents,)
        assert info["episode_step"] == steps
        if terminated or truncated:
            break
    assert steps == limit and truncated and not terminated
    assert obs.shape == (n_agents, obs_dim) and np.any(obs != 0)  # the final observation, to bootstrap from
    assert np.all(avail == 1.0)  # the last state keeps its real masks for the bootstrap
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(n_agents, dtype=np.int64))
    env.close()


@pytest.mark.parametrize("env_id, n_agents, obs_dim, n_actions, limit, package", FAMILIES, ids=FAMILY_IDS)
def test_family_seeding_and_random_episode(env_id, n_agents, obs_dim, n_actions, limit, package):
    pytest.importorskip(package)
    max_steps = 60 if limit > 100 else None
    first, term_1, trunc_1 = rollout(make_marl_env(env_id), seed=7, max_steps=max_steps)
    second, term_2, trunc_2 = rollout(make_marl_env(env_id), seed=7, max_steps=max_steps)
    other, _, _ = rollout(make_marl_env(env_id), seed=8, max_steps=max_steps)
    assert (term_1, trunc_1) == (term_2, trunc_2)
    for key in first:
        assert len(first[key]) == len(second[key])
        np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(second[key]))
    assert not np.array_equal(first["obs"][0], other["obs"][0]), "the seed does not reach the env"
    if max_steps is None:
        assert term_1 or len(first["reward"]) == limit
    for reward, agent_rewards in zip(first["reward"], first["agent_rewards"], strict=True):
        assert reward == pytest.approx(float(np.sum(agent_rewards, dtype=np.float64)), rel=1e-5, abs=1e-6)


def test_mpe_reward_sum_and_mean():
    pytest.importorskip("mpe2")
    total, mean = make_marl_env("simple_spread_v3"), make_marl_env("simple_spread_v3", reward="mean")
    assert (total.reward, mean.reward) == ("sum", "mean")
    total.reset(seed=3), mean.reset(seed=3)
    for action in (1, 2, 3):
        actions = np.full(3, action)
        *_, reward_sum, _, _, info_sum = total.step(actions)
        *_, reward_mean, _, _, info_mean = mean.step(actions)
        np.testing.assert_array_equal(info_sum["rewards"], info_mean["rewards"])
        assert reward_sum != 0.0
        assert reward_sum == pytest.approx(float(info_sum["rewards"].sum()), rel=1e-6)
        assert reward_mean == pytest.approx(reward_sum / 3, rel=1e-6)


def test_mpe_kwargs_reach_the_constructor():
    pytest.importorskip("mpe2")
    dotted = make_marl_env("mpe2.simple_reference_v3")  # a 'package.module' id
    assert (dotted.n_agents, dotted.n_actions, dotted.episode_limit) == (2, 50, 25)
    env = make_marl_env("simple_spread_v3", N=2, max_cycles=7)
    assert env.n_agents == 2 and env.episode_limit == 7
    short = make_marl_env("simple_spread_v3", episode_limit=4)  # the adapter's own limit, shorter than the env's
    record, terminated, truncated = rollout(short, seed=0)
    assert len(record["reward"]) == 4 and truncated and not terminated
    other = make_marl_env("simple_speaker_listener_v4")  # agents of different sizes: padded
    assert (other.obs_dim, other.n_actions, other.state_dim) == (11, 5, 14)
    obs, state, avail = other.reset(seed=0)
    np.testing.assert_array_equal(obs[0, 3:], 0.0)  # the speaker sees 3 values
    np.testing.assert_array_equal(avail[0], [1, 1, 1, 0, 0])  # and has 3 actions
    np.testing.assert_array_equal(state, np.concatenate([obs[0, :3], obs[1]]))  # mpe2's own state()


def test_lbforaging_truncation_and_time_limit_wrapper():
    pytest.importorskip("lbforaging")
    parallel = GymParallelEnv(gym.make("Foraging-8x8-2p-2f-coop-v3", disable_env_checker=True))
    assert parallel.possible_agents == ["agent_0", "agent_1"] and parallel.max_steps == 50
    parallel.reset(seed=0)
    for _ in range(50):
        obs, _, terminations, truncations, _ = parallel.step({"agent_0": 0, "agent_1": 0})
    assert not any(terminations.values()) and all(truncations.values())
    assert parallel.agents == [] and set(obs) == {"agent_0", "agent_1"}
    with pytest.raises(RuntimeError, match="reset"):
        parallel.step({"agent_0": 0, "agent_1": 0})
    # a gymnasium TimeLimit shorter than the env's own limit wins
    env = make_marl_env("Foraging-8x8-2p-2f-coop-v3", max_episode_steps=10)
    assert env.episode_limit == 10
    record, terminated, truncated = rollout(env, seed=0)
    assert truncated or terminated
    assert len(record["reward"]) == 10 or terminated
    # a built gymnasium env is wrapped too
    assert make_marl_env(gym.make("rware-tiny-2ag-v2", disable_env_checker=True)).episode_limit == 500
    with pytest.raises(ValueError, match="Tuple"):
        GymParallelEnv(gym.make("CartPole-v1"))


def test_custom_env_padding_masks_and_departures():
    base = TinyEnv(leave_at=2, end_at=5)
    env = make_marl_env(base)
    assert env.agents == ["a", "b", "c"] and env.env_id is None
    assert (env.obs_dim, env.n_actions, env.state_dim, env.episode_limit) == (5, 4, 15, 10)
    assert not env.use_env_state
    obs, state, avail = env.reset(seed=10)
    np.testing.assert_array_equal(obs[0], [10, 10, 10, 0, 0])  # Dict observation part, padded
    np.testing.assert_array_equal(obs[1], np.arange(5) + 10)
    np.testing.assert_array_equal(obs[2], [-10, -10, -10, -10, 0])  # 2x2 flattened, padded
    np.testing.assert_array_equal(state, obs.reshape(-1))
    np.testing.assert_array_equal(avail, [[1, 1, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]])  # obs mask, info mask, padding

    with pytest.raises(ValueError, match=r"unavailable actions.*'a': 2"):
        env.step([2, 1, 0])  # masked by the observation's action_mask
    with pytest.raises(ValueError, match="'b': 0"):
        env.step([0, 0, 0])  # masked by the info action_mask
    with pytest.raises(ValueError, match="'c': 3"):
        env.step([0, 1, 3])  # padding action beyond c's 3 actions
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.step([0, 1])
    with pytest.raises(ValueError, match="integer"):
        env.step([0.5, 1, 0])

    obs, state, avail, reward, terminated, truncated, info = env.step(np.array([3, 1, 2]))
    assert base.received[-1] == {"a": 3, "b": 1, "c": 3}  # c's Discrete starts at 1
    assert reward == 7.0 and not terminated and not truncated
    np.testing.assert_array_equal(info["rewards"], [1, 2, 4])
    np.testing.assert_array_equal(avail[0], [1, 0, 1, 1])  # a's mask changes with odd steps

    # c leaves at step 2: its final observation still comes, then zeros and only action 0
    obs, state, avail, reward, terminated, truncated, info = env.step([0, 1, 0])
    np.testing.assert_array_equal(obs[2], [-12, -12, -12, -12, 0])
    np.testing.assert_array_equal(avail[2], [1, 0, 0, 0])
    np.testing.assert_array_equal(info["alive"], [True, True, False])
    assert not terminated and not truncated
    with pytest.raises(ValueError, match="'c': 1"):
        env.step([0, 1, 1])
    obs, state, avail, reward, terminated, truncated, info = env.step([0, 1, 0])
    assert "c" not in base.received[-1]  # a departed agent's action is not sent
    np.testing.assert_array_equal(obs[2], 0.0)
    np.testing.assert_array_equal(info["rewards"], [1, 2, 0])
    assert reward == 3.0

    env.step([0, 1, 0])
    obs, state, avail, reward, terminated, truncated, info = env.step([0, 1, 0])  # step 5: a and b terminate
    assert terminated and not truncated and info["episode_step"] == 5
    np.testing.assert_array_equal(obs[:2, 0], [15, 15])
    np.testing.assert_array_equal(avail, [[1, 0, 1, 1], [0, 1, 0, 0], [1, 0, 0, 0]])  # real masks on the last step
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0, 1, 0])
    obs, _, avail = env.reset()  # the departed agent is back
    np.testing.assert_array_equal(avail[2], [1, 1, 1, 0])
    assert obs[2, 0] == 0.0


def test_custom_env_ends_state_mean_and_deepcopy():
    truncated_env = MultiAgentEnv(TinyEnv(leave_at=9, end_at=3, truncate=True), reward="mean")
    truncated_env.reset()
    results = [truncated_env.step([0, 1, 0]) for _ in range(3)]
    assert [(result[4], result[5]) for result in results] == [(False, False), (False, False), (False, True)]
    assert results[0][3] == pytest.approx(7 / 3)

    limited = MultiAgentEnv(TinyEnv(leave_at=1, end_at=8), episode_limit=4, env_id="tiny")
    assert limited.episode_limit == 4 and "tiny" in repr(limited)
    limited.reset()
    ends = [limited.step([0, 1, 0])[4:6] for _ in range(4)]
    assert ends == [(False, False)] * 3 + [(False, True)]
    with pytest.raises(RuntimeError):
        limited.step([0, 1, 0])

    with_state = MultiAgentEnv(TinyEnv(with_state=True))
    assert with_state.use_env_state and with_state.state_dim == 2
    _, state, _ = with_state.reset()
    np.testing.assert_array_equal(state, [0, 0])
    np.testing.assert_array_equal(with_state.step([0, 1, 0])[1], [1, -1])
    assert MultiAgentEnv(TinyEnv(with_state=True), use_env_state=False).state_dim == 15
    with pytest.raises(ValueError, match="state_space"):
        MultiAgentEnv(TinyEnv(), use_env_state=True)

    original = MultiAgentEnv(TinyEnv())
    original.reset(seed=2)
    clone = copy.deepcopy(original)
    for _ in range(3):
        step_a, step_b = original.step([0, 1, 0]), clone.step([0, 1, 0])
        np.testing.assert_array_equal(step_a[0], step_b[0])
    assert clone.env is not original.env


def test_bad_arguments_raise_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"reward must be one of \('sum', 'mean'\).*'max'"):
        MultiAgentEnv(TinyEnv(), reward="max")
    with pytest.raises(ValueError, match="reward must be one of"):
        make_marl_env(TinyEnv(), reward="median")
    with pytest.raises(ValueError, match="episode_limit=") as error:
        MultiAgentEnv(TinyEnv(max_cycles=None))
    assert "max_cycles" in str(error.value)
    with pytest.raises(ValueError, match="positive int"):
        MultiAgentEnv(TinyEnv(), episode_limit=0)
    with pytest.raises(ValueError) as error:
        make_marl_env("NotAnEnv-v0")
    for family in ("lbforaging", "rware", "mpe", "pettingzoo", "register_marl_env"):
        assert family in str(error.value)
    with pytest.raises(ValueError, match="can only be used with an env id"):
        make_marl_env(TinyEnv(), max_cycles=3)
    adapter = MultiAgentEnv(TinyEnv())
    assert make_marl_env(adapter) is adapter
    with pytest.raises(ValueError, match="already a MultiAgentEnv"):
        make_marl_env(adapter, episode_limit=3)
    with pytest.raises(ValueError, match="possible_agents"):
        MultiAgentEnv(object())
    with pytest.raises(ImportError, match="nonexistent_pkg_for_marl"):
        make_marl_env("nonexistent_pkg_for_marl.envs")
    with pytest.raises(ValueError, match="parallel_env"):
        make_marl_env("json.decoder")

    pytest.importorskip("mpe2")
    with pytest.raises(ValueError, match=r"Discrete action spaces, agent 'agent_0' has Box"):
        make_marl_env("simple_spread_v3", continuous_actions=True)
    with pytest.raises(ValueError, match=r"Unknown MPE environment 'simple_nothing_v1'.*simple_spread_v3"):
        make_marl_env("simple_nothing_v1")
    pytest.importorskip("lbforaging")
    with pytest.raises(ValueError, match="Unknown lbforaging environment id 'Foraging-bogus-v3'"):
        make_marl_env("Foraging-bogus-v3")
    for package, env_id in (("rware", "rware-tiny-2ag-v2"), ("lbforaging", "Foraging-8x8-2p-2f-coop-v3")):
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed
        with pytest.raises(ImportError, match=r'pip install "sb3-sparse\[marl\]"') as error:
            make_marl_env(env_id)
        assert package in str(error.value)


def test_module_ids_and_user_families(monkeypatch):
    env_id = f"pettingzoo:{__name__}"  # this module's parallel_env(), its family named explicitly
    env = make_marl_env(env_id, leave_at=1, max_cycles=6)
    assert env.episode_limit == 6 and env.env_id == env_id
    env.reset()
    assert env.step([0, 1, 0])[6]["alive"].tolist() == [True, True, False]

    monkeypatch.setattr(marl_envs, "MARL_ENVS", dict(MARL_ENVS))
    calls = []

    def build_tiny(env_id, **kwargs):
        calls.append((env_id, kwargs))
        return TinyEnv(**kwargs)

    register_marl_env("tiny", "Tiny-", build_tiny, description="ids such as 'Tiny-v0'")
    assert "tiny" in marl_envs.MARL_ENVS and "tiny" not in MARL_ENVS
    env = make_marl_env("Tiny-v0", end_at=2, episode_limit=9, reward="mean")
    assert calls == [("Tiny-v0", {"end_at": 2})]
    assert (env.episode_limit, env.reward, env.env_id) == (9, "mean", "Tiny-v0")
    env = make_marl_env("tiny:anything")  # the family named explicitly
    assert calls[-1] == ("anything", {}) and isinstance(env, MultiAgentEnv)
    with pytest.raises(ValueError, match="already registered"):
        register_marl_env("tiny", "Tiny-", build_tiny)

    # a later family takes ids from an earlier one; a predicate matches ids
    register_marl_env("spread", lambda env_id: env_id == "simple_spread_v3", build_tiny)
    assert make_marl_env("simple_spread_v3").agents == ["a", "b", "c"]
    with pytest.raises(ValueError) as error:
        make_marl_env("Nothing-v0")
    assert "tiny: ids such as 'Tiny-v0'" in str(error.value)
    register_marl_env("tiny", "Tiny-", lambda env_id: MultiAgentEnv(TinyEnv(), reward="mean"), override=True)
    assert make_marl_env("Tiny-v1").reward == "mean"
