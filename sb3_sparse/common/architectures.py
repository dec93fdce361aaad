"""Scalable residual architectures for SB3's networks: SimBa and BRO, dense or sparse.

SB3 builds each actor, critic and Q-network MLP with ``create_mlp``. The package's networks take an
``architecture``: with one, :func:`rebuild_mlps` rebuilds those MLPs as the residual network of that
architecture, with the same input, the widths of ``net_arch`` (one entry per residual block, all equal) and
the same output layer, before any weight is made sparse. A policy takes it as ``policy_kwargs=dict(
architecture="simba")``; the ``SimbaPolicy`` / ``BroPolicy`` presets add the architecture's published training
defaults (:func:`preset_kwargs`: AdamW and its weight decay, running observation normalisation).

Architectures live in one registry (:data:`ARCHITECTURES`); add one with :func:`register_architecture`.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_sparse.core.config import check_choice


class RunningNorm(nn.Module):
    """SimBa's RSNorm: observations normalised by their running mean and variance.

    The statistics are updated from every batch seen in training mode (the training batches; acting and
    evaluation run in eval mode) and are buffers, so they are saved with the policy. Their names start with
    ``running_``, which SB3's SAC, TD3 and TQC copy into the target networks with the BatchNorm statistics.

    :param num_features: size of the (flat) observation
    :param eps: added to the variance before the square root
    """

    running_mean: th.Tensor
    running_var: th.Tensor
    running_count: th.Tensor

    def __init__(self, num_features: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", th.zeros(num_features))
        self.register_buffer("running_var", th.ones(num_features))
        self.register_buffer("running_count", th.zeros(()))

    def forward(self, x: th.Tensor) -> th.Tensor:
        if self.training:
            self._update(x.detach().reshape(-1, x.shape[-1]))
        return (x - self.running_mean) / th.sqrt(self.running_var + self.eps)

    @th.no_grad()
    def _update(self, batch: th.Tensor) -> None:
        """Chan et al.'s parallel update of the mean and (population) variance with a batch."""
        n = batch.shape[0]
        if n == 0:
            return
        total = self.running_count + n
        mean = batch.mean(dim=0)
        delta = mean - self.running_mean
        old_m2 = self.running_var * self.running_count if self.running_count > 0 else th.zeros_like(self.running_var)
        m2 = old_m2 + batch.var(dim=0, unbiased=False) * n + delta.square() * self.running_count * n / total
        self.running_mean += delta * n / total
        self.running_var.copy_(m2 / total)
        self.running_count.copy_(total)


class SimbaBlock(nn.Module):
    """SimBa's pre-LayerNorm residual block: ``x + Linear(4h -> h)(act(Linear(h -> 4h)(LayerNorm(x))))``."""

    def __init__(self, width: int, activation_fn: type[nn.Module] = nn.ReLU, expansion: int = 4):
        super().__init__()
        self.layers = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, expansion * width), activation_fn(), nn.Linear(expansion * width, width)
        )
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.layers(x)


class BroBlock(nn.Module):
    """BRO's post-LayerNorm residual block: ``x + LayerNorm(Linear(act(LayerNorm(Linear(x)))))``."""

    def __init__(self, width: int, activation_fn: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.LayerNorm(width), activation_fn(), nn.Linear(width, width), nn.LayerNorm(width)
        )

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.layers(x)


def simba_body(input_dim: int, width: int, n_blocks: int, activation_fn: type[nn.Module]) -> list[nn.Module]:
    """SimBa: an orthogonally initialised projection to ``width``, ``n_blocks`` pre-LN blocks, a final LayerNorm."""
    projection = nn.Linear(input_dim, width)
    nn.init.orthogonal_(projection.weight)
    nn.init.zeros_(projection.bias)
    return [projection, *(SimbaBlock(width, activation_fn) for _ in range(n_blocks)), nn.LayerNorm(width)]


def bro_body(input_dim: int, width: int, n_blocks: int, activation_fn: type[nn.Module]) -> list[nn.Module]:
    """BroNet: ``Linear -> LayerNorm -> act`` to ``width``, then ``n_blocks`` post-LN residual blocks."""
    return [
        nn.Linear(input_dim, width),
        nn.LayerNorm(width),
        activation_fn(),
        *(BroBlock(width, activation_fn) for _ in range(n_blocks)),
    ]


