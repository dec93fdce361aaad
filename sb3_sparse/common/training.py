"""What the lean training steps of SparseSAC and SparseTD3 share: gradients only where a loss updates."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch as th
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
