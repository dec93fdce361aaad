"""Bootstrap operators and TD(lambda) returns for the value targets of sparse value-based learners.

Sparse networks make the max over noisy Q-values overestimate more: MAST (Hu et al., 2024) trains
sparse value-based agents with the Soft Mellowmax operator (Gan et al., arXiv 2012.09456) in place of
the max, and with hybrid TD(lambda) targets. Both live here, in plain PyTorch (no SB3), so any learner
can use them: :class:`~sb3_sparse.dqn.SparseDQN` picks its operator by name from
:data:`TARGET_OPERATORS`; :func:`lambda_returns` and :func:`n_step_returns` are for learners that sample whole
episodes (:class:`~sb3_sparse.marl.QMIX`).

A target operator reduces the action dimension ``dim`` of Q-values and is called as
``fn(q, dim=dim, **params)``; the parameters are operator-specific keywords (``soft_mellowmax``:
``omega`` and ``alpha``), the max takes none.
"""

from collections.abc import Callable
from typing import Any

import torch as th
import torch.nn.functional as F

from sb3_sparse.core.config import check_choice, is_number

#: ``fn(q, dim=..., **params)`` -> ``q`` reduced over ``dim``.
TargetOperator = Callable[..., th.Tensor]


def check_mellowmax_parameters(omega: Any, alpha: Any, prefix: str = "") -> tuple[float, float]:
    """Validate the Soft Mellowmax parameters: ``omega`` finite and > 0, ``alpha`` finite and >= 0.

    :param omega: the mellowmax temperature
    :param alpha: the softmax weighting temperature
    :param prefix: put before the argument names in the error (e.g. ``"mellowmax_"``)
    :return: ``(omega, alpha)`` as floats
    """
    if not is_number(omega) or not 0.0 < omega < float("inf"):
        raise ValueError(f"{prefix}omega={omega!r} is not valid; it must be a finite number > 0")
    if not is_number(alpha) or not 0.0 <= alpha < float("inf"):
        raise ValueError(f"{prefix}alpha={alpha!r} is not valid; it must be a finite number >= 0")
    return float(omega), float(alpha)


def soft_mellowmax(q: th.Tensor, omega: float, alpha: float, dim: int = -1) -> th.Tensor:
    """Soft Mellowmax: ``(1 / omega) * log sum_a softmax(alpha * q)_a * exp(omega * q_a)``.

    Computed as ``logsumexp(log_softmax(alpha * q) + omega * q) / omega``, which does not overflow for
    large ``q``. It lies in ``[max(q) - log(n) / omega, max(q)]`` (``n`` actions); ``alpha = 0`` gives
    the mellowmax ``(1 / omega) * log mean exp(omega * q)``.

    :param q: Q-values, any shape; ``-inf`` marks an action that cannot be taken (not in the sum)
    :param omega: the mellowmax temperature (> 0; larger is closer to the max)
    :param alpha: the softmax weighting temperature (>= 0; larger weights the best actions more)
    :param dim: the action dimension, reduced
    :return: ``q`` without ``dim``
    """
    omega, alpha = check_mellowmax_parameters(omega, alpha)
    weights = th.where(th.isneginf(q), q, alpha * q)  # -inf (an unavailable action) keeps no weight, even at alpha 0
    return th.logsumexp(F.log_softmax(weights, dim=dim) + omega * q, dim=dim) / omega


def max_operator(q: th.Tensor, dim: int = -1) -> th.Tensor:
    """The max over ``dim`` (the values only), the target of DQN.

    :param q: Q-values, any shape
    :param dim: the action dimension, reduced
    :return: ``q`` without ``dim``
    """
    return q.max(dim=dim).values


_BUILTIN_OPERATORS = ("max", "soft_mellowmax")
#: Target operators by name (``target_operator`` of :class:`~sb3_sparse.dqn.SparseDQN`); extend it with
#: :func:`register_target_operator`.
TARGET_OPERATORS: dict[str, TargetOperator] = {"max": max_operator, "soft_mellowmax": soft_mellowmax}


