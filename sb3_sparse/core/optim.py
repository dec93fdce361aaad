"""Reset the per-weight optimizer state of grown (and dropped) weights, per optimizer type.

:data:`STATE_RESETS` maps an optimizer class to its per-weight state tensors (each of the weight's
shape) and the value a fresh optimizer starts them at (0 for most; 1 for the square average of SB3's
``RMSpropTFLike``); those entries are set back to it at the changed positions. An optimizer whose class (or a
base class) is not registered cannot be used with a dynamic regime: :func:`check_optimizer` raises,
naming it, when the engine is set up, instead of silently leaving stale state behind.
"""

from collections.abc import Mapping, Sequence

import torch as th


def _zeros(*names: str) -> dict[str, float]:
    return dict.fromkeys(names, 0.0)


#: Optimizer class -> {name of a per-weight state tensor: its value in a fresh optimizer}.
STATE_RESETS: dict[type[th.optim.Optimizer], dict[str, float]] = {
    th.optim.Adam: _zeros("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    th.optim.AdamW: _zeros("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    th.optim.NAdam: _zeros("exp_avg", "exp_avg_sq"),
    th.optim.RAdam: _zeros("exp_avg", "exp_avg_sq"),
    th.optim.Adamax: _zeros("exp_avg", "exp_inf"),
    th.optim.RMSprop: _zeros("square_avg", "momentum_buffer", "grad_avg"),
    th.optim.SGD: _zeros("momentum_buffer"),
    th.optim.Adagrad: _zeros("sum"),
}


def register_optimizer(optimizer_class: type[th.optim.Optimizer], state: Mapping[str, float] | Sequence[str]) -> None:
    """Teach the engine which per-weight state tensors of ``optimizer_class`` to reset, and to what.

    :param state: ``{name: fresh value}``, or names of state tensors that start at 0
    """
    STATE_RESETS[optimizer_class] = dict(state) if isinstance(state, Mapping) else _zeros(*state)


def state_names(optimizer: th.optim.Optimizer) -> dict[str, float] | None:
    for cls in type(optimizer).__mro__:
        if cls in STATE_RESETS:
            return STATE_RESETS[cls]
    return None


def check_optimizer(optimizer: th.optim.Optimizer, module: str) -> None:
    """Raise a ``ValueError`` if the per-weight state of ``optimizer`` cannot be reset."""
    if state_names(optimizer) is None:
        known = ", ".join(sorted(cls.__name__ for cls in STATE_RESETS))
        raise ValueError(
            f"the optimizer of module {module!r} is {type(optimizer).__name__}, whose per-weight state the "
            f"engine cannot reset when weights are dropped or grown; use one of {known}, or register it with "
            "sb3_sparse.core.optim.register_optimizer"
        )


@th.no_grad()
def reset_state(optimizer: th.optim.Optimizer, param: th.Tensor, flat_index: th.Tensor) -> None:
    """Set the per-weight optimizer state of ``param`` at ``flat_index`` back to a fresh optimizer's."""
    names = state_names(optimizer)
    if names is None:
        check_optimizer(optimizer, "?")
        return
    state = optimizer.state.get(param, {})
    for name, fresh in names.items():
        value = state.get(name)
        if isinstance(value, th.Tensor) and value.shape == param.shape:
            value.view(-1)[flat_index] = fresh


def prefer_fused(optimizer: th.optim.Optimizer) -> bool:
    """Switch a new Adam / AdamW to PyTorch's fused kernel, unless it was given ``fused`` or ``foreach``.

    Masked gradients leave the second moment exactly 0 at pruned positions, and the unfused kernel's
    ``sqrt`` of zeros is many times slower than of other values on some CPUs (25x for a 256x256
    tensor on the AVX-512 machine where this package is tested), which would make a sparse step
    slower than a dense one. The fused kernel computes the same update in one pass without that cost.

    :return: whether the optimizer now uses the fused kernel
    """
    if type(optimizer) not in (th.optim.Adam, th.optim.AdamW) or optimizer.state:
        return False
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params or any(not p.is_floating_point() or p.device.type not in ("cpu", "cuda") for p in params):
        return False
    if any(group.get("fused") is not None or group.get("foreach") is not None for group in optimizer.param_groups):
        return False
    for group in optimizer.param_groups:
        group["fused"] = True
    return True
