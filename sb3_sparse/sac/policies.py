"""Sparse SAC policies: SB3's SAC policies whose actor and critic linear layers are masked."""

from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from sb3_sparse.common.config import SparsityConfig
from sb3_sparse.common.policies import Chain, SparsePolicyMixin, linear_layers


class SparseSACPolicy(SparsePolicyMixin, SACPolicy):
    """
    SAC policy (actor and critics) with sparse linear layers.

    Takes every argument of :class:`stable_baselines3.sac.policies.SACPolicy`, plus the
    sparsity arguments below (see :class:`~sb3_sparse.common.config.SparsityConfig`).
    The features extractor stays dense.

    :param sparsity: fraction of the sparse layers' weights that are pruned, in [0, 1)
    :param actor_sparsity: sparsity of the actor (default: ``sparsity``)
    :param critic_sparsity: sparsity of the critics (default: ``sparsity``)
    :param sparsity_distribution: ``"uniform"``, ``"erdos_renyi"`` or ``"erk"``
    :param erdos_renyi_lambdas: one Erdos-Renyi lambda per sparse layer depth (DS-TD3 style)
    :param sparse_layers: ``"input"``, ``"hidden"``, ``"output"`` or ``"all"``; by default every layer
        but the output heads (DS-SAC / DS-TD3)
    :param mask_init: ``"random"`` or ``"magnitude"`` (largest initial weights, RLx2)
    :param sparse_algorithm: set by :class:`~sb3_sparse.SparseSAC`, which owns the topology updates; its
        saved files record it, so that a plain SB3 ``load`` refuses them instead of silently dropping
        the updates
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        sparsity: float = 0.5,
        actor_sparsity: float | None = None,
        critic_sparsity: float | None = None,
        sparsity_distribution: str = "uniform",
        erdos_renyi_lambdas: Sequence[float] | None = None,
        sparse_layers: str | Sequence[str] = ("input", "hidden"),
        mask_init: str = "random",
        sparse_algorithm: str | None = None,
    ):
        self._check_owner(sparse_algorithm)
        self.sparsity_config = SparsityConfig(
            sparsity=sparsity,
            actor_sparsity=actor_sparsity,
            critic_sparsity=critic_sparsity,
            sparsity_distribution=sparsity_distribution,
            erdos_renyi_lambdas=erdos_renyi_lambdas,
            sparse_layers=sparse_layers,
            mask_init=mask_init,
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            use_sde=use_sde,
            log_std_init=log_std_init,
            use_expln=use_expln,
            clip_mean=clip_mean,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )

    def _actor_chains(self, actor: Actor) -> list[Chain]:
        heads = linear_layers(actor.mu) + linear_layers(actor.log_std if isinstance(actor.log_std, nn.Module) else None)
        return [(linear_layers(actor.latent_pi), heads)]

    def masked_networks(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        return {"actor": (self.actor, None), "critic": (self.critic, self.critic_target)}


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
