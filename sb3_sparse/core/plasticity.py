"""Plasticity diagnostics of a network, and ReDo's recycling of dormant units.

Why does a regime help? Often because it keeps the network *plastic*: its units keep responding to their
inputs, its features stay rich, its weights keep moving. This module measures that on any ``nn.Module``
and recycles dormant units, in plain PyTorch (it knows nothing of SB3; the engine drives it):

- **dormant-unit ratio** (ReDo, Sokar et al. 2023): the fraction of units whose score
  :math:`s_i = \\mathbb{E}_x|h_i(x)| \\,/\\, \\frac{1}{H}\\sum_k \\mathbb{E}_x|h_k(x)|` over a batch is at most
  :math:`\\tau`;
- **near-zero fraction**: the fraction of the active weights with :math:`|w| <` :data:`NEAR_ZERO_THRESHOLD`;
- **feature rank** (srank, Kumar et al. 2021) of the last hidden layer: the smallest :math:`k` whose top
  :math:`k` singular values of the batch's feature matrix reach :math:`1 - \\delta` of their sum;
- **weight norm** and **gradient norm** of the network's parameters.

**Units.** A unit is an output of a linear layer (its *producer*) that other linear layers (its
*consumers*) read with only unit-wise modules in between (activations, normalisation, dropout: see
:func:`is_unitwise`). :func:`neuron_layers` finds them from the network's structure: a producer and its
consumer inside one ``nn.Sequential`` (SB3's MLPs, and the inner ``nn.Sequential`` of a residual block,
whose skip connection is not a unit-wise path), and a producer that ends its ``nn.Sequential`` (SB3's SAC
actor: ``latent_pi`` is read by the ``mu`` and ``log_std`` heads), whose consumers are the linear layers
found reading the ``nn.Sequential``'s output in the recorded forward pass. The activity of a unit is the
consumer's input, i.e. after the activation function.

**Cost.** A :class:`PlasticityProbe` hooks nothing until it is armed; armed, it records the first
forward pass in training mode (and the gradient of the first optimizer step), each hook removing itself
once it has recorded, so between two measurements the network runs without any hook of this module.
"""

import math
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch as th
from torch import nn
from torch.utils.hooks import RemovableHandle

from sb3_sparse.core.masking import get_mask, is_excluded, is_sparse
from sb3_sparse.core.optim import reset_state

#: A weight counts as near zero when ``|w|`` is below this (about 1.6% of the initial range of a
#: 256-input layer, whose default initialisation draws from U(-1/16, 1/16)).
NEAR_ZERO_THRESHOLD = 1e-3
#: srank's delta (Kumar et al. 2021): the feature rank keeps ``1 - SRANK_DELTA`` of the singular values' sum.
SRANK_DELTA = 0.01
#: Added to a layer's mean activity in the dormant score, so that a silent layer has all its units dormant.
SCORE_EPS = 1e-9

# Where PyTorch's unit-wise modules live (subclasses count too); GLU halves its input, attention mixes units.
_UNITWISE_SOURCES = frozenset(
    f"torch.nn.modules.{name}" for name in ("activation", "normalization", "batchnorm", "instancenorm", "dropout")
)
_NOT_UNITWISE = (nn.GLU, nn.MultiheadAttention)


def is_unitwise(module: nn.Module) -> bool:
    """Whether unit ``i`` of ``module``'s output is unit ``i`` of its input, transformed (not mixed with others).

    True for a leaf module with at most per-unit (1-D) parameters that is ``nn.Identity``, a PyTorch
    activation, normalisation or dropout module (or a subclass), or a normalisation layer of another library
    (its class name contains ``norm``, e.g. sb3-contrib's ``BatchRenorm1d``). Normalisation layers rescale each
    unit by statistics of the layer or the batch, but keep units apart, so a unit stays a unit through them.
    """
    if isinstance(module, _NOT_UNITWISE) or next(module.children(), None) is not None:
        return False
    if any(param.dim() > 1 for param in module.parameters(recurse=False)):
        return False
    if isinstance(module, nn.Identity) or "norm" in type(module).__name__.lower():
        return True
    return any(cls.__module__ in _UNITWISE_SOURCES for cls in type(module).__mro__)


