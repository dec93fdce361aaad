"""Optuna samplers for the sparse algorithms: rl-zoo3's search space of the base algorithm plus the DST knobs.

The usual hyperparameters are sampled by rl-zoo3's own samplers (same names, same ranges), so studies
of dense and sparse agents compare directly. The DST knobs are sampled under their constructor names;
``actor_sparsity`` and ``actor_regime`` (actor-critic algorithms) become ``modules={"actor": {...}}``, so a
trial's parameters are (after :func:`convert_sparse_params`) keyword arguments of the algorithm.
The value-learning knobs (:data:`VALUE_SEARCH_SPACE`: replay buffer, n-step returns, target operator)
become ``replay_buffer_class`` / ``replay_buffer_kwargs`` and the algorithm's own arguments.
"""

import inspect
from collections.abc import Callable
from typing import Any

import optuna

from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.common.buffers import REPLAY_BUFFERS
from sb3_sparse.registry import AlgorithmEntry, _import

#: The DST search space: name -> ("float", low, high, log) or ("categorical", choices).
#: ``sparsity`` applies to every module; ``actor_sparsity`` is the actor's own, tuned apart because the
#: critic usually needs more weights (Graesser et al. 2022; RLx2).
DST_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    # the three transitions: sparse-to-sparse (set, rigl, static), dense-to-sparse (gmp), sparse-to-dense (ne)
    "regime": ("categorical", ["set", "rigl", "static", "gmp", "ne"]),
    # the actor's own regime ("same": the flat regime), e.g. a static actor with a dynamic critic (MST)
    "actor_regime": ("categorical", ["same", "dense", "static", "set", "rigl", "gmp", "ne"]),
    "sparsity": ("float", 0.2, 0.95, False),
    "actor_sparsity": ("float", 0.2, 0.95, False),
    # ERK is Erdos-Renyi made feasible (a layer that would need density > 1 becomes dense and the rest
    # is redistributed): plain "erdos_renyi" would only add trials that fail on small inputs (Pendulum).
    "sparsity_distribution": ("categorical", ["uniform", "erk"]),
    "topology_update_interval": ("categorical", [250, 500, 1000, 2000, 5000, 10000]),
    "drop_fraction": ("float", 0.01, 0.5, True),
    "drop_fraction_schedule": ("categorical", ["constant", "cosine"]),
}

#: Trial parameters that are one module's setting: name -> (module, setting).
MODULE_PARAMS = {"actor_sparsity": ("actor", "sparsity"), "actor_regime": ("actor", "regime")}
#: A per-module trial value that means "no override: the flat setting".
SAME = "same"

#: The value-learning search space (same spec format): ``replay_buffer`` is a name of
#: :data:`sb3_sparse.common.buffers.REPLAY_BUFFERS`; ``recent_fraction`` is sampled for the dual buffer only,
#: ``target_operator`` for algorithms that take it (SparseDQN), ``mellowmax_omega`` with Soft Mellowmax only.
VALUE_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "replay_buffer": ("categorical", ["multi_step", "dual"]),
    "buffer_n_steps": ("categorical", [1, 3, 5]),
    "recent_fraction": ("float", 0.1, 0.9, False),
    "target_operator": ("categorical", ["max", "soft_mellowmax"]),
    "mellowmax_omega": ("float", 1.0, 30.0, True),
}
#: Trial parameters that go into ``replay_buffer_kwargs``: name -> the buffer's argument.
BUFFER_PARAMS = {"buffer_n_steps": "n_steps", "recent_fraction": "recent_fraction"}

Sampler = Callable[[optuna.Trial, int, int, dict], dict[str, Any]]


def sample_dst_params(trial: optuna.Trial, modules: tuple[str, ...] = ("actor", "critic")) -> dict[str, Any]:
    """Sample the DST knobs of :data:`DST_SEARCH_SPACE` (those that apply to ``modules``).

    :param trial: the Optuna trial
    :param modules: the algorithm's DST modules
    :return: DST constructor arguments
    """
    params: dict[str, Any] = {}
    for name, spec in DST_SEARCH_SPACE.items():
        if name in MODULE_PARAMS and MODULE_PARAMS[name][0] not in modules:
            continue
        params[name] = _suggest(trial, name, spec)
    return module_params_to_kwargs(params)


def _suggest(trial: optuna.Trial, name: str, spec: tuple[Any, ...]) -> Any:
    if spec[0] == "float":
        return trial.suggest_float(name, spec[1], spec[2], log=spec[3])
    return trial.suggest_categorical(name, spec[1])


def sample_value_params(trial: optuna.Trial, algorithm: type[Any]) -> dict[str, Any]:
    """Sample the knobs of :data:`VALUE_SEARCH_SPACE` that apply to ``algorithm``.

    :param trial: the Optuna trial
    :param algorithm: the sparse algorithm class
    :return: constructor arguments (``replay_buffer_class`` a class)
    """
    space = VALUE_SEARCH_SPACE
    params = {name: _suggest(trial, name, space[name]) for name in ("replay_buffer", "buffer_n_steps")}
    if params["replay_buffer"] == "dual":
        params["recent_fraction"] = _suggest(trial, "recent_fraction", space["recent_fraction"])
    if "target_operator" in inspect.signature(algorithm).parameters:
        params["target_operator"] = _suggest(trial, "target_operator", space["target_operator"])
        if params["target_operator"] == "soft_mellowmax":
            params["mellowmax_omega"] = _suggest(trial, "mellowmax_omega", space["mellowmax_omega"])
    return value_params_to_kwargs(params, class_names=False)


