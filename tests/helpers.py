"""Helpers shared by several test files (pytest puts this folder on ``sys.path``)."""

import torch as th

from sb3_sparse.core.update import init_mask


def distinct_layer(n_out: int, n_in: int, n_active: int, seed: int) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """(weight, mask, dense gradient): distinct non-zero magnitudes at the active positions, 0 elsewhere."""
    th.manual_seed(seed)
    numel = n_out * n_in
    mask = init_mask(th.empty(n_out, n_in), n_active, "random")
    signs = th.randint(0, 2, (n_out, n_in)).float().mul(2.0).sub(1.0)
    weight = (th.randperm(numel).float().add(1.0).view(n_out, n_in) / numel) * signs * mask
    dense_grad = th.randperm(numel).float().add(1.0).view(n_out, n_in) * signs
    return weight, mask, dense_grad