@dataclass(eq=False)
class NeuronLayer:
    """The units of one linear layer and the linear layers that read them.

    :param name: qualified name of the producer in the network
    :param producer: the linear layer whose outputs are the units (its rows and bias: their incoming weights)
    :param consumers: the linear layers that read the units (their columns: the units' outgoing weights)
    :param chain: the network the layer belongs to (the name of its outermost ``nn.Sequential``): the last
        hidden layer of each chain gives the feature rank
    :param tail: the ``nn.Sequential`` that the producer ends (with only unit-wise modules after it): its
        consumers are outside it and are found in the recorded forward pass; ``None`` for a pair found
        inside an ``nn.Sequential``
    """

    name: str
    producer: nn.Linear
    consumers: list[nn.Linear] = field(default_factory=list)
    chain: str = ""
    tail: nn.Sequential | None = None


def neuron_layers(network: nn.Module, exclude: Sequence[str] = ()) -> list[NeuronLayer]:
    """The neuron layers of ``network`` found from its structure (``nn.Sequential`` containers).

    In every ``nn.Sequential``, a linear layer followed by unit-wise modules only, then by a linear layer
    that takes as many inputs, is a producer with its consumer. A linear layer followed by unit-wise modules
    only up to the end of its ``nn.Sequential`` is returned with that ``tail`` and no consumer yet (an
    output layer, such as a Q-network's last layer, keeps none and is not a hidden layer). Any other module
    (a residual block, a reshape, a convolution) ends the search: a residual block's own ``nn.Sequential``
    is searched on its own, and its skip connection is not a unit-wise path.

    :param network: the network (any ``nn.Module``, e.g. an ``nn.ModuleDict`` of several networks)
    :param exclude: names of sub-modules to leave out (e.g. a features extractor that belongs to another module)
    :return: the layers in definition order
    """
    sequentials = {name: module for name, module in network.named_modules() if isinstance(module, nn.Sequential)}

    def chain_of(name: str) -> str:
        parts = name.split(".") if name else []
        return next((".".join(parts[:n]) for n in range(len(parts) + 1) if ".".join(parts[:n]) in sequentials), name)

    layers = []
    for seq_name, sequential in sequentials.items():
        if is_excluded(seq_name, exclude):
            continue
        children = list(sequential.named_children())
        for index, (child_name, child) in enumerate(children):
            if not isinstance(child, nn.Linear):
                continue
            after = index + 1
            while after < len(children) and is_unitwise(children[after][1]):
                after += 1
            name = f"{seq_name}.{child_name}" if seq_name else child_name
            chain = chain_of(seq_name)
            if after == len(children):
                layers.append(NeuronLayer(name, child, [], chain, sequential))
                continue
            consumer = children[after][1]
            if isinstance(consumer, nn.Linear) and consumer.in_features == child.out_features:
                layers.append(NeuronLayer(name, child, [consumer], chain))
    return layers


def module_parameters(network: nn.Module, exclude: Sequence[str] = ()) -> Iterator[tuple[nn.Module, str, nn.Parameter]]:
    """``(owner, name, parameter)`` of every parameter of ``network`` outside ``exclude`` (each once)."""
    seen: set[int] = set()
    for module_name, module in network.named_modules():
        if is_excluded(module_name, exclude):
            continue
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield module, name, param


def dormant_scores(activity: th.Tensor) -> th.Tensor:
    """ReDo's score of each unit: its mean ``|activity|`` over the batch, divided by the mean over its layer.

    :param activity: ``(batch, units)`` (more leading dimensions are flattened into the batch)
    """
    mean_abs = activity.detach().reshape(-1, activity.shape[-1]).abs().float().mean(dim=0)
    return mean_abs / (mean_abs.mean() + SCORE_EPS)


def dormant_units(activity: th.Tensor, threshold: float) -> th.Tensor:
    """Indices of the units whose :func:`dormant_scores` is at most ``threshold`` (all of a silent layer)."""
    return (dormant_scores(activity) <= threshold).nonzero().squeeze(1)