def value_params_to_kwargs(params: dict[str, Any], class_names: bool) -> dict[str, Any]:
    """Turn ``replay_buffer`` and the :data:`BUFFER_PARAMS` into ``replay_buffer_class`` / ``replay_buffer_kwargs``.

    :param params: trial parameters (other keys are kept)
    :param class_names: give the buffer class by name (``"DualReplayBuffer"``, for a YAML file) instead of the class
    """
    kwargs = {name: value for name, value in params.items() if name != "replay_buffer" and name not in BUFFER_PARAMS}
    if "replay_buffer" in params:
        buffer_class = REPLAY_BUFFERS[params["replay_buffer"]]
        kwargs["replay_buffer_class"] = buffer_class.__name__ if class_names else buffer_class
        kwargs["replay_buffer_kwargs"] = {BUFFER_PARAMS[name]: params[name] for name in BUFFER_PARAMS if name in params}
    return kwargs


def module_params_to_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Move per-module trial parameters (``actor_sparsity``) into ``modules``."""
    kwargs = {name: value for name, value in params.items() if name not in MODULE_PARAMS}
    for name, (module, setting) in MODULE_PARAMS.items():
        if name in params and params[name] != SAME:
            kwargs.setdefault("modules", {}).setdefault(module, {})[setting] = params[name]
    return kwargs


def make_sampler(entry: AlgorithmEntry) -> Sampler:
    """The Optuna sampler of a sparse algorithm: rl-zoo3's sampler of its base algorithm, the DST and value knobs.

    The value knobs are left out when the run uses HER (rl-zoo3's sampler sets the HER buffer then).
    """

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        base = _import(entry.zoo_sampler)(trial, n_actions, n_envs, additional_args) if entry.zoo_sampler else {}
        value = {} if additional_args.get("using_her_replay_buffer") else sample_value_params(trial, entry.sparse_class)
        return {**base, **sample_dst_params(trial, entry.modules), **value}

    sample.__name__ = f"sample_{entry.name}_params"
    return sample


def convert_sparse_params(params: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's ``params`` -> hyperparameters for a YAML entry or ``--trial-id`` (rl-zoo3's converter + DST).

    rl-zoo3 keeps ``noise_type: None`` with its ``noise_std``, which would reach the constructor;
    here a trial without action noise gives ``noise_type: None`` and no ``noise_std``.

    :param params: ``trial.params``
    :return: hyperparameters (``policy_kwargs`` as a dict)
    """
    from rl_zoo3.hyperparams_opt import convert_offpolicy_params

    dst_names = set(DST_ARGUMENTS) | set(MODULE_PARAMS) | set(VALUE_SEARCH_SPACE)
    dst = {name: value for name, value in params.items() if name in dst_names}
    rest = {name: value for name, value in params.items() if name not in dst_names}
    converted = convert_offpolicy_params(rest) if {"one_minus_gamma", "net_arch"} <= set(rest) else dict(rest)
    if "noise_type" in converted and converted["noise_type"] is None:
        converted.pop("noise_std", None)
    return {**converted, **module_params_to_kwargs(value_params_to_kwargs(dst, class_names=True))}


def merge_trial_hyperparams(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """What a trial adds to the YAML entry ``base`` so that the YAML's DST settings survive and the sampled ones act.

    rl-zoo3 does ``kwargs.update(sampled)``: a sampled ``policy_kwargs`` or ``modules`` would replace the
    YAML's one wholesale (losing e.g. DS-TD3's weight decay, or a YAML ``modules: {actor: {regime: static}}``),
    so they are merged key by key here. And a YAML setting that would silently override a sampled knob
    is cleared: Erdos-Renyi lambdas (flat or per module) fix the densities, so a tuned ``sparsity`` or
    ``sparsity_distribution`` would do nothing, and a YAML per-module ``sparsity``
    (``modules: {critic: {sparsity: 0.8}}``) would win over a tuned ``sparsity``.

    :param base: the preprocessed YAML entry (``policy_kwargs`` already a dict)
    :param sampled: the sampler's output
    :return: the dict to ``update`` ``base`` with (``modules: None`` when no per-module setting is left)
    """
    merged = dict(sampled)
    base_kwargs = base.get("policy_kwargs")
    if isinstance(sampled.get("policy_kwargs"), dict) and isinstance(base_kwargs, dict):
        merged["policy_kwargs"] = {**base_kwargs, **sampled["policy_kwargs"]}
    tunes_density = bool({"sparsity", "sparsity_distribution"} & set(sampled))
    if tunes_density and base.get("erdos_renyi_lambdas") is not None and "erdos_renyi_lambdas" not in sampled:
        merged["erdos_renyi_lambdas"] = None
    base_modules = base.get("modules")
    if isinstance(base_modules, dict) and (tunes_density or "modules" in sampled):
        cleared = ({"sparsity"} & set(sampled)) | ({"erdos_renyi_lambdas"} if tunes_density else set())
        modules = {
            name: {key: value for key, value in settings.items() if key not in cleared}
            for name, settings in base_modules.items()
            if isinstance(settings, dict)
        }
        for name, settings in (sampled.get("modules") or {}).items():
            modules.setdefault(name, {}).update(settings)
        merged["modules"] = {name: settings for name, settings in modules.items() if settings} or None
    return merged
