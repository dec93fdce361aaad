"""Compute backends of masked linear layers: dense products on masked weights, or sparse CSR products.

Masked weights stay dense ``nn.Parameter`` tensors with a mask (:mod:`sb3_sparse.core.masking`), so
masks, optimizer state and ``state_dict`` are the same whatever computes the products:

- ``"masked"``: PyTorch's dense ``F.linear`` on the masked weight (pruned entries are exact zeros);
- ``"csr"``: the forward pass and the input gradient as sparse (CSR) x dense products of the active
  weights (on a CPU from batch 64 as weighted bags over the CSR structure, ``F.embedding_bag``, up to twice as
  fast as PyTorch's CSR kernel there), and the weight gradient only at active positions (``torch.sparse.sampled_addmm``),
  scattered into a dense gradient that is exactly 0 at pruned positions. The full dense weight
  gradient is computed only while the engine asks for it (just before a gradient-grown update);
- ``"condensed"``: for products without gradients (target networks, acting, deployed policies), each unit's
  active weights ``W[o, idx[o, k]]`` with their input indices (the CSR structure, constant fan-in under ``srigl``):
  ``y[:, o] = sum_k W[o, idx[o, k]] x[:, idx[o, k]]``, computed as weighted bags of the rows of ``x.T``
  (``F.embedding_bag``, :func:`bag_linear`) at every batch size, which never materialises the gather. Training
  products run as ``"csr"``'s. ``"csr"`` runs the same bags from batch 64, where they are faster than its kernel:
  ``"condensed"`` differs only below that batch (``benchmarks/crossover.py --condensed``);
- ``"auto"``: per layer and per call, ``"condensed"`` for products without gradients where it was measured
  faster, else ``"csr"`` where the layer's shape, density, batch and device make it faster (this machine's
  calibration, ``sb3-sparse calibrate``, else :data:`CONDENSED_CROSSOVER` and :data:`CROSSOVER`), ``"masked"``
  elsewhere.

A masked ``nn.Linear`` (a :class:`~sb3_sparse.core.masking.MaskedLinear`) with a backend other than ``"masked"``,
or frozen for inference, becomes a :class:`SparseLinear` (its class is swapped in place, as
``torch.nn.utils.parametrize`` does: same object, parameters, hooks and ``state_dict`` keys), so a model trained
with one backend loads and continues with the other. Only ``float32`` ``nn.Linear`` layers use CSR or condensed
products; other layers, ONNX export and tracing use ``"masked"``.
"""

import bisect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_sparse.core.crossover_cache import calibrated_crossover
from sb3_sparse.core.masking import (
    COLUMN_MAJOR_ATTRIBUTE,
    DenseLinear,
    MaskedLinear,
    column_major_output,
    enforce_masks,
    get_mask,
    is_sparse,
    linear,
    sparse_weights,
    transposed_linear,
    weight_state,
    zero_pruned,
)
from sb3_sparse.core.registry import Registry


