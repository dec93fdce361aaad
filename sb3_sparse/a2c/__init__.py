from sb3_sparse.a2c.a2c import SparseA2C
from sb3_sparse.a2c.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseActorCriticPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseA2C", "SparseActorCriticPolicy"]
