"""Check a hyperparameter entry before rl-zoo3 builds the model, so mistakes end in one clear line.

Without it a typo (``sparsty: 0.8``) or a bad DST value surfaces as a ``TypeError`` / ``ValueError``
traceback deep inside rl-zoo3's experiment manager.
"""

import inspect
from collections.abc import Sequence
from typing import Any

from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.core.config import MODULE_SETTINGS, ModuleConfig, resolve_modules
from sb3_sparse.core.names import did_you_mean
from sb3_sparse.zoo import ZooError

#: Keys rl-zoo3 still has in the entry after its own preprocessing (turned into ``action_noise`` later).
ZOO_KEYS = frozenset({"noise_type", "noise_std"})
#: Constructor arguments that rl-zoo3 sets itself (from the command line).
ZOO_SET = frozenset({"env", "tensorboard_log", "seed", "verbose", "device", "_init_setup_model"})
#: Env-step knobs (int) that YAML often spells as floats (``!!float 1e4``).
STEP_KNOBS = ("topology_update_interval",)
#: Knobs that are an env step (int) or a fraction of the run (float in [0, 1]).
WINDOW_KNOBS = ("topology_update_start", "topology_update_end")
#: DST arguments of earlier sb3-sparse versions -> (the module they set, or None; what replaces them), for old files.
RENAMED: dict[str, tuple[str | None, str]] = {
    "grow_method": (None, "regime (grow_method 'random' -> regime 'set', 'gradient' -> 'rigl', 'none' -> 'static')"),
    "actor_sparsity": ("actor", "modules: {actor: {sparsity: ...}}"),
    "critic_sparsity": ("critic", "modules: {critic: {sparsity: ...}}"),
    "actor_grow_method": ("actor", "modules: {actor: {regime: ...}} ('none' -> 'static', 'gradient' -> 'rigl')"),
    "actor_topology_update_interval": ("actor", "modules: {actor: {topology_update_interval: ...}}"),
}


def coerce_steps(
    hyperparams: dict[str, Any], step_knobs: Sequence[str] = STEP_KNOBS, window_knobs: Sequence[str] = WINDOW_KNOBS
) -> None:
    """Turn integral floats into env steps in place: ``1e4`` -> ``10000`` (and ``9.5e5`` -> ``950000`` for start/end).

    A float in [0, 1] for start/end stays a fraction of the run. The per-module settings of
    ``modules`` (``modules: {actor: {topology_update_interval: !!float 1e4}}``) are coerced too.

    :param hyperparams: an entry of a hyperparameter file
    :param step_knobs: the keys that are counts (steps, episodes, samples)
    :param window_knobs: the keys that are a step or a fraction of the run
    """
    settings = [hyperparams]
    modules = hyperparams.get("modules")
    if isinstance(modules, dict):
        settings += [overrides for overrides in modules.values() if isinstance(overrides, dict)]
    for values in settings:
        for name in step_knobs:
            value = values.get(name)
            if isinstance(value, float) and value.is_integer():
                values[name] = int(value)
        for name in window_knobs:
            value = values.get(name)
            if isinstance(value, float) and value > 1.0 and value.is_integer():
                values[name] = int(value)


def check_hyperparams(algo_class: type[Any], hyperparams: dict[str, Any], where: str) -> None:
    """Raise :class:`~sb3_sparse.zoo.ZooError` if ``hyperparams`` would not build ``algo_class``.

    Checks the keys against the constructor (suggesting the closest name), that the sparsity
    arguments are not hidden in ``policy_kwargs``, and every DST value, with the same checks the
    constructor runs.

    :param algo_class: the sparse algorithm class
    :param hyperparams: the entry after rl-zoo3's preprocessing (``n_timesteps``, ``n_envs``... removed)
    :param where: names the file and entry in the message
    """
    parameters = inspect.signature(algo_class).parameters
    allowed = (set(parameters) - ZOO_SET) | ZOO_KEYS
    policy = hyperparams.get("policy", "MlpPolicy")
    policy_class: Any
    if isinstance(policy, type) and hasattr(policy, "sparse_modules"):  # a policy class (from a .py file)
        policy_class = policy
    else:  # an alias; anything else is reported by the constructor
        policy_class = algo_class.policy_aliases.get(policy if isinstance(policy, str) else "MlpPolicy")
        policy_class = policy_class or algo_class.policy_aliases["MlpPolicy"]
    module_names = tuple(policy_class.sparse_modules)
    for key in hyperparams:
        if key in ZOO_SET - {"_init_setup_model"}:
            raise ZooError(f"{where}: {key!r} is set by rl-zoo3 from the command line; remove it from the file")
        if key in RENAMED and key not in allowed and RENAMED[key][0] in (None, *module_names):
            raise ZooError(f"{where}: {key!r} is no longer an argument of {algo_class.__name__}: use {RENAMED[key][1]}")
        if key not in allowed:
            hint = did_you_mean(key, sorted(allowed))
            raise ZooError(f"{where}: {key!r} is not an argument of {algo_class.__name__}{hint}")
    policy_kwargs = hyperparams.get("policy_kwargs")
    if isinstance(policy_kwargs, dict):
        hidden = sorted(set(policy_kwargs) & set(DST_ARGUMENTS))
        if hidden:
            raise ZooError(f"{where}: policy_kwargs sets {hidden}; make them top-level keys of the entry instead")
    flat = {name: hyperparams.get(name, parameters[name].default) for name in MODULE_SETTINGS}
    try:
        resolve_modules(module_names, flat, hyperparams.get("modules"), policy_class.explicit_modules)
    except (ValueError, TypeError) as error:
        raise ZooError(f"{where}: {_flat_message(flat, error)}") from error


def _flat_message(flat: dict[str, Any], error: Exception) -> str:
    """The error without its "(module 'actor')" suffix when the entry's flat settings alone are wrong.

    A bad top-level value applies to every module: naming the first module it was checked for misleads.
    """
    message = str(error)
    try:
        ModuleConfig(**{name: value for name, value in flat.items() if value is not None})
    except (ValueError, TypeError) as flat_error:
        if message.startswith(str(flat_error)):
            return str(flat_error)
    return message
