"""The multi-agent pieces that need no env: mixers, agent networks, targets, episode buffers, Tiny widths."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.utils import ConstantSchedule

from sb3_sparse.common.recipes import MULTI_AGENT_RECIPES, sparse_recipe
from sb3_sparse.common.targets import lambda_returns, n_step_returns, soft_mellowmax
from sb3_sparse.core.masking import get_mask, sparse_weights
from sb3_sparse.marl.buffers import DualEpisodeReplayBuffer, EpisodeReplayBuffer, get_episode_buffer_class
from sb3_sparse.marl.policies import MlpQMIXPolicy, QMixer, QMIXPolicy, VDNMixer, VDNPolicy, matrix_weights, tiny_policy_kwargs

OBS = spaces.Box(-1.0, 1.0, (6,), np.float32)
ACTIONS = spaces.Discrete(4)
SPARSE = {"regime": "rigl", "sparsity": 0.9, "sparsity_distribution": "erk", "sparse_layers": "all"}


def make_policy(cls=QMIXPolicy, n_agents=3, state_dim=9, **kwargs):
    return cls(OBS, ACTIONS, ConstantSchedule(5e-4), n_agents, state_dim, **kwargs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), layers=st.sampled_from([1, 2]), sparse=st.booleans())
def test_qmix_is_monotonic_in_every_agent_value(seed, layers, sparse):
    th.manual_seed(seed)
    policy = make_policy(hypernet_layers=layers, dst_config=SPARSE if sparse else None)
    qs = th.randn(16, 3, requires_grad=True)
    states = th.randn(16, 9) * 3
    q_tot = policy.mix(qs, states)
    (grad,) = th.autograd.grad(q_tot.sum(), qs)
    assert q_tot.shape == (16, 1)
    assert (grad >= 0).all()
    # the mixing weights themselves are non-negative for any state
    mixer = policy.mixer
    assert (th.abs(mixer.hyper_w1(states)) >= 0).all()
    # raising one agent's value never lowers Q_tot
    bumped = qs.detach().clone()
    bumped[:, seed % 3] += 1.0
    assert (policy.mix(bumped, states) >= q_tot.detach() - 1e-6).all()


def test_vdn_is_the_sum_and_has_no_weights():
    mixer = VDNMixer()
    qs = th.randn(2, 5, 3)
    assert th.equal(mixer(qs, th.zeros(2, 5, 7)), qs.sum(-1, keepdim=True))
    policy = make_policy(VDNPolicy, dst_config=SPARSE)
    assert list(policy.sparse_bindings()) == ["agent"]
    assert sum(p.numel() for p in policy.mixer.parameters()) == 0


def test_qmixer_rejects_bad_hypernet_layers():
    with pytest.raises(ValueError, match="hypernet_layers=3"):
        QMixer(2, 4, hypernet_layers=3)


@pytest.mark.parametrize("cls", [QMIXPolicy, MlpQMIXPolicy])
def test_sparse_policy_masks_every_layer_and_targets_share_them(cls):
    policy = make_policy(cls, dst_config=SPARSE)
    online = {name: get_mask(m, w) for name, m, w in sparse_weights(policy.agent)}
    online.update({f"mixer.{name}": get_mask(m, w) for name, m, w in sparse_weights(policy.mixer)})
    target = {name: get_mask(m, w) for name, m, w in sparse_weights(policy.agent_target)}
    target.update({f"mixer.{name}": get_mask(m, w) for name, m, w in sparse_weights(policy.mixer_target)})
    assert set(online) == set(target) and len(online) == (11 if cls is QMIXPolicy else 10)
    for name, mask in online.items():
        assert th.equal(mask, target[name])
    active = sum(int(mask.sum()) for mask in online.values())
    assert active == pytest.approx(0.1 * matrix_weights(policy), rel=0.02)
    # the GRU's weights are sparse too, and pruned entries are exactly 0
    if cls is QMIXPolicy:
        assert "rnn.weight_hh" in online
        assert th.all(policy.agent.rnn.weight_hh[online["rnn.weight_hh"] == 0] == 0)


def test_agent_inputs_append_ids_and_last_actions():
    policy = make_policy(obs_last_action=True)
    obs = th.zeros(2, 5, 3, 6)
    last = th.tensor([-1, 0, 3]).expand(2, 5, 3)
    inputs = policy.agent_inputs(obs, last)
    assert inputs.shape == (2, 5, 3, 6 + 3 + 4) == (*obs.shape[:-1], policy.input_dim)
    assert th.equal(inputs[0, 0, :, 6:9], th.eye(3))
    assert th.equal(inputs[0, 0, 0, 9:], th.zeros(4))  # no action yet
    assert th.equal(inputs[0, 0, 2, 9:], th.tensor([0.0, 0, 0, 1]))
    with pytest.raises(ValueError, match="last actions"):
        policy.agent_inputs(obs)


def test_recurrent_unroll_matches_step_by_step():
    policy = make_policy()
    inputs = policy.agent_inputs(th.randn(2, 4, 3, 6))
    unrolled = policy.unroll(inputs)
    hidden = None
    for t in range(4):
        q, hidden = policy.agent_q_values(inputs[:, t], hidden)
        assert th.allclose(q, unrolled[:, t])
    # the GRU remembers: the same input at t=1 after different pasts gives different values
    other = inputs.clone()
    other[:, 0] += 1.0
    assert not th.allclose(policy.unroll(other)[:, 1], unrolled[:, 1])


def brute_force_n_step(rewards, dones, values, gamma, n, mask):
    batch, steps = rewards.shape
    out = np.zeros((batch, steps))
    for b in range(batch):
        length = int(mask[b].sum())
        for t in range(length):
            total, discount = 0.0, 1.0
            for k in range(n):
                s = t + k
                total += discount * rewards[b, s]
                if dones[b, s]:
                    break
                discount *= gamma
                if k == n - 1 or s + 1 >= length:
                    total += discount * values[b, s]
                    break
            out[b, t] = total
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 5), gamma=st.floats(0.5, 1.0))
def test_n_step_returns_match_a_brute_force_sum(seed, n, gamma):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(3, 7))
    values = rng.normal(size=(3, 7))
    lengths = rng.integers(1, 8, size=3)
    mask = (np.arange(7)[None] < lengths[:, None]).astype(float)
    dones = np.zeros((3, 7))
    for b, length in enumerate(lengths):
        dones[b, length - 1] = rng.random() < 0.5  # terminated, or truncated (bootstrap)
    expected = brute_force_n_step(rewards, dones, values, gamma, n, mask)
    tensors = [th.tensor(x) for x in (rewards, dones, values)]
    got = n_step_returns(*tensors, gamma=gamma, n_steps=n, mask=th.tensor(mask))
    assert np.allclose(got.numpy(), expected)


def test_one_step_returns_equal_td_lambda_zero():
    rewards, values = th.randn(2, 6), th.randn(2, 6)
    dones = th.zeros(2, 6)
    dones[0, 5] = 1
    one = n_step_returns(rewards, dones, values, 0.9, 1)
    assert th.allclose(one, lambda_returns(rewards, dones, values, 0.9, 0.0))
    assert th.allclose(one, rewards + 0.9 * (1 - dones) * values)
    with pytest.raises(ValueError, match="n_steps=0"):
        n_step_returns(rewards, dones, values, 0.9, 0)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 5.0])
def test_soft_mellowmax_ignores_unavailable_actions(alpha):
    q = th.tensor([[1.0, 2.0, -3.0, 0.5]])
    available = th.tensor([[True, False, True, True]])
    masked = soft_mellowmax(q.masked_fill(~available, -float("inf")), omega=5.0, alpha=alpha)
    expected = soft_mellowmax(q[available].view(1, -1), omega=5.0, alpha=alpha)
    assert th.isfinite(masked).all()
    assert th.allclose(masked, expected)


def fill_episode(buffer, length, value):
    episode = buffer.new_episode()
    n_agents, obs_dim, state_dim, n_actions = buffer.shape
    episode.start(np.full((n_agents, obs_dim), value), np.full(state_dim, value), np.ones((n_agents, n_actions)))
    for t in range(length):
        done = t == length - 1
        episode.add(
            np.full(n_agents, t % n_actions),
            value,
            done,
            np.full((n_agents, obs_dim), value),
            np.full(state_dim, value),
            np.ones((n_agents, n_actions)),
        )
    buffer.add(episode)


def test_episode_buffer_pads_cuts_and_overwrites_the_oldest():
    buffer = EpisodeReplayBuffer(3, 10, 2, 4, 5, 3)
    for length, value in ((3, 1.0), (6, 2.0)):
        fill_episode(buffer, length, value)
    assert buffer.size() == 2 and not buffer.can_sample(3)
    batch = buffer.sample(2, np.random.default_rng(0))
    assert batch.actions.shape == (2, 6, 2) and batch.observations.shape == (2, 7, 2, 4)  # cut to the longest
    short = 0 if batch.rewards[0, 0] == 1.0 else 1
    assert batch.filled[short].tolist() == [1, 1, 1, 0, 0, 0]
    assert batch.terminated[short].tolist() == [0, 0, 1, 0, 0, 0]
    assert float(batch.rewards[short, 3:].abs().sum()) == 0.0
    for value in (3.0, 4.0):
        fill_episode(buffer, 2, value)
    stored = sorted(float(r) for r in buffer.storage["rewards"][:, 0])
    assert stored == [2.0, 3.0, 4.0]  # the first episode was overwritten
    assert sorted(buffer.newest(2).tolist()) == sorted([(buffer.pos - 1) % 3, (buffer.pos - 2) % 3])
    with pytest.raises(ValueError, match="fewer than batch_size"):
        buffer.sample(4, np.random.default_rng(0))
    episode = buffer.new_episode()
    with pytest.raises(ValueError, match="without steps"):
        buffer.add(episode)


def test_dual_buffer_draws_its_share_from_the_newest_episodes():
    buffer = DualEpisodeReplayBuffer(100, 5, 1, 2, 2, 2, recent_size=10, recent_fraction=0.5)
    for value in range(100):
        fill_episode(buffer, 2, float(value))
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(50):
        rewards = buffer.sample(20, rng).rewards[:, 0]
        counts.append(int((rewards >= 90).sum()))
        assert len(set(rewards.tolist())) == 20  # no episode twice in a batch
    assert min(counts) >= 10  # half of each batch from the 10 newest (the other half may hit them too)
    assert np.mean(counts) < 12
    with pytest.raises(ValueError, match=r"recent_fraction=1\.5"):
        DualEpisodeReplayBuffer(10, 5, 1, 2, 2, 2, recent_fraction=1.5)
    assert get_episode_buffer_class("dual") is DualEpisodeReplayBuffer
    assert get_episode_buffer_class("DualEpisodeReplayBuffer") is DualEpisodeReplayBuffer
    with pytest.raises(ValueError, match=r"replay_buffer_class='duel'.*did you mean 'dual'"):
        get_episode_buffer_class("duel")


def test_tiny_policy_has_the_active_weight_count_of_the_sparse_one():
    full = make_policy()
    kwargs = tiny_policy_kwargs(QMIXPolicy, 0.9, OBS, ACTIONS, 3, 9)
    tiny = make_policy(**kwargs)
    assert kwargs["hidden_dim"] < 64
    assert matrix_weights(tiny) == pytest.approx(0.1 * matrix_weights(full), rel=0.15)


def test_multi_agent_recipes():
    assert set(MULTI_AGENT_RECIPES) == {"static", "set", "rigl", "rlx2", "mast"}
    mast = sparse_recipe("mast", algorithm="qmix")
    assert mast["target_operator"] == "soft_mellowmax" and mast["replay_buffer_class"] == "dual"
    assert "replay_buffer_class" in sparse_recipe("mast", algorithm="sparse_dqn")  # the single-agent form stays
    assert sparse_recipe("mast", algorithm="sparse_dqn")["replay_buffer_class"] is not mast["replay_buffer_class"]
    with pytest.raises(ValueError, match="not 'qmix'"):
        sparse_recipe("ds_td3", algorithm="qmix")
