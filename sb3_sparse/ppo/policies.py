"""PPO policies: the sparse actor-critic policy of :mod:`sb3_sparse.common.actor_critic`, under SB3's aliases."""

from sb3_sparse.common.actor_critic import (
    SparseActorCriticCnnPolicy,
    SparseActorCriticPolicy,
    SparseMultiInputActorCriticPolicy,
)

MlpPolicy = SparseActorCriticPolicy
CnnPolicy = SparseActorCriticCnnPolicy
MultiInputPolicy = SparseMultiInputActorCriticPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "SparseActorCriticPolicy"]