def _take_csr_beta_notice() -> None:
    """PyTorch warns once per process that CSR tensors are in beta. The CSR products are used deliberately, on the
    layouts PyTorch supports, so the notice is not news to users; a warnings filter would not hold where warnings
    are recorded (``warnings.catch_warnings``, pytest), so the one notice is taken here, on import, and dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        th.sparse_csr_tensor(th.tensor([0, 1]), th.tensor([0]), th.tensor([1.0]), (1, 1))


_take_csr_beta_notice()

#: Attribute (in the module's ``__dict__``) holding the backend name of a :class:`SparseLinear`.
BACKEND_ATTRIBUTE = "_sparse_backend"

#: How a product is used, which decides where CSR pays off: ``"training"`` (forward and backward),
#: ``"inference"`` (no gradient; the active weights are gathered at every call because training may have
#: changed them) and ``"frozen"`` (no gradient, in a network frozen for inference: gathered once).
MODES = ("training", "inference", "frozen")

#: Measured crossover points of ``"auto"``, per device type:
#: ``mode -> {batch at least: [(width at least, highest density at which CSR is faster), ...]}``.
#: A layer uses CSR when its density is at most the entry of the largest batch and width it reaches. The
#: width is the layer's larger dimension: a narrow input layer of a wide network counts as wide, because
#: its CSR output comes in the layout the next layer's CSR kernels run fastest on (measured on SAC steps).
#: Training and inference at batch 64 and 256: single layers on one thread of the 2-vCPU AMD EPYC VM where the
#: package is now developed (``sb3-sparse calibrate``, after the weighted bags, :data:`BAG_MIN_BATCH`: CSR took
#: 0.83x the masked time or less at each point kept), checked on whole SAC training steps (``python -m
#: benchmarks.crossover_steps``, ``docs/benchmarks/crossover-steps``; these points / the previous ones, which kept
#: 256-wide training layers and densities above 0.15 masked: Pendulum-v1 256-256 RigL 90% ERK 0.87x, HalfCheetah-v5
#: RigL 90% ERK 0.88x, RLx2 0.89x, SET 80% at width 1024 0.65x, at width 256 0.95x).
#: Batch-1 training and inference entries follow whole SAC actors on the Xeon VM measured before, after the masked
#: backend began zeroing the pruned weights before every product (a multiply that costs about as much as a batch-1
#: product): CSR over masked at width 512 (density 0.05 / 0.02): 0.89x / 0.73x; width 1024 (0.1 / 0.05 / 0.02):
#: 0.94x / 0.80x / 0.61x (CPU time, medians of 15 interleaved rounds); CSR is kept where it wins by 10%. Frozen
#: layers zero their pruned weights once (:func:`zero_frozen`), so their entries come from the AMD VM's calibration
#: against that cheaper masked product (batch 1: width 1024 0.74x at density 0.02, 0.95x at 0.05; width 2048 0.61x
#: at 0.1, 0.85x at 0.15; batch 64 / 256: at most 0.89x / 0.83x up to density 0.1 / 0.2 at width 256 and 0.3 from
#: width 512).
#: Devices without an entry (GPUs: not measured) always use the masked backend under ``"auto"``.
#: On a CPU with a calibration of its own (``sb3-sparse calibrate``, :mod:`sb3_sparse.core.crossover_cache`),
#: ``"auto"`` reads that instead.
CROSSOVER: dict[str, dict[str, dict[int, list[tuple[int, float]]]]] = {
    "cpu": {
        "training": {
            1: [(0, 0.0), (2048, 0.02)],
            64: [(0, 0.0), (512, 0.15), (1024, 0.2)],
            256: [(0, 0.0), (256, 0.2)],
        },
        "inference": {
            1: [(0, 0.0), (512, 0.02), (1024, 0.05)],
            64: [(0, 0.0), (512, 0.2), (1024, 0.3)],
            256: [(0, 0.0), (256, 0.2), (512, 0.3)],
        },
        "frozen": {
            1: [(0, 0.0), (1024, 0.02), (2048, 0.1)],
            64: [(0, 0.0), (256, 0.1), (512, 0.3)],
            256: [(0, 0.0), (128, 0.12), (256, 0.2), (512, 0.3)],
        },
    },
}

#: From this batch size on, CSR products on a CPU run as weighted bags (:func:`csr_linear`) instead of PyTorch's CSR
#: kernel: time / CSR kernel's time of one product with bias (``python -m benchmarks.bags``, one thread, AMD EPYC,
#: densities 0.02-0.2) at batch 64 / 256: width 1024 0.44-0.58 / 0.44-0.57, width 256 0.63-1.14 / 0.58-0.83; at
#: batch 32 the bags won at width 1024 only (0.59-0.82; width 256: 0.96-1.45), at batch 1-16 nowhere (1.2-4.0).
BAG_MIN_BATCH = 64

#: Where ``"auto"`` computes a product without gradients condensed, per device type and mode, in the layout of
#: :data:`CROSSOVER` (``benchmarks/crossover.py --condensed``, one thread of a 2-vCPU AMD EPYC VM; see
#: ``docs/benchmarks/throughput/condensed``). Time / masked time at batch 256, density 0.1 / 0.02, constant
#: fan-in: width 1024 0.09 / 0.02, width 256 0.23 / 0.13; at batch 1 it lost to the masked or the CSR product. Since
#: ``"csr"`` runs the same bags from batch 64 (:data:`BAG_MIN_BATCH`), where :data:`CROSSOVER` also picks CSR, the
#: two give the same computation there. Training never uses it. On a CPU with a calibration of its own that measured
#: products without gradients, ``"auto"`` reads that instead.
CONDENSED_CROSSOVER: dict[str, dict[str, dict[int, list[tuple[int, float]]]]] = {
    "cpu": {"inference": {256: [(0, 0.0), (256, 0.1)]}},
}

#: Attribute (in the module's ``__dict__``) marking a layer frozen for inference (its CSR values are cached, its pruned
#: weights zeroed once: :func:`zero_frozen`).
FROZEN_ATTRIBUTE = "_sparse_frozen"


@dataclass
class CsrLayout:
    """The CSR index structure of a mask and of its transpose (rebuilt only when the mask changes)."""

    stamp: tuple[int, int]
    flat: th.Tensor  # flat indices of the active entries, row-major (CSR order), int64 for scattering
    gather: th.Tensor  # the same as int32 (the fastest gather index)
    crow: th.Tensor
    col: th.Tensor
    order_t: th.Tensor  # the positions (in CSR order) of the transpose's entries in its CSR order (column-major)
    crow_t: th.Tensor
    col_t: th.Tensor
    density: float
    #: the backend's choice per (mode, batch), kept until the mask changes
    choices: dict[tuple[str, int], str] = field(default_factory=dict)

    @classmethod
    def of(cls, mask: th.Tensor) -> "CsrLayout":
        n_out, n_in = mask.shape
        flat = mask.view(-1).nonzero().squeeze(1)
        rows, cols = flat // n_in, flat % n_in
        order = th.argsort(cols * n_out + rows)
        return cls(
            stamp=(mask.data_ptr(), mask._version),
            flat=flat,
            gather=flat.to(th.int32),
            crow=_row_pointers(rows, n_out),
            col=cols.to(th.int32),
            order_t=order.to(th.int32),
            crow_t=_row_pointers(cols[order], n_in),
            col_t=rows[order].to(th.int32),
            density=flat.numel() / max(1, mask.numel()),
        )


def _row_pointers(rows: th.Tensor, n_rows: int) -> th.Tensor:
    counts = th.bincount(rows, minlength=n_rows)
    return th.cat([counts.new_zeros(1), counts.cumsum(0)]).to(th.int32)


def csr_layout(module: nn.Module) -> CsrLayout:
    """The CSR layout of ``module.weight``'s mask, cached on the module until the mask changes."""
    mask = get_mask(module)
    state = weight_state(module)
    layout: CsrLayout | None = state.csr_layout
    if layout is None or layout.stamp != (mask.data_ptr(), mask._version):
        layout = state.csr_layout = CsrLayout.of(mask)
    return layout


