"""Bootstrap operators (max, Soft Mellowmax, registered ones), TD(lambda) returns, and SparseDQN's
``target_operator``: SB3's train with the max, the operator's target otherwise, kept by save/load."""

import csv
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import DQN
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_sparse import SparseDQN
from sb3_sparse.common import targets
from sb3_sparse.common.targets import (
    TARGET_OPERATORS,
    get_target_operator,
    lambda_returns,
    max_operator,
    register_target_operator,
    soft_mellowmax,
)


def direct_soft_mellowmax(q: th.Tensor, omega: float, alpha: float, dim: int = -1) -> th.Tensor:
    """The definition, term by term (overflows for large ``omega * q``)."""
    weights = th.exp(alpha * q) / th.exp(alpha * q).sum(dim=dim, keepdim=True)
    return th.log((weights * th.exp(omega * q)).sum(dim=dim)) / omega


@pytest.mark.parametrize(("shape", "dim"), [((5,), -1), ((4, 3), 1), ((4, 3), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)])
@pytest.mark.parametrize(("omega", "alpha"), [(0.5, 0.0), (5.0, 1.0), (10.0, 3.0)])
def test_soft_mellowmax_is_the_formula(shape: tuple[int, ...], dim: int, omega: float, alpha: float) -> None:
    q = th.randn(shape, generator=th.Generator().manual_seed(0), dtype=th.float64)
    result = soft_mellowmax(q, omega, alpha, dim=dim)
    expected = direct_soft_mellowmax(q, omega, alpha, dim=dim)
    assert result.shape == expected.shape == q.sum(dim=dim).shape
    assert th.allclose(result, expected, rtol=1e-12, atol=1e-12)


def test_soft_mellowmax_is_stable_for_large_q() -> None:
    q = 1e4 + th.randn(6, 4, generator=th.Generator().manual_seed(1))
    assert not th.isfinite(direct_soft_mellowmax(q, 10.0, 1.0)).all()  # exp(1e5) overflows
    result = soft_mellowmax(q, 10.0, 1.0)
    # Shift invariance: sm(q) = c + sm(q - c), the right side computed directly in float64.
    expected = 1e4 + direct_soft_mellowmax((q - 1e4).double(), 10.0, 1.0)
    assert th.isfinite(result).all()
    assert th.allclose(result.double(), expected, rtol=0, atol=2e-3)  # float32 resolution at 1e4 is 1e-3


def test_soft_mellowmax_limits() -> None:
    q = th.randn(8, 5, generator=th.Generator().manual_seed(2), dtype=th.float64)
    values = [soft_mellowmax(q, omega, 1.0) for omega in (0.1, 1.0, 10.0, 100.0, 1000.0)]
    for smaller, larger in itertools.pairwise(values):  # a power mean: nondecreasing in omega
        assert (larger >= smaller - 1e-12).all()
    assert (q.max(dim=-1).values - values[-1]).abs().max() < 1e-2
    # alpha = 0 is mellowmax, the log-mean-exp; as omega -> 0 it tends to the mean.
    mellowmax = th.log(th.exp(3.0 * q).mean(dim=-1)) / 3.0
    assert th.allclose(soft_mellowmax(q, 3.0, 0.0), mellowmax, rtol=1e-12, atol=1e-12)
    assert th.allclose(soft_mellowmax(q, 1e-6, 0.0), q.mean(dim=-1), rtol=0, atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(
    q=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=8),
    omega=st.floats(1e-3, 1e3),
    alpha=st.floats(0.0, 100.0),
)
def test_soft_mellowmax_bounds(q: list[float], omega: float, alpha: float) -> None:
    """Between max - log(n) / omega (the argmax weighs at least 1/n) and max, hence also >= min."""
    values = th.tensor(q, dtype=th.float64)
    result = float(soft_mellowmax(values, omega, alpha))
    tolerance = 1e-7 * (1.0 + float(values.abs().max()))
    assert max(q) - math.log(len(q)) / omega - tolerance <= result <= max(q) + tolerance
    assert result >= min(q) - tolerance


