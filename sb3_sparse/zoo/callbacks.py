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

from sb3_sparse.common.config import NETWORKS
from sb3_sparse.common.flops import flops_report, network_sparsity

SPARSITY_FILE = "sparsity.csv"
COLUMNS = (
    "timesteps",
    *(f"{network}_sparsity" for network in NETWORKS),
    "global_sparsity",
    *(f"{network}_changed_fraction" for network in NETWORKS),
    "n_topology_updates",
    "training_flops_ratio",
)


class SparsityLogCallback(BaseCallback):
    """Append the sparsity and the fraction of connections changed by each topology update to ``sparsity.csv``.

    ``<network>_changed_fraction`` is filled only on the rows where that network was rewired (empty
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
        return {network: values["n_updates"] for network, values in self.model.topology_state.networks.items()}  # type: ignore[attr-defined]

    def _write_row(self, rewired: tuple[str, ...]) -> None:
        policy = self.model.policy
        sparsity = network_sparsity(policy)
        state = self.model.topology_state.networks  # type: ignore[attr-defined]
        row: dict[str, Any] = {"timesteps": self.num_timesteps, "global_sparsity": sparsity.get("global", math.nan)}
        for network in NETWORKS:
            row[f"{network}_sparsity"] = sparsity.get(network, "")
            row[f"{network}_changed_fraction"] = state[network]["last_changed_fraction"] if network in rewired else ""
        row["n_topology_updates"] = self.model.topology_state.n_updates  # type: ignore[attr-defined]
        row["training_flops_ratio"] = flops_report(policy)["training_flops_ratio"]
        assert self._writer is not None and self._file is not None
        self._writer.writerow(row)
        self._file.flush()

    def _on_training_start(self) -> None:
        if not hasattr(self.model, "topology_state"):
            raise ValueError(
                f"SparsityLogCallback needs a sparse model (SparseSAC, SparseTD3), got {type(self.model).__name__}"
            )
        new_file = not os.path.exists(self.path)
        self._file = open(self.path, "a", newline="")  # kept open for the whole run
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
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
