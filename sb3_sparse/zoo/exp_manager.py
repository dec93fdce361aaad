"""rl-zoo3's ExperimentManager, adjusted where it gets a new sparse off-policy algorithm wrong.

A subclass, not a fork: for ``--algo sac`` / ``td3`` (or any algorithm that is not ours) every method
behaves as rl-zoo3's, except that a file may name the package's replay buffers
(``replay_buffer_class: 'DualReplayBuffer'``, found before rl-zoo3 evaluates the string), which are then
attached to the model by a :class:`~sb3_sparse.common.buffers.ReplayBufferCallback`, and may name the
package's policies (``policy: 'SimbaPolicy'``: the dense ``SimbaSACPolicy`` for ``--algo sac``). For the sparse
algorithms (``sparse_sac``, ``sparse_dqn``, ...: those of :data:`sb3_sparse.registry.ALGORITHMS`) it
also

- finds the shipped ``sb3_sparse/hyperparams/<algo>.yml`` when no ``-conf`` is given (rl-zoo3 only
  looks inside its own package),
- checks the entry (unknown keys, DST values) and reports mistakes in one line,
- writes ``sparsity.csv`` (sparsity and topology changes) next to rl-zoo3's files,
- reports a model the constructor rejects (a bad value, an unsupported action space) in one line
  and removes the run folder rl-zoo3 had already created for it,
- leaves no empty run folder behind when tuning (``enjoy`` would take it for the latest run),
- honours ``--trial-id 0`` (rl-zoo3 takes 0 for "no trial"), and rebuilds a ``--trial-id`` trial as it
  ran: its ``policy_kwargs`` and ``modules`` merged into the file's, not replacing them,
- when tuning: merges the trial's ``policy_kwargs`` and ``modules`` into the YAML's instead of
  replacing them, prunes sampled combinations the model rejects instead of crashing the study, creates
  the shared study safely when several workers start together, says when only the DST knobs are tuned
  (no rl-zoo3 sampler for the base algorithm, e.g. CrossQ), and exports the best trial as a YAML entry.
"""

import contextlib
import copy
import glob
import os
import pickle
import re
import shutil
from collections import OrderedDict
from typing import Any

import optuna
from rl_zoo3 import exp_manager as zoo_exp_manager
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_sparse import registry
from sb3_sparse.common.buffers import ReplayBufferCallback, find_replay_buffer_class
from sb3_sparse.zoo import ZooError, algorithm_class, hyperparams_path, is_sparse_algo
from sb3_sparse.zoo.callbacks import SparsityLogCallback
from sb3_sparse.zoo.samplers import merge_trial_hyperparams
from sb3_sparse.zoo.study import (
    check_storage,
    export_best,
    load_study,
    normalize_storage,
    prepare_study,
    python_literal,
    record_budget,
)
from sb3_sparse.zoo.validation import check_hyperparams, coerce_steps


