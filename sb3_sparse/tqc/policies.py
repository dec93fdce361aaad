"""TQC policies: one class, :class:`SparseTQCPolicy`, whose actor and quantile critics are sparse per module
(``actor``, ``critic``) and residual networks on request (``architecture``), and its presets: ``SimbaPolicy`` /
``BroPolicy`` for :class:`~sb3_sparse.SparseTQC`, :class:`SimbaTQCPolicy` / :class:`BroTQCPolicy` (dense) for
sb3-contrib's ``TQC``."""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.tqc.policies import Actor, Critic, TQCPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.common.architectures import architecture_net_arch
from sb3_sparse.common.networks import SparseNetworkMixin, gaussian_actor_candidates, q_network_candidates
from sb3_sparse.common.policies import DENSE, ENCODER, ArchitecturePreset, ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate


class SparseTQCActor(SparseNetworkMixin, Actor):
    """sb3-contrib's TQC :class:`~sb3_contrib.tqc.policies.Actor`, its latent MLP a residual network
    (``architecture``), with sparse weights (``sparse_config``).

    Roles: the latent MLP's first layer is ``input``, its others ``hidden``; ``mu`` and ``log_std`` are ``output``.
    """

    mlp_attributes = {"latent_pi": False}

    def sparse_candidates(self) -> list[Candidate]:
        return gaussian_actor_candidates(self)


class SparseTQCCritic(SparseNetworkMixin, Critic):
    """sb3-contrib's TQC :class:`~sb3_contrib.tqc.policies.Critic`, its quantile networks residual networks
    (``architecture``), with sparse weights (``sparse_config``).

    Each quantile network is one chain: its first layer is ``input``, its last (the ``n_quantiles`` outputs) ``output``.
    """

    mlp_attributes = {"q_networks": True}

    def sparse_candidates(self) -> list[Candidate]:
        return q_network_candidates([*self.q_networks])


class SparseTQCPolicy(SparsePolicyMixin, TQCPolicy):
    """
    TQC policy whose actor and quantile critics are sparse, each with its own DST settings.

    Takes every argument of :class:`sb3_contrib.tqc.policies.TQCPolicy`, plus ``architecture`` and ``dst_config``.
    The features extractor stays dense. Modules: ``actor`` and ``critic`` (the critics and their targets).

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param use_sde: Whether to use State Dependent Exploration or not
    :param log_std_init: Initial value for the log standard deviation
    :param use_expln: Use ``expln()`` function instead of ``exp()`` when using gSDE to ensure
        a positive standard deviation (cf paper). It allows to keep variance
        above zero and prevent it from growing too fast. In practice, ``exp()`` is usually enough.
    :param clip_mean: Clip the mean output when using gSDE to avoid numerical instability.
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the feature extractor.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    :param n_quantiles: Number of quantiles for the critic.
    :param n_critics: Number of critic networks to create.
    :param share_features_extractor: Whether to share or not the features extractor
        between the actor and the critic (this saves computation time)
    :param architecture: the residual architecture of the actor and critics (``"simba"``, ``"bro"`` or a
        registered one; see :mod:`~sb3_sparse.common.architectures`); ``None``: SB3's MLPs. With one,
        ``net_arch`` gives one width per residual block (default: the architecture's)
    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    sparse_modules = {
        "actor": ModuleSpec("actor", None, "actor.optimizer"),
        "critic": ModuleSpec("critic", "critic_target", "critic.optimizer"),
    }
    actor_class = SparseTQCActor
    critic_class = SparseTQCCritic

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
        n_quantiles: int = 25,
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
            use_sde=use_sde,
            log_std_init=log_std_init,
            use_expln=use_expln,
            clip_mean=clip_mean,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_quantiles=n_quantiles,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )


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


class SparseSimbaTQCPolicy(ArchitecturePreset, SparseTQCPolicy):
    """``SimbaPolicy``: :class:`SparseTQCPolicy` with SimBa networks and SimBa's defaults, each replaced when given:
    ``net_arch=dict(pi=[128], qf=[512, 512])`` (one width per residual block), AdamW with weight decay 1e-2, and a
    :class:`~sb3_sparse.common.architectures.ResidualEncoder` that normalises observations (RSNorm). Modules:
    ``actor``, ``critic`` and ``encoder`` (the features extractors, dense unless ``modules`` names it)."""

    architecture = "simba"
    sparse_modules = {**SparseTQCPolicy.sparse_modules, "encoder": ENCODER}


class SparseBroTQCPolicy(ArchitecturePreset, SparseTQCPolicy):
    """``BroPolicy``: :class:`SparseTQCPolicy` with BRO networks (BroNet) and BRO's defaults, each replaced when
    given: ``net_arch=dict(pi=[256], qf=[512, 512])``, AdamW with weight decay 1e-2. Modules as ``SimbaPolicy``'s."""

    architecture = "bro"
    sparse_modules = SparseSimbaTQCPolicy.sparse_modules


class SimbaTQCPolicy(SparseSimbaTQCPolicy):
    """``SimbaPolicy`` trained dense unless ``dst_config`` says otherwise, for sb3-contrib's ``TQC``:
    ``TQC(SimbaTQCPolicy, env)``."""

    default_dst_config = DENSE


class BroTQCPolicy(SparseBroTQCPolicy):
    """``BroPolicy`` trained dense unless ``dst_config`` says otherwise, for sb3-contrib's ``TQC``:
    ``TQC(BroTQCPolicy, env)``."""

    default_dst_config = DENSE


SimbaPolicy = SparseSimbaTQCPolicy
BroPolicy = SparseBroTQCPolicy
