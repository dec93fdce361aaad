"""Schedules: target sparsity and drop fraction as functions of the progress through the update window.

``progress`` is ``(step - start) / (end - start)`` clipped to [0, 1]. Both are registries: add a
function to :data:`SPARSITY_SCHEDULES` or :data:`DROP_FRACTION_SCHEDULES` to use it by name.
"""

import math
from collections.abc import Callable

#: name -> f(initial sparsity, final sparsity, progress) -> sparsity
SPARSITY_SCHEDULES: dict[str, Callable[[float, float, float], float]] = {
    "constant": lambda initial, final, progress: final,
    # Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - progress)^3, fast change first, slow at the end.
    "cubic": lambda initial, final, progress: final + (initial - final) * (1.0 - progress) ** 3,
}

#: name -> f(initial drop fraction, progress) -> drop fraction
DROP_FRACTION_SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "constant": lambda fraction, progress: fraction,
    # RigL / RLx2: zeta_t = zeta_0 / 2 (1 + cos(pi t / T_end)).
    "cosine": lambda fraction, progress: fraction / 2.0 * (1.0 + math.cos(math.pi * progress)),
}


def window_progress(step: float, start: float, end: float) -> float:
    """Where ``step`` is in ``[start, end]``, from 0 to 1 (1 from ``end`` on; 1 for an empty window)."""
    if end <= start:
        return 0.0 if step < start else 1.0
    return min(1.0, max(0.0, (step - start) / (end - start)))