@dataclass(frozen=True)
class Architecture:
    """A residual architecture and the published defaults of the policies that use it.

    :param name: the registry name
    :param body: ``(input_dim, width, n_blocks, activation_fn) -> modules`` up to the output layer
    :param net_arch: default ``net_arch`` of the policies (``pi`` for the actor, ``qf`` for the critics;
        one entry per residual block)
    :param weight_decay: AdamW's weight decay (the policies' default optimizer)
    :param normalize_observations: whether the default encoder normalises observations (RSNorm)
    """

    name: str
    body: Callable[[int, int, int, type[nn.Module]], list[nn.Module]]
    net_arch: dict[str, list[int]] = field(default_factory=dict)
    weight_decay: float = 1e-2
    normalize_observations: bool = False


#: The architecture registry: name -> :class:`Architecture` (add to it with :func:`register_architecture`).
ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(architecture: Architecture) -> Architecture:
    """Add ``architecture`` to the registry under its name."""
    ARCHITECTURES[architecture.name] = architecture
    return architecture


# SimBa (Lee et al., 2025): actor 128 x 1 block, critic 512 x 2 blocks, AdamW (weight decay 1e-2), RSNorm.
register_architecture(Architecture("simba", simba_body, {"pi": [128], "qf": [512, 512]}, 1e-2, True))
# BRO (Nauman et al., 2024): actor 256 x 1 block, critic 512 x 2 blocks, AdamW; no observation normalisation.
# The weight decay is not given in the reference notes this package follows: SimBa's 1e-2 is used.
register_architecture(Architecture("bro", bro_body, {"pi": [256], "qf": [512, 512]}, 1e-2, False))


def get_architecture(name: str) -> Architecture:
    check_choice("architecture", name, tuple(ARCHITECTURES))
    return ARCHITECTURES[name]


def block_width(architecture: str, net_arch: Sequence[int], where: str = "net_arch") -> int:
    """The width of a residual network given as ``net_arch`` (one equal width per block); a ``ValueError`` otherwise."""
    widths = list(net_arch)
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w <= 0 for w in widths) or len(set(widths)) > 1:
        raise ValueError(
            f"{where}={widths!r} is not valid for architecture {architecture!r}: give one width per residual block, "
            "all equal (e.g. [512, 512] for two blocks of width 512)"
        )
    return widths[0]


def residual_mlp(
    architecture: str,
    input_dim: int,
    output_dim: int,
    net_arch: Sequence[int],
    activation_fn: type[nn.Module] = nn.ReLU,
    squash_output: bool = False,
) -> list[nn.Module]:
    """The residual counterpart of SB3's ``create_mlp``: the architecture's body, then (``output_dim > 0``) a
    linear output layer, then (``squash_output``) a ``Tanh``."""
    width = block_width(architecture, net_arch)
    modules = get_architecture(architecture).body(input_dim, width, len(net_arch), activation_fn)
    if output_dim > 0:
        modules.append(nn.Linear(width, output_dim))
    if squash_output:
        modules.append(nn.Tanh())
    return modules


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == nn.ReLU.__module__


def rebuild_mlp(mlp: nn.Sequential, architecture: str, has_output: bool) -> nn.Sequential:
    """The residual network of ``architecture`` with the input, hidden widths, activation and output of an SB3 MLP."""
    linears = [module for module in mlp if isinstance(module, nn.Linear)]
    hidden = linears[:-1] if has_output else linears
    squash = has_output and isinstance(mlp[-1], nn.Tanh)
    activations = [module for module in mlp if _is_activation(module)]
    activation_fn = type(activations[0]) if activations and activations[0] is not mlp[-1] else nn.ReLU
    return nn.Sequential(
        *residual_mlp(
            architecture,
            linears[0].in_features,
            linears[-1].out_features if has_output else -1,
            [layer.out_features for layer in hidden],
            activation_fn,
            squash,
        )
    )


