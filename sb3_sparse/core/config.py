"""Validated dynamic-sparse-training settings, for one module and for a whole agent.

Every DST knob is checked here once, so policies, callbacks, algorithms and the zoo raise the same
``ValueError`` (naming the argument and its valid values) as soon as they are constructed.

:class:`ModuleConfig` holds the settings of one named module (``actor``, ``critic``, ``q_net``, ...).
:func:`resolve_modules` turns the flat shorthand (one value for every sparse module) plus per-module
overrides (``modules={"actor": {"regime": "static"}}``) into one :class:`ModuleConfig` per module.
"""

import dataclasses
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_sparse.core.backends import BACKENDS
from sb3_sparse.core.distributions import DISTRIBUTIONS
from sb3_sparse.core.names import check_choice, check_unknown, closest
from sb3_sparse.core.regimes import get_regime
from sb3_sparse.core.schedules import DROP_FRACTION_SCHEDULES

# Fixed choices, not extension points: the two initial masks are the two the update knows how to draw
# (:func:`~sb3_sparse.core.update.init_mask`), and each schedule unit is a clock that the engine and the
# callback read. Regimes, schedules, distributions and backends are registries (see :mod:`sb3_sparse.core.registry`).
MASK_INITS = ("random", "magnitude")
SCHEDULE_UNITS = ("env_steps", "gradient_steps")
LAYER_ROLES = ("input", "hidden", "output")

