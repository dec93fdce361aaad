"""The mask updates: reach a target active count, swapping some weights, over the whole layer (every regime) or
per unit (regimes with constant fan-in)."""

import math

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


def top_per_row(scores: th.Tensor, counts: th.Tensor) -> th.Tensor:
    """A boolean matrix of ``scores``' shape marking, in each row ``i``, its ``counts[i]`` highest scores."""
    order = th.argsort(scores, dim=1, descending=True, stable=True)
    ranks = th.arange(scores.shape[1], device=scores.device).expand_as(scores)
    return th.zeros_like(scores, dtype=th.bool).scatter_(1, order, ranks < counts.unsqueeze(1))


def unit_counts(n_active: int, n_units: int, device: th.device | None = None) -> th.Tensor:
    """``n_active`` entries spread over ``n_units`` units: ``n_active // n_units`` each, and one more for each of the
    first ``n_active mod n_units`` units."""
    counts = th.full((n_units,), n_active // n_units, dtype=th.long, device=device)
    counts[: n_active % n_units] += 1
    return counts


@th.no_grad()
def init_mask(weight: th.Tensor, n_active: int, method: str, per_unit: bool = False) -> th.Tensor:
    """An initial 0/1 mask with ``n_active`` entries: at random, or the largest ``|w|`` (``"magnitude"``).

    :param per_unit: chosen in each unit (row) alike, with constant fan-in: ``n_active // fan-out`` entries per
        unit (one more in the first ``n_active mod fan-out`` units)
    """
    if per_unit:
        scores = th.rand_like(weight) if method == "random" else weight.abs()
        rows = scores.view(weight.shape[0], -1)
        return top_per_row(rows, unit_counts(n_active, rows.shape[0], rows.device)).to(weight.dtype).view_as(weight)
    if method == "random":  # a random permutation, as before constant fan-in existed: the same masks from the same seed
        keep = th.randperm(weight.numel(), device=weight.device)[:n_active]
    else:
        keep = th.topk(weight.abs().flatten(), n_active, sorted=False).indices
    mask = th.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
    mask[keep] = 1.0
    return mask.view_as(weight)


@th.no_grad()
def update_fan_in(
    weight: th.Tensor,
    mask: th.Tensor,
    n_target: int,
    n_swap: int,
    drop_score: str,
    grow_score: str,
    dense_grad: th.Tensor | None = None,
    ablation_threshold: float = 0.0,
) -> tuple[th.Tensor, th.Tensor]:
    """A new mask with exactly ``n_target`` active entries and constant fan-in, updated per unit (row), as SRigL.

    Units whose saliency is below ``ablation_threshold x (n_target // fan-out)`` are ablated (see
    :class:`~sb3_sparse.core.regimes.SRigL`): a unit is salient in as many of its entries as are among the
    ``active - n_swap`` highest drop scores of the layer's active entries or among the ``n_swap`` highest grow
    scores of its inactive ones. The ``m`` living units then hold ``n_target // m`` entries each (the
    ``n_target mod m`` most salient one more); each keeps its highest-drop-score active entries less
    ``n_swap // m`` and grows the rest among the entries inactive before the update by grow score. Dropped and
    grown weights are set to exactly 0; weight and mask are changed in place.

    :param ablation_threshold: 0: no unit is ablated
    :return: flat indices of the dropped and of the grown entries
    """
    n_units = weight.shape[0]
    rows = mask.view(n_units, -1).bool()
    n_in = rows.shape[1]
    n_target = max(0, min(n_target, rows.numel()))
    drop = SCORES[drop_score](weight, mask, dense_grad).view(n_units, n_in).masked_fill(~rows, -math.inf)
    grow = SCORES[grow_score](weight, mask, dense_grad).view(n_units, n_in).masked_fill(rows, -math.inf)
    held = rows.sum(1)
    n_active = int(held.sum())
    n_swap = max(0, min(n_swap, n_active, rows.numel() - n_active))
    salient = th.zeros_like(rows).view(-1)
    salient[th.topk(drop.view(-1), n_active - n_swap, sorted=False).indices] = True
    salient[th.topk(grow.view(-1), n_swap, sorted=False).indices] = True
    saliency = salient.view(n_units, n_in).sum(1)
    by_saliency = th.argsort(saliency, descending=True, stable=True)
    threshold = ablation_threshold * (n_target // n_units)
    room = n_units - -(-n_target // n_in)  # the most units that can go, leaving room for n_target entries
    n_ablated = min(room, int((saliency < threshold).sum())) if threshold > 0 else 0
    living = by_saliency[: n_units - n_ablated]
    target = th.zeros_like(held)
    target[living] = unit_counts(n_target, living.numel(), held.device)  # the remainder to the most salient
    kept = (th.minimum(held, target) - n_swap // max(1, living.numel())).clamp(min=0)
    kept = th.maximum(kept, target - (n_in - held))  # grow only where there was room before the update
    new_rows = top_per_row(drop, kept) | top_per_row(grow, target - kept)
    dropped = (rows & ~new_rows).view(-1).nonzero().squeeze(1)
    grown = (new_rows & ~rows).view(-1).nonzero().squeeze(1)
    mask.copy_(new_rows.view_as(mask))
    weight.view(-1)[dropped] = 0.0
    weight.view(-1)[grown] = 0.0
    return dropped, grown
