"""Sparse training regimes: how a module's mask evolves. One registry, one small class per regime.

A regime answers three questions, and the engine's one mask update (:func:`~sb3_sparse.core.update.update_mask`)
does the rest: the target sparsity at a point of the update window (so the active count n(t) of each
layer follows), how many connections to exchange at an update, and which scores drop and grow.

Register your own with :func:`register_regime`; it is then reachable by name from the constructors,
rl-zoo3 files and ``tune``, like the built-in ones (:data:`REGIMES` lists them all).
"""

import math
from typing import TYPE_CHECKING, ClassVar

from sb3_sparse.core.registry import Registry
from sb3_sparse.core.schedules import DROP_FRACTION_SCHEDULES, SPARSITY_SCHEDULES
from sb3_sparse.core.scores import SCORES, needs_dense_grad

if TYPE_CHECKING:
    from sb3_sparse.core.config import ModuleConfig


class Regime:
    """Base regime: constant sparsity; subclasses override what differs.

    :cvar name: the registry name
    :cvar masked: whether the module's layers get masks (``False``: trained dense, with no mask at all)
    :cvar drop_score: name in :data:`~sb3_sparse.core.scores.SCORES` of the active weights to drop (lowest first)
    :cvar grow_score: name in :data:`~sb3_sparse.core.scores.SCORES` of the inactive positions to grow
        (highest first); ``None``: never grows
    :cvar dynamic: whether the mask changes after initialisation
    :cvar sparsity_schedule: name in :data:`~sb3_sparse.core.schedules.SPARSITY_SCHEDULES`
    """

    name: ClassVar[str] = ""
    masked: ClassVar[bool] = True
    drop_score: ClassVar[str] = "magnitude"
    grow_score: ClassVar[str | None] = None
    dynamic: ClassVar[bool] = False
    sparsity_schedule: ClassVar[str] = "constant"
    #: reset the optimizer state of the incoming weights of the module's dormant units at each update (a unit is
    #: dormant when its ReDo score is at most the module's ``dormant_threshold``)
    resets_dormant: ClassVar[bool] = False
    #: every unit (row of a weight) holds the same number of incoming weights, at initialisation and after each
    #: update, which drops and grows per unit (:func:`~sb3_sparse.core.update.update_fan_in`); the layers' active
    #: counts are whole multiples of their fan-out (:meth:`layer_count`)
    constant_fan_in: ClassVar[bool] = False

    @classmethod
    def check(cls, config: "ModuleConfig") -> None:
        """Raise a ``ValueError`` if ``config`` makes no sense for this regime."""
        if cls.sparsity_schedule != "constant" and config.erdos_renyi_lambdas is not None:
            raise ValueError("erdos_renyi_lambdas fix the densities; a regime whose sparsity changes needs 'erk' or 'uniform'")

    @classmethod
    def initial_sparsity(cls, config: "ModuleConfig") -> float:
        return config.sparsity if config.initial_sparsity is None else config.initial_sparsity

    @classmethod
    def sparsity_at(cls, config: "ModuleConfig", progress: float) -> float:
        """Target sparsity at ``progress`` in [0, 1] through the update window."""
        return SPARSITY_SCHEDULES[cls.sparsity_schedule](cls.initial_sparsity(config), config.sparsity, progress)

    @classmethod
    def swap_count(cls, config: "ModuleConfig", n_active: int, n_target: int, progress: float) -> int:
        """Connections to exchange at an update (on top of reaching ``n_target``)."""
        fraction = DROP_FRACTION_SCHEDULES[config.drop_fraction_schedule](config.drop_fraction, progress)
        return math.floor(fraction * n_active)

    @classmethod
    def layer_count(cls, shape: tuple[int, int], count: int) -> int:
        """The active count of a layer of weight ``shape`` (fan-out, fan-in) that its distribution gives ``count``:
        with constant fan-in, a whole number of weights per unit, the nearest to ``count / fan-out`` (halves
        rounded up; at least one)."""
        if not cls.constant_fan_in:
            return count
        n_out, n_in = shape
        return n_out * min(n_in, max(1, (2 * count + n_out) // (2 * n_out)))

    @classmethod
    def uses_gradient(cls) -> bool:
        """Whether a score of this regime reads the dense gradient (the engine then captures it before updates)."""
        return any(needs_dense_grad(SCORES[score]) for score in (cls.drop_score, cls.grow_score) if score is not None)


class Dense(Regime):
    """No mask: the module is trained dense (its FLOPs are still counted)."""

    name = "dense"
    masked = False

    @classmethod
    def initial_sparsity(cls, config: "ModuleConfig") -> float:
        return 0.0


class Static(Regime):
    """Static sparse training: a mask drawn at initialisation and never changed."""

    name = "static"


class SET(Regime):
    """Sparse Evolutionary Training (Mocanu et al. 2018; DS-TD3 / DS-SAC): drop by magnitude, grow at random."""

    name = "set"
    grow_score = "random"
    dynamic = True


class RigL(Regime):
    """RigL (Evci et al. 2020; RLx2, Graesser et al.): drop by magnitude, grow by dense gradient magnitude."""

    name = "rigl"
    grow_score = "gradient"
    dynamic = True


class GMP(Regime):
    """Gradual magnitude pruning, dense-to-sparse (Zhu & Gupta 2017; Graesser et al. 2022).

    Starts at ``initial_sparsity`` (default 0: dense) and prunes the smallest weights on the cubic
    schedule until ``sparsity`` at ``topology_update_end``; nothing is regrown.
    """

    name = "gmp"
    dynamic = True
    sparsity_schedule = "cubic"

    @classmethod
    def initial_sparsity(cls, config: "ModuleConfig") -> float:
        return 0.0 if config.initial_sparsity is None else config.initial_sparsity

    @classmethod
    def check(cls, config: "ModuleConfig") -> None:
        if cls.initial_sparsity(config) > config.sparsity:
            raise ValueError(
                f"regime 'gmp' prunes: initial_sparsity={config.initial_sparsity} must not exceed sparsity={config.sparsity}"
            )
        super().check(config)

    @classmethod
    def swap_count(cls, config: "ModuleConfig", n_active: int, n_target: int, progress: float) -> int:
        return 0


class NE(Regime):
    """Neuroplastic Expansion, sparse-to-dense (Liu et al. 2024).

    Starts at ``initial_sparsity`` (default 0.8) and grows by dense gradient towards ``sparsity`` on the
    cubic schedule, reached at ``topology_update_end``; each growth also prunes ``PRUNE_RATIO`` x the
    grown count of the smallest weights. An update that grows nothing (the count already at its
    target) exchanges connections by the drop fraction schedule, as RigL.
    At every update the optimizer state of the incoming weights of dormant units is reset: a unit is
    dormant when its mean ``|activity|`` over the last training batch before the update, divided by its
    layer's mean, is at most the module's ``dormant_threshold`` (default 0.1; ReDo's score, the same as the
    ``plasticity/`` dormant ratio and ``recycle_dormant``, see :mod:`sb3_sparse.core.plasticity`). The
    activity is taken after the activation function (the input of the next linear layer), for the hidden
    layers; earlier versions scored every sparse layer's output before the activation.
    """

    name = "ne"
    grow_score = "gradient"
    dynamic = True
    sparsity_schedule = "cubic"
    resets_dormant = True
    PRUNE_RATIO: ClassVar[float] = 0.4

    @classmethod
    def initial_sparsity(cls, config: "ModuleConfig") -> float:
        return 0.8 if config.initial_sparsity is None else config.initial_sparsity

    @classmethod
    def check(cls, config: "ModuleConfig") -> None:
        if cls.initial_sparsity(config) < config.sparsity:
            raise ValueError(
                f"regime 'ne' grows: initial_sparsity={cls.initial_sparsity(config)} must not be below "
                f"sparsity={config.sparsity}"
            )
        super().check(config)

    @classmethod
    def swap_count(cls, config: "ModuleConfig", n_active: int, n_target: int, progress: float) -> int:
        growth = n_target - n_active
        if growth > 0:  # expanding: grow growth / (1 - r), prune r times that
            return round(cls.PRUNE_RATIO / (1.0 - cls.PRUNE_RATIO) * growth)
        return super().swap_count(config, n_active, n_target, progress)


class SRigL(Regime):
    """SRigL (Lasby et al. 2024): RigL with constant fan-in per unit, and units of low saliency ablated.

    Every unit (output neuron) of a layer holds the same number ``k`` of incoming weights: the layer's active
    count under the distribution divided by its fan-out, rounded to the nearest whole number (at least 1; see
    :meth:`~Regime.layer_count`). At an update that exchanges ``floor(drop_fraction x n)`` of the layer's ``n``
    active weights, each of its ``m`` living units drops ``floor(drop_fraction x n / m)`` of its active weights
    of lowest ``|w|`` and grows as many of its positions of highest dense-gradient ``|dL/dw|``.
    Before that, each unit's saliency is counted: its weights among those RigL would keep (the layer's largest
    ``|w|``) or grow (the layer's largest inactive ``|dL/dw|``). A unit with fewer than ``ablation_threshold x k``
    salient weights is ablated: all its incoming weights are pruned, and the layer's count goes to the living
    units, so it stays exactly its target: ``m`` living units hold ``n // m`` weights each, and the ``n mod m``
    most salient of them one more (no remainder without ablation). An ablated unit whose saliency comes back is
    grown again. At most as many units are ablated as leave the living ones room for the layer's count, and
    output layers (the heads) are never ablated.
    """

    name = "srigl"
    grow_score = "gradient"
    dynamic = True
    constant_fan_in = True


#: The regime registry: name -> class (add to it with :func:`register_regime`).
REGIMES: Registry[type[Regime]] = Registry(
    "regime", {regime.name: regime for regime in (Dense, Static, SET, RigL, GMP, NE, SRigL)}
)


def register_regime(regime: type[Regime]) -> type[Regime]:
    """Add ``regime`` to :data:`REGIMES` under ``regime.name`` (usable as a class decorator).

    Its scores and sparsity schedule must be registered names (a ``ValueError`` with a did-you-mean otherwise).
    """
    if not (isinstance(regime, type) and issubclass(regime, Regime)) or not regime.name:
        raise ValueError(f"{regime!r} is not a Regime subclass with a name")
    if regime.constant_fan_in and regime.grow_score is None:
        raise ValueError(f"{regime.__name__} has constant_fan_in but no grow_score: its updates must regrow per unit")
    SCORES.check(regime.drop_score, "drop_score")
    if regime.grow_score is not None:
        SCORES.check(regime.grow_score, "grow_score")
    SPARSITY_SCHEDULES.check(regime.sparsity_schedule, "sparsity_schedule")
    return REGIMES.register(regime.name, regime)


def get_regime(name: str) -> type[Regime]:
    """The regime registered as ``name`` (a ``ValueError`` naming ``regime`` with a did-you-mean if none is)."""
    return REGIMES.lookup(name)