#: Types accepted for a step (``int``) or a fraction of the run (``float``).
StepOrFraction = int | float


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """An integer (Python or NumPy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_sparsity(name: str, value: Any) -> float:
    """Sparsity is the fraction of pruned weights: a finite real number in [0, 1)."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} is not valid; it must be a number in [0, 1)")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """A switch: ``True`` or ``False`` (NumPy's too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is not valid; give True or False")
    return bool(value)


def check_positive_int(name: str, value: Any) -> int:
    if not is_integer(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not valid; it must be a positive integer (steps)")
    return int(value)


def check_step_or_fraction(name: str, value: Any) -> StepOrFraction:
    """An integer >= 0 is a step; a ``float`` in [0, 1] is a fraction of the run."""
    if is_integer(value):
        if value < 0:
            raise ValueError(f"{name}={value!r} is not valid; a step must be >= 0")
        return int(value)
    if is_number(value) and 0.0 <= value <= 1.0:
        return float(value)
    raise ValueError(f"{name}={value!r} is not valid; give a step (int >= 0) or a fraction of the run (float in [0, 1])")


def normalize_sparse_layers(value: Any) -> tuple[str, ...]:
    """``"all"``, one role, or a sequence of roles (``"all"`` among them: every role) -> a tuple of roles."""
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


def normalize_lambdas(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    lambdas = tuple(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else ()
    if not lambdas or any(not is_number(x) or not np.isfinite(x) or x <= 0 for x in lambdas):
        raise ValueError(
            f"erdos_renyi_lambdas={value!r} is not valid; give a list of positive finite numbers, one per sparse layer depth"
        )
    return tuple(float(x) for x in lambdas)


@dataclass(frozen=True)
class ModuleConfig:
    """The DST settings of one module (a named group of weights, e.g. the critic).

    :param regime: how the mask evolves: ``"dense"``, ``"static"``, ``"set"``, ``"rigl"``, ``"gmp"``
        (dense-to-sparse pruning), ``"ne"`` (sparse-to-dense growth), ``"srigl"`` (RigL with constant fan-in and
        neuron ablation) or a registered one
        (:data:`~sb3_sparse.core.regimes.REGIMES`)
    :param sparsity: (final) fraction of the sparse layers' weights that are pruned, in [0, 1)
    :param initial_sparsity: sparsity at the start (default: the regime's; ``gmp`` starts dense,
        ``ne`` at 0.8, the others at ``sparsity``)
    :param sparsity_distribution: how the sparsity is spread over the layers: ``"uniform"``,
        ``"erdos_renyi"``, ``"erk"`` or a registered one (:data:`~sb3_sparse.core.distributions.DISTRIBUTIONS`)
    :param erdos_renyi_lambdas: one Erdos-Renyi lambda per sparse layer depth (DS-TD3); when set, the
        layer densities come from the lambdas and ``sparsity`` is not used
    :param sparse_layers: which linear layers are sparse: ``"input"`` (the first layer of each MLP),
        ``"hidden"``, ``"output"`` (the heads), or ``"all"``
    :param mask_init: ``"random"`` positions, or the ``"magnitude"`` largest weights of the initialisation
    :param topology_update_interval: steps between two mask updates
    :param drop_fraction: fraction of each layer's active weights dropped and regrown per update (the
        initial value of the cosine schedule)
    :param drop_fraction_schedule: ``"constant"``, ``"cosine"`` (decays to 0 at ``topology_update_end``) or a
        registered one (:data:`~sb3_sparse.core.schedules.DROP_FRACTION_SCHEDULES`)
    :param topology_update_start: first step of mask updates (int), or fraction of the run (float)
    :param topology_update_end: last step of mask updates (int), or fraction of the run (float); for
        ``gmp`` / ``ne`` the sparsity reaches its final value there
    :param schedule_unit: what the steps above count: ``"env_steps"`` or ``"gradient_steps"`` of the module
        (RigL and RLx2 count training iterations; it matters when there is more than one per env step)
    :param backend: what computes the sparse layers' products: ``"masked"`` (dense products on the masked
        weights), ``"csr"`` (sparse products of the active weights), ``"condensed"`` (gathered sums of each unit's
        active weights, for constant fan-in) or ``"auto"`` (per layer and batch,
        whichever was measured faster), or a registered one (:data:`~sb3_sparse.core.backends.BACKENDS`);
        every backend gives the same results up to float rounding
    :param plasticity_metrics: measure the module's plasticity diagnostics (dormant-unit ratio, near-zero
        fraction, feature rank, weight and gradient norms; see :mod:`sb3_sparse.core.plasticity`) once per
        ``topology_update_interval``, logged under ``plasticity/``; ``False``: no hook is ever set
    :param dormant_threshold: ReDo's tau in [0, 1): a unit whose mean ``|activity|`` over a batch, divided
        by its layer's mean, is at most this is dormant (for the dormant ratio, ``recycle_dormant`` and ``ne``)
    :param recycle_dormant: at each update of the module (each ``topology_update_interval`` inside the update
        window, for any regime, ``static`` and ``dense`` included), recycle its dormant units as ReDo does:
        fresh incoming weights (pruned positions stay 0), zero outgoing weights, fresh optimizer state
    :param ablation_threshold: SRigL's gamma_sal in [0, 1], for regimes with constant fan-in (``"srigl"``): at an
        update, a unit with fewer than this fraction of its fan-in among the weights RigL would keep or grow is
        ablated (0: never); the default, 0.3, is the paper's
    """

    regime: str = "set"
    sparsity: float = 0.5
    initial_sparsity: float | None = None
    sparsity_distribution: str = "uniform"
    erdos_renyi_lambdas: tuple[float, ...] | None = None
    sparse_layers: tuple[str, ...] = ("input", "hidden")
    mask_init: str = "random"
    topology_update_interval: int = 1000
    drop_fraction: float = 0.1
    drop_fraction_schedule: str = "constant"
    topology_update_start: StepOrFraction = 0
    topology_update_end: StepOrFraction = 0.95
    schedule_unit: str = "env_steps"
    backend: str = "auto"
    plasticity_metrics: bool = True
    dormant_threshold: float = 0.1
    recycle_dormant: bool = False
    ablation_threshold: float = 0.3

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "sparsity", check_sparsity("sparsity", self.sparsity))
        if self.initial_sparsity is not None:
            set_(self, "initial_sparsity", check_sparsity("initial_sparsity", self.initial_sparsity))
        DISTRIBUTIONS.check(self.sparsity_distribution)
        set_(self, "erdos_renyi_lambdas", normalize_lambdas(self.erdos_renyi_lambdas))
        if self.erdos_renyi_lambdas is not None and self.sparsity_distribution != "erdos_renyi":
            raise ValueError(
                "erdos_renyi_lambdas is only valid with sparsity_distribution='erdos_renyi' "
                f"(got {self.sparsity_distribution!r})"
            )
        set_(self, "sparse_layers", normalize_sparse_layers(self.sparse_layers))
        check_choice("mask_init", self.mask_init, MASK_INITS)
        set_(self, "topology_update_interval", check_positive_int("topology_update_interval", self.topology_update_interval))
        if not is_number(self.drop_fraction) or not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction={self.drop_fraction!r} is not valid; it must be a number in [0, 1]")
        set_(self, "drop_fraction", float(self.drop_fraction))
        DROP_FRACTION_SCHEDULES.check(self.drop_fraction_schedule)
        start = check_step_or_fraction("topology_update_start", self.topology_update_start)
        end = check_step_or_fraction("topology_update_end", self.topology_update_end)
        set_(self, "topology_update_start", start)
        set_(self, "topology_update_end", end)
        if type(start) is type(end) and end < start:
            raise ValueError(f"topology_update_end={end!r} is before topology_update_start={start!r}")
        check_choice("schedule_unit", self.schedule_unit, SCHEDULE_UNITS)
        BACKENDS.check(self.backend)
        set_(self, "plasticity_metrics", check_bool("plasticity_metrics", self.plasticity_metrics))
        if not is_number(self.dormant_threshold) or not 0.0 <= self.dormant_threshold < 1.0:
            raise ValueError(f"dormant_threshold={self.dormant_threshold!r} is not valid; it must be a number in [0, 1)")
        set_(self, "dormant_threshold", float(self.dormant_threshold))
        set_(self, "recycle_dormant", check_bool("recycle_dormant", self.recycle_dormant))
        if not is_number(self.ablation_threshold) or not 0.0 <= self.ablation_threshold <= 1.0:
            raise ValueError(f"ablation_threshold={self.ablation_threshold!r} is not valid; it must be a number in [0, 1]")
        set_(self, "ablation_threshold", float(self.ablation_threshold))
        get_regime(self.regime).check(self)

    @property
    def start_sparsity(self) -> float:
        """Sparsity of the initial masks."""
        return get_regime(self.regime).initial_sparsity(self)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples) that rebuild this configuration, e.g. from YAML or JSON."""
        data = dataclasses.asdict(self)
        for name, value in data.items():
            if isinstance(value, tuple):
                data[name] = list(value)
        return data


