"""The sparse actor-critic policies of the on-policy algorithms: SB3's ``ActorCriticPolicy`` (PPO, A2C) and
sb3-contrib's ``MaskableActorCriticPolicy`` (MaskablePPO) whose actor, critic and features extractor are sparse, each
a module with its own DST settings."""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.common.networks import chain_candidates, encoder_candidates, linear_layers
from sb3_sparse.common.policies import ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import sparsify_module


def actor_critic_networks(policy: Any) -> dict[str, nn.ModuleDict]:
    """The actor's and the critic's networks of an SB3 actor-critic policy, sparse or dense (views: nothing is
    copied), each with its features extractor under ``features_extractor``."""
    return {
        "actor": nn.ModuleDict(
            {
                "features_extractor": policy.pi_features_extractor,
                "policy_net": policy.mlp_extractor.policy_net,
                "action_net": policy.action_net,
            }
        ),
        "critic": nn.ModuleDict(
            {
                "features_extractor": policy.vf_features_extractor,
                "value_net": policy.mlp_extractor.value_net,
                "value_head": policy.value_net,
            }
        ),
    }


class SparseActorCriticMixin(SparsePolicyMixin):
    """What the sparse actor-critic policies share (SB3's ``ActorCriticPolicy``, sb3-contrib's
    ``MaskableActorCriticPolicy``: the same networks under the same names): the ``actor``, ``critic`` and ``encoder``
    modules on the policy's one optimizer, their views, and the masks drawn after the orthogonal initialisation."""

    sparse_modules = {
        "actor": ModuleSpec("actor", None, "optimizer"),
        "critic": ModuleSpec("critic", None, "optimizer"),
        "encoder": ModuleSpec("encoders", None, "optimizer"),
    }
    explicit_modules = ("encoder",)
    pi_features_extractor: BaseFeaturesExtractor
    vf_features_extractor: BaseFeaturesExtractor
    mlp_extractor: Any
    action_net: nn.Module
    value_net: nn.Linear

    @property
    def actor(self) -> nn.ModuleDict:
        """The actor's networks: its features extractor (not part of the module), policy MLP and action head."""
        return self._network_views()["actor"]

    @property
    def critic(self) -> nn.ModuleDict:
        """The critic's networks: its features extractor (not part of the module), value MLP and value head."""
        return self._network_views()["critic"]

    @property
    def encoders(self) -> nn.ModuleDict:
        """The features extractors of the critic and the actor (the critic's first: one entry when shared)."""
        return self._network_views()["encoder"]

    def _network_views(self) -> dict[str, nn.ModuleDict]:
        """The views of :func:`actor_critic_networks` and of the encoders, built again only when a network is replaced
        (the engine's bindings are read once per rollout: A2C's are 5 steps long). Kept outside the modules
        registry, so that they add nothing to ``state_dict`` or ``parameters()``."""
        parts = (
            self.pi_features_extractor,
            self.vf_features_extractor,
            self.mlp_extractor.policy_net,
            self.mlp_extractor.value_net,
            self.action_net,
            self.value_net,
        )
        cached = self.__dict__.get("_views")
        if cached is None or any(part is not seen for part, seen in zip(parts, cached[0], strict=True)):
            views = actor_critic_networks(self)
            self.__dict__["_views"] = cached = (parts, views)  # views first: _extractor_view reads actor and critic
            views["encoder"] = self._extractor_view({"critic": "critic", "actor": "actor"})
        return cached[1]

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        # dense here: made sparse in _build, after the orthogonal initialisation has written its weights
        return BasePolicy.make_features_extractor(self)  # type: ignore[arg-type]

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        for name, body, head in (
            ("actor", self.mlp_extractor.policy_net, self.action_net),
            ("critic", self.mlp_extractor.value_net, self.value_net),
        ):
            config = self.module_sparse_config(name)
            if config is not None:
                sparsify_module(config, chain_candidates(linear_layers(body), linear_layers(head)), body)
        config = self.module_sparse_config("encoder")
        if config is not None:
            for extractor in self.encoders.values():
                sparsify_module(config, encoder_candidates(extractor), extractor)


class SparseActorCriticPolicy(SparseActorCriticMixin, ActorCriticPolicy):
    """
    Actor-critic policy (PPO, A2C) whose actor, critic and features extractor are sparse, each with its own DST
    settings.

    Takes every argument of :class:`stable_baselines3.common.policies.ActorCriticPolicy`, plus ``dst_config``.
    Modules, all trained by the policy's one optimizer:

    - ``actor``: the policy MLP of the ``mlp_extractor`` (``policy_net``: ``input`` and ``hidden`` layers) and
      the ``action_net`` (``output``);
    - ``critic``: the value MLP (``value_net`` of the ``mlp_extractor``) and the ``value_net`` head (``output``);
    - ``encoder``: the features extractor (the shared one with ``share_features_extractor=True``, else the
      actor's and the critic's), its linear and convolution layers. It stays dense unless ``modules`` names it,
      as in the other algorithms, where features extractors are dense (a ``NatureCNN`` is most of a ``CnnPolicy``'s
      weights).

    The masks are drawn after SB3's orthogonal initialisation (``ortho_init``), so ``mask_init="magnitude"``
    keeps the largest of the initial weights. With SB3's ``PPO`` or ``A2C``:
    ``PPO(SparseActorCriticPolicy, env, policy_kwargs=dict(dst_config=dict(sparsity=0.8)))`` and a
    :class:`~sb3_sparse.TopologyUpdateCallback`.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use or not orthogonal initialization
    :param use_sde: Whether to use State Dependent Exploration or not
    :param log_std_init: Initial value for the log standard deviation
    :param full_std: Whether to use (n_features x n_actions) parameters
        for the std instead of only (n_features,) when using gSDE
    :param use_expln: Use ``expln()`` function instead of ``exp()`` to ensure
        a positive standard deviation (cf paper). It allows to keep variance
        above zero and prevent it from growing too fast. In practice, ``exp()`` is usually enough.
    :param squash_output: Whether to squash the output using a tanh function,
        this allows to ensure boundaries when using gSDE.
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param share_features_extractor: If True, the features extractor is shared between the policy and value networks.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dst_config: dict[str, Any] | None = None,
    ):
        self._init_dst(dst_config)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )


class SparseActorCriticCnnPolicy(SparseActorCriticPolicy):
    """:class:`SparseActorCriticPolicy` with SB3's ``NatureCNN`` features extractor by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class SparseMultiInputActorCriticPolicy(SparseActorCriticPolicy):
    """:class:`SparseActorCriticPolicy` for dict observations (``CombinedExtractor``) by default."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class SparseMaskableActorCriticPolicy(SparseActorCriticMixin, MaskableActorCriticPolicy):
    """
    sb3-contrib's ``MaskableActorCriticPolicy`` (for ``MaskablePPO``) whose actor, critic and features extractor are
    sparse, as in :class:`SparseActorCriticPolicy` (same modules, same defaults). With sb3-contrib's ``MaskablePPO``:
    ``MaskablePPO(SparseMaskableActorCriticPolicy, env, policy_kwargs=dict(dst_config=dict(sparsity=0.8)))`` and a
    :class:`~sb3_sparse.TopologyUpdateCallback`.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use or not orthogonal initialization
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param share_features_extractor: If True, the features extractor is shared between the policy and value networks.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dst_config: dict[str, Any] | None = None,
    ):
        self._init_dst(dst_config)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