def feature_rank(features: th.Tensor, delta: float = SRANK_DELTA) -> int:
    """srank (Kumar et al. 2021): the smallest ``k`` whose top ``k`` singular values of ``features``
    (``(batch, units)``) sum to at least ``1 - delta`` of all of them; 0 for all-zero features."""
    singular = th.linalg.svdvals(features.detach().reshape(-1, features.shape[-1]).float())
    total = singular.sum()
    if total <= 0:
        return 0
    reached = th.cumsum(singular, dim=0) >= (1.0 - delta) * total
    return int(reached.nonzero()[0, 0].item()) + 1


@th.no_grad()
def near_zero_fraction(network: nn.Module, threshold: float = NEAR_ZERO_THRESHOLD, exclude: Sequence[str] = ()) -> float:
    """Fraction of the active weights (of every weight matrix; pruned entries are not counted) with ``|w| < threshold``.

    :return: the fraction (0 for a network without weight matrices)
    """
    near = active = 0
    for module, name, param in module_parameters(network, exclude):
        if param.dim() < 2:
            continue
        small = param.abs() < threshold
        if is_sparse(module, name):
            mask = get_mask(module, name) != 0
            near += int((small & mask).sum().item())
            active += int(mask.sum().item())
        else:
            near += int(small.sum().item())
            active += param.numel()
    return near / active if active else 0.0


@th.no_grad()
def parameter_norm(network: nn.Module, exclude: Sequence[str] = ()) -> float:
    """L2 norm of all the parameters of ``network`` (weights, biases, normalisation parameters) together."""
    norms = [th.linalg.vector_norm(param.float()) for _, _, param in module_parameters(network, exclude)]
    return float(th.linalg.vector_norm(th.stack(norms)).item()) if norms else 0.0


@th.no_grad()
def gradient_norm(parameters: Iterable[th.Tensor]) -> float | None:
    """L2 norm of the gradients (``.grad``) of ``parameters`` together; ``None`` when none has one."""
    norms = [th.linalg.vector_norm(param.grad.float()) for param in parameters if param.grad is not None]
    return float(th.linalg.vector_norm(th.stack(norms)).item()) if norms else None


def incoming_indices(layer: NeuronLayer, units: th.Tensor) -> th.Tensor:
    """Flat indices, in the producer's weight, of the incoming weights of ``units`` (whole rows)."""
    weight = layer.producer.weight
    columns = weight.shape[1]
    return (units.to(weight.device).unsqueeze(1) * columns + th.arange(columns, device=weight.device)).flatten()


@th.no_grad()
def recycle_units(layer: NeuronLayer, units: th.Tensor, optimizers: Sequence[th.optim.Optimizer] = ()) -> None:
    """ReDo's recycling of ``units`` of ``layer``: fresh incoming weights, zero outgoing weights, fresh optimizer state.

    The incoming weights (the producer's rows and bias entries) are drawn again from ``nn.Linear``'s default
    initialisation (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both), then multiplied by the producer's mask, so
    pruned positions stay exactly 0 and the mask is unchanged. The outgoing weights (the consumers' columns)
    are set to 0, so the network computes the same function until training moves them. The per-weight state of
    ``optimizers`` at all those positions is set back to a fresh optimizer's
    (:func:`~sb3_sparse.core.optim.reset_state`).

    :param layer: the neuron layer
    :param units: indices of its units to recycle
    :param optimizers: every optimizer that steps the producer's or the consumers' weights
    """
    if units.numel() == 0:
        return
    producer = layer.producer
    weight = producer.weight
    units = units.to(weight.device)
    bound = 1.0 / math.sqrt(weight.shape[1]) if weight.shape[1] > 0 else 0.0
    fresh = th.empty(units.numel(), weight.shape[1], device=weight.device, dtype=weight.dtype).uniform_(-bound, bound)
    if is_sparse(producer, "weight"):
        fresh *= get_mask(producer, "weight")[units].to(fresh.dtype)
    weight[units] = fresh
    for optimizer in optimizers:
        reset_state(optimizer, weight, incoming_indices(layer, units))
    if producer.bias is not None:
        producer.bias[units] = th.empty(units.numel(), device=weight.device, dtype=producer.bias.dtype).uniform_(-bound, bound)
        for optimizer in optimizers:
            reset_state(optimizer, producer.bias, units)
    for consumer in layer.consumers:
        consumer.weight[:, units] = 0.0
        rows = th.arange(consumer.weight.shape[0], device=weight.device).unsqueeze(1)
        columns = (rows * consumer.weight.shape[1] + units).flatten()
        for optimizer in optimizers:
            reset_state(optimizer, consumer.weight, columns)


