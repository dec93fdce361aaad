"""TD3 policies: one class, :class:`SparseTD3Policy`, whose actor and critics (and their targets) are sparse per
module (``actor``, ``critic``) and residual networks on request (``architecture``), and its presets:
``SimbaPolicy`` / ``BroPolicy`` for :class:`~sb3_sparse.SparseTD3`, :class:`SimbaTD3Policy` / :class:`BroTD3Policy`
(dense) for SB3's ``TD3``."""

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

from sb3_sparse.common.architectures import architecture_net_arch
from sb3_sparse.common.critics import SparseContinuousCritic
from sb3_sparse.common.networks import SparseNetworkMixin, chain_candidates, linear_layers
from sb3_sparse.common.policies import DENSE, ENCODER, ArchitecturePreset, ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate


class SparseTD3Actor(SparseNetworkMixin, Actor):
    """SB3's TD3 :class:`~stable_baselines3.td3.policies.Actor`, its MLP a residual network (``architecture``), with
    sparse weights (``sparse_config``). Roles: the MLP's first layer is ``input``, its last (the action) ``output``."""

    mlp_attributes = {"mu": True}

    def sparse_candidates(self) -> list[Candidate]:
        layers = linear_layers(self.mu)
        return chain_candidates(layers[:-1], layers[-1:])


class SparseTD3Policy(SparsePolicyMixin, TD3Policy):
    """
    TD3 policy whose actor and critics (with their targets) are sparse, each with its own DST settings.

    Takes every argument of :class:`stable_baselines3.td3.policies.TD3Policy`, plus ``architecture`` and
    ``dst_config``.
    The features extractor stays dense. Modules: ``actor`` and ``critic``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    :param n_critics: Number of critic networks to create.
    :param share_features_extractor: Whether to share or not the features extractor
        between the actor and the critic (this saves computation time)
    :param architecture: the residual architecture of the actor and critics (``"simba"``, ``"bro"`` or a
        registered one; see :mod:`~sb3_sparse.common.architectures`); ``None``: SB3's MLPs. With one,
        ``net_arch`` gives one width per residual block (default: the architecture's)
    :param dst_config: DST settings: flat ones for every module, plus ``"modules"`` with per-module overrides
    """

    sparse_modules = {
        "actor": ModuleSpec("actor", "actor_target", "actor.optimizer"),
        "critic": ModuleSpec("critic", "critic_target", "critic.optimizer"),
    }
    actor_class = SparseTD3Actor
    critic_class = SparseContinuousCritic
    delayed_modules = ("actor",)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        architecture: str | None = None,
        dst_config: dict[str, Any] | None = None,
    ):
        self.architecture = architecture
        self._init_dst(dst_config)
        super().__init__(
            observation_space=observation_space,
            action_space=action_space,
            lr_schedule=lr_schedule,
            net_arch=architecture_net_arch(architecture, net_arch),
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )


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


class SparseSimbaTD3Policy(ArchitecturePreset, SparseTD3Policy):
    """``SimbaPolicy``: :class:`SparseTD3Policy` with SimBa networks and SimBa's defaults, each replaced when given:
    ``net_arch=dict(pi=[128], qf=[512, 512])`` (one width per residual block), AdamW with weight decay 1e-2, and a
    :class:`~sb3_sparse.common.architectures.ResidualEncoder` that normalises observations (RSNorm). Modules:
    ``actor``, ``critic`` and ``encoder`` (the features extractors, dense unless ``modules`` names it)."""

    architecture = "simba"
    sparse_modules = {**SparseTD3Policy.sparse_modules, "encoder": ENCODER}


class SparseBroTD3Policy(ArchitecturePreset, SparseTD3Policy):
    """``BroPolicy``: :class:`SparseTD3Policy` with BRO networks (BroNet) and BRO's defaults, each replaced when
    given: ``net_arch=dict(pi=[256], qf=[512, 512])``, AdamW with weight decay 1e-2. Modules as ``SimbaPolicy``'s."""

    architecture = "bro"
    sparse_modules = SparseSimbaTD3Policy.sparse_modules


class SimbaTD3Policy(SparseSimbaTD3Policy):
    """``SimbaPolicy`` trained dense unless ``dst_config`` says otherwise, for SB3's ``TD3``:
    ``TD3(SimbaTD3Policy, env)``."""

    default_dst_config = DENSE


class BroTD3Policy(SparseBroTD3Policy):
    """``BroPolicy`` trained dense unless ``dst_config`` says otherwise, for SB3's ``TD3``:
    ``TD3(BroTD3Policy, env)``."""

    default_dst_config = DENSE


SimbaPolicy = SparseSimbaTD3Policy
BroPolicy = SparseBroTD3Policy
