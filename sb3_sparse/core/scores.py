"""Drop and grow scores: which active weights to drop, which inactive positions to grow.

A score function takes the weight, its mask and its dense gradient (``None`` when not tracked) and
returns one score per entry; the update drops the lowest-scored active weights and grows the
highest-scored inactive positions. :data:`SCORES` is a registry: register a function to use it by name
in a regime (:attr:`~sb3_sparse.core.regimes.Regime.drop_score` / ``grow_score``); mark one that reads the
dense gradient with :func:`reads_dense_grad`, so that the engine captures that gradient before each update.
"""

from collections.abc import Callable

import torch as th

from sb3_sparse.core.registry import Registry

Score = Callable[[th.Tensor, th.Tensor, th.Tensor | None], th.Tensor]


def reads_dense_grad(score: Score) -> Score:
    """Mark ``score`` as one that reads the dense gradient (usable as a decorator)."""
    score.__dict__["needs_dense_grad"] = True
    return score


def needs_dense_grad(score: Score) -> bool:
    """Whether ``score`` was marked with :func:`reads_dense_grad`."""
    return bool(getattr(score, "needs_dense_grad", False))


def magnitude_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """``|w|``: drop the weights closest to 0."""
    return weight.abs()


def random_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """Uniform random scores (SET growth)."""
    return th.rand_like(weight)


@reads_dense_grad
def gradient_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """``|dL/dw|`` of the dense gradient (RigL growth)."""
    if dense_grad is None:
        raise RuntimeError("gradient scores need a dense gradient: no gradient step was captured for this weight")
    return dense_grad.abs()


#: The score registry: name -> function (register one to use it by name in a regime).
SCORES: Registry[Score] = Registry("score", {"magnitude": magnitude_score, "random": random_score, "gradient": gradient_score})
