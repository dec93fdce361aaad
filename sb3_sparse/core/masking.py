"""Masks that the module itself enforces, on any weight of any ``nn.Module``.

:func:`sparsify` gives a weight a 0/1 mask buffer (``<name>_mask``, saved in the ``state_dict``) and hooks
that belong to the module, so they travel with it through ``deepcopy``, pickling and ``torch.save``, and
do not depend on the optimizer:

- zeroing of the pruned weights before every forward pass, with one in-place multiply by the mask per weight:
  in the forward pass of a masked ``nn.Linear`` (whose class becomes :class:`MaskedLinear`), in a forward
  pre-hook of any other module. Only a multiply on every pass is airtight: writes through ``.data``
  (custom initialisations, shrink-and-perturb) and PyTorch's fused optimizers do not bump the weight's
  version counter, so no cheaper test sees them. The multiply goes through ``.data`` itself, so it does
  not bump the version either and never invalidates a tensor that autograd saved for a pending backward
  pass (where the weights were already exact zeros, it changes nothing). A layer whose compute backend
  masks inside its own product (:class:`sb3_sparse.core.backends.SparseLinear`) is left to that product;
- a ``state_dict`` pre-hook that zeroes them too, so saved weights, copies taken through the
  ``state_dict`` (SB3's ``get_parameters``) and exports hold exact zeros;
- a gradient hook that zeroes the gradient at pruned positions, so optimizer moments stay clean and
  no optimizer moves a pruned weight. It keeps the unmasked (dense) gradient when asked to, for
  gradient-based growth.

A target network updated by ``polyak_update`` from an online network written through ``.data`` may
hold non-zero pruned weights in memory until its own next forward pass or ``state_dict``; its masks (the
online ones, see the engine) zero them there.

Masks are saved in the weight's dtype, as SB3's own save/load tests expect of every ``state_dict``
entry; loading accepts any dtype (non-zero is active).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import torch as th
import torch.nn.functional as F
from torch import nn

#: Attribute of a module that lists its masked weights (name -> :class:`WeightState`).
SPARSE_ATTRIBUTE = "_sparse_weights"


class WeightState:
    """Per-weight bookkeeping kept on the module: gradients and the compute backend's caches."""

    def __init__(self) -> None:
        # Keep the dense gradient of each backward pass (for gradient growth)?
        self.track_dense_grad = False
        # The layer's place in its network ("input", "hidden", "output"; None: not known): SRigL never ablates a head.
        self.role: str | None = None
        self.last_dense_grad: th.Tensor | None = None
        # The dense gradient of the loss that the module's optimizer last stepped on.
        self.dense_grad: th.Tensor | None = None
        # The weight tensor that carries the gradient hook (tensor hooks are not kept by deepcopy or
        # pickling, so a copy, whose state starts empty, hooks its own weight on first use).
        self.hooked: th.Tensor | None = None
        # A compute backend's index structure of the mask (see core.backends), and the gradient it returned
        # already masked (the gradient hook passes exactly that tensor through without multiplying it again).
        self.csr_layout: Any = None
        self.csr_values: tuple[Any, th.Tensor] | None = None  # of a layer frozen for inference
        # The weight's and mask's (data pointer, version) when a layer frozen for inference last zeroed its pruned weights.
        self.zeroed: tuple[int, int, int, int] | None = None
        self.masked_grad: tuple[th.Tensor, int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Gradients and caches are transient: not worth pickling.
        return {
            "track_dense_grad": self.track_dense_grad,
            "role": self.role,
            "last_dense_grad": None,
            "dense_grad": None,
            "hooked": None,
            "csr_layout": None,
            "csr_values": None,
            "zeroed": None,
            "masked_grad": None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]  # fields added since the pickle was written start empty
        self.__dict__.update(state)

    def __deepcopy__(self, memo: dict[int, Any]) -> "WeightState":
        copy = WeightState()
        copy.track_dense_grad = self.track_dense_grad
        copy.role = self.role
        return copy


def mask_name(name: str) -> str:
    return f"{name}_mask"


def _weight_states(module: nn.Module) -> dict[str, WeightState]:
    return module.__dict__.get(SPARSE_ATTRIBUTE, {})


class _GradientMask:
    """Tensor hook on a masked weight: keep the dense gradient if asked, return the masked one."""

    def __init__(self, module: nn.Module, name: str):
        self.module = module
        self.name = name
        self.mask_name = mask_name(name)

    def __call__(self, grad: th.Tensor) -> th.Tensor:
        state = _weight_states(self.module)[self.name]
        masked, state.masked_grad = state.masked_grad, None
        if masked is not None and grad is masked[0] and grad._version == masked[1]:
            return grad  # one backend backward's own masked gradient, not summed with another
        if state.track_dense_grad:
            state.last_dense_grad = grad
        return grad * getattr(self.module, self.mask_name)


def zero_pruned(module: nn.Module, name: str) -> None:
    """Zero the pruned entries of ``module.<name>`` in place, without bumping its version counter.

    Runs before every forward pass: the parameter and the mask are read from the module's dictionaries
    directly (``sparsify`` registers them there), which is cheaper than ``nn.Module.__getattr__``.
    """
    module._parameters[name].data.mul_(module._buffers[mask_name(name)])  # type: ignore[union-attr, arg-type]


def hook_gradient(module: nn.Module, name: str, state: WeightState | None = None) -> None:
    """Give the current ``module.<name>`` tensor the gradient mask hook, once (a copy or a new tensor gets its own)."""
    weight = module._parameters[name]
    state = state or _weight_states(module)[name]
    if weight is not None and weight.requires_grad and state.hooked is not weight:
        weight.register_hook(_GradientMask(module, name))
        state.hooked = weight


def enforce_masks(module: nn.Module, except_weight: bool = False) -> None:
    """Before a forward pass of ``module``: zero its pruned weights and hook their gradients.

    :param except_weight: leave ``weight`` unzeroed (a product that masks it itself, or reads only its active entries)
    """
    for name, state in module.__dict__[SPARSE_ATTRIBUTE].items():
        if not (except_weight and name == "weight"):
            zero_pruned(module, name)
        hook_gradient(module, name, state)


class _MaskBeforeForward:
    """Forward pre-hook of a module with masked weights (other than :class:`MaskedLinear`): every pruned weight the
    pass reads is 0."""

    def __call__(self, module: nn.Module, *args: Any, **kwargs: Any) -> None:
        enforce_masks(module)


#: Attribute (in the module's ``__dict__``) of a linear layer whose output feeds a sparse layer, set by
#: :func:`sb3_sparse.core.backends.set_backend`: ``f(layer, input)`` says whether that layer's next product is sparse;
#: if so, the layer returns its output column-major, the layout sparse products read (:func:`column_major_output`).
COLUMN_MAJOR_ATTRIBUTE = "_column_major_output"


def column_major_output(module: nn.Module, input: th.Tensor) -> bool:
    """Whether ``module`` should return its output for ``input`` column-major (see :data:`COLUMN_MAJOR_ATTRIBUTE`)."""
    feeds_sparse_product = module.__dict__.get(COLUMN_MAJOR_ATTRIBUTE)
    return feeds_sparse_product is not None and feeds_sparse_product(module, input)


def linear(input: th.Tensor, weight: th.Tensor, bias: th.Tensor | None, column_major_result: bool = False) -> th.Tensor:
    """``F.linear``, computed as ``(weight @ input.T + bias).T`` (the result column-major) for a column-major 2-D
    ``input`` (what sparse products return, :mod:`sb3_sparse.core.backends`) or when ``column_major_result`` asks
    for it: the CPU product of a column-major input with a narrow weight took up to 10x the row-major time (an
    actor's 6 action means after a width-1024 layer: 1.2 ms instead of 0.14 ms, AMD EPYC, one thread), while the
    transposed form was as fast as the row-major one at every output width measured."""
    if input.dim() == 2 and (column_major_result or (input.stride(0) == 1 and not input.is_contiguous())):
        return transposed_linear(input, weight, bias)
    return F.linear(input, weight, bias)


def transposed_linear(input: th.Tensor, weight: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    """``input @ weight.T + bias`` for a 2-D ``input``, computed as ``(weight @ input.T + bias).T`` (the result
    column-major); ``weight`` may be a sparse CSR tensor."""
    if bias is None:
        return (weight @ input.t()).t()
    return th.addmm(bias.unsqueeze(1), weight, input.t()).t()


class DenseLinear(nn.Linear):
    """An ``nn.Linear`` with :func:`linear`'s product: the dense layers of a network whose sparse layers run on
    sparse products (an actor's output heads). :func:`sb3_sparse.core.backends.set_backend` swaps their class in
    place (same object, parameters and ``state_dict`` keys)."""

    def forward(self, input: th.Tensor) -> th.Tensor:
        return linear(input, self.weight, self.bias, column_major_output(self, input))


class MaskedLinear(DenseLinear):
    """A masked ``nn.Linear``: it zeroes its pruned weights in its own forward pass instead of a forward pre-hook,
    which keeps PyTorch's fast call path (no hooks) for the layers that most networks are made of.

    Not built directly: :func:`sparsify` swaps an ``nn.Linear``'s class for this one (same object, parameters and
    ``state_dict`` keys), as ``torch.nn.utils.parametrize`` does.
    """

    def forward(self, input: th.Tensor) -> th.Tensor:
        enforce_masks(self)
        return linear(input, self.weight, self.bias, column_major_output(self, input))


class _MaskBeforeStateDict:
    """``state_dict`` pre-hook of a module with masked weights: saved pruned weights are 0."""

    def __call__(self, module: nn.Module, *args: Any, **kwargs: Any) -> None:
        for name in _weight_states(module):
            zero_pruned(module, name)


class _BinarizeLoadedMasks:
    """``load_state_dict`` pre-hook: a loaded mask is 0/1 whatever the state dict holds (non-zero is active)."""

    def __call__(self, module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in _weight_states(module):
            key = prefix + mask_name(name)
            if key in state_dict:
                state_dict[key] = (state_dict[key] != 0).to(getattr(module, mask_name(name)).dtype)


def sparsify(module: nn.Module, name: str = "weight", mask: th.Tensor | None = None) -> None:
    """Give ``module.<name>`` a mask (all ones unless ``mask`` is given) that the module enforces.

    :param module: the module that owns the weight (``nn.Linear``, ``nn.Conv2d``, ``nn.GRU``, ...)
    :param name: the name of the weight parameter in ``module``
    :param mask: initial 0/1 mask of the weight's shape
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, nn.Parameter):
        raise ValueError(f"{type(module).__name__} has no parameter {name!r} to make sparse")
    states = _weight_states(module)
    if name in states:
        raise ValueError(f"{type(module).__name__}.{name} is already sparse")
    if not states:
        module.__dict__[SPARSE_ATTRIBUTE] = states
        if type(module) in (nn.Linear, DenseLinear):
            module.__class__ = MaskedLinear
        else:
            module.register_forward_pre_hook(_MaskBeforeForward())
        module.register_state_dict_pre_hook(_MaskBeforeStateDict())
        module._register_load_state_dict_pre_hook(_BinarizeLoadedMasks(), with_module=True)
    states[name] = WeightState()
    # The mask has the weight's dtype: multiplying by a float mask is several times faster than by a bool one.
    module.register_buffer(mask_name(name), th.ones_like(weight, requires_grad=False))
    if mask is not None:
        set_mask(module, name, mask)
    hook_gradient(module, name)


@th.no_grad()
def set_mask(module: nn.Module, name: str, mask: th.Tensor) -> None:
    """Replace the mask of ``module.<name>`` and zero the newly pruned weights."""
    getattr(module, mask_name(name)).copy_(mask)
    zero_pruned(module, name)


def get_mask(module: nn.Module, name: str = "weight") -> th.Tensor:
    """The 0/1 mask buffer of ``module.<name>`` (a view: writing to it changes the mask)."""
    return getattr(module, mask_name(name))


def is_sparse(module: nn.Module, name: str = "weight") -> bool:
    return name in _weight_states(module)


def weight_state(module: nn.Module, name: str = "weight") -> WeightState:
    return _weight_states(module)[name]


def is_excluded(name: str, exclude: Sequence[str]) -> bool:
    """Whether the sub-module ``name`` is, or is inside, one of the sub-modules named in ``exclude``."""
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in exclude)


def sparse_weights(root: nn.Module, prefix: str = "", exclude: Sequence[str] = ()) -> Iterator[tuple[str, nn.Module, str]]:
    """``(qualified name, owning module, weight name)`` of every masked weight below ``root``, in order.

    :param prefix: put before every qualified name
    :param exclude: names of sub-modules of ``root`` (and what they hold) to leave out
    """
    for module_name, module in root.named_modules():
        if exclude and is_excluded(module_name, exclude):
            continue
        qualified = ".".join(part for part in (prefix, module_name) if part)
        for name in _weight_states(module):
            yield (f"{qualified}.{name}" if qualified else name), module, name


def track_dense_gradients(root: nn.Module, enabled: bool, exclude: Sequence[str] = ()) -> None:
    """Keep (or stop keeping) the dense gradient of every masked weight below ``root`` (not under ``exclude``)."""
    for _, module, name in sparse_weights(root, exclude=exclude):
        state = weight_state(module, name)
        state.track_dense_grad = enabled
        if not enabled:
            state.last_dense_grad = state.dense_grad = None


def commit_dense_gradients(root: nn.Module, exclude: Sequence[str] = ()) -> None:
    """Keep the last backward pass's dense gradients as the ones to grow by (called before an optimizer step:
    a later backward through the same module for another loss, e.g. SAC's actor loss through the critic,
    does not count)."""
    for _, module, name in sparse_weights(root, exclude=exclude):
        state = weight_state(module, name)
        if state.track_dense_grad and state.last_dense_grad is not None:
            state.dense_grad = state.last_dense_grad
