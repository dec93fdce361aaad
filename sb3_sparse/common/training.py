"""What the lean training steps share: gradients only where a loss updates, and the steps of the SAC family."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import polyak_update as sb3_polyak_update
from torch import nn


def parameters_not_in(module: nn.Module, other: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of ``module`` that ``other`` does not hold (e.g. the critic's own, not a features
    extractor it shares with the actor)."""
    held = {id(param) for param in other.parameters()}
    return [param for param in module.parameters() if param.requires_grad and id(param) not in held]


@contextmanager
def no_gradient_for(parameters: Sequence[nn.Parameter]) -> Iterator[None]:
    """Compute and back-propagate a loss without gradients for ``parameters`` (they take none, and their gradient
    hooks do not run). SAC's and TD3's actor losses go through the critic, whose weight gradients SB3's
    ``train`` computes and throws away."""
    for param in parameters:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in parameters:
            param.requires_grad_(True)


def polyak_update(params: Sequence[th.Tensor], target_params: Sequence[th.Tensor], tau: float) -> None:
    """SB3's :func:`~stable_baselines3.common.utils.polyak_update` (same operations, same floats) on lists of
    tensors, in one call per operation instead of a Python loop over the tensors."""
    if len(params) != len(target_params):
        raise ValueError(f"polyak_update: {len(params)} parameters for {len(target_params)} target parameters")
    with th.no_grad():
        targets = [param.data for param in target_params]
        th._foreach_mul_(targets, 1 - tau)
        th._foreach_add_(targets, [param.data for param in params], alpha=tau)


def start_training(model: Any) -> None:
    """What an SAC-family ``train`` does first: train mode, and the learning rates of the actor's, the critic's and
    (when learned) the entropy coefficient's optimizers."""
    model.policy.set_training_mode(True)
    optimizers = [model.actor.optimizer, model.critic.optimizer]
    if model.ent_coef_optimizer is not None:
        optimizers.append(model.ent_coef_optimizer)
    model._update_learning_rate(optimizers)


def sample_replay(model: Any, batch_size: int) -> tuple[Any, th.Tensor | float]:
    """A replay batch and its discounts (``gamma ** n_steps`` for n-step replay, unless the episode ended), with
    gSDE's noise resampled, as ``log_std`` may have changed since the last gradient step."""
    replay_data = model.replay_buffer.sample(batch_size, env=model._vec_normalize_env)
    discounts = replay_data.discounts if replay_data.discounts is not None else model.gamma
    if model.use_sde:
        model.actor.reset_noise()
    return replay_data, discounts


def backward(optimizer: th.optim.Optimizer, loss: th.Tensor) -> float:
    """Zero the gradients of the parameters ``optimizer`` steps and back-propagate ``loss``; returns its value."""
    value = loss.item()
    optimizer.zero_grad()
    loss.backward()
    return value


def entropy_coefficient_step(model: Any, log_prob: th.Tensor) -> float:
    """One optimizer step of the learned entropy coefficient towards the target entropy; returns the loss."""
    loss = -(model.log_ent_coef * (log_prob + model.target_entropy).detach()).mean()
    value = backward(model.ent_coef_optimizer, loss)
    model.ent_coef_optimizer.step()
    return value


def entropy_coefficient(model: Any, log_prob: th.Tensor, losses: list[float]) -> th.Tensor:
    """This gradient step's entropy coefficient, detached so that the other losses do not change it (softlearning
    issue 60); when it is learned, it is read first and then stepped once (its loss appended to ``losses``)."""
    if model.ent_coef_optimizer is None or model.log_ent_coef is None:
        return model.ent_coef_tensor
    ent_coef = th.exp(model.log_ent_coef.detach())
    losses.append(entropy_coefficient_step(model, log_prob))
    return ent_coef


def update_targets(model: Any, params: Sequence[th.Tensor], target_params: Sequence[th.Tensor]) -> None:
    """The Polyak update of the target critic, and a copy of the batch norm running statistics (SB3 issue 996)."""
    polyak_update(params, target_params, model.tau)
    sb3_polyak_update(model.batch_norm_stats, model.batch_norm_stats_target, 1.0)


def record_training(logger: Logger, n_updates: int, values: dict[str, list[float]]) -> None:
    """Log the gradient step count and the mean of each non-empty list of values under ``train/``."""
    logger.record("train/n_updates", n_updates, exclude="tensorboard")
    for key, seen in values.items():
        if seen:
            logger.record(f"train/{key}", np.mean(seen))
