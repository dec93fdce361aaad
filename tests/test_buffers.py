"""Replay buffers for reliable sparse value learning: n-step returns, dual buffers, dynamic capacity."""

import csv
import io
import math
import pickle
import types

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.logger import configure

from sb3_sparse import SparseSAC
from sb3_sparse.common.buffers import (
    REPLAY_BUFFERS,
    DualReplayBuffer,
    DynamicReplayBuffer,
    MultiStepReplayBuffer,
    ReplayBufferCallback,
    find_replay_buffer_class,
    get_replay_buffer_class,
)

GAMMA = 0.9
OBS_SPACE = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACTION_SPACE = spaces.Box(-1.0, 1.0, (2,), np.float32)
SMALL = {"net_arch": [16, 16]}  # copied for each model: SB3 adds its own keys to policy_kwargs


def make_buffer(cls=MultiStepReplayBuffer, rows=8, n_envs=1, **kwargs):
    """A buffer of ``rows`` rows with 2-d observations ``[time, env]`` and 2-d actions."""
    if cls is not ReplayBuffer:
        kwargs.setdefault("gamma", GAMMA)
    return cls(rows * n_envs, OBS_SPACE, ACTION_SPACE, device="cpu", n_envs=n_envs, **kwargs)


class Episodes:
    """A hand-made sequence per env: rewards, terminations and timeouts at given times."""

    def __init__(self, steps, n_envs=1, seed=0, dones=(), timeouts=()):
        dones = [(time, env) for time, env in dones if time < steps]
        timeouts = [(time, env) for time, env in timeouts if time < steps]
        rng = np.random.default_rng(seed)
        self.steps, self.n_envs = steps, n_envs
        self.rewards = rng.normal(size=(steps, n_envs)).astype(np.float32)
        self.dones = np.zeros((steps, n_envs), dtype=bool)
        self.timeouts = np.zeros((steps, n_envs), dtype=bool)
        for time, env in dones:
            self.dones[time, env] = True
        for time, env in timeouts:
            self.dones[time, env] = self.timeouts[time, env] = True  # a timeout is also a done for the VecEnv
        self.actions = rng.uniform(-1, 1, size=(steps, n_envs, 2)).astype(np.float32)

    def fill(self, *buffers):
        envs = np.arange(self.n_envs, dtype=np.float32)
        for t in range(self.steps):
            obs = np.stack([np.full(self.n_envs, t, np.float32), envs], axis=1)
            next_obs = obs + np.array([1.0, 0.0], np.float32)
            infos = [{"TimeLimit.truncated": bool(self.timeouts[t, e])} for e in range(self.n_envs)]
            for buffer in buffers:
                buffer.add(obs, next_obs, self.actions[t], self.rewards[t], self.dones[t], infos)

    def expected(self, time, env, n_steps):
        """(return, discount, done, time of the next observation) computed step by step in time."""
        total, k = 0.0, 0
        for i in range(n_steps):
            t = time + i
            total += GAMMA**i * float(self.rewards[t, env])
            k = i + 1
            if self.dones[t, env] or t == self.steps - 1:
                break
        last = time + k - 1
        done = float(self.dones[last, env] and not self.timeouts[last, env])
        return total, GAMMA**k, done, last + 1


def all_samples(buffer, repeat=4, env=None):
    """Samples of every valid row (``repeat`` times, so that each env is drawn)."""
    rows = np.tile(np.arange(buffer.buffer_size if buffer.full else buffer.pos), repeat)
    return buffer._get_samples(rows, env)


def check_against_direct(buffer, episodes, n_steps):
    samples = all_samples(buffer)
    for i in range(len(samples.observations)):
        time, env = (int(x) for x in samples.observations[i])
        assert time >= episodes.steps - buffer.buffer_size  # never data that was overwritten
        total, discount, done, next_time = episodes.expected(time, env, n_steps)
        assert samples.rewards[i, 0].item() == pytest.approx(total, rel=1e-5, abs=1e-6)
        assert samples.discounts[i, 0].item() == pytest.approx(discount, rel=1e-6)
        assert samples.dones[i, 0].item() == done
        assert samples.next_observations[i].tolist() == [next_time, env]
        np.testing.assert_array_equal(samples.actions[i].numpy(), episodes.actions[time, env])
    return samples


