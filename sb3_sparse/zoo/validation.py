"""Check a hyperparameter entry before rl-zoo3 builds the model, so mistakes end in one clear line.

Without it a typo (``sparsty: 0.8``) or a bad DST value surfaces as a ``TypeError`` / ``ValueError``
traceback deep inside rl-zoo3's experiment manager.
"""

import difflib
import inspect
from typing import Any

from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.core.config import MODULE_SETTINGS, resolve_modules
from sb3_sparse.zoo import ZooError

#: Keys rl-zoo3 still has in the entry after its own preprocessing (turned into ``action_noise`` later).
ZOO_KEYS = frozenset({"noise_type", "noise_std"})
#: Constructor arguments that rl-zoo3 sets itself (from the command line).
ZOO_SET = frozenset({"env", "tensorboard_log", "seed", "verbose", "device", "_init_setup_model"})
#: Env-step knobs (int) that YAML often spells as floats (``!!float 1e4``).
STEP_KNOBS = ("topology_update_interval",)
#: Knobs that are an env step (int) or a fraction of the run (float in [0, 1]).
WINDOW_KNOBS = ("topology_update_start", "topology_update_end")


def coerce_steps(hyperparams: dict[str, Any]) -> None:
    """Turn integral floats into env steps in place: ``1e4`` -> ``10000`` (and ``9.5e5`` -> ``950000`` for start/end).

    A float in [0, 1] for start/end stays a fraction of the run.

    :param hyperparams: an entry of a hyperparameter file
    """
    for name in STEP_KNOBS:
        value = hyperparams.get(name)
        if isinstance(value, float) and value.is_integer():
            hyperparams[name] = int(value)
    for name in WINDOW_KNOBS:
        value = hyperparams.get(name)
        if isinstance(value, float) and value > 1.0 and value.is_integer():
            hyperparams[name] = int(value)


def check_hyperparams(algo_class: type, hyperparams: dict[str, Any], where: str) -> None:
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
    for key in hyperparams:
        if key in ZOO_SET - {"_init_setup_model"}:
            raise ZooError(f"{where}: {key!r} is set by rl-zoo3 from the command line; remove it from the file")
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ZooError(f"{where}: {key!r} is not an argument of {algo_class.__name__}{hint}")
    policy_kwargs = hyperparams.get("policy_kwargs")
    if isinstance(policy_kwargs, dict):
        hidden = sorted(set(policy_kwargs) & set(DST_ARGUMENTS))
        if hidden:
            raise ZooError(f"{where}: policy_kwargs sets {hidden}; make them top-level keys of the entry instead")
    flat = {name: hyperparams.get(name, parameters[name].default) for name in MODULE_SETTINGS}
    policy_class = algo_class.policy_aliases.get(
        hyperparams.get("policy", "MlpPolicy"), algo_class.policy_aliases["MlpPolicy"]
    )
    try:
        resolve_modules(tuple(policy_class.sparse_modules), flat, hyperparams.get("modules"), policy_class.module_defaults)
    except (ValueError, TypeError) as error:
        raise ZooError(f"{where}: {error}") from error
