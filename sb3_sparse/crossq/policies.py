"""CrossQ policies: one class, :class:`SparseCrossQPolicy`, whose actor and critics are sparse per module
(``actor``, ``critic``) and residual networks on request (``architecture``), and its presets: ``SimbaPolicy`` /
``BroPolicy`` for :class:`~sb3_sparse.SparseCrossQ`, :class:`SimbaCrossQPolicy` / :class:`BroCrossQPolicy` (dense)
for sb3-contrib's ``CrossQ``.

Only the ``nn.Linear`` weights are candidates: the BatchRenorm layers stay dense. CrossQ has no target networks.
"""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.torch_layers import BatchRenorm1d
from sb3_contrib.crossq.policies import Actor, CrossQCritic, CrossQPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_sparse.common.architectures import architecture_net_arch
from sb3_sparse.common.networks import SparseNetworkMixin, gaussian_actor_candidates, q_network_candidates
from sb3_sparse.common.policies import DENSE, ENCODER, ArchitecturePreset, ModuleSpec, SparsePolicyMixin
from sb3_sparse.core.engine import Candidate

#: Variance below which the renormalisation's mean correction has no gradient (see :class:`SparseBatchRenorm1d`).
MIN_VARIANCE = 1e-12


class SparseBatchRenorm1d(BatchRenorm1d):
    """sb3-contrib's ``BatchRenorm1d``, whose gradient stays finite for a feature of zero batch variance.

    A sparse layer can leave a unit with no active input (or a unit can die): its output is constant over
    the batch. After its warm-up, sb3-contrib's BatchRenorm corrects the batch mean by
    ``d * batch_var.sqrt() / r``, whose gradient is infinite at zero variance, so one such unit turns the
    whole network NaN at the next update. Here the square root is taken of the variance clamped at
    :data:`MIN_VARIANCE`: the same values and gradients otherwise, and no gradient through that term
    at zero variance. The parameters and statistics (and their ``state_dict`` names) are CrossQ's.
    """

    ra_mean: th.Tensor
    ra_var: th.Tensor
    steps: th.Tensor

    def forward(self, x: th.Tensor) -> th.Tensor:
        if not (self.training and self.steps > self.warmup_steps):
            return super().forward(x)
        batch_mean = x.mean(dim=0)
        batch_var = x.var(dim=0)
        batch_std = (batch_var + self.eps).sqrt()
        running_std = (self.ra_var + self.eps).sqrt()
        r = (batch_std / running_std).detach().clamp(1 / self.rmax, self.rmax)
        d = ((batch_mean - self.ra_mean) / running_std).detach().clamp(-self.dmax, self.dmax)
        custom_mean = batch_mean - d * batch_var.clamp_min(MIN_VARIANCE).sqrt() / r
        custom_var = batch_var / (r**2)
        self.ra_mean += self.momentum * (batch_mean.detach() - self.ra_mean)
        self.ra_var += self.momentum * (batch_var.detach() - self.ra_var)
        self.steps += 1
        x = (x - custom_mean[None]) / (custom_var[None] + self.eps).sqrt()
        if self.affine:
            x = self.scale * x + self.bias
        return x


def use_sparse_batch_renorm(network: nn.Module) -> None:
    """Turn the ``BatchRenorm1d`` layers of ``network`` into :class:`SparseBatchRenorm1d` (same state, safe gradient)."""
    for module in network.modules():
        if type(module) is BatchRenorm1d:
            module.__class__ = SparseBatchRenorm1d


class SparseCrossQActor(SparseNetworkMixin, Actor):
    """sb3-contrib's CrossQ :class:`~sb3_contrib.crossq.policies.Actor`, its latent MLP (BatchRenorm layers included)
    a residual network (``architecture``, whose LayerNorms take the place of the BatchRenorm layers), with sparse
    weights (``sparse_config``).

    Roles: the latent MLP's first linear layer is ``input``, its others ``hidden``; ``mu`` and ``log_std`` are
    ``output``. The BatchRenorm layers are not candidates; when sparse, they are :class:`SparseBatchRenorm1d`.
    """

    mlp_attributes = {"latent_pi": False}

    def adapt_to_sparsity(self) -> None:
        use_sparse_batch_renorm(self)

    def sparse_candidates(self) -> list[Candidate]:
        return gaussian_actor_candidates(self)


