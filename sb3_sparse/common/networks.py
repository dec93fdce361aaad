"""The package's versions of SB3's networks (actors, critics, Q-networks): residual and sparse on request.

A network is the SB3 class with :class:`SparseNetworkMixin` in front: it builds the dense network exactly
as SB3 does, rebuilds its MLPs as the residual ``architecture`` if it has one, then makes the weights its
module configuration selects sparse. Both are constructor arguments saved by ``_get_constructor_parameters``,
so ``net.save`` / ``NetClass.load``, ``policy.save`` / ``Policy.load`` and ``load_state_dict`` rebuild the
same masked structure, and the masks themselves come back from the ``state_dict``.
"""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from sb3_sparse.common.architectures import rebuild_mlps
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.engine import Candidate, sparsify_module


def linear_layers(module: nn.Module | None) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``module`` in definition order."""
    if module is None:
        return []
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def chain_candidates(body: Sequence[nn.Module], heads: Sequence[nn.Module]) -> list[Candidate]:
    """Candidates of one MLP: the first body layer is ``input``, the others ``hidden``, the heads ``output``."""
    candidates: list[Candidate] = [(layer, "weight", "input" if i == 0 else "hidden", i) for i, layer in enumerate(body)]
    return candidates + [(layer, "weight", "output", len(body)) for layer in heads]


def gaussian_actor_candidates(actor: Any) -> list[Candidate]:
    """Candidates of a squashed-Gaussian actor (SAC, TQC, CrossQ): the ``latent_pi`` MLP, then the ``mu`` and
    (without gSDE) ``log_std`` heads as outputs."""
    log_std = actor.log_std if isinstance(actor.log_std, nn.Module) else None
    return chain_candidates(linear_layers(actor.latent_pi), linear_layers(actor.mu) + linear_layers(log_std))


def q_network_candidates(q_networks: list[nn.Module]) -> list[Candidate]:
    """Candidates of a list of Q-network MLPs (last linear layer of each: the output)."""
    candidates = []
    for q_net in q_networks:
        layers = linear_layers(q_net)
        candidates += chain_candidates(layers[:-1], layers[-1:])
    return candidates


def encoder_candidates(extractor: nn.Module) -> list[Candidate]:
    """Candidates of a features extractor (an encoder): its linear and convolution layers in definition order,
    the first one ``input``, the others ``hidden`` (an encoder has no output layer)."""
    layers = [module for module in extractor.modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    return chain_candidates(layers, [])


class SparseNetworkMixin:
    """Put before an SB3 network class: the network is built as SB3 builds it, its MLPs rebuilt as
    ``architecture``, then its weights made sparse by ``sparse_config``.

    :cvar mlp_attributes: attributes holding the MLPs (or lists of them) that SB3's ``create_mlp`` built ->
        whether their last linear layer is an output layer
    :param architecture: a name in :data:`~sb3_sparse.common.architectures.ARCHITECTURES`; ``None``: SB3's MLPs
    :param sparse_config: the module's DST settings, as its policy resolved them (a plain dict, as saved, is
        accepted too); ``None``: stays dense
    """

    mlp_attributes: ClassVar[dict[str, bool]] = {}
    sparse_config: ModuleConfig | None

    def __init__(
        self,
        *args: Any,
        architecture: str | None = None,
        sparse_config: ModuleConfig | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.architecture = architecture
        if architecture is not None:
            rebuild_mlps(self, architecture, self.mlp_attributes)  # type: ignore[arg-type]
        self.sparse_config = ModuleConfig(**sparse_config) if isinstance(sparse_config, Mapping) else sparse_config
        if self.sparse_config is not None:
            sparsify_module(self.sparse_config, self.sparse_candidates(), self)  # type: ignore[arg-type]
            self.adapt_to_sparsity()

    def sparse_candidates(self) -> list[Candidate]:
        """The weights that may be sparse, with their role (``input`` / ``hidden`` / ``output``) and depth."""
        raise NotImplementedError

    def adapt_to_sparsity(self) -> None:
        """Called once the network is sparse: replace layers that need to behave differently then (none here)."""

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["architecture"] = self.architecture
        data["sparse_config"] = None if self.sparse_config is None else self.sparse_config.as_dict()
        return data
