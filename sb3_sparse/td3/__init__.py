from sb3_sparse.td3.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseTD3Policy
from sb3_sparse.td3.td3 import SparseTD3

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseTD3", "SparseTD3Policy"]
