"""Schedules: when a module's mask is updated (:class:`UpdateSchedule`), and the target sparsity and drop
fraction as functions of the progress through the update window.

``progress`` is ``(step - start) / (end - start)`` clipped to [0, 1]. The sparsity and drop-fraction
schedules are registries: add a function to :data:`SPARSITY_SCHEDULES` or :data:`DROP_FRACTION_SCHEDULES`
to use it by name.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sb3_sparse.core.distributions import active_count, layer_densities

if TYPE_CHECKING:
    from sb3_sparse.core.config import ModuleConfig
    from sb3_sparse.core.regimes import Regime

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


def resolve_step(value: int | float, horizon: int) -> int:
    """A step (``int``) as it is, a fraction of the run (``float``) as ``round(value * horizon)``."""
    return round(value * horizon) if isinstance(value, float) else value


def layer_targets(
    config: "ModuleConfig", shapes: Sequence[tuple[int, int]], sparsity: float, depths: Sequence[int]
) -> list[int]:
    """Active count of each sparse layer at ``sparsity`` under the module's distribution."""
    lambdas = None
    if config.erdos_renyi_lambdas is not None:
        levels = sorted(set(depths))
        if len(config.erdos_renyi_lambdas) != len(levels):
            raise ValueError(
                f"erdos_renyi_lambdas has {len(config.erdos_renyi_lambdas)} values but the module has {len(levels)} "
                f"sparse layer depths (sparse_layers={list(config.sparse_layers)}); give one lambda per depth"
            )
        lambdas = [config.erdos_renyi_lambdas[levels.index(depth)] for depth in depths]
    densities = layer_densities(shapes, sparsity, config.sparsity_distribution, lambdas)
    return [active_count(shape, density) for shape, density in zip(shapes, densities, strict=True)]


@dataclass(frozen=True)
class UpdateSchedule:
    """When one module's mask is updated in a run, and what each update does: the one place that decides.

    Built from the module's settings, its regime and the run's length (``horizon``, in the module's
    ``schedule_unit``, to resolve a window given as fractions of the run). The module's *clock* is the
    env step (``"env_steps"``) or its own optimizer steps (``"gradient_steps"``); an update may happen
    at every multiple ``b`` of ``topology_update_interval`` (a *boundary*) that the clock crosses.

    - **window**: a boundary is inside it when ``start <= b`` and ``b - interval < end`` (the interval
      that ends at ``b`` began inside the window); a regime whose sparsity changes keeps updating after
      ``end`` until its layers hold their final counts (:meth:`mask_update_due`).
    - **catch-up**: :meth:`boundaries` lists every boundary between two clock readings, so a reading
      that moved by several intervals (e.g. one ``train()`` call of many gradient steps) gets one update
      per boundary, in order, each at its own boundary's progress; none is lost or repeated (the engine
      does them with what the last training step left: one dense gradient for a gradient-grown regime,
      see :meth:`SparseEngine.step <sb3_sparse.core.engine.SparseEngine.step>`).
    - **training first**: the engine skips the boundaries a module crosses without having been trained
      since its last update (e.g. during ``learning_starts``).
    - **what an update does** at ``progress`` through the window: the target active count n(t) of each
      layer (the regime's sparsity schedule, spread over the layers by the module's distribution) and
      the connections exchanged on top of it (the regime's swap rule, which reads the drop fraction).

    :param config: the module's settings
    :param regime: its regime (:func:`~sb3_sparse.core.regimes.get_regime` of ``config.regime``)
    :param horizon: the run's length in the module's schedule unit
    """

    config: "ModuleConfig"
    regime: type["Regime"]
    horizon: int
    #: first and last step of the update window, resolved against ``horizon``
    start: int = field(init=False)
    end: int = field(init=False)

    def __post_init__(self) -> None:
        start = resolve_step(self.config.topology_update_start, self.horizon)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", max(start, resolve_step(self.config.topology_update_end, self.horizon)))

    @property
    def interval(self) -> int:
        return self.config.topology_update_interval

    @property
    def unit(self) -> str:
        return self.config.schedule_unit

    def clock(self, env_step: int, optimizer_steps: int) -> int:
        """The module's step in its schedule unit."""
        return optimizer_steps if self.unit == "gradient_steps" else env_step

    def boundaries(self, previous: int, now: int) -> range:
        """The boundaries crossed from clock reading ``previous`` to ``now``: the multiples ``b`` of the
        interval with ``previous < b <= now``, in order (split the readings anyhow: each comes once)."""
        return range((previous // self.interval + 1) * self.interval, now + 1, self.interval)

    def steps_to_next(self, clock: int) -> int:
        """How far the clock is from the next boundary (the interval, at a boundary)."""
        return self.interval - clock % self.interval

    def in_window(self, boundary: int) -> bool:
        return self.start <= boundary and boundary - self.interval < self.end

    def mask_update_due(self, boundary: int, final_reached: Callable[[], bool]) -> bool:
        """Whether the mask is updated at ``boundary``: inside the window, or after it while the layers have
        not reached their final counts (``final_reached`` is asked only then)."""
        if not self.regime.dynamic:
            return False
        return self.in_window(boundary) or (boundary >= self.end and not final_reached())

    def recycle_due(self, boundary: int, mask_updated: bool) -> bool:
        """Whether dormant units are recycled at ``boundary``: at each mask update, or, for a regime that never
        updates its mask, at each boundary inside the window (with ``recycle_dormant`` only)."""
        if not self.config.recycle_dormant:
            return False
        return mask_updated if self.regime.dynamic else self.in_window(boundary)

    def next_update(self, clock: int) -> int | None:
        """The first boundary after ``clock`` at which the mask is updated in a run of ``horizon`` steps (one
        inside the window), or ``None`` when there is none (or the regime never changes the mask)."""
        if not self.regime.dynamic:
            return None
        first = max(clock // self.interval + 1, -(-self.start // self.interval)) * self.interval
        return first if self.in_window(first) and first <= self.horizon else None

    def progress(self, step: int) -> float:
        """Where ``step`` is in the update window, from 0 to 1."""
        return window_progress(step, self.start, self.end)

    def sparsity(self, progress: float) -> float:
        """The regime's target sparsity at ``progress``."""
        return self.regime.sparsity_at(self.config, progress)

    def active_counts(self, shapes: Sequence[tuple[int, int]], current: Sequence[int], progress: float) -> list[int]:
        """n(t): the target active count of each layer (of weight ``shapes``, holding ``current`` active weights)
        at ``progress``; a regime with a constant sparsity keeps the current counts."""
        if self.regime.sparsity_schedule == "constant":
            return list(current)
        counts = layer_targets(self.config, shapes, self.sparsity(progress), [0] * len(shapes))
        return [self.regime.layer_count(shape, count) for shape, count in zip(shapes, counts, strict=True)]

    def swap_count(self, n_active: int, n_target: int, progress: float) -> int:
        """The connections a layer exchanges at an update, on top of reaching ``n_target``: the regime's rule (which
        reads the drop fraction schedule), 0 for a regime that grows nothing."""
        if self.regime.grow_score is None:
            return 0
        return self.regime.swap_count(self.config, n_active, n_target, progress)
