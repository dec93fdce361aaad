"""Optuna samplers: rl-zoo3's search space of the base algorithm plus the DST knobs, and the multi-agent learners'.

The usual hyperparameters are sampled by rl-zoo3's own samplers (same names, same ranges), so studies
of dense and sparse agents compare directly. The DST knobs are sampled under their constructor names;
``actor_sparsity`` and ``actor_regime`` (actor-critic algorithms) become ``modules={"actor": {...}}``, so a
trial's parameters are (after :func:`convert_sparse_params`) keyword arguments of the algorithm.
The value-learning knobs (:data:`VALUE_SEARCH_SPACE`: replay buffer, n-step returns, target operator)
become ``replay_buffer_class`` / ``replay_buffer_kwargs`` and the algorithm's own arguments.
The choices of regime, sparsity distribution and drop-fraction schedule are read from their registries when a
trial is sampled, so a regime registered by the user (:func:`sb3_sparse.register_regime`) is tuned too.
The multi-agent learners (QMIX, VDN) are sampled from :data:`MULTI_AGENT_SEARCH_SPACE` with the same machinery.
"""

import inspect
from collections.abc import Callable
from typing import Any

import optuna

from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.common.buffers import REPLAY_BUFFERS
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.distributions import DISTRIBUTIONS
from sb3_sparse.core.regimes import REGIMES, Dense, get_regime
from sb3_sparse.core.schedules import DROP_FRACTION_SCHEDULES
from sb3_sparse.registry import AlgorithmEntry, import_path

#: Distributions left out of the search: plain Erdos-Renyi would only add trials that fail on small inputs
#: (Pendulum); ERK is Erdos-Renyi made feasible (a layer that would need density > 1 becomes dense).
UNTUNED_DISTRIBUTIONS = ("erdos_renyi",)


def dst_search_space() -> dict[str, tuple[Any, ...]]:
    """The DST search space: name -> ("float", low, high, log) or ("categorical", choices).

    The regimes, distributions and drop-fraction schedules are those registered now. ``sparsity`` applies to
    every module; ``actor_sparsity`` is the actor's own, tuned apart because the critic usually needs more
    weights (Graesser et al. 2022; RLx2); ``actor_regime`` ``"same"`` keeps the flat regime.
    """
    sparse_regimes = [name for name, regime in REGIMES.items() if not issubclass(regime, Dense)]
    return {
        "regime": ("categorical", sparse_regimes),
        # the actor's own regime, e.g. a static actor with a dynamic critic (MST)
        "actor_regime": ("categorical", [SAME, *REGIMES]),
        "sparsity": ("float", 0.2, 0.95, False),
        "actor_sparsity": ("float", 0.2, 0.95, False),
        "sparsity_distribution": ("categorical", [name for name in DISTRIBUTIONS if name not in UNTUNED_DISTRIBUTIONS]),
        "topology_update_interval": ("categorical", [250, 500, 1000, 2000, 5000, 10000]),
        "drop_fraction": ("float", 0.01, 0.5, True),
        "drop_fraction_schedule": ("categorical", list(DROP_FRACTION_SCHEDULES)),
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
    """Sample the DST knobs of :func:`dst_search_space` (those that apply to ``modules``).

    :param trial: the Optuna trial
    :param modules: the algorithm's DST modules
    :return: DST constructor arguments
    """
    params: dict[str, Any] = {}
    for name, spec in dst_search_space().items():
        if name in MODULE_PARAMS and MODULE_PARAMS[name][0] not in modules:
            continue
        if name in SPARSITY_REGIMES:
            regime = params.get(SPARSITY_REGIMES[name], SAME)
            spec = (*spec[:2], highest_sparsity(params["regime"] if regime == SAME else regime, spec[2]), *spec[3:])
        params[name] = suggest(trial, name, spec)
    return module_params_to_kwargs(params)


#: Sparsity trial parameters -> the trial parameter of the regime they go with.
SPARSITY_REGIMES = {"sparsity": "regime", "actor_sparsity": "actor_regime"}


def highest_sparsity(regime: str, high: float) -> float:
    """``high``, or the default initial sparsity of a regime that grows from it (``ne``: it cannot end sparser than
    it starts), so that no sampled sparsity is one that the regime rejects."""
    low = dst_search_space()["sparsity"][1]
    try:
        ModuleConfig(regime=regime, sparsity=high)
    except ValueError:
        return get_regime(regime).initial_sparsity(ModuleConfig(regime=regime, sparsity=low))
    return high


def suggest(trial: optuna.Trial, name: str, spec: tuple[Any, ...]) -> Any:
    """Sample ``name`` from ``spec``: ``("float", low, high, log)`` or ``("categorical", choices)``."""
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
    params = {name: suggest(trial, name, space[name]) for name in ("replay_buffer", "buffer_n_steps")}
    if params["replay_buffer"] == "dual":
        params["recent_fraction"] = suggest(trial, "recent_fraction", space["recent_fraction"])
    if "target_operator" in inspect.signature(algorithm).parameters:
        params.update(sample_target_operator(trial))
    return value_params_to_kwargs(params, class_names=False)


def sample_target_operator(trial: optuna.Trial) -> dict[str, Any]:
    """``target_operator`` of :data:`VALUE_SEARCH_SPACE`, and ``mellowmax_omega`` with Soft Mellowmax."""
    params = {"target_operator": suggest(trial, "target_operator", VALUE_SEARCH_SPACE["target_operator"])}
    if params["target_operator"] == "soft_mellowmax":
        params["mellowmax_omega"] = suggest(trial, "mellowmax_omega", VALUE_SEARCH_SPACE["mellowmax_omega"])
    return params


#: The search space of the multi-agent learners (QMIX, VDN), in the same format; they also sample the target
#: operator (:func:`sample_target_operator`) and, when sparse, the DST knobs. ``batch_size`` choices above the
#: buffer's size (in episodes) are left out; ``hidden_dim`` goes into ``policy_kwargs``.
MULTI_AGENT_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "learning_rate": ("float", 5e-5, 5e-3, True),
    "batch_size": ("categorical", [8, 16, 32, 64, 128]),
    "target_update_interval": ("categorical", [50, 100, 200, 400, 800]),
    "hidden_dim": ("categorical", [32, 64, 128, 256]),
    "td_lambda": ("categorical", [0.0, 0.2, 0.4, 0.6, 0.8]),
    "n_steps": ("categorical", [1, 3, 5]),
}
#: Multi-agent trial parameters that are ``policy_kwargs`` entries.
MULTI_AGENT_POLICY_PARAMS = ("hidden_dim",)