#: Names of the per-module DST settings (the flat shorthand arguments of the algorithms).
MODULE_SETTINGS = tuple(field.name for field in dataclasses.fields(ModuleConfig))


def resolve_modules(
    module_names: Sequence[str],
    flat: Mapping[str, Any],
    modules: Mapping[str, Mapping[str, Any]] | None = None,
    explicit_modules: Sequence[str] = (),
) -> dict[str, ModuleConfig]:
    """One :class:`ModuleConfig` per module (each built once): built-in defaults, then the flat ``flat``
    settings, then the per-module ``modules``.

    :param module_names: the modules of the algorithm family, e.g. ``("actor", "critic")``
    :param flat: settings for every module (the algorithm's flat arguments); ``None`` values are skipped
    :param modules: per-module overrides, ``{"critic": {"regime": "rigl", "sparsity": 0.8}}``
    :param explicit_modules: modules that stay dense unless ``modules`` names them (then the flat settings
        reach them too; otherwise only those that are not about their masks, e.g. ``plasticity_metrics``), e.g.
        an encoder, which MST keeps dense while the actor and critic are sparse
    :return: ``{module name: ModuleConfig}``
    """
    check_unknown("DST arguments", flat, MODULE_SETTINGS)
    if modules is None:
        modules = {}
    if not isinstance(modules, Mapping):
        raise ValueError(f"modules={modules!r} is not valid; give a dict such as {{'critic': {{'regime': 'rigl'}}}}")
    for name, overrides in modules.items():
        if name not in module_names:
            match = closest(str(name), module_names)
            hint = f" (did you mean {match!r}?)" if match is not None else ""
            raise ValueError(f"modules has no module {name!r}{hint}; this algorithm has {', '.join(map(repr, module_names))}")
        if not isinstance(overrides, Mapping):
            raise ValueError(f"modules[{name!r}]={overrides!r} is not valid; give a dict of DST settings")
        check_unknown(f"modules[{name!r}]", overrides, MODULE_SETTINGS)
    given = {key: value for key, value in flat.items() if value is not None}
    configs = {}
    for name in module_names:
        if name in explicit_modules and name not in modules:  # dense; the flat settings that are not about masks
            settings = {**given, "regime": "dense", "sparsity": 0.0, "initial_sparsity": None}
        else:
            settings = {**given, **modules.get(name, {})}
        try:
            configs[name] = ModuleConfig(**settings)
        except ValueError as error:
            raise _module_error(given, error, name) from None
    return configs


def _module_error(flat: Mapping[str, Any], error: ValueError, module: str) -> ValueError:
    """The error to raise for ``module``'s settings: the flat settings' own error when they alone are wrong (they
    apply to every module, so naming one would mislead), else ``error`` tagged with the module."""
    try:
        ModuleConfig(**flat)
    except ValueError as flat_error:
        return flat_error
    return ValueError(f"{error} (module {module!r})")
