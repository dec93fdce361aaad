"""Sparse DQN policies: SB3's Q-network (and its target), made sparse as one module (``q_net``)."""

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_sparse.common.networks import SparseNetworkMixin, chain_candidates, linear_layers
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate


class SparseQNetwork(SparseNetworkMixin, QNetwork):
    """SB3's DQN :class:`~stable_baselines3.dqn.policies.QNetwork` with sparse weights (``sparse_config``).

    Roles, in the MLP after the features extractor: the first linear layer is ``input``, the others
    ``hidden``, the last (one Q-value per action) ``output``. With no hidden layer (``net_arch=[]``,
    the ``CnnPolicy`` default) the single layer is the ``output``.
    """

    def sparse_candidates(self) -> list[Candidate]:
        layers = linear_layers(self.q_net)
        return chain_candidates(layers[:-1], layers[-1:])


class SparseDQNPolicy(SparsePolicyMixin, DQNPolicy):
    """
    DQN policy whose Q-network (and its target) is sparse.

    Takes every argument of :class:`stable_baselines3.dqn.policies.DQNPolicy`, plus ``dst_config``.
    The features extractor stays dense. Module: ``q_net`` (the Q-network and its target).

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
    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    sparse_modules = {
        "q_net": ModuleSpec("q_net", "q_net_target", "optimizer"),
    }
    inference_module = "q_net"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dst_config: dict[str, Any] | None = None,
    ) -> None:
        self._init_dst(dst_config)
        super().__init__(
            observation_space=observation_space,
            action_space=action_space,
            lr_schedule=lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def make_q_net(self) -> SparseQNetwork:
        # Separate networks (features extractors included) for the Q-network and its target, as SB3 does
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SparseQNetwork(**net_args, sparse_config=self.module_sparse_config("q_net")).to(self.device)


MlpPolicy = SparseDQNPolicy


class CnnPolicy(SparseDQNPolicy):
    """:class:`SparseDQNPolicy` with SB3's ``NatureCNN`` features extractor (kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class MultiInputPolicy(SparseDQNPolicy):
    """:class:`SparseDQNPolicy` for dict observations (``CombinedExtractor``, kept dense) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
