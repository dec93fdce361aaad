"""What the sparse algorithms share: the DST arguments, the engine's callback, space and policy checks."""

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_sparse.common.buffers import MultiStepReplayBuffer, ReplayBufferCallback
from sb3_sparse.common.callbacks import STATE_ATTRIBUTE, TopologyUpdateCallback
from sb3_sparse.common.policies import ResolvedDSTConfig, SparsePolicyMixin
from sb3_sparse.core.config import MODULE_SETTINGS, ModuleConfig, resolve_modules
from sb3_sparse.core.names import did_you_mean

#: The DST constructor arguments of every sparse algorithm: the per-module settings (flat: for every
#: module) and ``modules`` (per-module overrides).
DST_ARGUMENTS = (*MODULE_SETTINGS, "modules")


def _suggest_keywords(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a constructor so that a misspelt keyword argument is named with the closest valid one."""
    parameters = inspect.signature(init).parameters

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = [name for name in kwargs if name not in parameters]
        if unknown:
            hint = did_you_mean(unknown[0], [p for p in parameters if p != "self"])
            raise TypeError(f"{type(self).__name__} got an unexpected keyword argument {unknown[0]!r}{hint}")
        init(self, *args, **kwargs)

    return wrapper


class UnsupportedSpaceError(ValueError, AssertionError):
    """An observation or action space the algorithm does not support (a ``ValueError``; also an
    ``AssertionError``, which SB3 raises for it, so code written for SB3 keeps working)."""


class SparseAlgorithmMixin:
    """Mixed into an SB3 off-policy algorithm (before it in the bases) to train it with DST.

    The DST arguments are validated at construction, where they are resolved once per module
    (``module_configs``), and stored as given, as ``dst_config`` (plain data, saved with the model; a
    load resolves it once). The policy receives both when it is built
    (:class:`~sb3_sparse.common.policies.ResolvedDSTConfig`), and
    the user's ``policy_kwargs`` stay exactly as given. ``learn`` puts a
    :class:`~sb3_sparse.common.callbacks.TopologyUpdateCallback` before the user's callbacks; the engine's
    schedule state is ``dst_state`` (saved with the model).
    """

    policy: Any
    policy_class: Any
    policy_kwargs: dict[str, Any]
    gamma: float
    replay_buffer_kwargs: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _suggest_keywords(cls.__dict__["__init__"])  # type: ignore[method-assign]

    policy_aliases: ClassVar[dict[str, type[Any]]] = {}
    dst_config: dict[str, Any]
    #: ``dst_config`` resolved per module of the policy (``None`` until a model is set up after ``load``)
    module_configs: dict[str, ModuleConfig] | None

    def _init_dst(self, arguments: dict[str, Any]) -> None:
        """Validate the DST ``arguments`` (the constructor's locals) against the policy's modules and keep them.

        SB3's ``load`` constructs the model with the default arguments and ``_init_setup_model=False`` before it
        sets the saved ones: without a model to set up now, the settings are resolved by ``_setup_model``.
        """
        policy = arguments["policy"]
        policy_class: Any = self.policy_aliases.get(policy, policy) if isinstance(policy, str) else policy
        self._check_sparse_policy(policy_class)
        policy_kwargs = arguments.get("policy_kwargs") or {}
        if "dst_config" in policy_kwargs:
            raise ValueError(
                f"policy_kwargs sets 'dst_config': pass the DST settings as arguments of {type(self).__name__} instead"
            )
        self.dst_config = {**{name: arguments[name] for name in MODULE_SETTINGS}, "modules": arguments["modules"]}
        self.module_configs = self._resolve_dst(policy_class) if arguments.get("_init_setup_model", True) else None
        self.__dict__.setdefault(STATE_ATTRIBUTE, {})

    def _resolve_dst(self, policy_class: Any) -> dict[str, ModuleConfig]:
        """``dst_config`` resolved per module of ``policy_class``."""
        flat = {name: self.dst_config.get(name) for name in MODULE_SETTINGS}
        return resolve_modules(
            tuple(policy_class.sparse_modules), flat, self.dst_config.get("modules"), policy_class.explicit_modules
        )

    def _check_sparse_policy(self, policy_class: Any) -> None:
        if not (isinstance(policy_class, type) and issubclass(policy_class, SparsePolicyMixin)):
            name = getattr(policy_class, "__name__", repr(policy_class))
            base = next(cls for cls in type(self).__mro__ if not issubclass(cls, SparseAlgorithmMixin)).__name__
            raise ValueError(
                f"{type(self).__name__} needs a sparse policy ({', '.join(self.policy_aliases)} or a subclass of "
                f"SparsePolicyMixin), got {name}. A file saved by {base} cannot be loaded into "
                f"{type(self).__name__}: load it with {base}.load."
            )

    def _check_spaces(self, error: AssertionError) -> None:
        """Turn SB3's assertion on an unsupported space into a one-line ``ValueError``."""
        message = str(error)
        if "only supports" in message or "space" in message:
            raise UnsupportedSpaceError(f"{type(self).__name__}: {message.strip()}") from None
        raise error

    def _apply_loaded_overrides(self) -> None:
        """DST arguments given to ``load`` (SB3 sets them as attributes) change the saved ``dst_config``,
        e.g. ``SparseSAC.load(path, backend="csr")``; they are validated like the constructor's."""
        overrides = {name: self.__dict__.pop(name) for name in DST_ARGUMENTS if name in self.__dict__}
        if overrides:
            config = {**self.dst_config, **overrides}
            self.dst_config = {**{name: config.get(name) for name in MODULE_SETTINGS}, "modules": config.get("modules")}
            self.module_configs = None

    def _setup_model(self) -> None:
        self._check_sparse_policy(self.policy_class)
        self._apply_loaded_overrides()
        if self.module_configs is None:
            self.module_configs = self._resolve_dst(self.policy_class)
        buffer_class: Any = getattr(self, "replay_buffer_class", None)
        if isinstance(buffer_class, type) and issubclass(buffer_class, MultiStepReplayBuffer):
            # as SB3 does for its NStepReplayBuffer: the buffer discounts with the algorithm's gamma
            self.replay_buffer_kwargs = {"gamma": self.gamma, **self.replay_buffer_kwargs}
        user_kwargs = self.policy_kwargs
        self.policy_kwargs = {**user_kwargs, "dst_config": ResolvedDSTConfig(self.dst_config, self.module_configs)}
        try:
            super()._setup_model()  # type: ignore[misc]
        finally:
            self.policy_kwargs = user_kwargs

    def _excluded_save_params(self) -> list[str]:
        # the resolved settings are objects: what is saved is dst_config (plain data), resolved again on load
        return [*super()._excluded_save_params(), "module_configs"]  # type: ignore[misc]

    def _with_topology_callback(self, callback: MaybeCallback) -> BaseCallback:
        """The topology callback first (and the buffer's, for the package's buffers), then the user's ``callback``."""
        callbacks: list[BaseCallback] = [TopologyUpdateCallback(verbose=self.verbose)]  # type: ignore[attr-defined]
        if isinstance(callback, list):
            user = list(callback)
        elif isinstance(callback, BaseCallback):
            user = [callback]
        else:
            user = [] if callback is None else [ConvertCallback(callback)]
        buffer = getattr(self, "replay_buffer", None)
        if hasattr(buffer, "attach") and not any(isinstance(c, ReplayBufferCallback) for c in user):
            callbacks.append(ReplayBufferCallback())
        return CallbackList(callbacks + user)
