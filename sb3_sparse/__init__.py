"""sb3-sparse: dynamic sparse training for Stable-Baselines3."""

import os

from sb3_sparse.a2c import SparseA2C
from sb3_sparse.common.actor_critic import SparseActorCriticPolicy
from sb3_sparse.common.callbacks import TopologyUpdateCallback
from sb3_sparse.common.deploy import export_policy, load_policy
from sb3_sparse.common.envs import register_dmc_envs
from sb3_sparse.common.flops import flops_report, module_sparsity
from sb3_sparse.common.recipes import sparse_recipe
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.regimes import Regime, register_regime
from sb3_sparse.crossq import SparseCrossQ, SparseCrossQPolicy
from sb3_sparse.dqn import SparseDQN, SparseDQNPolicy
from sb3_sparse.ppo import SparsePPO
from sb3_sparse.sac import SparseSAC, SparseSACPolicy
from sb3_sparse.td3 import SparseTD3, SparseTD3Policy
from sb3_sparse.tqc import SparseTQC, SparseTQCPolicy

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

# gymnasium ids dmc/<domain>-<task>-v0 (DeepMind Control, flat observations); dm_control is imported only by gym.make
register_dmc_envs()

__all__ = [
    "ModuleConfig",
    "Regime",
    "SparseA2C",
    "SparseActorCriticPolicy",
    "SparseCrossQ",
    "SparseCrossQPolicy",
    "SparseDQN",
    "SparseDQNPolicy",
    "SparsePPO",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "SparseTQC",
    "SparseTQCPolicy",
    "TopologyUpdateCallback",
    "export_policy",
    "flops_report",
    "load_policy",
    "module_sparsity",
    "register_regime",
    "sparse_recipe",
]
