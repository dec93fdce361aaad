from sb3_sparse.sac.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseSACPolicy
from sb3_sparse.sac.sac import SparseSAC

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseSAC", "SparseSACPolicy"]
