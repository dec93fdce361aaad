from sb3_sparse.dqn.dqn import SparseDQN
from sb3_sparse.dqn.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseDQNPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseDQN", "SparseDQNPolicy"]
