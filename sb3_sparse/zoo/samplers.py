"""Optuna samplers for ``sparse_sac`` / ``sparse_td3``: rl-zoo3's SAC / TD3 search space plus the DST knobs.

The usual SAC / TD3 hyperparameters are sampled by rl-zoo3's own samplers (same names, same ranges),
so studies of dense and sparse agents compare directly. The DST knobs are sampled under their
constructor names, so a trial's ``params`` are (after :func:`convert_sparse_params`) keyword arguments
of :class:`~sb3_sparse.SparseSAC` / :class:`~sb3_sparse.SparseTD3`.
"""

from collections.abc import Callable
from typing import Any

import optuna
from rl_zoo3.hyperparams_opt import convert_offpolicy_params, sample_sac_params, sample_td3_params

from sb3_sparse.common.algorithm import DST_ARGUMENTS

#: The DST search space: name -> ("float", low, high, log) or ("categorical", choices).
#: ``sparsity`` is the critics' (and default) sparsity, ``actor_sparsity`` the actor's: tuned apart
#: because the critic usually needs more weights (Graesser et al. 2022; RLx2).
DST_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "sparsity": ("float", 0.2, 0.95, False),
    "actor_sparsity": ("float", 0.2, 0.95, False),
    # ERK is Erdos-Renyi made feasible (a layer that would need density > 1 becomes dense and the rest
    # is redistributed): plain "erdos_renyi" would only add trials that fail on small inputs (Pendulum).
    "sparsity_distribution": ("categorical", ["uniform", "erk"]),
    "topology_update_interval": ("categorical", [250, 500, 1000, 2000, 5000, 10000]),
    "drop_fraction": ("float", 0.01, 0.5, True),
    "drop_fraction_schedule": ("categorical", ["constant", "cosine"]),
    "grow_method": ("categorical", ["random", "gradient", "none"]),
}

Sampler = Callable[[optuna.Trial, int, int, dict], dict[str, Any]]


def sample_dst_params(trial: optuna.Trial) -> dict[str, Any]:
    """Sample the DST knobs of :data:`DST_SEARCH_SPACE` (constructor arguments, ready to use).

    :param trial: the Optuna trial
    :return: DST constructor arguments
    """
    params: dict[str, Any] = {}
    for name, spec in DST_SEARCH_SPACE.items():
        if spec[0] == "float":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3])
        else:
            params[name] = trial.suggest_categorical(name, spec[1])
    return params


def sample_sparse_sac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """SparseSAC: rl-zoo3's SAC sampler plus the DST knobs (signature of rl-zoo3's samplers).

    :param trial: the Optuna trial
    :param n_actions: size of the action space
    :param n_envs: number of environments
    :param additional_args: rl-zoo3's extra arguments (HER replay buffer)
    :return: constructor arguments of the trial
    """
    return {**sample_sac_params(trial, n_actions, n_envs, additional_args), **sample_dst_params(trial)}


def sample_sparse_td3_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """SparseTD3: rl-zoo3's TD3 sampler (including action noise) plus the DST knobs.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (for the action noise)
    :param n_envs: number of environments
    :param additional_args: rl-zoo3's extra arguments (HER replay buffer)
    :return: constructor arguments of the trial
    """
    return {**sample_td3_params(trial, n_actions, n_envs, additional_args), **sample_dst_params(trial)}


def convert_sparse_params(params: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's ``params`` -> hyperparameters for a YAML entry or ``--trial-id`` (rl-zoo3's converter + DST).

    rl-zoo3 keeps ``noise_type: None`` with its ``noise_std``, which would reach the constructor;
    here a trial without action noise gives ``noise_type: None`` and no ``noise_std``.

    :param params: ``trial.params``
    :return: hyperparameters (``policy_kwargs`` as a dict)
    """
    dst = {name: value for name, value in params.items() if name in DST_ARGUMENTS}
    rest = {name: value for name, value in params.items() if name not in DST_ARGUMENTS}
    converted = convert_offpolicy_params(rest) if {"one_minus_gamma", "net_arch"} <= set(rest) else dict(rest)
    if "noise_type" in converted and converted["noise_type"] is None:
        converted.pop("noise_std", None)
    return {**converted, **dst}


def merge_trial_hyperparams(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """What a trial adds to the YAML entry ``base`` so that the YAML's DST settings survive and the sampled ones act.

    rl-zoo3 does ``kwargs.update(sampled)``: a sampled ``policy_kwargs`` would replace the YAML's one
    wholesale (losing e.g. DS-TD3's weight decay), so it is merged key by key here. And a YAML
    setting that would silently override a sampled knob is cleared: per-layer Erdos-Renyi lambdas
    fix the densities (so a tuned ``sparsity`` would do nothing), and a YAML ``critic_sparsity`` /
    ``actor_sparsity`` would win over a tuned ``sparsity``.

    :param base: the preprocessed YAML entry (``policy_kwargs`` already a dict)
    :param sampled: the sampler's output
    :return: the dict to ``update`` ``base`` with
    """
    merged = dict(sampled)
    base_kwargs = base.get("policy_kwargs")
    if isinstance(sampled.get("policy_kwargs"), dict) and isinstance(base_kwargs, dict):
        merged["policy_kwargs"] = {**base_kwargs, **sampled["policy_kwargs"]}
    tunes_density = {"sparsity", "sparsity_distribution"} & set(sampled)
    if tunes_density and base.get("erdos_renyi_lambdas") is not None and "erdos_renyi_lambdas" not in sampled:
        merged["erdos_renyi_lambdas"] = None
    if "sparsity" in sampled:
        for name in ("actor_sparsity", "critic_sparsity"):
            if base.get(name) is not None and name not in sampled:
                merged[name] = None
    return merged


SAMPLERS: dict[str, Sampler] = {"sparse_sac": sample_sparse_sac_params, "sparse_td3": sample_sparse_td3_params}
CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sparse_sac": convert_sparse_params,
    "sparse_td3": convert_sparse_params,
}
