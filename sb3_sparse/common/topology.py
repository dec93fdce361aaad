"""Drop-and-grow topology update of one masked layer."""

import torch as th

from sb3_sparse.common.config import GROW_METHODS, check_choice
from sb3_sparse.common.layers import MaskedLinear


@th.no_grad()
def reset_optimizer_state(optimizer: th.optim.Optimizer, param: th.Tensor, flat_index: th.Tensor) -> None:
    """Zero the per-weight optimizer state (e.g. Adam's ``exp_avg``, ``exp_avg_sq``) at ``flat_index``."""
    state = optimizer.state.get(param, {})
    for value in state.values():
        if isinstance(value, th.Tensor) and value.shape == param.shape:
            value.view(-1)[flat_index] = 0


@th.no_grad()
def rewire_layer(
    layer: MaskedLinear,
    drop_fraction: float,
    grow_method: str,
    optimizer: th.optim.Optimizer | None = None,
) -> int:
    """Drop the smallest active weights and grow as many new connections.

    ``k = floor(drop_fraction * n_active)`` active weights with the smallest magnitude are pruned,
    and ``k`` positions that were inactive before the update are activated: chosen at random
    (``"random"``, SET) or with the largest dense gradient magnitude (``"gradient"``, RigL; uses
    ``MaskedLinear.dense_grad``). Grown weights start at exactly 0 and their optimizer state
    is reset; the number of active weights is unchanged.

    :return: the number of connections moved (``k``)
    """
    check_choice("grow_method", grow_method, GROW_METHODS)
    if grow_method == "none":
        return 0
    mask = layer.mask.view(-1)
    weight = layer.weight.view(-1)
    active = mask.nonzero().squeeze(1)
    inactive = (mask == 0).nonzero().squeeze(1)
    n_swap = min(int(drop_fraction * active.numel()), inactive.numel())
    if n_swap <= 0:
        return 0
    dropped = active[th.topk(weight[active].abs(), n_swap, largest=False, sorted=False).indices]
    if grow_method == "random":
        grown = inactive[th.randperm(inactive.numel(), device=mask.device)[:n_swap]]
    else:
        if layer.dense_grad is None:
            raise RuntimeError("gradient growth needs a dense gradient: no optimizer step was captured for this layer")
        scores = layer.dense_grad.view(-1)[inactive]
        grown = inactive[th.topk(scores, n_swap, sorted=False).indices]
    mask[dropped] = 0.0
    mask[grown] = 1.0
    weight[dropped] = 0.0
    weight[grown] = 0.0
    if optimizer is not None:
        reset_optimizer_state(optimizer, layer.weight, grown)
    return n_swap