class SparseExperimentManager(ExperimentManager):
    """rl-zoo3's experiment manager with the fixes above for sparse algorithms (see the module docstring).

    Takes exactly the arguments of :class:`rl_zoo3.exp_manager.ExperimentManager`.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sparse = is_sparse_algo(self.algo)
        if self.sparse and not kwargs.get("config"):
            self.config = str(hyperparams_path(self.algo))
        if self.sparse and self.storage is not None:
            check_storage(self.storage)
            self.storage = normalize_storage(self.storage)
        self.base_entry: dict[str, Any] = {}
        self.best_file: str | None = None
        self.created_folders: list[str] = []

    @property
    def where(self) -> str:
        """Where the hyperparameters come from, for messages: the file's entry, and the -params keys if any."""
        params = f", with -params {', '.join(self.custom_hyperparams)}" if self.custom_hyperparams else ""
        return f"{self.config} (entry for {self.env_name.gym_id}{params})"

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.sparse:
            return super().read_hyperparameters()
        if self.config.endswith((".yml", ".yaml", ".py")) and not os.path.isfile(self.config):
            raise ZooError(f"hyperparameter file {self.config!r} not found")
        # The trial of --trial-id is loaded here, between the file's entry and the command line's -params, as
        # rl-zoo3 does, but: rl-zoo3 tests `if self.trial_id`, so --trial-id 0 (the first trial) would be
        # ignored; and it replaces the entry's policy_kwargs and modules wholesale, while the trial ran with
        # them merged (merge_trial_hyperparams): the trial is rebuilt as it ran.
        trial_id, custom = self.trial_id, self.custom_hyperparams
        load_trial = trial_id is not None and bool(self.storage) and bool(self.study_name)
        if load_trial:
            self.trial_id, self.custom_hyperparams = None, None
        try:
            hyperparams, saved = super().read_hyperparameters()
            if load_trial:
                assert trial_id is not None
                print(f"Loading trial {trial_id} from Optuna study...")
                hyperparams.update(self.trial_hyperparams(hyperparams, trial_id))
                hyperparams.update(custom or {})
                saved = OrderedDict((key, hyperparams[key]) for key in sorted(hyperparams))
        except (ValueError, KeyError, SyntaxError, NameError) as error:
            raise ZooError(f"cannot read hyperparameters from {self.config}: {error}") from error
        except Exception as error:  # yaml.YAMLError and friends
            if type(error).__module__.startswith("yaml"):
                raise ZooError(f"{self.config} is not valid YAML: {error}") from error
            raise
        finally:
            self.trial_id, self.custom_hyperparams = trial_id, custom
        self.base_entry = copy.deepcopy(dict(saved))
        return hyperparams, saved

    def trial_hyperparams(self, entry: dict[str, Any], trial_id: int) -> dict[str, Any]:
        """What trial ``trial_id`` of the study changes in the file's ``entry``, merged as during tuning.

        :param entry: the file's entry (``policy_kwargs`` may still be a string, as in the files)
        :param trial_id: the trial's index in the study
        :return: the dict to ``update`` the entry with
        """
        tuned = self.load_trial(str(self.storage), str(self.study_name), trial_id)
        policy_kwargs = entry.get("policy_kwargs")
        if isinstance(policy_kwargs, str):
            policy_kwargs = eval(policy_kwargs, vars(zoo_exp_manager))  # as rl-zoo3 evaluates it
        merged = merge_trial_hyperparams({**entry, "policy_kwargs": policy_kwargs or {}}, tuned)
        if isinstance(entry.get("policy_kwargs"), str) and isinstance(merged.get("policy_kwargs"), dict):
            merged["policy_kwargs"] = python_literal(merged["policy_kwargs"])  # a string again, as in config.yml
        return merged

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> Any:
        # rl-zoo3 evaluates a replay_buffer_class string in its own namespace: the package's buffers are
        # found here first, by name ("dual", "DualReplayBuffer" or the dotted path), for every algorithm
        buffer_class = find_replay_buffer_class(hyperparams.get("replay_buffer_class"))
        if buffer_class is not None:
            hyperparams["replay_buffer_class"] = buffer_class
        if not self.sparse:
            entry = registry.ALGORITHMS.get(f"sparse_{self.algo}")
            policy = hyperparams.get("policy")
            if entry is not None and policy in entry.dense_policies:  # --algo sac with policy: SimbaPolicy
                hyperparams["policy"] = entry.dense_policies[policy]  # a dotted path, which rl-zoo3 imports
            result = super()._preprocess_hyperparams(hyperparams)
            if buffer_class is not None:  # a plain algorithm (--algo sac): attach the model to the buffer
                result[2].append(ReplayBufferCallback())
            return result
        if "n_timesteps" not in hyperparams and self.n_timesteps <= 0:
            raise ZooError(f"{self.where}: n_timesteps is missing (set it in the file or pass -n)")
        result = super()._preprocess_hyperparams(hyperparams)
        coerce_steps(result[0])
        check_hyperparams(algorithm_class(self.algo), result[0], self.where)
        return result

    def _preprocess_action_noise(self, hyperparams: dict[str, Any], saved_hyperparams: dict[str, Any], env: Any) -> Any:
        if self.sparse and "noise_type" in hyperparams and hyperparams["noise_type"] is None:
            # "no action noise" (e.g. from a TD3 trial): rl-zoo3 would pass noise_std on to the constructor
            del hyperparams["noise_type"]
            hyperparams.pop("noise_std", None)
        return super()._preprocess_action_noise(hyperparams, saved_hyperparams, env)

    def setup_experiment(self) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        if not self.sparse:
            return super().setup_experiment()
        try:
            return super().setup_experiment()
        except (ValueError, AssertionError) as error:
            # rejected by the constructor (ValueError) or by SB3's action-space check (AssertionError)
            self.remove_created_folders()
            # one line, and "(Box,)" rather than "(<class 'gymnasium.spaces.box.Box'>,)"
            message = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", " ".join(str(error).split()))
            raise ZooError(f"cannot create {self.algo} for {self.env_name.gym_id} from {self.config}: {message}") from error
        except BaseException:
            self.remove_created_folders()
            raise

    def create_log_folder(self) -> None:
        if self.sparse and self.optimize_hyperparameters:
            return
        # rl-zoo3 creates the run folder before it builds the model; remember what this run creates, so
        # that a model that cannot be built leaves no run folder behind (enjoy would take it for the latest run)
        self.created_folders = [path for path in (self.log_folder, self.log_path, self.save_path) if not os.path.isdir(path)]
        super().create_log_folder()

    def remove_created_folders(self) -> None:
        """Remove the folders :meth:`create_log_folder` created (the run folder with its contents; parents if empty)."""
        for path in reversed(self.created_folders):
            if os.path.normpath(path) == os.path.normpath(self.save_path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):  # not empty: another run wrote there meanwhile
                    os.rmdir(path)
        self.created_folders = []

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> Any:
        # A tuning run writes no run folder: rl-zoo3 leaves an empty "<env>_<n>" behind, which
        # `enjoy` then takes for the latest run.
        return super().create_envs(n_envs, eval_env=eval_env, no_log=no_log or (self.sparse and self.optimize_hyperparameters))

    def create_callbacks(self) -> None:
        super().create_callbacks()
        if self.sparse and not self.optimize_hyperparameters:
            self.callbacks.append(SparsityLogCallback(self.save_path))

    def objective(self, trial: optuna.Trial) -> float:
        if not self.sparse:
            return super().objective(trial)
        budget = {"n_evaluations": self.n_evaluations, "eval_episodes": self.n_eval_episodes}
        record_budget(trial, n_timesteps=self.n_timesteps, sampler=self.sampler, pruner=self.pruner, **budget)
        try:
            return super().objective(trial)
        except ValueError as error:
            # a sampled combination the model rejects (e.g. an Erdos-Renyi layer that would need density > 1)
            raise optuna.exceptions.TrialPruned(str(error)) from error

    def hyperparameters_optimization(self) -> None:
        if not self.sparse:
            return super().hyperparameters_optimization()
        if self.storage is not None and self.study_name is not None:
            prepare_study(self.storage, self.study_name)
        if registry.ALGORITHMS[self.algo].zoo_sampler is None:
            dense = registry.ALGORITHMS[self.algo].dense.rpartition(".")[2]
            print(
                f"Note: rl-zoo3 has no Optuna sampler for {dense}: only the DST knobs are tuned, "
                f"the other hyperparameters come from {self.config}"
            )
        samplers = zoo_exp_manager.HYPERPARAMS_SAMPLER
        sampler = samplers[self.algo]
        base = self._hyperparams

        def sample_merged(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
            return merge_trial_hyperparams(base, sampler(trial, n_actions, n_envs, additional_args))

        samplers[self.algo] = sample_merged
        try:
            super().hyperparameters_optimization()
        except ValueError as error:
            if "No trials are completed" not in str(error):
                raise
            print(f"No trial completed (all pruned or failed): {error}")
            return
        finally:
            samplers[self.algo] = sampler
        self.export_best_trial()

    def _finished_study(self) -> optuna.Study | None:
        if self.storage is not None and self.study_name is not None:
            return load_study(self.storage, self.study_name)
        reports = glob.glob(os.path.join(self.log_folder, self.algo, f"report_{self.env_name}_*.pkl"))
        if not reports:
            return None
        with open(max(reports, key=os.path.getmtime), "rb") as file:
            return pickle.load(file)

    def export_best_trial(self) -> None:
        """Write the best trial so far as a hyperparameter-file entry ``<log folder>/<algo>/best_<env>.yml``."""
        study = self._finished_study()
        if study is None:
            return
        self.best_file = os.path.join(self.log_folder, self.algo, f"best_{self.env_name}.yml")
        text = export_best(study, self.algo, self.env_name.gym_id, self.base_entry, self.best_file)
        print(f"Best trial as a hyperparameter entry ({self.best_file}, use it with -conf):\n{text}")
