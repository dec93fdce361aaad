"""Sparse TQC policies: sb3-contrib's TQC actor and quantile critics, made sparse per module (``actor``, ``critic``)."""

from typing import Any

from gymnasium import spaces
from sb3_contrib.tqc.policies import Actor, Critic, TQCPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.common.networks import SparseNetworkMixin, chain_candidates, linear_layers, q_network_candidates
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate


class SparseTQCActor(SparseNetworkMixin, Actor):
    """sb3-contrib's TQC :class:`~sb3_contrib.tqc.policies.Actor` with sparse weights (``sparse_config``).

    Roles: the latent MLP's first layer is ``input``, its others ``hidden``; ``mu`` and ``log_std`` are ``output``.
    """

    def sparse_candidates(self) -> list[Candidate]:
        heads = linear_layers(self.mu) + linear_layers(self.log_std if isinstance(self.log_std, nn.Module) else None)
        return chain_candidates(linear_layers(self.latent_pi), heads)


class SparseTQCCritic(SparseNetworkMixin, Critic):
    """sb3-contrib's TQC :class:`~sb3_contrib.tqc.policies.Critic` with sparse weights (``sparse_config``).

    Each quantile network is one chain: its first layer is ``input``, its last (the ``n_quantiles`` outputs) ``output``.
    """

    def sparse_candidates(self) -> list[Candidate]:
        return q_network_candidates([*self.q_networks])


class SparseTQCPolicy(SparsePolicyMixin, TQCPolicy):
    """
    TQC policy whose actor and quantile critics are sparse, each with its own DST settings.

    Takes every argument of :class:`sb3_contrib.tqc.policies.TQCPolicy`, plus ``dst_config``.
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

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseTQCActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SparseTQCActor(**actor_kwargs, sparse_config=self.module_sparse_config("actor")).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> SparseTQCCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return SparseTQCCritic(**critic_kwargs, sparse_config=self.module_sparse_config("critic")).to(self.device)


MlpPolicy = SparseTQCPolicy


class CnnPolicy(SparseTQCPolicy):
    """:class:`SparseTQCPolicy` with SB3's ``NatureCNN`` features extractor (kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class MultiInputPolicy(SparseTQCPolicy):
    """:class:`SparseTQCPolicy` for dict observations (``CombinedExtractor``, kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
