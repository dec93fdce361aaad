"""rl-zoo3 and Optuna integration: train, enjoy, tune and plot sparse agents from hyperparameter files.

rl-zoo3 has no plugin hook, so :func:`register` adds our algorithms to its registries
(``rl_zoo3.utils.ALGOS``, ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER``);
the ``sb3-sparse`` command (:mod:`sb3_sparse.zoo.cli`) then hands over to rl-zoo3's own entry points.
rl-zoo3 is imported lazily: ``import sb3_sparse`` works without the ``zoo`` extra.
"""

import importlib
from pathlib import Path
from typing import Any

#: Algorithm name in rl-zoo3 -> (module, class) of the sparse algorithm.
ALGORITHMS: dict[str, tuple[str, str]] = {
    "sparse_sac": ("sb3_sparse.sac", "SparseSAC"),
    "sparse_td3": ("sb3_sparse.td3", "SparseTD3"),
}

#: Folder of the hyperparameter files shipped with the package (``<algo>.yml``).
HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"

ZOO_INSTALL_HINT = 'the rl-zoo3 integration needs the zoo extra: pip install "sb3-sparse[zoo]"'


class ZooError(Exception):
    """A user error (bad hyperparameter file, unknown option) reported in one line by the CLI."""


def algorithm_class(algo: str) -> type[Any]:
    """The sparse algorithm class registered under ``algo`` (e.g. ``"sparse_sac"``)."""
    if algo not in ALGORITHMS:
        raise ZooError(f"unknown sparse algorithm {algo!r}; choose one of {', '.join(ALGORITHMS)}")
    module, name = ALGORITHMS[algo]
    return getattr(importlib.import_module(module), name)


def is_sparse_algo(algo: str) -> bool:
    """Whether ``algo`` is one of ours (so rl-zoo3's defaults for dense algorithms need adjusting)."""
    return algo in ALGORITHMS


def hyperparams_path(algo: str) -> Path:
    """The shipped hyperparameter file of ``algo`` (``sb3_sparse/hyperparams/<algo>.yml``)."""
    return HYPERPARAMS_DIR / f"{algo}.yml"


def register() -> None:
    """Add the sparse algorithms and their Optuna samplers to rl-zoo3's registries (idempotent).

    :raises ZooError: if rl-zoo3 or Optuna is not installed
    """
    try:
        from rl_zoo3 import hyperparams_opt, utils
    except ImportError as error:
        raise ZooError(f"{ZOO_INSTALL_HINT} ({error})") from error
    from sb3_sparse.zoo.samplers import CONVERTERS, SAMPLERS

    for algo in ALGORITHMS:
        utils.ALGOS[algo] = algorithm_class(algo)
    hyperparams_opt.HYPERPARAMS_SAMPLER.update(SAMPLERS)
    hyperparams_opt.HYPERPARAMS_CONVERTER.update(CONVERTERS)


__all__ = ["ALGORITHMS", "HYPERPARAMS_DIR", "ZooError", "algorithm_class", "hyperparams_path", "is_sparse_algo", "register"]
