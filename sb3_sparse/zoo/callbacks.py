"""A callback that keeps the sparsity / topology history of a run on disk, for ``sb3-sparse plot run``.

rl-zoo3 saves returns (``monitor.csv``, ``evaluations.npz``) but not the SB3 logger's ``sparse/``
keys unless tensorboard is on, so the sparse side of a run is written here, one row per topology
update (plus the first and last step).
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
    """Append the sparsity and the fraction of connections changed by each topology update to ``sparsity.csv``.

    ``<module>_changed_fraction`` is filled only on the rows where that module was rewired (empty
    otherwise), so the column is the per-update history. The file is flushed after every row.

    :param log_dir: folder of the run (rl-zoo3's ``save_path``)
    :param verbose: verbosity level
    """

    def __init__(self, log_dir: str, verbose: int = 0):
        super().__init__(verbose)
        self.path = os.path.join(log_dir, SPARSITY_FILE)
        self._file: TextIO | None = None
        self._writer: Any = None
        self._updates: dict[str, int] = {}

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
        row["n_topology_updates"] = sum(values["n_updates"] for values in state.values())
        row["training_flops_ratio"] = flops_report(policy)["training_flops_ratio"]
        assert self._writer is not None and self._file is not None
        self._writer.writerow(row)
        self._file.flush()

    def _on_training_start(self) -> None:
        if not isinstance(self.model.policy, SparsePolicyMixin):
            raise ValueError(f"SparsityLogCallback needs a sparse model (SparseSAC, ...), got {type(self.model).__name__}")
        new_file = not os.path.exists(self.path)
        self._file = open(self.path, "a", newline="")  # kept open for the whole run
        self._writer = csv.DictWriter(self._file, fieldnames=columns(tuple(self.model.policy.sparse_modules)))
        if new_file:
            self._writer.writeheader()
        self._updates = self._network_updates()
        self._write_row(())

    def _on_step(self) -> bool:
        updates = self._network_updates()
        rewired = tuple(network for network, count in updates.items() if count != self._updates.get(network))
        if rewired:
            self._updates = updates
            self._write_row(rewired)
        return True

    def _on_training_end(self) -> None:
        if self._file is not None:
            self._write_row(())
            self._file.close()
            self._file = None
