"""Sparse SAC policies: SB3's SAC actor and critics, made sparse per module (``actor``, ``critic``)."""

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from sb3_sparse.common.networks import SparseNetworkMixin, chain_candidates, linear_layers, q_network_candidates
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate


class SparseActor(SparseNetworkMixin, Actor):
    """SB3's SAC :class:`~stable_baselines3.sac.policies.Actor` with sparse weights (``sparse_config``).

    Roles: the latent MLP's first layer is ``input``, its others ``hidden``; ``mu`` and ``log_std`` are ``output``.
    """

    def sparse_candidates(self) -> list[Candidate]:
        heads = linear_layers(self.mu) + linear_layers(self.log_std if isinstance(self.log_std, nn.Module) else None)
        return chain_candidates(linear_layers(self.latent_pi), heads)


class SparseContinuousCritic(SparseNetworkMixin, ContinuousCritic):
    """SB3's :class:`~stable_baselines3.common.policies.ContinuousCritic` with sparse weights (``sparse_config``)."""

    def sparse_candidates(self) -> list[Candidate]:
        return q_network_candidates(self.q_networks)


class SparseSACPolicy(SparsePolicyMixin, SACPolicy):
    """
    SAC policy whose actor and critics are sparse, each with its own DST settings.

    Takes every argument of :class:`stable_baselines3.sac.policies.SACPolicy`, plus ``dst_config``.
    The features extractor stays dense. Modules: ``actor`` and ``critic`` (the critics and their targets).

    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    sparse_modules = {
        "actor": ModuleSpec("actor", None, "actor.optimizer"),
        "critic": ModuleSpec("critic", "critic_target", "critic.optimizer"),
    }

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

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SparseActor(**actor_kwargs, sparse_config=self.module_sparse_config("actor")).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return SparseContinuousCritic(**critic_kwargs, sparse_config=self.module_sparse_config("critic")).to(self.device)


MlpPolicy = SparseSACPolicy


class CnnPolicy(SparseSACPolicy):
    """:class:`SparseSACPolicy` with SB3's ``NatureCNN`` features extractor (kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class MultiInputPolicy(SparseSACPolicy):
    """:class:`SparseSACPolicy` for dict observations (``CombinedExtractor``, kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
