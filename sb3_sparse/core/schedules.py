"""Schedules: target sparsity and drop fraction as functions of the progress through the update window.

``progress`` is ``(step - start) / (end - start)`` clipped to [0, 1]. Both are registries: add a
function to :data:`SPARSITY_SCHEDULES` or :data:`DROP_FRACTION_SCHEDULES` to use it by name.
"""

import math
from collections.abc import Callable

from sb3_sparse.core.registry import Registry


def constant_sparsity(initial: float, final: float, progress: float) -> float:
    """The final sparsity throughout."""
    return final


def cubic_sparsity(initial: float, final: float, progress: float) -> float:
    """Zhu & Gupta (2017): s = s_f + (s_i - s_f) (1 - progress)^3, fast change first, slow at the end."""
    return final + (initial - final) * (1.0 - progress) ** 3


#: name -> f(initial sparsity, final sparsity, progress) -> sparsity (a regime's ``sparsity_schedule``)
SPARSITY_SCHEDULES: Registry[Callable[[float, float, float], float]] = Registry(
    "sparsity_schedule", {"constant": constant_sparsity, "cubic": cubic_sparsity}
)


def constant_drop_fraction(fraction: float, progress: float) -> float:
    """The initial drop fraction throughout."""
    return fraction


def cosine_drop_fraction(fraction: float, progress: float) -> float:
    """RigL / RLx2: zeta = zeta_0 / 2 (1 + cos(pi progress)), decaying to 0 at the end of the window."""
    return fraction / 2.0 * (1.0 + math.cos(math.pi * progress))


#: name -> f(initial drop fraction, progress) -> drop fraction (the ``drop_fraction_schedule`` setting)
DROP_FRACTION_SCHEDULES: Registry[Callable[[float, float], float]] = Registry(
    "drop_fraction_schedule", {"constant": constant_drop_fraction, "cosine": cosine_drop_fraction}
)


def window_progress(step: float, start: float, end: float) -> float:
    """Where ``step`` is in ``[start, end]``, from 0 to 1 (1 from ``end`` on; 1 for an empty window)."""
    if end <= start:
        return 0.0 if step < start else 1.0
    return min(1.0, max(0.0, (step - start) / (end - start)))