# n-step returns


@pytest.mark.parametrize("steps", [5, 19])
def test_one_step_equals_replay_buffer(steps):
    episodes = Episodes(steps, n_envs=2, dones=[(3, 0), (11, 1)], timeouts=[(6, 1), (14, 0)])
    ours, sb3 = make_buffer(n_envs=2), make_buffer(ReplayBuffer, n_envs=2)
    episodes.fill(ours, sb3)
    np.random.seed(3)
    expected = sb3.sample(64)
    np.random.seed(3)
    samples = ours.sample(64)
    for name in ("observations", "actions", "next_observations", "dones", "rewards"):
        assert th.equal(getattr(samples, name), getattr(expected, name)), name
    assert th.equal(samples.discounts, th.full((64, 1), GAMMA, dtype=th.float32))


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("steps", [6, 13, 21])  # not full, wrapped once, wrapped twice (8 rows)
def test_n_step_returns(n_envs, steps):
    # env 0: episode ends at 2, 4 (timeout), 9, 12 (timeout), 17; env 1: one long episode
    episodes = Episodes(steps, n_envs=n_envs, seed=steps, dones=[(2, 0), (9, 0), (17, 0)], timeouts=[(4, 0), (12, 0)])
    buffer = make_buffer(n_envs=n_envs, n_steps=3)
    episodes.fill(buffer)
    samples = check_against_direct(buffer, episodes, 3)
    # the newest transition ends every segment that reaches it: no bootstrapping from older data
    newest = samples.observations[:, 0] == steps - 1
    assert newest.any()
    assert th.all(samples.discounts[newest] == th.tensor(GAMMA))
    assert th.all(samples.next_observations[newest, 0] == steps)


def test_n_step_matches_sb3_n_step_buffer():
    episodes = Episodes(21, n_envs=2, dones=[(2, 0), (9, 1)], timeouts=[(4, 1), (12, 0)])
    ours, sb3 = make_buffer(n_envs=2, n_steps=3), make_buffer(NStepReplayBuffer, n_envs=2, n_steps=3)
    episodes.fill(ours, sb3)
    rows = np.tile(np.arange(8), 8)
    np.random.seed(0)
    expected = sb3._get_samples(rows)
    np.random.seed(0)
    samples = ours._get_samples(rows)
    for a, b in zip(samples, expected, strict=True):
        th.testing.assert_close(a, b)


def test_n_step_start_switches_from_one_step():
    buffer = make_buffer(rows=16, n_envs=2, n_steps=3, n_step_start=10)
    for steps in range(1, 7):
        Episodes(1, n_envs=2, seed=steps).fill(buffer)
        assert buffer.env_steps == 2 * steps
        discounts = buffer.sample(200).discounts
        if buffer.env_steps < 10:
            assert buffer.active_n_steps == 1
            assert th.all(discounts == th.tensor(GAMMA))
        else:
            assert buffer.active_n_steps == 3
            assert th.any(discounts == th.tensor(GAMMA**3, dtype=th.float32))


# entropy terms


class ScaleObs:
    """Stands for VecNormalize: doubles the observations, keeps the rewards."""

    @staticmethod
    def normalize_obs(obs):
        return obs * 2

    @staticmethod
    def normalize_reward(reward):
        return reward


def test_entropy_terms_of_intermediate_states():
    episodes = Episodes(13, dones=[(2, 0)], timeouts=[(7, 0)])
    buffer = make_buffer(n_steps=3)
    episodes.fill(buffer)
    seen = []

    def bonus(observations):
        assert isinstance(observations, th.Tensor) and observations.device == buffer.device
        seen.append(observations.clone())
        return th.full((len(observations),), 0.5)

    np.random.seed(1)
    plain = all_samples(buffer, env=ScaleObs())
    buffer.entropy_bonus = bonus
    np.random.seed(1)
    samples = all_samples(buffer, env=ScaleObs())
    lengths = th.round(th.log(samples.discounts) / math.log(GAMMA)).long().flatten()
    expected = th.tensor([sum(GAMMA**i * 0.5 for i in range(1, k)) for k in lengths.tolist()])
    th.testing.assert_close((samples.rewards - plain.rewards).flatten(), expected)
    assert (lengths == 1).any() and (lengths == 3).any()
    # one bonus per intermediate state, each the state reached by the previous transition (normalized)
    intermediate = th.cat(seen) / 2
    assert len(intermediate) == int((lengths - 1).sum())
    starts = (samples.observations[:, 0] / 2).long()
    wanted = sorted((t + i, 0) for t, k in zip(starts.tolist(), lengths.tolist(), strict=True) for i in range(1, k))
    assert sorted(tuple(int(x) for x in row) for row in intermediate) == wanted

    buffer.entropy_terms = False
    np.random.seed(1)
    assert th.equal(all_samples(buffer, env=ScaleObs()).rewards, plain.rewards)


