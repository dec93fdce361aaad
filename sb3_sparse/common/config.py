"""Validated dynamic-sparse-training settings.

Every DST knob is checked here once, so policies, callbacks and algorithms raise the same
``ValueError`` (naming the argument and its valid values) as soon as they are constructed.
"""

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DISTRIBUTIONS = ("uniform", "erdos_renyi", "erk")
MASK_INITS = ("random", "magnitude")
LAYER_ROLES = ("input", "hidden", "output")
GROW_METHODS = ("random", "gradient", "none")
DROP_FRACTION_SCHEDULES = ("constant", "cosine")
NETWORKS = ("actor", "critic")

#: Types accepted for a step (``int``) or a fraction of the run (``float``).
StepOrFraction = int | float


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def check_sparsity(name: str, value: Any) -> None:
    """Sparsity is the fraction of pruned weights: a real number in [0, 1)."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} is not valid; it must be a number in [0, 1)")


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}={value!r} is not valid; it must be a positive integer (env steps)")


def check_step_or_fraction(name: str, value: Any) -> None:
    """An ``int`` >= 0 is an env step; a ``float`` in [0, 1] is a fraction of the run."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"{name}={value!r} is not valid; give an env step (int >= 0) or a fraction of the run (float in [0, 1])"
        )
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{name}={value!r} is not valid; an env step must be >= 0")
    if isinstance(value, float) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is not valid; a fraction of the run must be in [0, 1]")


def resolve_step(value: StepOrFraction, total_timesteps: int) -> int:
    """Turn a step-or-fraction into an env step of a run of ``total_timesteps``."""
    if isinstance(value, float):
        return round(value * total_timesteps)
    return value


