"""Machinery shared by the sparse SB3 policies.

A sparse policy builds SB3's own actor and critic, then swaps the chosen ``nn.Linear`` layers for
:class:`~sb3_sparse.common.layers.MaskedLinear` with masks drawn from the layer-wise
distribution. Pruned weights are kept at exactly 0:

- online networks: an optimizer post-step hook applies the masks after every gradient step;
- target networks: they start as a copy of the online networks (masks included); a soft update
  ``(1 - tau) * target + tau * online`` keeps a weight that is 0 in both at 0, and every topology
  update copies the new online masks into the targets and zeroes the newly pruned target
  weights (:meth:`SparsePolicyMixin.sync_target_masks`), which is the rule of RLx2.
"""

from contextvars import ContextVar
from typing import Any

import torch as th
from torch import nn

from sb3_sparse.common.config import SparsityConfig
from sb3_sparse.common.distributions import active_count, layer_densities
from sb3_sparse.common.layers import MaskedLinear

#: Name of the sb3-sparse algorithm whose ``_setup_model`` is building a policy right now.
BUILDING_ALGORITHM: ContextVar[str | None] = ContextVar("sb3_sparse_building_algorithm", default=None)

#: A chain of linear layers through one network: (body layers in order, output heads).
Chain = tuple[list[nn.Linear], list[nn.Linear]]


def linear_layers(module: nn.Module | None) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``module`` in definition order."""
    if module is None:
        return []
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def masked_layers(module: nn.Module) -> list[tuple[str, MaskedLinear]]:
    """``(name, layer)`` of every masked layer of ``module``."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, MaskedLinear)]


def _replace_modules(root: nn.Module, replacements: dict[int, nn.Module]) -> None:
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replacements:
                setattr(parent, name, replacements[id(child)])


class SparsePolicyMixin:
    """Mixed into an SB3 actor-critic policy (before it in the bases) to make its networks sparse.

    Subclasses set ``sparsity_config`` before calling the SB3 constructor, and define
    ``_actor_chains`` and :meth:`masked_networks`.
    """

    sparsity_config: SparsityConfig

    def _actor_chains(self, actor: Any) -> list[Chain]:
        raise NotImplementedError

    def masked_networks(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        """``{"actor": (online, target or None), "critic": (online, target)}``."""
        raise NotImplementedError

    @staticmethod
    def _critic_chains(critic: nn.Module) -> list[Chain]:
        chains = []
        for q_net in critic.q_networks:  # type: ignore[union-attr]
            layers = linear_layers(q_net)
            chains.append((layers[:-1], layers[-1:]))
        return chains

    def make_actor(self, features_extractor: Any = None) -> Any:
        actor = super().make_actor(features_extractor)  # type: ignore[misc]
        return self._sparsify(actor, "actor")

    def make_critic(self, features_extractor: Any = None) -> Any:
        critic = super().make_critic(features_extractor)  # type: ignore[misc]
        return self._sparsify(critic, "critic")

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self._attach_mask_hooks()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self.sparsity_config.as_kwargs())
        return data

    @staticmethod
    def _check_owner(sparse_algorithm: str | None) -> None:
        """A policy saved by SparseSAC/SparseTD3 may only be rebuilt by that algorithm."""
        if sparse_algorithm is not None and BUILDING_ALGORITHM.get() != sparse_algorithm:
            raise ValueError(
                f"This file was saved by {sparse_algorithm}: load it with {sparse_algorithm}.load "
                "(a plain SB3 algorithm would train its sparse networks without topology updates)"
            )

    def _sparsify(self, net: nn.Module, network: str) -> nn.Module:
        """Replace the selected linear layers of ``net`` by masked ones with initial masks."""
        config = self.sparsity_config
        chains = self._actor_chains(net) if network == "actor" else self._critic_chains(net)
        selected: list[tuple[nn.Linear, int]] = []  # (layer, depth in its chain)
        for body, heads in chains:
            roles = [("input" if i == 0 else "hidden", i, layer) for i, layer in enumerate(body)]
            roles += [("output", len(body), layer) for layer in heads]
            selected += [(layer, depth) for role, depth, layer in roles if role in config.sparse_layers]
        if not selected:
            return net
        shapes = [(layer.out_features, layer.in_features) for layer, _ in selected]
        lambdas = None
        if config.erdos_renyi_lambdas is not None:
            depths = sorted({depth for _, depth in selected})
            if len(config.erdos_renyi_lambdas) != len(depths):
                raise ValueError(
                    f"erdos_renyi_lambdas has {len(config.erdos_renyi_lambdas)} values but the {network} has "
                    f"{len(depths)} sparse layer depths (sparse_layers={list(config.sparse_layers)}); "
                    "give one lambda per depth"
                )
            lambdas = [config.erdos_renyi_lambdas[depths.index(depth)] for _, depth in selected]
        densities = layer_densities(shapes, config.network_sparsity(network), config.sparsity_distribution, lambdas)
        replacements: dict[int, nn.Module] = {}
        for (layer, _), shape, density in zip(selected, shapes, densities, strict=True):
            masked = MaskedLinear.from_linear(layer)
            masked.init_mask(active_count(shape, density), config.mask_init)
            replacements[id(layer)] = masked
        _replace_modules(net, replacements)
        return net

    def masked_layers(self, network: str) -> list[tuple[str, MaskedLinear]]:
        """``(name, layer)`` of the masked layers of the online ``network``."""
        return masked_layers(self.masked_networks()[network][0])

    def _attach_mask_hooks(self) -> None:
        """Hook every network's optimizer: capture dense gradients before, re-apply masks after a step."""
        for online, _ in self.masked_networks().values():
            layers = [layer for _, layer in masked_layers(online)]
            if not layers:
                continue

            def capture(optimizer: Any, args: Any, kwargs: Any, layers: list[MaskedLinear] = layers) -> None:
                for layer in layers:
                    if layer.track_dense_grad:
                        layer.capture_dense_grad()

            def apply(optimizer: Any, args: Any, kwargs: Any, layers: list[MaskedLinear] = layers) -> None:
                for layer in layers:
                    layer.apply_mask()

            optimizer: th.optim.Optimizer = online.optimizer  # type: ignore[assignment]
            optimizer.register_step_pre_hook(capture)
            optimizer.register_step_post_hook(apply)

    @th.no_grad()
    def sync_target_masks(self, network: str) -> None:
        """Copy the online masks of ``network`` into its target network and zero the pruned target weights."""
        online, target = self.masked_networks()[network]
        if target is None:
            return
        target_modules = dict(target.named_modules())
        for name, layer in masked_layers(online):
            target_layer = target_modules[name]
            target_layer.mask.copy_(layer.mask)
            target_layer.apply_mask()

    def apply_masks(self) -> None:
        """Zero the pruned weights of every online and target network."""
        for online, target in self.masked_networks().values():
            for net in (online, target):
                if net is not None:
                    for _, layer in masked_layers(net):
                        layer.apply_mask()