@pytest.mark.parametrize("algo", [SAC, TQC])
def test_entropy_terms_with_a_real_actor(algo):
    model = algo(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs=dict(SMALL),
        replay_buffer_class=MultiStepReplayBuffer,
        replay_buffer_kwargs=dict(n_steps=3),
        seed=0,
    )
    model.learn(200 if algo is SAC else 100, callback=ReplayBufferCallback())
    buffer = model.replay_buffer
    assert buffer.entropy_bonus is not None and buffer.policy_action is not None
    # the bonus is -ent_coef * log pi(a|s) of a fresh action
    obs = th.as_tensor(buffer.observations[:5, 0])
    th.manual_seed(7)
    bonus = buffer.entropy_bonus(obs)
    th.manual_seed(7)
    with th.no_grad():
        _, log_prob = model.actor.action_log_prob(obs)
    th.testing.assert_close(bonus, -th.exp(model.log_ent_coef.detach()) * log_prob)
    # it changes the returns with intermediate states only
    np.random.seed(2)
    with_terms = buffer.sample(64)
    buffer.entropy_terms = False
    np.random.seed(2)
    without = buffer.sample(64)
    multi = (with_terms.discounts < 0.985).flatten()  # more than one step (gamma 0.99)
    assert multi.any()
    assert th.all(with_terms.rewards[~multi] == without.rewards[~multi])
    assert th.all(with_terms.rewards[multi] != without.rewards[multi])


def test_crossq_batch_renorm_statistics_untouched_by_sampling():
    model = CrossQ(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs={"net_arch": {"pi": [16, 16], "qf": [32, 32]}},
        replay_buffer_class=MultiStepReplayBuffer,
        replay_buffer_kwargs=dict(n_steps=3),
        seed=0,
    )
    model.learn(100, callback=ReplayBufferCallback())
    buffer = model.replay_buffer
    assert buffer.entropy_bonus is not None
    model.policy.set_training_mode(True)  # as during CrossQ's train()
    before = {name: value.clone() for name, value in model.actor.state_dict().items()}
    assert any("ra_mean" in name for name in before)  # batch renorm statistics
    buffer.sample(64)
    buffer.policy_action(th.as_tensor(buffer.observations[:8, 0]))
    assert model.actor.training
    for name, value in model.actor.state_dict().items():
        assert th.equal(value, before[name]), name
    with th.no_grad():  # whereas the actor in training mode would update them
        model.actor.action_log_prob(th.as_tensor(buffer.observations[:8, 0]))
    assert not th.equal(model.actor.state_dict()["latent_pi.0.ra_mean"], before["latent_pi.0.ra_mean"])


def test_attach_uses_the_models_gamma():
    model = SAC(
        "MlpPolicy", "Pendulum-v1", gamma=0.8, buffer_size=100, policy_kwargs=dict(SMALL), replay_buffer_class=DualReplayBuffer
    )
    assert model.replay_buffer.gamma == 0.99
    with pytest.warns(UserWarning, match="the model's gamma is used"):
        model.replay_buffer.attach(model)
    assert model.replay_buffer.gamma == 0.8


# dual buffers


def capture_indices(buffer):
    batches = []
    buffer._get_samples = lambda batch_inds, env=None: batches.append(batch_inds)
    return batches


