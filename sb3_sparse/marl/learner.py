"""The learner of QMIX and VDN: team targets, the TD loss on a batch of episodes, the update and the target copies.

The two algorithms differ only in their policy's mixer (a monotonic mixing network or a sum), so they share it.
"""

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_sparse.common.targets import get_target_operator, lambda_returns, n_step_returns
from sb3_sparse.marl.buffers import EpisodeBatch
from sb3_sparse.marl.policies import QMIXPolicy


class ValueDecompositionLearner:
    """Trains a :class:`~sb3_sparse.marl.policies.QMIXPolicy` (or VDN's) on batches of whole episodes.

    :param policy: the agents, the mixer, their targets and the optimizer
    :param gamma: discount factor
    :param double_q: with ``target_operator="max"``, bootstrap from the target network's value of the online
        network's best action
    :param target_operator: ``"max"`` or ``"soft_mellowmax"`` (see :mod:`sb3_sparse.common.targets`)
    :param mellowmax_omega: Soft Mellowmax temperature
    :param mellowmax_alpha: Soft Mellowmax weighting temperature
    :param n_steps: rewards summed before bootstrapping
    :param td_lambda: lambda of the TD(lambda) targets (used when :meth:`train_step` is asked for them)
    :param max_grad_norm: maximum gradient norm (clipping)
    :param reward_stats: running statistics that rewards are standardised with (``None``: raw rewards)
    """

    def __init__(
        self,
        policy: QMIXPolicy,
        gamma: float,
        double_q: bool,
        target_operator: str,
        mellowmax_omega: float,
        mellowmax_alpha: float,
        n_steps: int,
        td_lambda: float,
        max_grad_norm: float,
        reward_stats: RunningMeanStd | None = None,
    ) -> None:
        self.policy = policy
        self.gamma = gamma
        self.double_q = double_q
        self.target_operator = target_operator
        mellowmax = target_operator == "soft_mellowmax"
        self.operator_params = {"omega": mellowmax_omega, "alpha": mellowmax_alpha} if mellowmax else {}
        self.n_steps = n_steps
        self.td_lambda = td_lambda
        self.max_grad_norm = max_grad_norm
        self.reward_stats = reward_stats

    def next_agent_values(self, batch: EpisodeBatch, online_q: th.Tensor, target_q: th.Tensor) -> th.Tensor:
        """Each agent's bootstrap value at time points ``1..T``: ``[batch, T, n_agents]``."""
        avail = batch.avail_actions[:, 1:] > 0
        any_avail = avail.any(dim=-1)  # padding time points have no available action
        avail = avail | ~any_avail.unsqueeze(-1)
        next_target = target_q[:, 1:]
        if self.target_operator == "max" and self.double_q:
            best = self.policy.greedy_actions(online_q[:, 1:].detach(), avail.float())
            values = next_target.gather(-1, best.unsqueeze(-1)).squeeze(-1)
        else:
            operator = get_target_operator(self.target_operator)
            values = operator(next_target.masked_fill(~avail, -float("inf")), dim=-1, **self.operator_params)
        return th.where(any_avail, values, 0.0)

    def targets(self, batch: EpisodeBatch, rewards: th.Tensor, next_values: th.Tensor, use_lambda: bool) -> th.Tensor:
        """The team targets ``[batch, T]``: TD(lambda) returns with ``use_lambda``, else ``n_steps``-step returns."""
        if use_lambda:
            return lambda_returns(rewards, batch.terminated, next_values, self.gamma, self.td_lambda, batch.filled)
        return n_step_returns(rewards, batch.terminated, next_values, self.gamma, self.n_steps, batch.filled)

    def standardized_rewards(self, batch: EpisodeBatch) -> th.Tensor:
        """The batch's rewards, standardised by the running statistics after updating them with the batch."""
        if self.reward_stats is None:
            return batch.rewards
        self.reward_stats.update(batch.rewards[batch.filled > 0].cpu().numpy().astype(np.float64))
        std = float(np.sqrt(self.reward_stats.var) + 1e-8)
        return (batch.rewards - float(self.reward_stats.mean)) / std

    def train_step(self, batch: EpisodeBatch, use_lambda: bool = False) -> dict[str, Any]:
        """One gradient step on ``batch`` (masked TD loss of the team value); returns the values to log."""
        policy = self.policy
        policy.set_training_mode(True)
        steps = batch.actions.shape[1]
        last_actions = th.cat([-th.ones_like(batch.actions[:, :1]), batch.actions], dim=1)
        inputs = policy.agent_inputs(batch.observations, last_actions)
        online_q = policy.unroll(inputs)
        chosen = online_q[:, :steps].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        rewards = self.standardized_rewards(batch)
        filled = batch.filled
        with th.no_grad():
            target_q = policy.unroll(inputs, target=True)
            next_agent_values = self.next_agent_values(batch, online_q, target_q)
            next_values = policy.mix(next_agent_values, batch.states[:, 1:], target=True).squeeze(-1)
            targets = self.targets(batch, rewards, next_values, use_lambda)
        q_tot = policy.mix(chosen, batch.states[:, :steps]).squeeze(-1)
        td_error = (q_tot - targets) * filled
        loss = (td_error**2).sum() / filled.sum()
        policy.optimizer.zero_grad()
        loss.backward()
        parameters = [p for group in policy.optimizer.param_groups for p in group["params"]]
        grad_norm = th.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
        policy.optimizer.step()
        n_filled = float(filled.sum())
        td_error, q_tot = td_error.detach(), q_tot.detach()
        return {
            "loss": loss.item(),
            "grad_norm": float(grad_norm),
            "td_error_abs": float(td_error.abs().sum()) / n_filled,
            "q_taken_mean": float((q_tot * filled).sum()) / n_filled,
            "target_mean": float((targets * filled).sum()) / n_filled,
        }

    def update_targets(self) -> None:
        """Copy the online networks (masks included) into the targets."""
        self.policy.agent_target.load_state_dict(self.policy.agent.state_dict())
        self.policy.mixer_target.load_state_dict(self.policy.mixer.state_dict())
