"""Reset the per-weight optimizer state of grown (and dropped) weights, per optimizer type.

:data:`STATE_RESETS` maps an optimizer class to the names of its per-weight state tensors (each of the
weight's shape); those entries are set to 0 at the changed positions. An optimizer whose class (or a
base class) is not registered cannot be used with a dynamic regime: :func:`check_optimizer` raises,
naming it, when the engine is set up, instead of silently leaving stale state behind.
"""

import torch as th

#: Optimizer class -> names of its per-weight state tensors.
STATE_RESETS: dict[type[th.optim.Optimizer], tuple[str, ...]] = {
    th.optim.Adam: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    th.optim.AdamW: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    th.optim.NAdam: ("exp_avg", "exp_avg_sq"),
    th.optim.RAdam: ("exp_avg", "exp_avg_sq"),
    th.optim.Adamax: ("exp_avg", "exp_inf"),
    th.optim.RMSprop: ("square_avg", "momentum_buffer", "grad_avg"),
    th.optim.SGD: ("momentum_buffer",),
    th.optim.Adagrad: ("sum",),
}


def register_optimizer(optimizer_class: type[th.optim.Optimizer], state_names: tuple[str, ...]) -> None:
    """Teach the engine which per-weight state tensors of ``optimizer_class`` to reset."""
    STATE_RESETS[optimizer_class] = tuple(state_names)


def state_names(optimizer: th.optim.Optimizer) -> tuple[str, ...] | None:
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
    """Zero the per-weight optimizer state of ``param`` at ``flat_index``."""
    names = state_names(optimizer)
    if names is None:
        check_optimizer(optimizer, "?")
        return
    state = optimizer.state.get(param, {})
    for name in names:
        value = state.get(name)
        if isinstance(value, th.Tensor) and value.shape == param.shape:
            value.view(-1)[flat_index] = 0