class PlasticityProbe:
    """Records one training forward pass of a network's neuron layers (and one gradient), when armed.

    Nothing is hooked until :meth:`arm`. Armed, forward pre-hooks on the consumers (forward hooks on the
    ``nn.Sequential`` that a producer ends) record the units' activity in the first forward pass in
    training mode, and each removes itself once it has; an optimizer pre-step hook records the gradient norm
    of the first step. :meth:`metrics` and :meth:`dormant` read the recording; :meth:`reset` removes any hook
    left and forgets the recording. The hooks live on the network's modules, so a probe should be reset
    before the network is copied.
    """

    def __init__(self) -> None:
        self.network: nn.Module | None = None
        self.exclude: tuple[str, ...] = ()
        self.layers: list[NeuronLayer] = []
        #: the recorded activity of each layer, in the order the forward pass reached them
        self.activity: dict[NeuronLayer, th.Tensor] = {}
        #: the gradient norm of the network's parameters that the optimizer stepped first after arming
        self.grad_norm: float | None = None
        self._handles: list[RemovableHandle] = []
        self._finders: list[RemovableHandle] = []
        self._outputs: dict[NeuronLayer, weakref.ReferenceType[th.Tensor]] = {}
        self._optimizer_handle: RemovableHandle | None = None
        self._parameters: set[int] = set()

    @property
    def armed(self) -> bool:
        """Whether the probe was armed since it was last reset (its hooks may have recorded already)."""
        return self.network is not None

    @property
    def recorded(self) -> bool:
        """Whether a training forward pass was recorded since the probe was armed."""
        return bool(self.activity)

    def arm(self, network: nn.Module, optimizer: th.optim.Optimizer | None = None, exclude: Sequence[str] = ()) -> None:
        """Hook ``network`` (its neuron layers found now) and ``optimizer`` until they have recorded once.

        :param network: the network to measure
        :param optimizer: the optimizer that steps it (for the gradient norm); ``None``: no gradient norm
        :param exclude: names of sub-modules of ``network`` that are not part of it (left out of everything)
        """
        self.reset()
        self.network, self.exclude = network, tuple(exclude)
        self.layers = neuron_layers(network, self.exclude)
        for layer in self.layers:
            if layer.tail is None:
                self._handles.append(layer.consumers[0].register_forward_pre_hook(partial(self._record_input, layer)))
            else:
                layer.consumers.clear()  # found again in this forward pass
                self._handles.append(layer.tail.register_forward_hook(partial(self._record_output, layer)))
        if any(layer.tail is not None for layer in self.layers):
            for name, module in network.named_modules():
                if isinstance(module, nn.Linear) and not is_excluded(name, self.exclude):
                    self._finders.append(module.register_forward_pre_hook(self._find_consumers))
        if optimizer is not None:
            self._parameters = {id(param) for _, _, param in module_parameters(network, self.exclude)}
            self._optimizer_handle = optimizer.register_step_pre_hook(self._record_gradient)

    def reset(self) -> None:
        """Remove every hook left and forget the recording."""
        for handle in (*self._handles, *self._finders):
            handle.remove()
        if self._optimizer_handle is not None:
            self._optimizer_handle.remove()
        self._handles, self._finders, self._optimizer_handle = [], [], None
        self.network, self.layers, self.activity, self._outputs = None, [], {}, {}
        self.grad_norm, self._parameters = None, set()

    def _store(self, layer: NeuronLayer, value: Any) -> bool:
        if not isinstance(value, th.Tensor) or layer in self.activity:
            return False
        self.activity[layer] = value.detach().reshape(-1, value.shape[-1]).clone()
        return True

    def _record_input(self, layer: NeuronLayer, module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training and args and self._store(layer, args[0]):
            self._remove_own_hook(layer)

    def _record_output(self, layer: NeuronLayer, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if module.training and self._store(layer, output):
            self._outputs[layer] = weakref.ref(output)
            self._remove_own_hook(layer)

    def _remove_own_hook(self, layer: NeuronLayer) -> None:
        self._handles[self.layers.index(layer)].remove()

    def _find_consumers(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """A linear layer that reads the recorded output of an open layer's ``nn.Sequential`` is its consumer."""
        if not args:
            return
        alive = False
        for layer, reference in self._outputs.items():
            output = reference()
            alive = alive or output is not None
            if output is not None and args[0] is output and module not in layer.consumers:
                if isinstance(module, nn.Linear) and module.in_features == layer.producer.out_features:
                    layer.consumers.append(module)
        open_layers = sum(layer.tail is not None for layer in self.layers)
        if not alive and len(self._outputs) == open_layers and self._outputs:  # every open output recorded and freed
            for handle in self._finders:
                handle.remove()
            self._finders = []

    def _record_gradient(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.grad_norm is not None or self.network is None:
            return
        self.grad_norm = gradient_norm(
            param for group in optimizer.param_groups for param in group["params"] if id(param) in self._parameters
        )

    def hidden_layers(self) -> list[NeuronLayer]:
        """The recorded layers that have consumers (an open layer whose output no linear layer read is an output)."""
        return [layer for layer in self.activity if layer.consumers]

    def dormant(self, threshold: float) -> dict[NeuronLayer, th.Tensor]:
        """The dormant units (indices) of each recorded hidden layer."""
        return {layer: dormant_units(self.activity[layer], threshold) for layer in self.hidden_layers()}

    def metrics(self, threshold: float) -> dict[str, float]:
        """The plasticity metrics of the network now, from the recording (a metric that cannot be measured is
        left out: no hidden layer recorded, or no gradient).

        :param threshold: the dormant threshold tau
        :return: ``dormant_ratio``, ``feature_rank`` (the mean over the network's chains of the srank of each
            chain's last hidden layer), ``near_zero_fraction``, ``weight_norm``, ``grad_norm``
        """
        if self.network is None or next(module_parameters(self.network, self.exclude), None) is None:
            return {}  # nothing to measure (e.g. a features extractor that only flattens)
        metrics: dict[str, float] = {}
        hidden = self.hidden_layers()
        if hidden:
            dormant = sum(units.numel() for units in self.dormant(threshold).values())
            metrics["dormant_ratio"] = dormant / sum(layer.producer.out_features for layer in hidden)
            last = {layer.chain: layer for layer in hidden}  # the forward pass reached them in this order
            metrics["feature_rank"] = sum(feature_rank(self.activity[layer]) for layer in last.values()) / len(last)
        metrics["near_zero_fraction"] = near_zero_fraction(self.network, NEAR_ZERO_THRESHOLD, self.exclude)
        metrics["weight_norm"] = parameter_norm(self.network, self.exclude)
        if self.grad_norm is not None:
            metrics["grad_norm"] = self.grad_norm
        return metrics


def recycle_layers(dormant: Mapping[NeuronLayer, th.Tensor], optimizers: Sequence[th.optim.Optimizer] = ()) -> int:
    """Recycle (:func:`recycle_units`) the given units of each layer, e.g. :meth:`PlasticityProbe.dormant`'s.

    The deepest layer goes first, so a weight that is both an incoming weight of a recycled unit and an
    outgoing weight of a recycled unit of an earlier layer ends at 0 (the network's function is kept).

    :param dormant: the units of each neuron layer, in forward order
    :return: the number of units recycled
    """
    for layer, units in reversed(list(dormant.items())):
        recycle_units(layer, units, optimizers)
    return sum(units.numel() for units in dormant.values())