def normalize_sparse_layers(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"all"``, one role, or a sequence of roles (``"all"`` among them: every role) -> a sorted tuple of roles."""
    if isinstance(value, str):
        roles: tuple[Any, ...] = (value,)
    elif isinstance(value, Iterable):
        roles = tuple(value)
    else:
        raise ValueError(f"sparse_layers={value!r} is not valid; choose 'all' or some of 'input', 'hidden', 'output'")
    if not roles:
        raise ValueError("sparse_layers is empty; choose 'all' or some of 'input', 'hidden', 'output'")
    for role in roles:
        check_choice("sparse_layers", role, (*LAYER_ROLES, "all"))
    if "all" in roles:
        return LAYER_ROLES
    return tuple(role for role in LAYER_ROLES if role in roles)


@dataclass(frozen=True)
class SparsityConfig:
    """Which weights are sparse and how the initial masks are drawn.

    :param sparsity: fraction of the sparse layers' weights that are pruned, for every network
    :param actor_sparsity: sparsity of the actor (default: ``sparsity``)
    :param critic_sparsity: sparsity of the critic(s) (default: ``sparsity``)
    :param sparsity_distribution: how a network's sparsity is spread over its layers:
        ``"uniform"``, ``"erdos_renyi"`` or ``"erk"``
    :param erdos_renyi_lambdas: one Erdos-Renyi lambda per sparse layer depth (DS-TD3); when set, the
        layer densities come from the lambdas and ``sparsity`` is not used
    :param sparse_layers: which linear layers are sparse: ``"input"`` (the first layer of each MLP),
        ``"hidden"`` (between hidden layers) and/or ``"output"`` (the heads), or ``"all"``
    :param mask_init: ``"random"`` positions, or the ``"magnitude"`` largest weights of the initialisation
    """

    sparsity: float = 0.5
    actor_sparsity: float | None = None
    critic_sparsity: float | None = None
    sparsity_distribution: str = "uniform"
    erdos_renyi_lambdas: Sequence[float] | None = None
    sparse_layers: str | Sequence[str] = ("input", "hidden")
    mask_init: str = "random"

    def __post_init__(self) -> None:
        for name in ("sparsity", "actor_sparsity", "critic_sparsity"):
            value = getattr(self, name)
            if value is not None or name == "sparsity":
                check_sparsity(name, value)
                object.__setattr__(self, name, float(value))
        check_choice("sparsity_distribution", self.sparsity_distribution, DISTRIBUTIONS)
        check_choice("mask_init", self.mask_init, MASK_INITS)
        object.__setattr__(self, "sparse_layers", normalize_sparse_layers(self.sparse_layers))
        if self.erdos_renyi_lambdas is not None:
            if self.sparsity_distribution != "erdos_renyi":
                raise ValueError(
                    "erdos_renyi_lambdas is only valid with sparsity_distribution='erdos_renyi' "
                    f"(got {self.sparsity_distribution!r})"
                )
            lambdas = self.erdos_renyi_lambdas
            if isinstance(lambdas, str) or not isinstance(lambdas, Iterable):
                lambdas = ()
            lambdas = tuple(lambdas)
            if not lambdas or any(not is_number(x) or x <= 0 for x in lambdas):
                raise ValueError(
                    f"erdos_renyi_lambdas={self.erdos_renyi_lambdas!r} is not valid; "
                    "give a list of positive numbers, one per sparse layer depth"
                )
            object.__setattr__(self, "erdos_renyi_lambdas", tuple(float(x) for x in lambdas))

    def network_sparsity(self, network: str) -> float:
        """Target sparsity of ``network`` (``"actor"`` or ``"critic"``)."""
        check_choice("network", network, NETWORKS)
        value = getattr(self, f"{network}_sparsity")
        return self.sparsity if value is None else value

    def as_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this configuration."""
        lambdas = self.erdos_renyi_lambdas
        return {
            "sparsity": self.sparsity,
            "actor_sparsity": self.actor_sparsity,
            "critic_sparsity": self.critic_sparsity,
            "sparsity_distribution": self.sparsity_distribution,
            "erdos_renyi_lambdas": None if lambdas is None else list(lambdas),
            "sparse_layers": list(self.sparse_layers),
            "mask_init": self.mask_init,
        }


@dataclass(frozen=True)
class TopologyConfig:
    """When and how the sparse connectivity is rewired (drop-and-grow).

    :param topology_update_interval: env steps between two topology updates
    :param drop_fraction: fraction of each layer's active weights dropped (and regrown) per update;
        with the cosine schedule, the initial value
    :param drop_fraction_schedule: ``"constant"`` or ``"cosine"`` decay to 0 at ``topology_update_end``
    :param grow_method: ``"random"`` (SET), ``"gradient"`` (RigL) or ``"none"`` (static sparse)
    :param topology_update_start: first env step at which updates may happen (int), or fraction of the run (float)
    :param topology_update_end: last env step of updates (int), or fraction of the run (float)
    :param actor_topology_update_interval: the actor's own interval (default: ``topology_update_interval``)
    :param actor_grow_method: the actor's own grow method (default: ``grow_method``); ``"none"`` keeps
        the actor static while the critic is rewired (MST)
    """

    topology_update_interval: int = 1000
    drop_fraction: float = 0.1
    drop_fraction_schedule: str = "constant"
    grow_method: str = "random"
    topology_update_start: StepOrFraction = 0
    topology_update_end: StepOrFraction = 0.95
    actor_topology_update_interval: int | None = None
    actor_grow_method: str | None = None

    def __post_init__(self) -> None:
        check_positive_int("topology_update_interval", self.topology_update_interval)
        if self.actor_topology_update_interval is not None:
            check_positive_int("actor_topology_update_interval", self.actor_topology_update_interval)
        fraction = self.drop_fraction
        if not is_number(fraction) or not 0.0 < fraction <= 1.0:
            raise ValueError(f"drop_fraction={fraction!r} is not valid; it must be a number in (0, 1]")
        check_choice("drop_fraction_schedule", self.drop_fraction_schedule, DROP_FRACTION_SCHEDULES)
        check_choice("grow_method", self.grow_method, GROW_METHODS)
        if self.actor_grow_method is not None:
            check_choice("actor_grow_method", self.actor_grow_method, GROW_METHODS)
        check_step_or_fraction("topology_update_start", self.topology_update_start)
        check_step_or_fraction("topology_update_end", self.topology_update_end)
        if type(self.topology_update_start) is type(self.topology_update_end):
            self.check_window(self.topology_update_start, self.topology_update_end)

    @staticmethod
    def check_window(start: StepOrFraction, end: StepOrFraction) -> None:
        if end < start:
            raise ValueError(f"topology_update_end={end!r} is before topology_update_start={start!r}")

    def resolve_window(self, total_timesteps: int) -> tuple[int, int]:
        """First and last env step of topology updates in a run of ``total_timesteps``."""
        start = resolve_step(self.topology_update_start, total_timesteps)
        end = resolve_step(self.topology_update_end, total_timesteps)
        self.check_window(start, end)
        return start, end

    def interval(self, network: str) -> int:
        if network == "actor" and self.actor_topology_update_interval is not None:
            return self.actor_topology_update_interval
        return self.topology_update_interval

    def network_grow_method(self, network: str) -> str:
        if network == "actor" and self.actor_grow_method is not None:
            return self.actor_grow_method
        return self.grow_method

    def drop_fraction_at(self, step: int, start: int, end: int) -> float:
        """Drop fraction at env ``step``: 0 outside ``[start, end]``; cosine decays from ``drop_fraction`` to 0."""
        if not start <= step <= end:
            return 0.0
        if self.drop_fraction_schedule == "constant" or end == start:
            return float(self.drop_fraction)
        progress = (step - start) / (end - start)
        return float(self.drop_fraction) / 2.0 * (1.0 + math.cos(math.pi * progress))

    def as_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
