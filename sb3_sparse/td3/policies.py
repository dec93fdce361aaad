"""Sparse TD3 policies: SB3's TD3 actor and critics (and their targets), made sparse per module."""

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy

from sb3_sparse.common.networks import SparseNetworkMixin, chain_candidates, linear_layers
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate
from sb3_sparse.sac.policies import SparseContinuousCritic


class SparseTD3Actor(SparseNetworkMixin, Actor):
    """SB3's TD3 :class:`~stable_baselines3.td3.policies.Actor` with sparse weights (``sparse_config``)."""

    def sparse_candidates(self) -> list[Candidate]:
        layers = linear_layers(self.mu)
        return chain_candidates(layers[:-1], layers[-1:])


class SparseTD3Policy(SparsePolicyMixin, TD3Policy):
    """
    TD3 policy whose actor and critics (with their targets) are sparse, each with its own DST settings.

    Takes every argument of :class:`stable_baselines3.td3.policies.TD3Policy`, plus ``dst_config``.
    The features extractor stays dense. Modules: ``actor`` and ``critic``.

    :param dst_config: DST settings: flat ones for every module, plus ``"modules"`` with per-module overrides
    """

    sparse_modules = {
        "actor": ModuleSpec("actor", "actor_target", "actor.optimizer"),
        "critic": ModuleSpec("critic", "critic_target", "critic.optimizer"),
    }
    delayed_modules = ("actor",)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        dst_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self._init_dst(dst_config)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseTD3Actor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SparseTD3Actor(**actor_kwargs, sparse_config=self.module_sparse_config("actor")).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return SparseContinuousCritic(**critic_kwargs, sparse_config=self.module_sparse_config("critic")).to(self.device)


MlpPolicy = SparseTD3Policy


class CnnPolicy(SparseTD3Policy):
    """:class:`SparseTD3Policy` with SB3's ``NatureCNN`` features extractor (kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class MultiInputPolicy(SparseTD3Policy):
    """:class:`SparseTD3Policy` for dict observations (``CombinedExtractor``, kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
