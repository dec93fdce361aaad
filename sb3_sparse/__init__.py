"""sb3-sparse: dynamic sparse training for Stable-Baselines3."""

import os

from sb3_sparse.common.callbacks import TopologyUpdateCallback
from sb3_sparse.common.flops import flops_report, network_sparsity
from sb3_sparse.common.layers import MaskedLinear
from sb3_sparse.common.recipes import sparse_recipe
from sb3_sparse.sac import SparseSAC, SparseSACPolicy
from sb3_sparse.td3 import SparseTD3, SparseTD3Policy

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

__all__ = [
    "MaskedLinear",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "TopologyUpdateCallback",
    "flops_report",
    "network_sparsity",
    "sparse_recipe",
]