@pytest.mark.parametrize(
    ("omega", "alpha", "match"),
    [(0.0, 1.0, r"omega=0\.0"), (-1.0, 1.0, r"omega=-1\.0"), (math.inf, 1.0, "omega=inf"), (1.0, -0.5, r"alpha=-0\.5")],
)
def test_soft_mellowmax_rejects_bad_parameters(omega: float, alpha: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        soft_mellowmax(th.zeros(3), omega, alpha)


def test_registry() -> None:
    q = th.randn(4, 3, generator=th.Generator().manual_seed(3))
    assert th.equal(get_target_operator("max")(q, dim=1), q.max(dim=1).values)
    assert th.equal(max_operator(q, dim=0), q.max(dim=0).values)
    assert get_target_operator("soft_mellowmax") is soft_mellowmax
    with pytest.raises(ValueError, match=r"target_operator='softmax' is not valid.*; choose one of 'max', 'soft_mellowmax'$"):
        get_target_operator("softmax")
    with pytest.raises(ValueError, match=r"did you mean 'soft_mellowmax'\?"):
        get_target_operator("soft_melowmax")
    with pytest.raises(ValueError, match="built in"):
        register_target_operator("max", max_operator)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[..., th.Tensor]]:
    """A copy of the operator registry, in place of the real one for this test."""
    copy = dict(TARGET_OPERATORS)
    monkeypatch.setattr(targets, "TARGET_OPERATORS", copy)
    return copy


def one_step_targets(rewards: th.Tensor, dones: th.Tensor, values: th.Tensor, gamma: float) -> th.Tensor:
    return rewards + gamma * (1 - dones) * values


def discounted_returns(rewards: th.Tensor, dones: th.Tensor, values: th.Tensor, gamma: float) -> th.Tensor:
    """Forward sums: sum_k gamma^(k-t) r_k up to the termination, plus gamma^(T-t) V_T if none."""
    returns = th.zeros_like(rewards)
    for t in range(rewards.shape[1]):
        discount = th.ones_like(rewards[:, 0])
        for k in range(t, rewards.shape[1]):
            returns[:, t] += discount * rewards[:, k]
            discount = discount * gamma * (1 - dones[:, k])
        returns[:, t] += discount * values[:, -1]
    return returns


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1)])
def test_lambda_returns_extremes(shape: tuple[int, ...]) -> None:
    generator = th.Generator().manual_seed(4)
    rewards = th.randn(shape, generator=generator, dtype=th.float64)
    values = th.randn(shape, generator=generator, dtype=th.float64)
    dones = (th.rand(shape, generator=generator) < 0.2).double()
    assert dones.any()
    gamma = 0.9
    assert th.allclose(lambda_returns(rewards, dones, values, gamma, 0.0), one_step_targets(rewards, dones, values, gamma))
    expected = discounted_returns(rewards, dones, values, gamma)
    assert th.allclose(lambda_returns(rewards, dones, values, gamma, 1.0), expected)


def test_lambda_returns_by_hand() -> None:
    """gamma = lam = 0.5; rows: terminated at step 1 then padded; truncated at step 1 then padded; full."""
    nan = float("nan")
    rewards = th.tensor([[1.0, 2.0, nan, nan], [1.0, 2.0, nan, nan], [1.0, 2.0, 3.0, 4.0]])
    dones = th.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    values = th.tensor([[10.0, 20.0, nan, nan], [10.0, 20.0, nan, nan], [10.0, 20.0, 30.0, 40.0]])
    mask = th.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=th.bool)
    expected = th.tensor(
        [
            # G1 = 2 (terminal); G0 = 1 + 0.5 * (0.5 * 10 + 0.5 * 2)
            [4.0, 2.0, 0.0, 0.0],
            # G1 = 2 + 0.5 * 20 (the next step is padding: full bootstrap); G0 = 1 + 0.5 * (0.5 * 10 + 0.5 * 12)
            [6.5, 12.0, 0.0, 0.0],
            # G3 = 4 + 0.5 * 40; G2 = 3 + 0.5 * (15 + 12); G1 = 2 + 0.5 * (10 + 8.25); G0 = 1 + 0.5 * (5 + 5.5625)
            [6.28125, 11.125, 16.5, 24.0],
        ]
    )
    assert th.equal(lambda_returns(rewards, dones, values, 0.5, 0.5, mask=mask), expected)
    with pytest.raises(ValueError, match=r"lam=1\.5"):
        lambda_returns(rewards, dones, values, 0.5, 1.5)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\)"):
        lambda_returns(rewards, dones, values, 0.5, 0.5, mask=mask[:, :3])


def tiny(**kwargs: Any) -> dict[str, Any]:
    return {"policy_kwargs": {"net_arch": [32, 32]}, "batch_size": 32, "seed": 0, **kwargs}


def test_sparse_dqn_rejects_bad_operator_settings() -> None:
    # The env does not exist: the error must come before SB3's constructor makes it.
    with pytest.raises(ValueError, match=r"target_operator='softmax' is not valid.*; choose one of 'max', 'soft_mellowmax'$"):
        SparseDQN("MlpPolicy", "NoSuchEnv-v0", target_operator="softmax")
    with pytest.raises(ValueError, match=r"mellowmax_omega=0 is not valid"):
        SparseDQN("MlpPolicy", "NoSuchEnv-v0", target_operator="soft_mellowmax", mellowmax_omega=0)
    with pytest.raises(ValueError, match=r"mellowmax_alpha=-1\.0 is not valid"):
        SparseDQN("MlpPolicy", "NoSuchEnv-v0", target_operator="soft_mellowmax", mellowmax_alpha=-1.0)


