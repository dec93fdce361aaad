from sb3_sparse.crossq.crossq import SparseCrossQ
from sb3_sparse.crossq.policies import MlpPolicy, SparseCrossQPolicy

__all__ = ["MlpPolicy", "SparseCrossQ", "SparseCrossQPolicy"]
