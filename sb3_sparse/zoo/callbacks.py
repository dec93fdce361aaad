"""A callback that keeps the sparsity / topology history of a run on disk, for ``sb3-sparse plot run``.

rl-zoo3 saves returns (``monitor.csv``, ``evaluations.npz``) but not the SB3 logger's ``sparse/`` and
``plasticity/`` keys unless tensorboard is on, so the sparse side of a run is written here:
``sparsity.csv``, one row per topology update (plus the first and last step), and ``plasticity.csv``,
one row per plasticity measurement of a module (none when ``plasticity_metrics=False``).
"""

import csv
import math
import os
from typing import Any, TextIO

from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse.common.callbacks import STATE_ATTRIBUTE
from sb3_sparse.common.flops import flops_report, module_sparsity
from sb3_sparse.common.policies import SparsePolicyMixin

SPARSITY_FILE = "sparsity.csv"
PLASTICITY_FILE = "plasticity.csv"
#: The columns of ``plasticity.csv``: one row per measurement of a module (a metric not measured is empty).
PLASTICITY_COLUMNS = (
    "timesteps",
    "module",
    "dormant_ratio",
    "feature_rank",
    "near_zero_fraction",
    "weight_norm",
    "grad_norm",
    "recycled_units",
)


def columns(modules: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of ``sparsity.csv`` for a model with DST ``modules`` (e.g. actor, critic)."""
    return (
        "timesteps",
        *(f"{module}_sparsity" for module in modules),
        "global_sparsity",
        *(f"{module}_changed_fraction" for module in modules),
        "n_topology_updates",
        "training_flops_ratio",
    )


class SparsityLogCallback(BaseCallback):
    """Append the sparsity and the fraction of connections changed by each topology update to ``sparsity.csv``,
    and each plasticity measurement of a module to ``plasticity.csv`` (:data:`PLASTICITY_COLUMNS`).

    ``<module>_changed_fraction`` is filled only on the rows where that module was rewired (empty
    otherwise), so the column is the per-update history. ``plasticity.csv`` is created at the first
    measurement. The files are flushed after every row.

    :param log_dir: folder of the run (rl-zoo3's ``save_path``)
    :param verbose: verbosity level
    """

    def __init__(self, log_dir: str, verbose: int = 0):
        super().__init__(verbose)
        self.path = os.path.join(log_dir, SPARSITY_FILE)
        self._file: TextIO | None = None
        self._writer: Any = None
        self._updates: dict[str, int] = {}
        self.plasticity_path = os.path.join(log_dir, PLASTICITY_FILE)
        self._plasticity_file: TextIO | None = None
        self._plasticity_writer: Any = None
        self._measured: dict[str, Any] = {}

    def _network_updates(self) -> dict[str, int]:
        modules = getattr(self.model, STATE_ATTRIBUTE, {}).get("modules", {})
        return {module: values["n_updates"] for module, values in modules.items()}

    def _write_row(self, rewired: tuple[str, ...]) -> None:
        policy: Any = self.model.policy  # a SparsePolicyMixin (checked at the start of training)
        sparsity = module_sparsity(policy)
        state = getattr(self.model, STATE_ATTRIBUTE)["modules"]
        row: dict[str, Any] = {"timesteps": self.num_timesteps, "global_sparsity": sparsity.get("global", math.nan)}
        for module in policy.sparse_modules:
            row[f"{module}_sparsity"] = sparsity.get(module, "")
            row[f"{module}_changed_fraction"] = state[module]["changed_fraction"] if module in rewired else ""
        row["n_topology_updates"] = getattr(self.model, STATE_ATTRIBUTE)["n_updates"]  # the agent's, as logged
        row["training_flops_ratio"] = flops_report(policy)["training_flops_ratio"]
        assert self._writer is not None and self._file is not None
        self._writer.writerow(row)
        self._file.flush()

    def _measurements(self) -> dict[str, Any]:
        modules = getattr(self.model, STATE_ATTRIBUTE, {}).get("modules", {})
        return {module: values.get("plasticity_step") for module, values in modules.items()}

    def _write_plasticity(self, module: str) -> None:
        if self._plasticity_writer is None:
            new_file = not os.path.exists(self.plasticity_path)
            self._plasticity_file = open(self.plasticity_path, "a", newline="")  # kept open for the rest of the run
            self._plasticity_writer = csv.DictWriter(self._plasticity_file, fieldnames=PLASTICITY_COLUMNS, restval="")
            if new_file:
                self._plasticity_writer.writeheader()
        metrics = getattr(self.model, STATE_ATTRIBUTE)["modules"][module]["plasticity"]
        row = {"timesteps": self.num_timesteps, "module": module}
        row.update({key: value for key, value in metrics.items() if key in PLASTICITY_COLUMNS})
        assert self._plasticity_file is not None
        self._plasticity_writer.writerow(row)
        self._plasticity_file.flush()

    def _on_training_start(self) -> None:
        if not isinstance(self.model.policy, SparsePolicyMixin):
            raise ValueError(f"SparsityLogCallback needs a sparse model (SparseSAC, ...), got {type(self.model).__name__}")
        new_file = not os.path.exists(self.path)
        self._file = open(self.path, "a", newline="")  # kept open for the whole run
        self._writer = csv.DictWriter(self._file, fieldnames=columns(tuple(self.model.policy.sparse_modules)))
        if new_file:
            self._writer.writeheader()
        self._updates = self._network_updates()
        self._measured = self._measurements()
        self._write_row(())

    def _on_step(self) -> bool:
        updates = self._network_updates()
        rewired = tuple(network for network, count in updates.items() if count != self._updates.get(network))
        if rewired:
            self._updates = updates
            self._write_row(rewired)
        measured = self._measurements()
        if measured != self._measured:
            for module, step in measured.items():
                if step is not None and step != self._measured.get(module):
                    self._write_plasticity(module)
            self._measured = measured
        return True

    def _on_training_end(self) -> None:
        if self._file is not None:
            self._on_step()  # the updates that the topology callback did at the end of training
            self._write_row(())
            self._file.close()
            self._file = None
        if self._plasticity_file is not None:
            self._plasticity_file.close()
            self._plasticity_file = self._plasticity_writer = None
