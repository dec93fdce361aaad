"""One table of the sparse algorithms, read by the package, the rl-zoo3 integration and the benchmarks.

Each entry names the algorithm class, the dense algorithm it extends, its rl-zoo3 Optuna sampler for
the base hyperparameters and its shipped hyperparameter file. Classes are imported lazily, so the
table can be read without importing every algorithm (or rl-zoo3). Add an entry with :func:`register_algorithm`.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Folder of the hyperparameter files shipped with the package (``<name>.yml``).
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"


def import_path(path: str) -> Any:
    """The object at a dotted path (``"stable_baselines3.SAC"``), its module imported on first use."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class AlgorithmEntry:
    """A sparse algorithm and what the zoo and benchmarks need to know about it.

    :param name: the rl-zoo3 name (``"sparse_sac"``)
    :param sparse: dotted path of the sparse algorithm class
    :param dense: dotted path of the dense algorithm it extends
    :param zoo_sampler: dotted path of rl-zoo3's sampler of the base hyperparameters (``None``: DST knobs only)
    :param dense_policies: policy aliases of the sparse class that the dense class lacks -> dotted path of
        their dense counterpart (``"SimbaPolicy"`` -> ``SimbaSACPolicy`` for SB3's ``SAC``)
    """

    name: str
    sparse: str
    dense: str
    zoo_sampler: str | None
    dense_policies: dict[str, str] = field(default_factory=dict)

    @property
    def sparse_class(self) -> type[Any]:
        return import_path(self.sparse)

    @property
    def dense_class(self) -> type[Any]:
        return import_path(self.dense)

    def dense_policy(self, policy: Any) -> Any:
        """``policy`` for the dense class: the dense counterpart of an alias it lacks (``"SimbaPolicy"``), else unchanged."""
        return (
            import_path(self.dense_policies[policy]) if isinstance(policy, str) and policy in self.dense_policies else policy
        )

    @property
    def modules(self) -> tuple[str, ...]:
        """The DST module names of its default policy (e.g. ``("actor", "critic")``)."""
        return tuple(self.sparse_class.policy_aliases["MlpPolicy"].sparse_modules)

    @property
    def hyperparams(self) -> Path:
        return HYPERPARAMS_DIR / f"{self.name}.yml"


ALGORITHMS: dict[str, AlgorithmEntry] = {}


def register_algorithm(entry: AlgorithmEntry) -> None:
    """Add (or replace) an algorithm in the table."""
    ALGORITHMS[entry.name] = entry


_ZOO = "rl_zoo3.hyperparams_opt"


def _residual(algo: str, prefix: str) -> dict[str, str]:
    """The dense SimBa and BRO policies of an actor-critic algorithm package."""
    return {f"{name}Policy": f"sb3_sparse.{algo}.policies.{name}{prefix}Policy" for name in ("Simba", "Bro")}


for _entry in (
    AlgorithmEntry(
        "sparse_sac", "sb3_sparse.sac.SparseSAC", "stable_baselines3.SAC", f"{_ZOO}.sample_sac_params", _residual("sac", "SAC")
    ),
    AlgorithmEntry(
        "sparse_td3", "sb3_sparse.td3.SparseTD3", "stable_baselines3.TD3", f"{_ZOO}.sample_td3_params", _residual("td3", "TD3")
    ),
    AlgorithmEntry(
        "sparse_tqc", "sb3_sparse.tqc.SparseTQC", "sb3_contrib.TQC", f"{_ZOO}.sample_tqc_params", _residual("tqc", "TQC")
    ),
    AlgorithmEntry(
        "sparse_crossq", "sb3_sparse.crossq.SparseCrossQ", "sb3_contrib.CrossQ", None, _residual("crossq", "CrossQ")
    ),
    AlgorithmEntry("sparse_dqn", "sb3_sparse.dqn.SparseDQN", "stable_baselines3.DQN", f"{_ZOO}.sample_dqn_params"),
    AlgorithmEntry("sparse_ppo", "sb3_sparse.ppo.SparsePPO", "stable_baselines3.PPO", f"{_ZOO}.sample_ppo_params"),
    AlgorithmEntry("sparse_a2c", "sb3_sparse.a2c.SparseA2C", "stable_baselines3.A2C", f"{_ZOO}.sample_a2c_params"),
):
    register_algorithm(_entry)


#: The multi-agent learners (``sb3-sparse marl``), apart from :data:`ALGORITHMS` because rl-zoo3 cannot run them.
#: Their entries name the same class as sparse and dense: dense is the default regime.
MULTI_AGENT_ALGORITHMS: dict[str, AlgorithmEntry] = {}


def register_multi_agent_algorithm(entry: AlgorithmEntry) -> None:
    """Add (or replace) a multi-agent learner in :data:`MULTI_AGENT_ALGORITHMS`."""
    MULTI_AGENT_ALGORITHMS[entry.name] = entry


for _entry in (
    AlgorithmEntry("qmix", "sb3_sparse.marl.QMIX", "sb3_sparse.marl.QMIX", None),
    AlgorithmEntry("vdn", "sb3_sparse.marl.VDN", "sb3_sparse.marl.VDN", None),
):
    register_multi_agent_algorithm(_entry)


def get_multi_agent_algorithm(name: str) -> AlgorithmEntry:
    """The entry of the multi-agent learner ``name`` (a ``ValueError`` with the valid names otherwise)."""
    from sb3_sparse.core.config import check_choice

    check_choice("algorithm", name, tuple(MULTI_AGENT_ALGORITHMS))
    return MULTI_AGENT_ALGORITHMS[name]


def get_algorithm(name: str) -> AlgorithmEntry:
    """The entry of ``name`` (a ``ValueError`` with the valid names otherwise)."""
    from sb3_sparse.core.config import check_choice

    check_choice("algorithm", name, tuple(ALGORITHMS))
    return ALGORITHMS[name]
