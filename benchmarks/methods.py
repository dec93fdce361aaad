"""Method names of the benchmark -> models.

``dense`` is SB3's own SAC / TD3; every other method is a :class:`~sb3_sparse.SparseSAC` /
:class:`~sb3_sparse.SparseTD3` with the constructor arguments below. A name that is not in
:data:`METHODS` but is a :func:`sb3_sparse.sparse_recipe` name (e.g. ``rlx2``, ``mst``, ``ds_sac``)
uses that recipe, so new methods plug in by name; a profile entry can also set ``recipe`` and
extra ``kwargs``.
"""

from typing import Any

import numpy as np
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import SparseSAC, SparseTD3, sparse_recipe
from sb3_sparse.common.recipes import RECIPES

#: DST constructor arguments of each method (besides ``sparsity``).
METHODS: dict[str, dict[str, Any]] = {
    "dense": {},
    "static": {"grow_method": "none"},
    "set": {"grow_method": "random"},
    # RigL as in Graesser et al. (2022): gradient growth, cosine drop fraction from 0.5, last update at 80%.
    "rigl": {"grow_method": "gradient", "drop_fraction": 0.5, "drop_fraction_schedule": "cosine", "topology_update_end": 0.8},
}
ALGORITHMS: dict[str, tuple[type[BaseAlgorithm], type[BaseAlgorithm]]] = {"sac": (SAC, SparseSAC), "td3": (TD3, SparseTD3)}


def model_class(algo: str, method: str) -> type[BaseAlgorithm]:
    dense, sparse = ALGORITHMS[algo]
    return dense if method == "dense" else sparse


def method_kwargs(method: str, env_id: str, sparsity: float | None, recipe: str | None = None) -> dict[str, Any]:
    """Constructor arguments of ``method`` (and ``recipe``) at ``sparsity`` on ``env_id``."""
    if method == "dense":
        return {}
    kwargs: dict[str, Any] = {}
    if recipe is not None or method not in METHODS:
        name = recipe or method
        if name not in RECIPES:
            raise ValueError(f"method {method!r} is not valid; choose one of {[*METHODS, *RECIPES]}")
        kwargs.update(sparse_recipe(name, env_id if name in ("ds_td3", "ds_sac") else None))
    if method in METHODS:
        kwargs.update(METHODS[method])
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
    recipe: str | None = None,
) -> BaseAlgorithm:
    """A new model on ``env`` (made from ``env_id``).

    Arguments: ``algo_kwargs`` (SB3's), then the method's, then ``extra_kwargs``.

    ``algo_kwargs`` may hold ``action_noise_std`` (Gaussian exploration noise, as in TD3 papers).
    """
    kwargs = {**(algo_kwargs or {}), **method_kwargs(method, env_id, sparsity, recipe), **(extra_kwargs or {})}
    noise_std = kwargs.pop("action_noise_std", None)
    cls = model_class(algo, method)
    model = cls("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    if noise_std is not None:
        n_actions = model.action_space.shape[-1]  # type: ignore[index]
        model.action_noise = NormalActionNoise(mean=np.zeros(n_actions), sigma=np.full(n_actions, float(noise_std)))
    return model
