"""Method names of the benchmark -> models.

``dense`` is the dense algorithm the sparse one extends (SB3's SAC, TD3, DQN; sb3-contrib's TQC,
CrossQ); every other method is a recipe name (:func:`sb3_sparse.sparse_recipe`: ``static``, ``set``,
``rigl``, ``gmp``, ``ne``, ``rlx2``, ``mst``, ``ds_sac``, ...), so a method means the same thing in the
benchmarks, the docs and user code. Algorithms come from :mod:`sb3_sparse.registry` (``sac`` is ``sparse_sac``).
A profile entry may override the recipe's ``sparsity`` and add ``kwargs``.
"""

from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import sparse_recipe
from sb3_sparse.common.buffers import find_replay_buffer_class
from sb3_sparse.common.recipes import RECIPES
from sb3_sparse.registry import get_algorithm


def registry_name(algo: str) -> str:
    """``"sac"`` -> ``"sparse_sac"`` (the registry's name)."""
    return algo if algo.startswith("sparse_") else f"sparse_{algo}"


def model_class(algo: str, method: str) -> type[BaseAlgorithm]:
    entry = get_algorithm(registry_name(algo))
    return entry.dense_class if method == "dense" else entry.sparse_class


def method_kwargs(method: str, env_id: str, sparsity: float | None, algo: str = "sac") -> dict[str, Any]:
    """Constructor arguments of ``method`` (a recipe name, or ``dense``) at ``sparsity`` on ``env_id``."""
    if method == "dense":
        return {}
    if method not in RECIPES:
        raise ValueError(f"method {method!r} is not valid; choose 'dense' or a recipe: {', '.join(RECIPES)}")
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
) -> BaseAlgorithm:
    """A new model on ``env`` (made from ``env_id``).

    Arguments: ``algo_kwargs`` (the algorithm's), then the method's, then ``extra_kwargs``.

    ``device``: where the networks live (the benchmarks' profiles run on CPU).

    ``algo_kwargs`` may hold ``action_noise_std`` (Gaussian exploration noise, as in TD3 papers), and a
    ``replay_buffer_class`` may be a buffer's name (``"dual"``, ``"DualReplayBuffer"``), as in a profile.
    """
    kwargs = {**(algo_kwargs or {}), **method_kwargs(method, env_id, sparsity, algo), **(extra_kwargs or {})}
    noise_std = kwargs.pop("action_noise_std", None)
    buffer_class = find_replay_buffer_class(kwargs.get("replay_buffer_class"))
    if buffer_class is not None:
        kwargs["replay_buffer_class"] = buffer_class
    cls = model_class(algo, method)
    model = cls("MlpPolicy", env, seed=seed, device=device, **kwargs)
    if noise_std is not None:
        n_actions = model.action_space.shape[-1]  # type: ignore[index]
        model.action_noise = NormalActionNoise(mean=np.zeros(n_actions), sigma=np.full(n_actions, float(noise_std)))
    return model
