"""Method names of the benchmark -> models.

``dense`` is the dense algorithm the sparse one extends (SB3's SAC, TD3, DQN; sb3-contrib's TQC,
CrossQ); every other method is a recipe name (:func:`sb3_sparse.sparse_recipe`: ``static``, ``set``,
``rigl``, ``gmp``, ``ne``, ``rlx2``, ``mst``, ``ds_sac``, ...), so a method means the same thing in the
benchmarks, the docs and user code. Algorithms come from :mod:`sb3_sparse.registry` (``sac`` is ``sparse_sac``).
A profile entry may override the recipe's ``sparsity`` and add ``kwargs``.

A ``policy`` is a policy alias of the sparse algorithm (``MlpPolicy``, ``SimbaPolicy``, ``BroPolicy``); the
``dense`` method gets its dense counterpart from the registry (``SimbaPolicy`` -> ``SimbaSACPolicy``). A
``width`` sets ``policy_kwargs.net_arch`` by the policy's kind (:func:`width_net_arch`).

The multi-agent learners (``qmix``, ``vdn``: :data:`sb3_sparse.registry.MULTI_AGENT_ALGORITHMS`) are one class
for dense and sparse (dense is their default regime); their recipes are the multi-agent forms of
:func:`sb3_sparse.sparse_recipe` (``static``, ``set``, ``rigl``, ``rlx2``, ``mast``), and ``tiny`` is MAST's *Tiny*
baseline: a dense policy shrunk to the active weight count of the sparse one at the entry's ``sparsity`` (default
0.9; :func:`sb3_sparse.marl.policies.tiny_policy_kwargs`). A ``width`` sets their agents' ``hidden_dim``.
"""

from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import sparse_recipe
from sb3_sparse.common.buffers import find_replay_buffer_class
from sb3_sparse.common.recipes import MULTI_AGENT_RECIPES, RECIPES
from sb3_sparse.registry import MULTI_AGENT_ALGORITHMS, get_algorithm, get_multi_agent_algorithm

#: The multi-agent method that is no recipe: MAST's *Tiny* dense baseline.
TINY = "tiny"
#: The sparsity whose active weight count ``tiny`` matches when the entry gives none (MAST's 90%).
TINY_SPARSITY = 0.9


def registry_name(algo: str) -> str:
    """``"sac"`` -> ``"sparse_sac"`` (the registry's name)."""
    return algo if algo.startswith("sparse_") else f"sparse_{algo}"


def is_multi_agent(algo: str) -> bool:
    """Whether ``algo`` is a multi-agent learner (``qmix``, ``vdn``): its env, evaluation and resume differ."""
    return algo in MULTI_AGENT_ALGORITHMS


def check_method(algo: str, method: str) -> None:
    """Raise a ``ValueError`` if ``method`` is not one of ``algo``'s: ``dense``, a recipe for it, or (multi-agent) ``tiny``."""
    if not is_multi_agent(algo):
        if method != "dense" and method not in RECIPES:
            raise ValueError(f"method {method!r} is not valid; choose 'dense' or a recipe: {', '.join(RECIPES)}")
        return
    valid = ("dense", TINY, *MULTI_AGENT_RECIPES)
    if method not in valid:
        raise ValueError(f"method {method!r} is not valid for {algo}; choose one of {', '.join(valid)}")


def model_class(algo: str, method: str) -> Any:
    """The class that trains ``method``: the dense or sparse class of the registry (one class for a multi-agent learner)."""
    if is_multi_agent(algo):
        return get_multi_agent_algorithm(algo).sparse_class
    entry = get_algorithm(registry_name(algo))
    return entry.dense_class if method == "dense" else entry.sparse_class


def resolve_policy(algo: str, method: str, policy: str = "MlpPolicy") -> Any:
    """The policy given to the model's class: ``policy`` for a sparse method, its dense counterpart for ``dense``."""
    return get_algorithm(registry_name(algo)).dense_policy(policy) if method == "dense" else policy


