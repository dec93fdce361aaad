"""Optuna samplers for the sparse algorithms: rl-zoo3's search space of the base algorithm plus the DST knobs.

The usual hyperparameters are sampled by rl-zoo3's own samplers (same names, same ranges), so studies
of dense and sparse agents compare directly. The DST knobs are sampled under their constructor names;
``actor_sparsity`` (actor-critic algorithms) becomes ``modules={"actor": {"sparsity": ...}}``, so a
trial's parameters are (after :func:`convert_sparse_params`) keyword arguments of the algorithm.
"""

from collections.abc import Callable
from typing import Any

import optuna

from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.registry import AlgorithmEntry, _import

#: The DST search space: name -> ("float", low, high, log) or ("categorical", choices).
#: ``sparsity`` applies to every module; ``actor_sparsity`` is the actor's own, tuned apart because the
#: critic usually needs more weights (Graesser et al. 2022; RLx2).
DST_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "regime": ("categorical", ["set", "rigl", "static"]),
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
MODULE_PARAMS = {"actor_sparsity": ("actor", "sparsity")}

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
        if spec[0] == "float":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3])
        else:
            params[name] = trial.suggest_categorical(name, spec[1])
    return module_params_to_kwargs(params)


def module_params_to_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Move per-module trial parameters (``actor_sparsity``) into ``modules``."""
    kwargs = {name: value for name, value in params.items() if name not in MODULE_PARAMS}
    for name, (module, setting) in MODULE_PARAMS.items():
        if name in params:
            kwargs.setdefault("modules", {}).setdefault(module, {})[setting] = params[name]
    return kwargs


def make_sampler(entry: AlgorithmEntry) -> Sampler:
    """The Optuna sampler of a sparse algorithm: rl-zoo3's sampler of its base algorithm plus the DST knobs."""

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        base = _import(entry.zoo_sampler)(trial, n_actions, n_envs, additional_args) if entry.zoo_sampler else {}
        return {**base, **sample_dst_params(trial, entry.modules)}

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

    dst_names = set(DST_ARGUMENTS) | set(MODULE_PARAMS)
    dst = {name: value for name, value in params.items() if name in dst_names}
    rest = {name: value for name, value in params.items() if name not in dst_names}
    converted = convert_offpolicy_params(rest) if {"one_minus_gamma", "net_arch"} <= set(rest) else dict(rest)
    if "noise_type" in converted and converted["noise_type"] is None:
        converted.pop("noise_std", None)
    return {**converted, **module_params_to_kwargs(dst)}


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
