"""The one mask update that every regime uses: reach a target active count, swapping some weights."""

import torch as th

from sb3_sparse.core.scores import SCORES


@th.no_grad()
def update_mask(
    weight: th.Tensor,
    mask: th.Tensor,
    n_target: int,
    n_swap: int,
    drop_score: str,
    grow_score: str | None,
    dense_grad: th.Tensor | None = None,
) -> tuple[th.Tensor, th.Tensor]:
    """A new mask with exactly ``n_target`` active entries.

    Drops ``n_swap + max(0, active - n_target)`` active entries with the lowest drop score and grows
    ``n_swap + max(0, n_target - active)`` entries that were inactive before the update with the
    highest grow score (so the count moves to ``n_target`` while ``n_swap`` connections are exchanged).
    The weight and mask are changed in place: dropped and grown weights are set to exactly 0.
    Without a grow score (``grow_score=None``) nothing is grown: the count only goes down, to
    ``min(n_target, active)``.

    :return: flat indices of the dropped and of the grown entries
    """
    flat_mask = mask.view(-1)
    flat_weight = weight.view(-1)
    active = flat_mask.nonzero().squeeze(1)
    inactive = (flat_mask == 0).nonzero().squeeze(1)
    n_active = active.numel()
    n_target = max(0, min(n_target, flat_mask.numel()))
    if grow_score is None:
        n_swap = 0
    n_grow = min(n_swap + max(0, n_target - n_active), inactive.numel())
    n_drop = n_active + n_grow - n_target
    if n_drop < 0 or n_drop > n_active:  # not enough inactive positions to swap that many
        n_drop = max(0, min(n_drop, n_active))
        n_grow = n_target - n_active + n_drop
    dropped = active[:0]
    grown = inactive[:0]
    if n_drop > 0:
        scores = SCORES[drop_score](weight, mask, dense_grad).view(-1)[active]
        dropped = active[th.topk(scores, n_drop, largest=False, sorted=False).indices]
    if n_grow > 0 and grow_score is not None:
        scores = SCORES[grow_score](weight, mask, dense_grad).view(-1)[inactive]
        grown = inactive[th.topk(scores, n_grow, sorted=False).indices]
    flat_mask[dropped] = 0.0
    flat_mask[grown] = 1.0
    flat_weight[dropped] = 0.0
    flat_weight[grown] = 0.0
    return dropped, grown


@th.no_grad()
def init_mask(weight: th.Tensor, n_active: int, method: str) -> th.Tensor:
    """An initial 0/1 mask with ``n_active`` entries: at random, or the largest ``|w|`` (``"magnitude"``)."""
    numel = weight.numel()
    if method == "random":
        keep = th.randperm(numel, device=weight.device)[:n_active]
    else:
        keep = th.topk(weight.abs().flatten(), n_active, sorted=False).indices
    mask = th.zeros(numel, dtype=weight.dtype, device=weight.device)
    mask[keep] = 1.0
    return mask.view_as(weight)
