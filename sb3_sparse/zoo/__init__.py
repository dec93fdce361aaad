"""rl-zoo3 and Optuna integration: train, enjoy, tune and plot sparse agents from hyperparameter files.

rl-zoo3 has no plugin hook, so :func:`register` adds our algorithms to its registries
(``rl_zoo3.utils.ALGOS``, ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER``);
the ``sb3-sparse`` command (:mod:`sb3_sparse.zoo.cli`) then hands over to rl-zoo3's own entry points.
rl-zoo3 is imported lazily: ``import sb3_sparse`` works without the ``zoo`` extra.
"""

import re
from pathlib import Path
from typing import Any

from sb3_sparse import registry

#: Folder of the hyperparameter files shipped with the package (``<algo>.yml``).
HYPERPARAMS_DIR = registry.HYPERPARAMS_DIR

ZOO_INSTALL_HINT = 'the rl-zoo3 integration needs the zoo extra: pip install "sb3-sparse[zoo]"'


class ZooError(Exception):
    """A user error (bad hyperparameter file, unknown option) reported in one line by the CLI."""


def algorithm_class(algo: str) -> type[Any]:
    """The sparse algorithm class registered under ``algo`` (e.g. ``"sparse_sac"``)."""
    if algo not in registry.ALGORITHMS:
        raise ZooError(f"unknown sparse algorithm {algo!r}; choose one of {', '.join(registry.ALGORITHMS)}")
    return registry.ALGORITHMS[algo].sparse_class


def is_sparse_algo(algo: str) -> bool:
    """Whether ``algo`` is one of ours (so rl-zoo3's defaults for dense algorithms need adjusting)."""
    return algo in registry.ALGORITHMS


def hyperparams_path(algo: str) -> Path:
    """The shipped hyperparameter file of ``algo`` (``sb3_sparse/hyperparams/<algo>.yml``)."""
    return registry.ALGORITHMS[algo].hyperparams if algo in registry.ALGORITHMS else HYPERPARAMS_DIR / f"{algo}.yml"


def run_ids(log_path: str | Path, name: str) -> list[int]:
    """The numbers ``N`` of the run folders ``<log_path>/<name>_<N>`` (rl-zoo3's layout), in increasing order."""
    log_path = Path(log_path)
    if not log_path.is_dir():
        return []
    pattern = re.compile(re.escape(name) + r"_(\d+)")
    return sorted(
        int(match.group(1)) for path in log_path.iterdir() if (match := pattern.fullmatch(path.name)) and path.is_dir()
    )


def register() -> None:
    """Add the sparse algorithms and their Optuna samplers to rl-zoo3's registries (idempotent).

    :raises ZooError: if rl-zoo3 or Optuna is not installed
    """
    try:
        from rl_zoo3 import hyperparams_opt, utils
    except ImportError as error:
        raise ZooError(f"{ZOO_INSTALL_HINT} ({error})") from error
    from sb3_sparse.zoo.samplers import convert_sparse_params, make_sampler

    # rl-zoo3's tables are typed after its own functions' parameter names; ours take the same arguments
    samplers: dict[str, Any] = hyperparams_opt.HYPERPARAMS_SAMPLER
    converters: dict[str, Any] = hyperparams_opt.HYPERPARAMS_CONVERTER
    for algo, entry in registry.ALGORITHMS.items():
        utils.ALGOS[algo] = entry.sparse_class
        samplers[algo] = make_sampler(entry)
        converters[algo] = convert_sparse_params


__all__ = ["HYPERPARAMS_DIR", "ZooError", "algorithm_class", "hyperparams_path", "is_sparse_algo", "register", "run_ids"]