@pytest.mark.parametrize(("batch_size", "fraction"), [(64, 0.5), (25, 0.3), (10, 1.0), (10, 0.0)])
def test_dual_recent_indices(batch_size, fraction):
    buffer = make_buffer(DualReplayBuffer, rows=50, recent_size=10, recent_fraction=fraction)
    Episodes(73).fill(buffer)  # full, wrapped: the newest rows are 13..22
    recent = {(buffer.pos - 1 - j) % 50 for j in range(10)}
    batches = capture_indices(buffer)
    for _ in range(200):
        buffer.sample(batch_size)
    n_recent = round(fraction * batch_size)
    others = []
    for batch in batches:
        assert len(batch) == batch_size and ((0 <= batch) & (batch < 50)).all()
        assert set(batch[:n_recent].tolist()) <= recent
        others.extend(batch[n_recent:].tolist())
    if others:  # the rest is uniform over the whole window
        assert len(set(others)) == 50
        assert np.mean([row in recent for row in others]) == pytest.approx(10 / 50, abs=0.03)


def test_dual_recent_rows_when_not_full_and_n_step():
    buffer = make_buffer(DualReplayBuffer, rows=50, recent_size=10, recent_fraction=1.0, n_steps=3)
    Episodes(30).fill(buffer)
    samples = buffer.sample(100)
    assert set(samples.observations[:, 0].long().tolist()) <= set(range(20, 30))
    assert th.any(samples.discounts == th.tensor(GAMMA**3, dtype=th.float32))


# dynamic capacity


def dynamic_buffer(rows=1000, n_envs=1, **kwargs):
    kwargs = {"check_interval": 100, "check_size": 50, "min_size": 500, **kwargs}
    return make_buffer(DynamicReplayBuffer, rows=rows, n_envs=n_envs, **kwargs)


def test_dynamic_capacity_shrinks_while_the_policy_is_far():
    buffer = dynamic_buffer()
    buffer.policy_action = lambda obs: obs[:, :1].repeat(1, 2) / 1000  # the stored actions are random
    Episodes(99).fill(buffer)
    assert buffer.policy_distance is None
    Episodes(1).fill(buffer)  # check at 100 env steps, on the 50 oldest transitions (times 0..49)
    stored = buffer.actions[:50, 0]
    expected = 0.5 * np.mean((np.arange(50)[:, None] / 1000 - stored) ** 2)
    assert buffer.policy_distance == pytest.approx(expected, rel=1e-5)
    buffer.policy_action = lambda obs: th.ones(len(obs), 2)  # far: distance about 0.5 (> 0.2)
    capacities = []
    for _ in range(8):
        Episodes(100).fill(buffer)
        capacities.append(buffer.capacity)
    # window 200..500: not above min_size; 600 -> 540; 540 -> 486, kept at min_size 500
    assert capacities == [1000, 1000, 1000, 1000, 540, 500, 500, 500]
    assert buffer.size() == 500
    batches = capture_indices(buffer)
    buffer.sample(20_000)
    window = {(buffer.pos - 1 - j) % 1000 for j in range(500)}
    assert set(batches[0].tolist()) == window


def test_dynamic_capacity_kept_while_the_policy_is_close():
    buffer = dynamic_buffer()
    with pytest.warns(UserWarning, match="no policy is attached"):
        Episodes(1000).fill(buffer)  # 10 checks without a policy: capacity unchanged
    assert buffer.capacity == 1000
    buffer.policy_action = lambda obs: th.as_tensor(buffer.actions[(obs[:, 0].long() % 1000).numpy(), 0]) + 0.1
    Episodes(1000).fill(buffer)
    assert buffer.policy_distance == pytest.approx(0.5 * 0.01, rel=1e-4)
    assert buffer.capacity == 1000 and buffer.size() == 1000


def test_dynamic_warns_once_without_a_policy():
    buffer = dynamic_buffer(rows=100, check_interval=10, min_size=10)
    with pytest.warns(UserWarning, match="ReplayBufferCallback") as record:
        Episodes(60).fill(buffer)
    assert len(record) == 1
    assert buffer.policy_distance is None and buffer.capacity == 100