def policy_architecture(algo: str, method: str, policy: str = "MlpPolicy") -> str | None:
    """The residual architecture of ``policy`` (``"simba"``, ``"bro"``), or ``None`` for an MLP policy."""
    resolved = resolve_policy(algo, method, policy)
    cls = model_class(algo, method)
    policy_class = cls.policy_aliases.get(resolved) if isinstance(resolved, str) else resolved
    if policy_class is None:
        valid = ", ".join(get_algorithm(registry_name(algo)).sparse_class.policy_aliases)
        raise ValueError(f"policy {policy!r} is not valid for {cls.__name__}; choose one of {valid}")
    return getattr(policy_class, "architecture", None)


def width_net_arch(width: int, residual: bool, algo: str = "sac") -> Any:
    """``policy_kwargs.net_arch`` of a network of width ``width``.

    - MLP: two hidden layers of width ``w`` for the actor and the critic (``{"pi": [w, w], "qf": [w, w]}``;
      DQN: ``[w, w]``);
    - residual (SimBa, BRO): a critic of 2 blocks of width ``w`` and an actor of 1 block of width
      ``max(1, w // 4)``: SimBa's actor:critic width ratio of 1:4 (its defaults: actor 128 x 1 block, critic
      512 x 2 blocks).
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if residual:
        return {"pi": [max(1, width // 4)], "qf": [width, width]}
    if registry_name(algo) == "sparse_dqn":
        return [width, width]
    return {"pi": [width, width], "qf": [width, width]}


def method_kwargs(method: str, env_id: str, sparsity: float | None, algo: str = "sac") -> dict[str, Any]:
    """Constructor arguments of ``method`` (a recipe name, or ``dense``) at ``sparsity`` on ``env_id``.

    ``tiny`` (multi-agent) has none: its smaller widths depend on the env (:func:`build_multi_agent_model`).
    """
    check_method(algo, method)
    if method in ("dense", TINY):
        return {}
    if is_multi_agent(algo):
        kwargs = sparse_recipe(method, algorithm=algo)
        if sparsity is not None:
            kwargs["sparsity"] = sparsity
        return kwargs
    kwargs = sparse_recipe(method, env_id if method in ("ds_td3", "ds_sac") else None, algorithm=registry_name(algo))
    if sparsity is not None:
        kwargs["sparsity"] = sparsity
    return kwargs


def build_model(
    algo: str,
    method: str,
    env_id: str,
    env: Any,
    seed: int,
    sparsity: float | None = None,
    algo_kwargs: dict[str, Any] | None = None,
    extra_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    policy: str = "MlpPolicy",
    width: int | None = None,
) -> BaseAlgorithm:
    """A new model on ``env`` (made from ``env_id``).

    Arguments: ``algo_kwargs`` (the algorithm's), then the method's, then ``extra_kwargs``.

    ``device``: where the networks live (``cpu`` by default; ``python -m benchmarks.run --device cuda``).
    ``policy``: a policy alias of the sparse algorithm, resolved for ``dense`` by :func:`resolve_policy`.
    ``width``: sets ``policy_kwargs.net_arch`` (:func:`width_net_arch`); not together with a ``net_arch``.

    ``algo_kwargs`` may hold ``action_noise_std`` (Gaussian exploration noise, as in TD3 papers), and a
    ``replay_buffer_class`` may be a buffer's name (``"dual"``, ``"DualReplayBuffer"``), as in a profile.
    """
    kwargs = {**(algo_kwargs or {}), **method_kwargs(method, env_id, sparsity, algo), **(extra_kwargs or {})}
    if is_multi_agent(algo):
        return build_multi_agent_model(algo, method, env, seed, sparsity, kwargs, device, policy, width)
    noise_std = kwargs.pop("action_noise_std", None)
    buffer_class = find_replay_buffer_class(kwargs.get("replay_buffer_class"))
    if buffer_class is not None:
        kwargs["replay_buffer_class"] = buffer_class
    if width is not None:
        policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
        if "net_arch" in policy_kwargs:
            raise ValueError(f"give a width ({width}) or policy_kwargs.net_arch ({policy_kwargs['net_arch']!r}), not both")
        residual = policy_architecture(algo, method, policy) is not None
        kwargs["policy_kwargs"] = {**policy_kwargs, "net_arch": width_net_arch(width, residual, algo)}
    cls = model_class(algo, method)
    model = cls(resolve_policy(algo, method, policy), env, seed=seed, device=device, **kwargs)
    if noise_std is not None:
        n_actions = model.action_space.shape[-1]  # type: ignore[index]
        model.action_noise = NormalActionNoise(mean=np.zeros(n_actions), sigma=np.full(n_actions, float(noise_std)))
    return model


def base_policy_kwargs(kwargs: dict[str, Any], width: int | None) -> dict[str, Any]:
    """The multi-agent policy's keyword arguments before ``tiny`` shrinks them: ``kwargs["policy_kwargs"]``, with
    ``width`` as the agents' ``hidden_dim``."""
    policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
    if width is not None:
        if "hidden_dim" in policy_kwargs:
            raise ValueError(f"give a width ({width}) or policy_kwargs.hidden_dim ({policy_kwargs['hidden_dim']}), not both")
        policy_kwargs["hidden_dim"] = width
    return policy_kwargs


def build_multi_agent_model(
    algo: str,
    method: str,
    env: Any,
    seed: int,
    sparsity: float | None,
    kwargs: dict[str, Any],
    device: str = "cpu",
    policy: str = "MlpPolicy",
    width: int | None = None,
) -> Any:
    """A new QMIX / VDN on ``env`` (a :class:`~sb3_sparse.marl.envs.MultiAgentEnv`) with ``kwargs`` (algorithm's,
    method's and the entry's, merged by :func:`build_model`); ``tiny`` gets :func:`tiny_policy_kwargs`' widths."""
    cls = model_class(algo, method)
    policy_kwargs = base_policy_kwargs(kwargs, width)
    if method == TINY:
        from sb3_sparse.marl.policies import tiny_policy_kwargs
        from sb3_sparse.marl.qmix import agent_spaces, env_shape

        shape = env_shape(env)
        target = TINY_SPARSITY if sparsity is None else sparsity
        observation_space, action_space = agent_spaces(shape)
        policy_class = cls._policy_class(policy)
        policy_kwargs = tiny_policy_kwargs(
            policy_class, target, observation_space, action_space, shape["n_agents"], shape["state_dim"], policy_kwargs
        )
    return cls(policy, env, seed=seed, device=device, **{**kwargs, "policy_kwargs": policy_kwargs})


def multi_agent_dense_reference(model: Any, spec: Any) -> Any:
    """For ``tiny``, the full-size dense policy its FLOPs and weights are measured against (MAST's comparison: the
    same budget as the sparse networks); ``None`` for the other methods, measured against the dense form of their
    own network as :func:`sb3_sparse.flops_report` does (and for single-agent models). ``spec``: the run's
    :class:`~benchmarks.profile.RunSpec`."""
    if spec.method != TINY or not is_multi_agent(spec.algo):
        return None
    from stable_baselines3.common.utils import ConstantSchedule

    kwargs = {**spec.algo_kwargs, **spec.method_kwargs}
    from sb3_sparse.marl.qmix import agent_spaces

    observation_space, action_space = agent_spaces(model.env_shape)
    n_agents, state_dim = model.env_shape["n_agents"], model.env_shape["state_dim"]
    policy_kwargs = base_policy_kwargs(kwargs, spec.width)
    return model.policy_class(observation_space, action_space, ConstantSchedule(1e-3), n_agents, state_dim, **policy_kwargs)