def sample_multi_agent_params(trial: optuna.Trial, buffer_size: int, modules: tuple[str, ...] = ()) -> dict[str, Any]:
    """A multi-agent trial: :data:`MULTI_AGENT_SEARCH_SPACE`, the target operator, and the DST knobs of ``modules``.

    :param trial: the Optuna trial
    :param buffer_size: the replay buffer's size in episodes (bounds ``batch_size``)
    :param modules: the sparse modules of the configuration (none: a dense one, no DST knobs)
    :return: constructor arguments (``hidden_dim`` in ``policy_kwargs``)
    """
    params: dict[str, Any] = {}
    for name, spec in MULTI_AGENT_SEARCH_SPACE.items():
        if name == "batch_size":
            spec = ("categorical", [size for size in spec[1] if size <= buffer_size])
            if not spec[1]:
                continue
        params[name] = suggest(trial, name, spec)
    params.update(sample_target_operator(trial))
    if modules:
        params.update(sample_dst_params(trial, modules))
    return multi_agent_kwargs(params)


def multi_agent_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Multi-agent trial parameters -> constructor arguments (:data:`MULTI_AGENT_POLICY_PARAMS` into ``policy_kwargs``)."""
    kwargs = {name: value for name, value in params.items() if name not in MULTI_AGENT_POLICY_PARAMS}
    policy_kwargs = {name: params[name] for name in MULTI_AGENT_POLICY_PARAMS if name in params}
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    return kwargs


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

    The value knobs are left out for an algorithm without a replay buffer (PPO, A2C) and when the run uses HER
    (rl-zoo3's sampler sets the HER buffer then).
    """
    replay = "replay_buffer_class" in inspect.signature(entry.sparse_class).parameters

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        base = import_path(entry.zoo_sampler)(trial, n_actions, n_envs, additional_args) if entry.zoo_sampler else {}
        tune_value = replay and not additional_args.get("using_her_replay_buffer")
        value = sample_value_params(trial, entry.sparse_class) if tune_value else {}
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
