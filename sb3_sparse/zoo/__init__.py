"""rl-zoo3 and Optuna integration: train, enjoy, tune and plot sparse agents from hyperparameter files.

rl-zoo3 has no plugin hook, so :func:`register` adds our algorithms to its registries
(``rl_zoo3.utils.ALGOS``, ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER``);
the ``sb3-sparse`` command (:mod:`sb3_sparse.zoo.cli`) then hands over to rl-zoo3's own entry points, and
runs the multi-agent learners itself (:mod:`sb3_sparse.zoo.marl`). This module holds what the commands share:
:class:`ZooError`, :class:`CommandParser`, the hyperparameter-file reader and the run-folder numbering.
rl-zoo3 is imported lazily: ``import sb3_sparse`` works without the ``zoo`` extra.
"""

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from sb3_sparse import registry
from sb3_sparse.core.names import did_you_mean

#: Folder of the hyperparameter files shipped with the package (``<algo>.yml``).
HYPERPARAMS_DIR = registry.HYPERPARAMS_DIR

ZOO_INSTALL_HINT = 'the rl-zoo3 integration needs the zoo extra: pip install "sb3-sparse[zoo]"'


class ZooError(Exception):
    """A user error (bad hyperparameter file, unknown option) reported in one line by the CLI."""


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are a :class:`ZooError` (one line, exit status 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        raise ZooError(f"{message} (see '{self.prog} -h')")


def check_display() -> None:
    """A window needs a display: on Linux without one, say so instead of GLFW's or pygame's abort."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ZooError(
            "no display to open a window in ($DISPLAY is not set): pass --no-render, or record a video instead "
            "('sb3-sparse record-video ...', or --record FOLDER with --pretrained)"
        )


def read_entries(path: str) -> dict[str, Any]:
    """The entries (env id -> hyperparameters) of a YAML hyperparameter file; its mistakes as :class:`ZooError`."""
    import yaml

    if not path.endswith((".yml", ".yaml")):
        raise ZooError(f"hyperparameter file {path!r} is not a YAML file (.yml or .yaml)")
    if not os.path.isfile(path):
        raise ZooError(f"hyperparameter file {path!r} not found")
    try:
        with open(path) as file:
            entries = yaml.safe_load(file) or {}
    except yaml.YAMLError as error:
        raise ZooError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(entries, dict):
        raise ZooError(f"{path} must map env ids to entries of hyperparameters")
    return entries


def read_entry(path: str, env_id: str) -> tuple[str, dict[str, Any]]:
    """The entry for ``env_id`` (else ``default``) of a YAML hyperparameter file, and its key.

    :raises ZooError: if the file is missing or not valid, or has neither entry
    """
    entries = read_entries(path)
    key = env_id if env_id in entries else "default" if "default" in entries else None
    if key is None:
        raise ZooError(f"{path} has no entry for {env_id!r} and no 'default' entry{did_you_mean(env_id, entries)}")
    entry = entries[key] or {}
    if not isinstance(entry, dict):
        raise ZooError(f"entry {key!r} of {path} must be a mapping of hyperparameters")
    return key, dict(entry)


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


__all__ = [
    "HYPERPARAMS_DIR",
    "CommandParser",
    "ZooError",
    "algorithm_class",
    "hyperparams_path",
    "is_sparse_algo",
    "read_entries",
    "read_entry",
    "register",
    "run_ids",
]
