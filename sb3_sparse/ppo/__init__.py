from sb3_sparse.ppo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseActorCriticPolicy
from sb3_sparse.ppo.ppo import SparsePPO

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseActorCriticPolicy", "SparsePPO"]