def rebuild_mlps(network: nn.Module, architecture: str, mlp_attributes: dict[str, bool]) -> None:
    """Rebuild, in place, the MLPs that SB3 built in ``network`` as residual networks of ``architecture``.

    :param mlp_attributes: attributes holding the MLPs (or lists of them, each also a child: ``qf0``, ``qf1``,
        ...) -> whether their last linear layer is an output layer
    """
    get_architecture(architecture)
    for attribute, has_output in mlp_attributes.items():
        value = getattr(network, attribute)
        if not isinstance(value, list):
            setattr(network, attribute, rebuild_mlp(value, architecture, has_output))
            continue
        for index, mlp in enumerate(value):
            value[index] = rebuild_mlp(mlp, architecture, has_output)
            child = next(name for name, module in network.named_children() if module is mlp)
            setattr(network, child, value[index])


def architecture_net_arch(architecture: str | None, net_arch: Any, keys: Sequence[str] = ("pi", "qf")) -> Any:
    """``net_arch`` of a policy with ``architecture``: checked (one equal width per residual block) before anything
    is built; ``None``: the architecture's default, a dict with ``keys`` (one key: that list, as DQN takes it).
    Without an architecture, ``net_arch`` unchanged."""
    if architecture is None:
        return net_arch
    spec = get_architecture(architecture)
    if net_arch is None:
        defaults = {key: list(spec.net_arch[key]) for key in keys}
        return defaults if len(keys) > 1 else defaults[keys[0]]
    arches = net_arch.items() if isinstance(net_arch, dict) else [("net_arch", net_arch)]
    for key, arch in arches:
        block_width(architecture, arch, f"net_arch[{key!r}]" if key != "net_arch" else key)
    return net_arch


class ResidualEncoder(BaseFeaturesExtractor):
    """A features extractor for flat observations: optional running normalisation (SimBa's RSNorm), then
    optionally a residual network (the ``encoder`` module of the sparse policies).

    :param observation_space: a ``Box`` observation space (flattened)
    :param architecture: the residual architecture of the network
    :param net_arch: one width per residual block; empty: no network (the features are the observations)
    :param normalize_observations: normalise observations by their running mean and variance
    """

    def __init__(
        self,
        observation_space: gym.Space,
        architecture: str = "simba",
        net_arch: Sequence[int] = (),
        normalize_observations: bool = True,
    ):
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(
                f"ResidualEncoder needs a Box observation space, got {type(observation_space).__name__}; pass another "
                "features_extractor_class (e.g. CombinedExtractor for dict observations, NatureCNN for images)"
            )
        input_dim = get_flattened_obs_dim(observation_space)
        net_arch = list(net_arch)
        width = block_width(architecture, net_arch, "features_extractor_kwargs['net_arch']") if net_arch else input_dim
        super().__init__(observation_space, width)
        self.flatten = nn.Flatten()
        self.norm = RunningNorm(input_dim) if normalize_observations else nn.Identity()
        self.encoder = nn.Sequential(*residual_mlp(architecture, input_dim, -1, net_arch)) if net_arch else nn.Identity()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.encoder(self.norm(self.flatten(observations)))


def preset_kwargs(architecture: str | None, observation_space: gym.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A policy's keyword arguments with ``architecture`` and its published training defaults, each unless given:
    AdamW with its weight decay, and (flat observations) a :class:`ResidualEncoder` with running observation
    normalisation where the architecture uses it."""
    kwargs = {"architecture": architecture, **kwargs}
    spec = get_architecture(kwargs["architecture"])
    if kwargs.get("optimizer_class") is None:
        kwargs["optimizer_class"] = th.optim.AdamW
        kwargs["optimizer_kwargs"] = {"weight_decay": spec.weight_decay, **(kwargs.get("optimizer_kwargs") or {})}
    flat = isinstance(observation_space, gym.spaces.Box) and not is_image_space(observation_space)
    if kwargs.get("features_extractor_class") is None and flat:
        kwargs["features_extractor_class"] = ResidualEncoder
    if kwargs.get("features_extractor_class") is ResidualEncoder:
        defaults = {"architecture": kwargs["architecture"], "normalize_observations": spec.normalize_observations}
        kwargs["features_extractor_kwargs"] = {**defaults, **(kwargs.get("features_extractor_kwargs") or {})}
    return kwargs