def csr_weight(module: nn.Module, layout: CsrLayout | None = None) -> th.Tensor:
    """``module.weight`` as a CSR tensor of its active entries (``layout``: its mask's, where the caller has it).

    Gathered at every call: fused optimizers and writes through ``.data`` change weights without bumping
    their version counter, so the values cannot be cached safely (the index structure can: masks are written
    with ``copy_``, which does). A layer frozen for inference (:func:`set_backend` with ``frozen=True``)
    keeps its values until its weight or mask is replaced.
    """
    layout = csr_layout(module) if layout is None else layout
    weight: th.Tensor = module._parameters["weight"]  # type: ignore[assignment]
    if module.__dict__.get(FROZEN_ATTRIBUTE):
        state = weight_state(module)
        stamp = frozen_stamp(module)
        if state.csr_values is None or state.csr_values[0] != stamp:
            state.csr_values = (stamp, _gather_csr(weight, layout))
        return state.csr_values[1]
    return _gather_csr(weight, layout)


def _gather_csr(weight: th.Tensor, layout: CsrLayout) -> th.Tensor:
    with th.no_grad():
        values = weight.view(-1).index_select(0, layout.gather)
        return th.sparse_csr_tensor(layout.crow, layout.col, values, weight.shape, check_invariants=False)


