"""Optuna storage and best-trial export: share a study between workers, turn its best trial into a YAML entry.

Storage follows rl-zoo3's convention: a path ending in ``.log`` is a journal file (one machine, or
several sharing it over NFS: the default symlink lock works there), anything else is an SQLAlchemy
URL of an RDB server (``postgresql://user:password@host:5432/db`` for many machines).
"""

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

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


def storage_file(storage: str) -> str | None:
    """The file behind ``storage``: the journal file, or an SQLite URL's database file (``None`` for servers and memory)."""
    if storage.endswith(".log") and "://" not in storage:
        return storage
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///") :].split("?", 1)[0]
        return path if path and path != ":memory:" else None
    return None


def load_study(storage: str, study_name: str) -> optuna.Study:
    """Load an existing study, without creating a storage that is not there.

    Opening a journal file or an SQLite URL creates the file (and Optuna's tables), so a typo in
    ``--storage`` would leave an empty storage behind and then report a missing study.

    :param storage: a ``.log`` path or a database URL
    :param study_name: the study's name
    :raises ZooError: if the storage file or the study does not exist
    """
    check_storage(storage)
    path = storage_file(storage)
    if path is not None and not os.path.isfile(path):
        raise ZooError(f"storage {storage!r} not found: no file {path!r} (check --storage, or tune first)")
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
    from sb3_sparse.zoo.samplers import merge_trial_hyperparams

    tuned = HYPERPARAMS_CONVERTER[algo](dict(trial.params))
    entry = dict(base or {})
    policy_kwargs = entry.get("policy_kwargs") or {}
    if isinstance(policy_kwargs, str):
        from rl_zoo3 import exp_manager

        policy_kwargs = eval(policy_kwargs, vars(exp_manager))  # the same evaluation rl-zoo3 does
    # as in a trial: policy_kwargs and modules merged key by key, YAML settings the tuned ones would not beat cleared
    merged = merge_trial_hyperparams({**entry, "policy_kwargs": policy_kwargs}, tuned)
    policy_kwargs = merged.pop("policy_kwargs", policy_kwargs)
    entry.update(merged)
    for key in ("erdos_renyi_lambdas", "modules"):  # cleared by the merge: left out of the file
        if key in merged and merged[key] is None:
            del entry[key]
    if policy_kwargs:
        entry["policy_kwargs"] = python_literal(policy_kwargs)
    return {key: entry[key] for key in sorted(entry)}


#: The budget a trial was tuned at, recorded as trial attributes by the tuning commands (:func:`record_budget`).
BUDGET_KEYS = ("n_timesteps", "n_evaluations", "eval_episodes", "sampler", "pruner")


def record_budget(trial: optuna.Trial, **budget: Any) -> None:
    """Record the budget of ``trial`` (:data:`BUDGET_KEYS`), for the header of the best trial's YAML file."""
    for key in BUDGET_KEYS:
        if budget.get(key) is not None:
            trial.set_user_attr(key, budget[key])


def best_header(study: optuna.Study, algo: str, env_id: str) -> str:
    """YAML comment lines over a best-trial entry: where it comes from and the budget it was tuned at.

    A comment, not keys: rl-zoo3 passes every key of an entry to the constructor.
    """
    trial = study.best_trial
    states = Counter(other.state.name.lower() for other in study.trials)
    budget = [f"{key} {trial.user_attrs[key]}" for key in BUDGET_KEYS if key in trial.user_attrs]
    trials = f"{len(study.trials)} trials ({', '.join(f'{count} {state}' for state, count in sorted(states.items()))})"
    return (
        f"# Best trial of Optuna study {study.study_name!r} ({algo}, {env_id}): trial {trial.number}, "
        f"value {trial.value:.6g}, out of {len(study.trials)} trials.\n"
        f"# Tuned at: {', '.join([*budget, trials])} (a longer run may want other values).\n"
    )


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
    text = best_header(study, algo, env_id) + yaml.safe_dump({env_id: entry}, sort_keys=False, default_flow_style=None)
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    return text


def format_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One line for a finished trial: number, state, value (a pruned trial's last report) and the best so far."""
    state = trial.state.name
    if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None:
        outcome = f"value {trial.value:.6g}"
    elif trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        outcome = f"at step {step} (last value {trial.intermediate_values[step]:.6g})"
    else:
        outcome = "no value"
    try:
        best = study.best_trial
        summary = f"best so far: trial {best.number}, value {best.value:.6g}"
    except (ValueError, RuntimeError):  # no completed trial yet, or a multi-objective study
        summary = "no completed trial yet"
    return f"Trial {trial.number} finished: {state}, {outcome}; {summary}"


class TrialProgress:
    """Optuna callback printing one line per finished trial (rl-zoo3 prints nothing of its own until the end).

    Optuna's own log line holds every parameter (hundreds of characters) and says nothing for a pruned
    trial but its number; this one says state and value at a glance.

    :param stream: where to print (default: ``sys.stdout`` at the time of the call)
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        print(format_trial(study, trial), file=self.stream or sys.stdout, flush=True)


@contextlib.contextmanager
def reporting_trials(callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None) -> Iterator[None]:
    """While active, every ``Study.optimize`` call also runs ``callback`` (default: :class:`TrialProgress`).

    rl-zoo3 builds its study and calls ``optimize`` inside ``hyperparameters_optimization`` with no way to
    add a callback, so the method is wrapped for the duration of one command; its own callbacks (e.g.
    ``MaxTrialsCallback``) still run, first.

    :param callback: an Optuna callback ``(study, frozen_trial) -> None``
    """
    original = optuna.study.Study.optimize
    progress = callback or TrialProgress()

    def optimize(self: optuna.Study, func: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > 4:  # given by position: n_trials, timeout, n_jobs, catch, callbacks, ...
            args = (*args[:4], [*(args[4] or ()), progress], *args[5:])
        else:
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or ()), progress]
        return original(self, func, *args, **kwargs)

    optuna.study.Study.optimize = optimize  # type: ignore[method-assign]
    try:
        yield
    finally:
        optuna.study.Study.optimize = original  # type: ignore[method-assign]
