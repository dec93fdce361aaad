from sb3_sparse.tqc.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseTQCPolicy
from sb3_sparse.tqc.tqc import SparseTQC

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseTQC", "SparseTQCPolicy"]
