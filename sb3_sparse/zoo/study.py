"""Optuna storage and best-trial export: share a study between workers, turn its best trial into a YAML entry.

Storage follows rl-zoo3's convention: a path ending in ``.log`` is a journal file (one machine, or
several sharing it over NFS: the default symlink lock works there), anything else is an SQLAlchemy
URL of an RDB server (``postgresql://user:password@host:5432/db`` for many machines).
"""

import time
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages.journal import JournalFileBackend

from sb3_sparse.zoo import ZooError


def check_storage(storage: str) -> None:
    """Reject a storage rl-zoo3 would misread (it treats every non-``.log`` value as a database URL).

    :param storage: the ``--storage`` value
    :raises ZooError: if it is neither a ``.log`` journal file nor a URL
    """
    if not storage.endswith(".log") and "://" not in storage:
        raise ZooError(
            f"--storage {storage!r} is neither a journal file (a path ending in '.log') "
            "nor a database URL (e.g. postgresql://user:password@host:5432/optuna or sqlite:///study.db)"
        )


def normalize_storage(storage: str) -> str:
    """Make a plain ``postgresql://`` URL use the driver that is installed.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3, older versions to psycopg2; the ``zoo`` extra
    installs psycopg2, so without psycopg 3 the URL is pinned to ``postgresql+psycopg2://``.

    :param storage: the ``--storage`` value
    :return: the storage to hand to Optuna / rl-zoo3
    """
    import importlib.util

    if storage.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + storage[len("postgresql://") :]
    return storage


def open_storage(storage: str) -> Any:
    """The Optuna storage rl-zoo3 would use for ``storage`` (journal file for ``.log``, else an RDB URL).

    :param storage: a ``.log`` path or a database URL
    :return: a storage object or the URL
    """
    check_storage(storage)
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    return normalize_storage(storage)


def prepare_study(storage: str, study_name: str, attempts: int = 5) -> None:
    """Create the study (and the database tables) before rl-zoo3 does, retrying on races between workers.

    Workers that start together against a fresh database can collide while creating the tables or
    the study; rl-zoo3 would die on the first error. Afterwards rl-zoo3's ``load_if_exists`` loads it.

    :param storage: a ``.log`` path or a database URL
    :param study_name: the study to create or load
    :param attempts: tries before giving up
    :raises ZooError: if the storage stays unreachable
    """
    for attempt in range(attempts):
        try:
            optuna.create_study(
                storage=open_storage(storage), study_name=study_name, load_if_exists=True, direction="maximize"
            )
            return
        except ZooError:
            raise
        except Exception as error:
            if attempt == attempts - 1:
                raise ZooError(f"cannot open study {study_name!r} in storage {storage!r}: {error}") from error
            time.sleep(0.5 + attempt)


def load_study(storage: str, study_name: str) -> optuna.Study:
    """Load an existing study.

    :param storage: a ``.log`` path or a database URL
    :param study_name: the study's name
    :raises ZooError: if the study does not exist
    """
    try:
        return optuna.load_study(storage=open_storage(storage), study_name=study_name)
    except KeyError as error:
        raise ZooError(f"no study {study_name!r} in storage {storage!r}") from error


def python_literal(value: Any) -> str:
    """Python source of ``value`` that rl-zoo3's ``eval`` reads back (``nn.ReLU`` for torch modules)."""
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{key}={python_literal(item)}" for key, item in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        items = ", ".join(python_literal(item) for item in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, type):
        if value.__module__.startswith("torch.nn"):
            return f"nn.{value.__name__}"
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def best_entry(study: optuna.Study, algo: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A hyperparameter-file entry: ``base`` (the tuned YAML entry) updated with the study's best trial.

    :param study: a study with at least one completed trial
    :param algo: the rl-zoo3 algorithm name (selects the converter)
    :param base: the YAML entry the study started from
    :return: a YAML-safe entry (``policy_kwargs`` as a Python string, as in rl-zoo3's files)
    :raises ZooError: if no trial completed
    """
    from rl_zoo3.exp_manager import HYPERPARAMS_CONVERTER

    try:
        trial = study.best_trial
    except ValueError as error:
        raise ZooError(f"study {study.study_name!r} has no completed trial yet") from error
    tuned = HYPERPARAMS_CONVERTER[algo](dict(trial.params))
    entry = dict(base or {})
    policy_kwargs = entry.get("policy_kwargs") or {}
    if isinstance(policy_kwargs, str):
        from rl_zoo3 import exp_manager

        policy_kwargs = eval(policy_kwargs, vars(exp_manager))  # the same evaluation rl-zoo3 does
    if "policy_kwargs" in tuned:
        policy_kwargs = {**policy_kwargs, **tuned.pop("policy_kwargs")}
    if tuned.get("sparsity") is not None or "sparsity_distribution" in tuned:
        entry.pop("erdos_renyi_lambdas", None)  # fixed densities would override the tuned sparsity
    entry.update(tuned)
    if policy_kwargs:
        entry["policy_kwargs"] = python_literal(policy_kwargs)
    return {key: entry[key] for key in sorted(entry)}


def export_best(study: optuna.Study, algo: str, env_id: str, base: dict[str, Any] | None, output: str | None) -> str:
    """Write (or return) the best trial as ``{env_id: entry}`` YAML, with a comment saying where it comes from.

    :param study: the tuned study
    :param algo: the rl-zoo3 algorithm name
    :param env_id: the environment (the entry's key)
    :param base: the YAML entry the study started from
    :param output: file to write, or ``None``
    :return: the YAML text
    """
    entry = best_entry(study, algo, base)
    trial = study.best_trial
    header = (
        f"# Best trial of Optuna study {study.study_name!r} ({algo}, {env_id}): trial {trial.number}, "
        f"value {trial.value:.6g}, out of {len(study.trials)} trials.\n"
    )
    text = header + yaml.safe_dump({env_id: entry}, sort_keys=False, default_flow_style=None)
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    return text