def transposed_csr(matrix: th.Tensor, layout: CsrLayout) -> th.Tensor:
    """The transpose of ``matrix`` (a CSR weight of ``layout``) as a CSR tensor: its values reordered, not gathered
    again from the weight (a gather in column order strides through the whole weight: 6x slower, measured)."""
    n_out, n_in = matrix.shape
    values = matrix.values().index_select(0, layout.order_t)
    return th.sparse_csr_tensor(layout.crow_t, layout.col_t, values, (n_in, n_out), check_invariants=False)


class _CsrLinear(th.autograd.Function):
    """``x @ W.T + b`` with a CSR ``W``; gradients: CSR input gradient, weight gradient at active positions."""

    @staticmethod
    def forward(
        ctx: Any, x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None, module: nn.Module, layout: CsrLayout
    ) -> th.Tensor:
        x = column_major(x)
        matrix = csr_weight(module, layout)
        ctx.save_for_backward(x, weight)
        ctx.module = module
        ctx.matrix = matrix
        ctx.layout = layout  # the matrix's: the backward pass reads the weights the forward pass used
        ctx.has_bias = bias is not None
        return csr_linear(x, matrix, bias)

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> tuple[th.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_output = column_major(grad_output)
        module = ctx.module
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = csr_linear(grad_output, transposed_csr(ctx.matrix, ctx.layout), None)
        if ctx.needs_input_grad[1]:
            state = weight_state(module)
            if state.track_dense_grad:  # gradient growth needs the dense gradient: the mask hook masks it
                grad_weight = grad_output.t() @ x
            else:
                active = th.sparse.sampled_addmm(ctx.matrix, grad_output.t(), x, beta=0.0)
                grad_weight = th.zeros_like(weight)
                grad_weight.view(-1).index_copy_(0, ctx.layout.flat, active.values())
                state.masked_grad = (grad_weight, grad_weight._version)  # the mask hook need not multiply it
        if ctx.needs_input_grad[2] and ctx.has_bias:
            grad_bias = grad_output.sum(0)
        return grad_x, grad_weight, grad_bias, None, None


def column_major(x: th.Tensor) -> th.Tensor:
    """``x`` (2-D) laid out column by column: the CSR kernels run 15-20% faster on it than on rows (measured),
    and their own outputs come out that way, so only the first of a chain of sparse layers copies."""
    return x if x.stride(0) == 1 else x.t().contiguous().t()


def bag_linear(x: th.Tensor, matrix: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    """``x @ matrix.T + bias`` for a 2-D column-major ``x`` and a CSR ``matrix``, each output unit as the bag of the
    rows of ``x.T`` at its row's columns, weighted by its values (``F.embedding_bag`` over the CSR structure); the
    result column-major. The bags read rows of ``x.T``: on a row-major ``x`` they would stride through memory."""
    out = F.embedding_bag(
        matrix.col_indices(),
        x.detach().t(),  # its gradient is the caller's: a tensor that asks for one takes a slower kernel
        matrix.crow_indices(),
        per_sample_weights=matrix.values(),
        mode="sum",
        include_last_offset=True,
    )
    return (out if bias is None else out.add_(bias.unsqueeze(1))).t()


def csr_linear(x: th.Tensor, matrix: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    """``x @ matrix.T + bias`` for a 2-D column-major ``x`` and a CSR ``matrix``, as ``matrix @ x.T`` (the result
    column-major): on a CPU from :data:`BAG_MIN_BATCH` rows on as weighted bags (:func:`bag_linear`), else with
    PyTorch's CSR kernel."""
    if x.shape[0] >= BAG_MIN_BATCH and x.device.type == "cpu":
        return bag_linear(x, matrix, bias)
    return transposed_linear(x, matrix, bias)


def crossover_density(device: str, mode: str, batch: int, width: int, kind: str = "csr") -> float:
    """Highest density at which ``"auto"`` picks CSR (``kind="csr"``) or condensed (``"condensed"``) products for a
    layer whose larger dimension is ``width`` (0: never); the lowest for condensed ones with ``"condensed_lowest"``.

    On the CPU, this machine's calibration where there is one (:mod:`sb3_sparse.core.crossover_cache`), else
    :data:`CROSSOVER` (:data:`CONDENSED_CROSSOVER`, condensed from the lowest density on).

    :param mode: one of :data:`MODES`
    """
    calibrated = calibrated_crossover(kind) if device == "cpu" else None
    builtin = {"csr": CROSSOVER, "condensed": CONDENSED_CROSSOVER}.get(kind, {})
    table = calibrated[mode] if calibrated and mode in calibrated else builtin.get(device, {}).get(mode, {})
    return _highest(_at_batch(table, batch), width)


def _at_batch(table: dict[int, list[tuple[int, float]]], batch: int) -> list[tuple[int, float]]:
    """The entries of the largest batch of ``table`` that ``batch`` reaches (none: ``[]``)."""
    batches = sorted(table)
    index = bisect.bisect_right(batches, batch) - 1
    return table[batches[index]] if index >= 0 else []


def _highest(sizes: list[tuple[int, float]], width: int) -> float:
    """The density of the largest width entry that ``width`` reaches (0: none)."""
    position = bisect.bisect_right([size for size, _ in sizes], width) - 1
    return sizes[position][1] if position >= 0 else 0.0


class SparseLinear(MaskedLinear):
    """A masked ``nn.Linear`` whose products run on its backend (see the module docstring).

    Not built directly: :func:`set_backend` turns masked ``nn.Linear`` layers into this class. Its products
    read no pruned weight: the masked product zeroes them first, the CSR product holds only the active ones.
    """

    def forward(self, input: th.Tensor) -> th.Tensor:
        enforce_masks(self, except_weight=True)  # the weight is left to the product (a CSR product needs no zeroing)
        weight, bias = self.weight, self.bias
        mode = product_mode(self, input.requires_grad)
        batch = input.numel() // self.in_features if input.dim() else 1
        backend, layout = _layer_choice(self, batch, mode)
        if layout is None:  # "masked"
            if mode == "frozen":
                zero_frozen(self)
            else:
                zero_pruned(self, "weight")
            return linear(input, weight, bias, column_major_output(self, input))
        x = input.reshape(-1, self.in_features)
        if mode == "training":  # "csr" and "condensed"
            out = _CsrLinear.apply(x, weight, bias, self, layout)
        else:
            product = bag_linear if backend == "condensed" else csr_linear
            with th.no_grad():
                out = product(column_major(x), csr_weight(self, layout), bias)
        return out.reshape(*input.shape[:-1], self.out_features)


def product_mode(module: nn.Module, input_requires_grad: bool) -> str:
    """How the next product of ``module`` is used (one of :data:`MODES`), given whether its input requires a gradient."""
    if th.is_grad_enabled() and (input_requires_grad or module._parameters["weight"].requires_grad):  # type: ignore[union-attr]
        return "training"
    return "frozen" if module.__dict__.get(FROZEN_ATTRIBUTE) else "inference"


def frozen_stamp(module: nn.Module) -> tuple[int, int, int, int]:
    """What a frozen layer's caches are valid for: its weight's and mask's data pointers and versions (replacing
    either, or writing it in a way that bumps its version, changes it; a write through ``.data`` does not)."""
    weight, mask = module._parameters["weight"], get_mask(module)
    assert weight is not None
    return weight.data_ptr(), weight._version, mask.data_ptr(), mask._version


def zero_frozen(module: nn.Module) -> None:
    """Zero the pruned weights of a layer frozen for inference where its weight or mask changed since it last did.

    A frozen layer's masked product skips the multiply that a training network needs before every product (at batch
    1 it costs about as much as the product): as for its cached CSR values (:func:`csr_weight`), replacing or writing
    the weight in a way that bumps its version (``load_state_dict``, an in-place operation) is seen, a write through
    ``.data`` or a fused optimizer's step after its first product is not.
    """
    state = weight_state(module)
    stamp = frozen_stamp(module)
    if state.zeroed != stamp:
        zero_pruned(module, "weight")  # through .data: the version, and so the stamp, stays
        state.zeroed = stamp


def layer_backend(module: nn.Module, batch: int, mode: str) -> str:
    """The backend that computes the next product of ``module`` (``"masked"``, ``"csr"`` or ``"condensed"``).

    Runs before every product of a :class:`SparseLinear`, so the choice is cached with the layer's CSR layout
    (a new mask, device or dtype brings a new layout) per ``(mode, batch)``. ONNX export, tracing and
    ``torch.compile`` always get the masked (dense) product.

    :param mode: how the product is used, one of :data:`MODES`
    """
    return _layer_choice(module, batch, mode)[0]


def _layer_choice(module: nn.Module, batch: int, mode: str) -> tuple[str, CsrLayout | None]:
    """:func:`layer_backend`'s choice, with the CSR layout that a sparse product runs on (``None`` for ``"masked"``)."""
    backend = module.__dict__.get(BACKEND_ATTRIBUTE, "masked")
    if backend == "masked" or th.jit.is_tracing() or th.compiler.is_compiling():
        return "masked", None
    layout = csr_layout(module)
    choice = layout.choices.get((mode, batch))
    if choice is None:
        choice = layout.choices[(mode, batch)] = _choose(module, backend, batch, mode, layout)
    return choice, None if choice == "masked" else layout


def auto_backend(weight: th.Tensor, density: float, batch: int, mode: str) -> str:
    """Per layer and batch, condensed or CSR where measured faster (:func:`crossover_density`), masked elsewhere."""
    # a layer at 90% sparsity counts as density 0.1 although rounding its active count may move it a little (in a
    # small layer, by up to 1%: 51 of 32 x 32 weights is 0.0498)
    below, above = density * (1 - 1e-4), density * (1 + 1e-2)
    device, width = weight.device.type, max(weight.shape)
    lowest = crossover_density(device, mode, batch, width, "condensed_lowest")
    if lowest <= above and below <= crossover_density(device, mode, batch, width, "condensed"):
        return "condensed"
    return "csr" if below <= crossover_density(device, mode, batch, width) else "masked"


def masked_backend(weight: th.Tensor, density: float, batch: int, mode: str) -> str:
    """Dense products on the masked weights."""
    return "masked"


def csr_backend(weight: th.Tensor, density: float, batch: int, mode: str) -> str:
    """Sparse CSR products of the active weights."""
    return "csr"


def condensed_backend(weight: th.Tensor, density: float, batch: int, mode: str) -> str:
    """Condensed products (each unit's active weights) without gradients, CSR products in training."""
    return "condensed"


#: The backend registry: name -> f(weight, density, batch, mode) -> the product that computes the layer's next
#: call, ``"masked"``, ``"csr"`` or ``"condensed"`` (asked once per layer, mask and ``(mode, batch)``; ``mode`` is
#: one of :data:`MODES`).
BACKENDS: Registry[Callable[[th.Tensor, float, int, str], str]] = Registry(
    "backend", {"auto": auto_backend, "masked": masked_backend, "csr": csr_backend, "condensed": condensed_backend}
)


def _choose(module: nn.Module, backend: str, batch: int, mode: str, layout: CsrLayout) -> str:
    weight = getattr(module, "weight", None)
    if not isinstance(module, SparseLinear) or weight is None or weight.dtype != th.float32:
        return "masked"
    return BACKENDS[backend](weight, layout.density, batch, mode)


def set_backend(root: nn.Module, backend: str, frozen: bool = False) -> None:
    """Compute every masked ``nn.Linear`` weight below ``root`` with ``backend`` (a name in :data:`BACKENDS`).

    Layers that are not exactly ``nn.Linear`` (convolutions, subclasses) keep the masked backend.
    The dense ``nn.Linear`` layers below ``root`` become :class:`~sb3_sparse.core.masking.DenseLinear` (back to
    ``nn.Linear`` with ``"masked"``): they may read the column-major outputs of sparse products.

    :param frozen: the network is only used for inference from now on (a deployed policy): its active
        weights are gathered into CSR form once, and its masked products zero the pruned weights once
        (:func:`zero_frozen`), instead of at every call. Weights written by a fused optimizer or through
        ``.data`` after the first product would then go unnoticed: do not train a frozen network.
    """
    BACKENDS.check(backend)
    narrowest = narrowest_sparse_width() if backend == "auto" else 0
    for _, module, name in sparse_weights(root):
        if name != "weight" or type(module) not in (MaskedLinear, SparseLinear):
            continue
        layout = weight_state(module).csr_layout
        if layout is not None:
            layout.choices.clear()  # chosen by the previous backend
        if backend == "masked" and not frozen:
            module.__class__ = MaskedLinear
            module.__dict__.pop(BACKEND_ATTRIBUTE, None)
            module.__dict__.pop(FROZEN_ATTRIBUTE, None)
        elif backend == "auto" and not frozen and max(get_mask(module).shape) < narrowest:
            # "auto" would pick the masked product at every call: the masked layer's calls are faster
            module.__class__ = MaskedLinear
            module.__dict__[BACKEND_ATTRIBUTE] = backend
            module.__dict__.pop(FROZEN_ATTRIBUTE, None)
        else:
            module.__class__ = SparseLinear
            module.__dict__[BACKEND_ATTRIBUTE] = backend
            module.__dict__[FROZEN_ATTRIBUTE] = frozen
    # the dense layers read what the sparse products return (column-major) with the product made for it
    dense_class = nn.Linear if backend == "masked" else DenseLinear
    for module in root.modules():
        if type(module) in (nn.Linear, DenseLinear):
            module.__class__ = dense_class
    mark_column_major_producers(root)


#: Modules that keep a tensor's layout and mix no features (what may stand between a layer and the sparse one it feeds).
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity)


class FeedsSparseProduct:
    """The mark of a layer whose output feeds ``consumer`` (a :class:`SparseLinear`): true for an input whose product
    in ``consumer`` will be sparse. Only then is the column-major output worth it: a dense product of a column-major
    input is slower (SET 50% at width 256, its products dense, took 1.05x the time with column-major hand-overs)."""

    def __init__(self, consumer: nn.Module):
        self.consumer = consumer

    def __call__(self, producer: nn.Module, input: th.Tensor) -> bool:
        if input.dim() != 2:
            return False
        weight = producer._parameters["weight"]
        mode = product_mode(self.consumer, input.requires_grad or (weight is not None and weight.requires_grad))
        return _layer_choice(self.consumer, input.shape[0], mode)[1] is not None


def mark_column_major_producers(root: nn.Module) -> None:
    """Have each linear layer of an ``nn.Sequential`` below ``root`` whose output feeds a :class:`SparseLinear`
    (through elementwise activations) return it column-major where that layer's product will be sparse, the layout
    sparse products read (:func:`column_major`, :class:`FeedsSparseProduct`): the sparse layer then copies nothing,
    forward or backward, and no elementwise pass mixes layouts. Whole SAC training steps at width 256 and batch 256,
    against the row-major hand-over (``python -m benchmarks.crossover_steps --against-row-major``, one thread of the AMD
    EPYC VM, idle): RigL 90% ERK (dense input layers) 0.77x the time on Pendulum-v1 and 0.76x on HalfCheetah-v5, RLx2
    0.76x; SET 80% (sparse input layers, already CSR) the same."""
    for sequential in root.modules():
        if not isinstance(sequential, nn.Sequential):
            continue
        layers = list(sequential)
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Linear):
                continue
            following = next((later for later in layers[index + 1 :] if not isinstance(later, ELEMENTWISE)), None)
            if type(layer) in (DenseLinear, MaskedLinear, SparseLinear) and type(following) is SparseLinear:
                layer.__dict__[COLUMN_MAJOR_ATTRIBUTE] = FeedsSparseProduct(following)
            else:
                layer.__dict__.pop(COLUMN_MAJOR_ATTRIBUTE, None)


def narrowest_sparse_width() -> int:
    """The narrowest layer (its larger dimension) for which ``"auto"`` can pick a sparse product in some use, at some
    batch, on some device: the smallest width with a non-zero density in :data:`CROSSOVER`,
    :data:`CONDENSED_CROSSOVER` and this machine's calibration."""
    calibrated = [calibrated_crossover(kind) or {} for kind in ("csr", "condensed")]  # the highest densities
    tables = [*CROSSOVER.values(), *CONDENSED_CROSSOVER.values(), *calibrated]
    widths = [
        width
        for table in tables
        for batches in table.values()
        for sizes in batches.values()
        for width, density in sizes
        if density > 0
    ]
    return min(widths, default=sys.maxsize)


def get_backend(module: nn.Module) -> str:
    """The backend setting of a layer (``"masked"`` for a layer that is not sparse or not an ``nn.Linear``)."""
    if not is_sparse(module):
        return "masked"
    return str(module.__dict__.get(BACKEND_ATTRIBUTE, "masked"))