def test_dynamic_min_size_counts_transitions():
    buffer = dynamic_buffer(rows=500, n_envs=2, check_interval=200, min_size=700)
    buffer.policy_action = lambda obs: th.ones(len(obs), 2)
    Episodes(300, n_envs=2).fill(buffer)  # checks at 200..600 env steps; window 600 transitions at the last
    assert buffer.capacity == 500
    Episodes(100, n_envs=2).fill(buffer)  # window 400 rows = 800 transitions > 700 -> 360 rows
    assert buffer.capacity == 360
    Episodes(100, n_envs=2).fill(buffer)  # 720 transitions > 700 -> 324 rows, kept at 350 (700 transitions)
    assert buffer.capacity == 350 and buffer.size() * buffer.n_envs == 700


def test_dynamic_needs_a_continuous_actor():
    model = DQN("MlpPolicy", "CartPole-v1", buffer_size=100, replay_buffer_class=DynamicReplayBuffer)
    with pytest.raises(ValueError, match="needs a continuous-action actor"):
        model.replay_buffer.attach(model)


def test_dynamic_logs_with_td3(tmp_path):
    model = TD3(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        buffer_size=1000,
        policy_kwargs=dict(SMALL),
        replay_buffer_class=DynamicReplayBuffer,
        replay_buffer_kwargs=dict(check_interval=100, check_size=64, min_size=150, distance_threshold=0.0, n_steps=2),
        seed=0,
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400, callback=ReplayBufferCallback(), log_interval=1)
    buffer = model.replay_buffer
    assert buffer.policy_distance is not None and buffer.policy_distance > 0
    # checks at 100 (window 100: not above min_size), 200 (-> 180 rows), 300 (-> 162), 400 (-> 146, kept at 150)
    assert buffer.capacity == 150 and buffer.size() == 150
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2  # one per episode of 200 steps
    last = {key: float(rows[-1][key]) for key in ("buffer/size", "buffer/capacity", "buffer/policy_distance")}
    assert 150 <= last["buffer/size"] <= last["buffer/capacity"] < 1000
    assert last["buffer/policy_distance"] > 0


# with SB3's algorithms: training, save / load, pickling


class Spy(pickle.Pickler):
    """A pickler that records every model, module, bound method or local function it is asked to pickle."""

    def __init__(self, file):
        super().__init__(file)
        self.found = []

    def persistent_id(self, obj):
        local = isinstance(obj, types.FunctionType) and "<locals>" in obj.__qualname__
        if local or isinstance(obj, (BaseAlgorithm, th.nn.Module, types.MethodType)):
            self.found.append(obj)
        return None


BUFFER_KWARGS = {
    "multi_step": {"n_steps": 3, "n_step_start": 150},
    "dual": {"n_steps": 2, "recent_size": 50},
    "dynamic": {"n_steps": 3, "check_interval": 100, "check_size": 32, "min_size": 100, "distance_threshold": 0.0},
}
CASES = [(algo, name) for algo in (SAC, TD3, DQN) for name in REPLAY_BUFFERS if not (algo is DQN and name == "dynamic")]


@pytest.mark.parametrize(("algo", "name"), CASES, ids=[f"{algo.__name__}-{name}" for algo, name in CASES])
def test_train_save_and_load(algo, name, tmp_path):
    env_id = "CartPole-v1" if algo is DQN else "Pendulum-v1"
    kwargs = {"learning_starts": 50, "buffer_size": 1000, "policy_kwargs": dict(SMALL), "seed": 0}
    model = algo(
        "MlpPolicy",
        env_id,
        replay_buffer_class=get_replay_buffer_class(name),
        replay_buffer_kwargs=BUFFER_KWARGS[name],
        **kwargs,
    )
    model.learn(300, callback=ReplayBufferCallback())
    buffer = model.replay_buffer
    assert buffer.env_steps == 300 and buffer.active_n_steps == BUFFER_KWARGS[name]["n_steps"]
    assert (buffer.entropy_bonus is not None) == (algo is SAC)
    assert (buffer.policy_action is not None) == (algo is not DQN)
    if name == "dynamic":
        assert buffer.capacity < 300
    spy = Spy(io.BytesIO())
    spy.dump(buffer)
    assert spy.found == []

    model.save_replay_buffer(tmp_path / "buffer")
    other = algo("MlpPolicy", env_id, replay_buffer_class=ReplayBuffer, **kwargs)
    other.load_replay_buffer(tmp_path / "buffer")
    loaded = other.replay_buffer
    assert type(loaded) is type(buffer) and loaded.entropy_bonus is None and loaded.policy_action is None
    for attribute in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_array_equal(getattr(loaded, attribute), getattr(buffer, attribute))
    for attribute in ("pos", "full", "env_steps", "gamma", "n_steps", "capacity", "policy_distance", "recent_size"):
        assert getattr(loaded, attribute, None) == getattr(buffer, attribute, None), attribute
    other.learn(50, callback=ReplayBufferCallback(), reset_num_timesteps=False)  # re-attached
    assert (loaded.entropy_bonus is not None) == (algo is SAC)
    assert (loaded.policy_action is not None) == (algo is not DQN)
    assert loaded.env_steps == 300 + other.num_timesteps
    assert loaded.sample(16).rewards.shape == (16, 1)