class SparseCrossQCritic(SparseNetworkMixin, CrossQCritic):
    """sb3-contrib's :class:`~sb3_contrib.crossq.policies.CrossQCritic`, its Q-networks residual networks
    (``architecture``), with sparse linear weights (``sparse_config``).

    The BatchRenorm layers are not candidates; when sparse, they are :class:`SparseBatchRenorm1d`.
    """

    mlp_attributes = {"q_networks": True}

    def adapt_to_sparsity(self) -> None:
        use_sparse_batch_renorm(self)

    def sparse_candidates(self) -> list[Candidate]:
        return q_network_candidates(self.q_networks)


class SparseCrossQPolicy(SparsePolicyMixin, CrossQPolicy):
    """
    CrossQ policy whose actor and critics are sparse, each with its own DST settings.

    Takes every argument of :class:`sb3_contrib.crossq.policies.CrossQPolicy`, plus ``architecture`` and
    ``dst_config``.
    The features extractor and the BatchRenorm layers stay dense. Modules: ``actor`` and ``critic``
    (no target networks).

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param batch_norm: Whether to use Batch Renorm layers (default=True)
    :param batch_norm_momentum: The rate of convergence for the batch renormalization statistics
    :param batch_norm_eps: A small value added to the variance to prevent division by zero
    :param renorm_warmup_steps: Number of steps to warm up BatchRenorm statistics before the running statistics
            are used for normalization.
    :param use_sde: Whether to use State Dependent Exploration or not
    :param log_std_init: Initial value for the log standard deviation
    :param use_expln: Use ``expln()`` function instead of ``exp()`` when using gSDE to ensure
        a positive standard deviation (cf paper). It allows to keep variance
        above zero and prevent it from growing too fast. In practice, ``exp()`` is usually enough.
    :param clip_mean: Clip the mean output when using gSDE to avoid numerical instability.
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
    :param dst_config: DST settings: flat ones (``{"sparsity": 0.8, "regime": "rigl"}``) for every module,
        plus ``"modules"`` with per-module overrides; see :class:`~sb3_sparse.core.config.ModuleConfig`
    """

    sparse_modules = {
        "actor": ModuleSpec("actor", None, "actor.optimizer"),
        "critic": ModuleSpec("critic", None, "critic.optimizer"),
    }
    actor_class = SparseCrossQActor
    critic_class = SparseCrossQCritic
    delayed_modules = ("actor",)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        batch_norm: bool = True,
        batch_norm_momentum: float = 0.01,
        batch_norm_eps: float = 0.001,
        renorm_warmup_steps: int = 100_000,
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
            batch_norm=batch_norm,
            batch_norm_momentum=batch_norm_momentum,
            batch_norm_eps=batch_norm_eps,
            renorm_warmup_steps=renorm_warmup_steps,
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


MlpPolicy = SparseCrossQPolicy


class SparseSimbaCrossQPolicy(ArchitecturePreset, SparseCrossQPolicy):
    """``SimbaPolicy``: :class:`SparseCrossQPolicy` with SimBa networks and SimBa's defaults, each replaced when given:
    ``net_arch=dict(pi=[128], qf=[512, 512])`` (one width per residual block), AdamW with weight decay 1e-2, and a
    :class:`~sb3_sparse.common.architectures.ResidualEncoder` that normalises observations (RSNorm). Modules:
    ``actor``, ``critic`` and ``encoder`` (the features extractors, dense unless ``modules`` names it)."""

    architecture = "simba"
    sparse_modules = {**SparseCrossQPolicy.sparse_modules, "encoder": ENCODER}


class SparseBroCrossQPolicy(ArchitecturePreset, SparseCrossQPolicy):
    """``BroPolicy``: :class:`SparseCrossQPolicy` with BRO networks (BroNet) and BRO's defaults, each replaced when
    given: ``net_arch=dict(pi=[256], qf=[512, 512])``, AdamW with weight decay 1e-2. Modules as ``SimbaPolicy``'s."""

    architecture = "bro"
    sparse_modules = SparseSimbaCrossQPolicy.sparse_modules


class SimbaCrossQPolicy(SparseSimbaCrossQPolicy):
    """``SimbaPolicy`` trained dense unless ``dst_config`` says otherwise, for sb3-contrib's ``CrossQ``:
    ``CrossQ(SimbaCrossQPolicy, env)``."""

    default_dst_config = DENSE


class BroCrossQPolicy(SparseBroCrossQPolicy):
    """``BroPolicy`` trained dense unless ``dst_config`` says otherwise, for sb3-contrib's ``CrossQ``:
    ``CrossQ(BroCrossQPolicy, env)``."""

    default_dst_config = DENSE


SimbaPolicy = SparseSimbaCrossQPolicy
BroPolicy = SparseBroCrossQPolicy