def test_sparse_dqn_soft_mellowmax_learns_and_saves(tmp_path: Path) -> None:
    model = SparseDQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=50,
        target_operator="soft_mellowmax",
        mellowmax_omega=3.0,
        mellowmax_alpha=0.5,
        **tiny(),
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(300, log_interval=1)
    with open(tmp_path / "progress.csv") as file:
        losses = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert losses and all(math.isfinite(loss) for loss in losses)
    model.save(tmp_path / "model")
    loaded = SparseDQN.load(tmp_path / "model", device="cpu")
    assert (loaded.target_operator, loaded.mellowmax_omega, loaded.mellowmax_alpha) == ("soft_mellowmax", 3.0, 0.5)


def fixed_batch(model: SparseDQN, monkeypatch: pytest.MonkeyPatch, seed: int = 5) -> ReplayBufferSamples:
    """Make ``model.replay_buffer.sample`` return one fixed batch of 8 CartPole transitions."""
    generator = th.Generator().manual_seed(seed)
    batch = ReplayBufferSamples(
        observations=th.randn(8, 4, generator=generator),
        actions=th.randint(0, 2, (8, 1), generator=generator),
        next_observations=th.randn(8, 4, generator=generator),
        dones=th.tensor([[0.0], [1.0], [0.0], [0.0], [1.0], [0.0], [0.0], [0.0]]),
        rewards=th.randn(8, 1, generator=generator),
    )
    monkeypatch.setattr(model.replay_buffer, "sample", lambda batch_size, env=None: batch)
    model.set_logger(Logger(None, []))
    return batch


def test_sparse_dqn_max_is_sb3s_train(registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """With "max", SB3's DQN.train runs; the override, given the max as a custom operator, gives the same step."""
    calls: list[int] = []

    def counted_max(q: th.Tensor, dim: int) -> th.Tensor:
        calls.append(dim)
        return max_operator(q, dim=dim)

    register_target_operator("counted_max", counted_max)
    sb3, custom = (SparseDQN("MlpPolicy", "CartPole-v1", target_operator=name, **tiny()) for name in ("max", "counted_max"))
    for name, value in sb3.policy.state_dict().items():
        assert th.equal(value, custom.policy.state_dict()[name]), name
    fixed_batch(sb3, monkeypatch)
    fixed_batch(custom, monkeypatch)
    sb3_train = DQN.train
    sb3_calls: list[int] = []
    monkeypatch.setattr(DQN, "train", lambda self, *args: sb3_calls.append(1) or sb3_train(self, *args))
    sb3.train(gradient_steps=2, batch_size=8)
    custom.train(gradient_steps=2, batch_size=8)
    assert sb3_calls == [1] and calls == [1, 1]
    for name, value in sb3.policy.state_dict().items():
        assert th.equal(value, custom.policy.state_dict()[name]), name
    for key in ("train/loss", "train/n_updates"):
        assert sb3.logger.name_to_value[key] == custom.logger.name_to_value[key], key
    assert custom._n_updates == 2


def test_sparse_dqn_soft_mellowmax_target(monkeypatch: pytest.MonkeyPatch) -> None:
    omega, alpha, gamma = 1.0, 0.5, 0.9
    model = SparseDQN(
        "MlpPolicy",
        "CartPole-v1",
        gamma=gamma,
        target_operator="soft_mellowmax",
        mellowmax_omega=omega,
        mellowmax_alpha=alpha,
        **tiny(),
    )
    batch = fixed_batch(model, monkeypatch)
    with th.no_grad():
        next_q = model.q_net_target(batch.next_observations).double()
    rewards, continues = batch.rewards.double(), gamma * (1 - batch.dones.double())
    expected = rewards + continues * direct_soft_mellowmax(next_q, omega, alpha)[:, None]
    greedy = rewards + continues * next_q.max(dim=1, keepdim=True).values
    assert (expected - greedy).abs().max() > 0.1

    seen: list[th.Tensor] = []
    smooth_l1_loss = F.smooth_l1_loss
    monkeypatch.setattr(F, "smooth_l1_loss", lambda current, target: seen.append(target) or smooth_l1_loss(current, target))
    model.train(gradient_steps=1, batch_size=8)
    assert len(seen) == 1
    assert seen[0].shape == (8, 1)
    assert np.allclose(seen[0].numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
