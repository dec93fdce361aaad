"""Drop and grow scores: which active weights to drop, which inactive positions to grow.

A score function takes the weight, its mask and its dense gradient (``None`` when not tracked) and
returns one score per entry; the update drops the lowest-scored active weights and grows the
highest-scored inactive positions. :data:`SCORES` is a registry: add a function to use it by name.
"""

from collections.abc import Callable

import torch as th

Score = Callable[[th.Tensor, th.Tensor, th.Tensor | None], th.Tensor]


def magnitude_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """``|w|``: drop the weights closest to 0."""
    return weight.abs()


def random_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """Uniform random scores (SET growth)."""
    return th.rand_like(weight)


def gradient_score(weight: th.Tensor, mask: th.Tensor, dense_grad: th.Tensor | None) -> th.Tensor:
    """``|dL/dw|`` of the dense gradient (RigL growth)."""
    if dense_grad is None:
        raise RuntimeError("gradient scores need a dense gradient: no gradient step was captured for this weight")
    return dense_grad.abs()


#: The score registry: name -> function (add to it to use a score by name in a regime).
SCORES: dict[str, Score] = {"magnitude": magnitude_score, "random": random_score, "gradient": gradient_score}
