"""Masked linear layer: an ``nn.Linear`` with a persistent 0/1 connectivity mask."""

import torch as th
from torch import nn

from sb3_sparse.common.config import MASK_INITS, check_choice


class MaskedLinear(nn.Linear):
    """``nn.Linear`` whose pruned weights (``mask == False``) are exactly 0.

    The forward pass is the plain dense one: pruned weights are kept at 0 by :meth:`apply_mask`,
    which the sparse policies call after every optimizer step, so the backward pass also yields
    the dense gradient that RigL growth needs, at no extra cost.
    The mask is a registered buffer of 0.0 / 1.0 in the weight's dtype (multiplying by a float mask
    is several times faster than by a boolean one), saved and loaded with the ``state_dict``.
    """

    mask: th.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: th.device | str | None = None,
        dtype: th.dtype | None = None,
    ):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.register_buffer("mask", th.ones_like(self.weight))
        # |dL/dW| of the last optimizer step (set by the policy's pre-step hook when tracked).
        self.track_dense_grad = False
        self.dense_grad: th.Tensor | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "MaskedLinear":
        """A masked copy of ``linear`` (same initial weights, all connections active)."""
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        layer.load_state_dict(linear.state_dict(), strict=False)
        return layer

    @property
    def n_active(self) -> int:
        """Number of active (unpruned) weights."""
        return int(self.mask.sum().item())

    @property
    def density(self) -> float:
        return self.n_active / self.mask.numel()

    @th.no_grad()
    def apply_mask(self) -> None:
        """Set the pruned weights to exactly 0."""
        self.weight.mul_(self.mask)

    @th.no_grad()
    def init_mask(self, n_active: int, method: str = "random") -> None:
        """Keep ``n_active`` weights: random positions, or the largest of the current weights."""
        check_choice("mask_init", method, MASK_INITS)
        numel = self.mask.numel()
        if not 0 <= n_active <= numel:
            raise ValueError(f"n_active={n_active} is outside [0, {numel}] for a layer of shape {tuple(self.weight.shape)}")
        if method == "random":
            keep = th.randperm(numel, device=self.weight.device)[:n_active]
        else:
            keep = th.topk(self.weight.abs().flatten(), n_active, sorted=False).indices
        mask = th.zeros(numel, dtype=self.mask.dtype, device=self.weight.device)
        mask[keep] = 1.0
        self.mask.copy_(mask.view_as(self.mask))
        self.apply_mask()

    @th.no_grad()
    def capture_dense_grad(self) -> None:
        """Store ``|dL/dW|`` of the current gradient (called before the optimizer step)."""
        grad = self.weight.grad
        if grad is None:
            return
        if self.dense_grad is None or self.dense_grad.shape != grad.shape:
            self.dense_grad = th.empty_like(grad)
        th.abs(grad, out=self.dense_grad)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:.3f}"