def register_target_operator(name: str, fn: TargetOperator) -> TargetOperator:
    """Add a target operator ``fn(q, dim=..., **params)`` under ``name`` (the built-ins cannot be replaced).

    :param name: the name given as ``target_operator``
    :param fn: the operator; :class:`~sb3_sparse.dqn.SparseDQN` calls it as ``fn(q, dim=1)``
    :return: ``fn``
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"target operator name {name!r} is not valid; give a non-empty string")
    if name in _BUILTIN_OPERATORS:
        raise ValueError(f"target operator {name!r} is built in and cannot be replaced")
    if not callable(fn):
        raise ValueError(f"target operator {name!r}: {fn!r} is not callable")
    TARGET_OPERATORS[name] = fn
    return fn


def get_target_operator(name: str) -> TargetOperator:
    """The operator registered as ``name``; a ``ValueError`` naming the valid choices otherwise.

    :param name: a key of :data:`TARGET_OPERATORS`
    """
    check_choice("target_operator", name, tuple(TARGET_OPERATORS))
    return TARGET_OPERATORS[name]


def lambda_returns(
    rewards: th.Tensor,
    dones: th.Tensor,
    bootstrap_values: th.Tensor,
    gamma: float,
    lam: float,
    mask: th.Tensor | None = None,
) -> th.Tensor:
    """TD(lambda) returns of a batch of episode segments, time in dimension 1.

    Backwards from the last step: ``G_t = r_t + gamma * (1 - d_t) * ((1 - lam) * V_t + lam * G_{t+1})``,
    where ``V_t`` is ``bootstrap_values[:, t]`` (the value of the state *after* step ``t``); the last
    step, and a step followed by a padded one, bootstrap fully: ``G_t = r_t + gamma * (1 - d_t) * V_t``.
    ``lam = 0`` gives one-step TD targets, ``lam = 1`` discounted returns plus the final bootstrap.

    :param rewards: rewards, shape ``[batch, T, ...]`` (e.g. ``[batch, T]`` or ``[batch, T, 1]``)
    :param dones: 1 where the episode terminated at that step (no bootstrap beyond it), same shape
    :param bootstrap_values: the target network's value of the state after each step, same shape
    :param gamma: the discount factor, in [0, 1]
    :param lam: the TD(lambda) parameter, in [0, 1]
    :param mask: 1 for real steps, 0 for the padding after an episode's end (as in EPyMARL's filled
        episodes), same shape; padded steps get a return of 0 and contribute nothing
    :return: the returns, same shape as ``rewards``
    """
    for name, value in (("gamma", gamma), ("lam", lam)):
        if not is_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}={value!r} is not valid; it must be a number in [0, 1]")
    _check_shapes(rewards, dones=dones, bootstrap_values=bootstrap_values, mask=mask)
    continues = gamma * (1.0 - dones.to(rewards.dtype))
    valid = th.ones_like(rewards, dtype=th.bool) if mask is None else mask.bool()
    returns: list[th.Tensor] = []  # backwards in time
    for t in reversed(range(rewards.shape[1])):
        target = bootstrap_values[:, t]
        if returns:  # mix in the next return unless the next step is padding
            target = th.where(valid[:, t + 1], target + lam * (returns[-1] - target), target)
        returns.append(th.where(valid[:, t], rewards[:, t] + continues[:, t] * target, 0.0))
    return th.stack(returns[::-1], dim=1)


def _check_shapes(rewards: th.Tensor, **tensors: th.Tensor | None) -> None:
    if rewards.dim() < 2:
        raise ValueError(f"rewards must be shaped [batch, T, ...], got {tuple(rewards.shape)}")
    for name, tensor in tensors.items():
        if tensor is not None and tensor.shape != rewards.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, rewards {tuple(rewards.shape)}")


def n_step_returns(
    rewards: th.Tensor,
    dones: th.Tensor,
    bootstrap_values: th.Tensor,
    gamma: float,
    n_steps: int,
    mask: th.Tensor | None = None,
) -> th.Tensor:
    """Multi-step returns of a batch of episode segments, time in dimension 1, with the arguments of :func:`lambda_returns`.

    ``G_t = r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1} + gamma^k V_{t+k-1}`` with ``k = n_steps``, or fewer
    steps where the episode (or the segment) ends first; no bootstrap after a terminal step.

    :param n_steps: the number of rewards summed before bootstrapping (1: one-step TD targets)
    :return: the returns, same shape as ``rewards`` (0 at padded steps)
    """
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"n_steps={n_steps!r} is not valid; it must be an integer >= 1")
    if not is_number(gamma) or not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma={gamma!r} is not valid; it must be a number in [0, 1]")
    _check_shapes(rewards, dones=dones, bootstrap_values=bootstrap_values, mask=mask)
    continues = gamma * (1.0 - dones.to(rewards.dtype))
    valid = th.ones_like(rewards, dtype=th.bool) if mask is None else mask.bool()
    next_valid = th.cat([valid[:, 1:], th.zeros_like(valid[:, :1])], dim=1)
    returns = rewards + continues * bootstrap_values  # one step
    for _ in range(n_steps - 1):  # G^(k)_t = r_t + c_t * (G^(k-1)_{t+1} if step t+1 is real, else V_t)
        later = th.cat([returns[:, 1:], th.zeros_like(returns[:, :1])], dim=1)
        returns = rewards + continues * th.where(next_valid, later, bootstrap_values)
    return th.where(valid, returns, 0.0)