def test_sparse_sac_attaches_its_buffer():
    model = SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        gamma=0.8,
        learning_starts=50,
        buffer_size=500,
        policy_kwargs=dict(SMALL),
        replay_buffer_class=MultiStepReplayBuffer,
        replay_buffer_kwargs=dict(n_steps=3),
    )
    model.learn(100)
    assert model.replay_buffer.gamma == 0.8
    assert model.replay_buffer.entropy_bonus is not None


# registry and arguments


def test_registry():
    assert get_replay_buffer_class("dual") is DualReplayBuffer
    with pytest.raises(ValueError, match=r"replay_buffer='duel' is not valid \(did you mean 'dual'\?\); choose one of"):
        get_replay_buffer_class("duel")
    with pytest.raises(ValueError, match="'multi_step', 'dual', 'dynamic'"):
        get_replay_buffer_class("prioritized")
    for value in ("dual", "DualReplayBuffer", "sb3_sparse.common.buffers.DualReplayBuffer"):
        assert find_replay_buffer_class(value) is DualReplayBuffer
    for value in (None, DualReplayBuffer, "HerReplayBuffer", "stable_baselines3.HerReplayBuffer", "other.DualReplayBuffer"):
        assert find_replay_buffer_class(value) is None


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (MultiStepReplayBuffer, {"n_steps": 0}, r"n_steps=0 is not valid; it must be an integer >= 1"),
        (MultiStepReplayBuffer, {"n_steps": 2.0}, r"n_steps=2.0 is not valid"),
        (MultiStepReplayBuffer, {"gamma": 1.5}, r"gamma=1.5 is not valid; it must be a number in \[0.0, 1.0\]"),
        (MultiStepReplayBuffer, {"n_step_start": -1}, r"n_step_start=-1 is not valid; it must be an integer >= 0"),
        (MultiStepReplayBuffer, {"entropy_terms": "yes"}, r"entropy_terms='yes' is not valid"),
        (MultiStepReplayBuffer, {"optimize_memory_usage": True}, r"optimize_memory_usage=True"),
        (DualReplayBuffer, {"recent_size": 0}, r"recent_size=0 is not valid"),
        (DualReplayBuffer, {"recent_fraction": 1.2}, r"recent_fraction=1.2 is not valid; it must be a number in \[0.0, 1.0\]"),
        (DynamicReplayBuffer, {"check_interval": 0}, r"check_interval=0 is not valid"),
        (DynamicReplayBuffer, {"check_size": -5}, r"check_size=-5 is not valid"),
        (DynamicReplayBuffer, {"distance_threshold": -0.1}, r"distance_threshold=-0.1 is not valid"),
        (DynamicReplayBuffer, {"min_size": 0}, r"min_size=0 is not valid"),
        (DynamicReplayBuffer, {"drop_fraction": 1.0}, r"drop_fraction=1.0 is not valid; it must be a number in \(0.0, 1.0\)"),
        (DynamicReplayBuffer, {"drop_fraction": 0}, r"drop_fraction=0 is not valid"),
    ],
)
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_buffer(cls, **kwargs)


def test_dict_observations_and_empty_buffer():
    with pytest.raises(ValueError, match="Dict observation spaces"):
        MultiStepReplayBuffer(10, spaces.Dict({"a": OBS_SPACE}), ACTION_SPACE)
    with pytest.raises(ValueError, match="cannot sample from an empty DualReplayBuffer"):
        make_buffer(DualReplayBuffer, recent_size=4).sample(4)
