"""Reset the per-weight optimizer state of grown (and dropped or recycled) weights to a fresh optimizer's.

The fresh state is derived, not kept by hand: an optimizer of the same class, built with the weight's
parameter-group settings on a zero tensor of the weight's shape, takes one step on a zero gradient while
each state entry is recorded as the optimizer first stores it. That is the state a fresh optimizer holds before its
first update (zeros for Adam's moments, ``initial_accumulator_value`` for Adagrad's sum, ones for the square
average of SB3's ``RMSpropTFLike``); a state created by the first update itself (SGD's momentum buffer)
is recorded as that update makes it from a zero gradient (zeros). Only entries of the weight's shape are
reset, at the changed positions; per-tensor entries (Adam's ``step``) are shared by the whole tensor and
kept, since one counter cannot restart for some of its positions.

An optimizer whose state cannot be derived so (its constructor needs arguments, its step needs a closure,
or it keeps a state of another shape, as Adafactor's factored moments) cannot be used with a dynamic regime
unless a reset is registered for its class (:data:`STATE_RESETS`, :func:`register_optimizer`):
:func:`check_optimizer` raises, naming it, when the engine is set up, instead of leaving stale state behind.
"""

import inspect
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch as th

#: A reset: ``f(optimizer, weight, flat indices)`` sets the state of ``weight`` at those positions to a fresh one.
StateReset = Callable[[th.optim.Optimizer, th.Tensor, th.Tensor], None]

#: Optimizer class -> its reset, for optimizers whose fresh state cannot be derived (the others need none).
STATE_RESETS: dict[type[th.optim.Optimizer], StateReset] = {}


def register_optimizer(optimizer_class: type[th.optim.Optimizer], reset: StateReset) -> None:
    """Reset the per-weight state of ``optimizer_class`` (and its subclasses) with ``reset``."""
    STATE_RESETS[optimizer_class] = reset


def registered_reset(optimizer: th.optim.Optimizer) -> StateReset | None:
    """The reset registered for the optimizer's class or its nearest registered base class, if any."""
    for cls in type(optimizer).__mro__:
        if cls in STATE_RESETS:
            return STATE_RESETS[cls]
    return None


class _FirstValues(dict[str, Any]):
    """A parameter's optimizer state that keeps a copy of the first value stored under each name."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.first = {name: _copy(value) for name, value in self.items()}

    def __setitem__(self, name: str, value: Any) -> None:
        self.first.setdefault(name, _copy(value))
        super().__setitem__(name, value)


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, th.Tensor) else value


@th.no_grad()
def fresh_state(optimizer: th.optim.Optimizer, param: th.Tensor) -> dict[str, Any]:
    """The state that a fresh optimizer like ``optimizer`` (same class and group settings) gives ``param``.

    :raise ValueError: when it cannot be derived (see the module docstring), naming the optimizer
    """
    cls = type(optimizer)
    group = next((g for g in optimizer.param_groups if any(p is param for p in g["params"])), None)
    if group is None:
        raise ValueError(f"the parameter of shape {tuple(param.shape)} is not one that this {cls.__name__} steps")
    settings = {key: value for key, value in group.items() if key != "params"}
    # the settings go to the constructor as well, which may create the state (Adagrad's sum)
    accepted = inspect.signature(cls).parameters
    keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    arguments = {key: value for key, value in settings.items() if keywords or key in accepted}
    copy = th.zeros_like(param).requires_grad_(True)
    copy.grad = th.zeros_like(copy)
    try:
        fresh = cls([{**settings, "params": [copy]}], **arguments)
        fresh.state = defaultdict(_FirstValues, {p: _FirstValues(state) for p, state in fresh.state.items()})
        fresh.step()
    except Exception as error:  # whatever the optimizer raises, the user needs to know which and why
        raise ValueError(f"a fresh {cls.__name__} could not be made and stepped: {error}") from error
    state = fresh.state.get(copy)
    return dict(state.first) if isinstance(state, _FirstValues) else {}


def _unresettable(optimizer: th.optim.Optimizer, module: str, why: str) -> ValueError:
    return ValueError(
        f"the optimizer of module {module!r} is {type(optimizer).__name__}, whose per-weight state the engine cannot "
        f"reset when weights are dropped or grown ({why}); use another optimizer, or register a reset with "
        "sb3_sparse.core.optim.register_optimizer"
    )


def check_optimizer(optimizer: th.optim.Optimizer, module: str) -> None:
    """Raise a ``ValueError`` if the per-weight state of ``optimizer`` cannot be reset."""
    if registered_reset(optimizer) is not None:
        return
    for param in (p for group in optimizer.param_groups for p in group["params"]):
        try:
            state = fresh_state(optimizer, param)
        except ValueError as error:
            raise _unresettable(optimizer, module, str(error)) from error
        for name, value in state.items():
            if isinstance(value, th.Tensor) and value.numel() > 1 and value.shape != param.shape:
                why = f"its state {name!r} has shape {tuple(value.shape)} for a weight of shape {tuple(param.shape)}"
                raise _unresettable(optimizer, module, why)


@th.no_grad()
def reset_state(optimizer: th.optim.Optimizer, param: th.Tensor, flat_index: th.Tensor) -> None:
    """Set the per-weight optimizer state of ``param`` at ``flat_index`` back to a fresh optimizer's."""
    state = optimizer.state.get(param)
    if not state:  # never stepped: nothing stale
        return
    reset = registered_reset(optimizer)
    if reset is not None:
        reset(optimizer, param, flat_index)
        return
    for name, value in fresh_state(optimizer, param).items():
        current = state.get(name)
        if isinstance(current, th.Tensor) and current.shape == param.shape and value.shape == param.shape:
            current.view(-1)[flat_index] = value.view(-1)[flat_index].to(current.dtype)


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
