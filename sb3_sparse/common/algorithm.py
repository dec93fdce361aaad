"""What SparseSAC and SparseTD3 share: DST constructor arguments, the topology callback, saving."""

from dataclasses import fields
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_sparse.common.callbacks import TopologyState, TopologyUpdateCallback
from sb3_sparse.common.config import SparsityConfig, TopologyConfig
from sb3_sparse.common.policies import BUILDING_ALGORITHM, SparsePolicyMixin

SPARSITY_ARGUMENTS = tuple(field.name for field in fields(SparsityConfig))
TOPOLOGY_ARGUMENTS = tuple(field.name for field in fields(TopologyConfig))
DST_ARGUMENTS = SPARSITY_ARGUMENTS + TOPOLOGY_ARGUMENTS


class SparseAlgorithmMixin:
    """Mixed into an SB3 off-policy algorithm (before it in the bases) to train it with DST.

    The sparsity arguments go to the sparse policy through ``policy_kwargs``; the topology
    arguments configure the :class:`~sb3_sparse.common.callbacks.TopologyUpdateCallback` that
    ``learn`` adds to the user's callbacks. Every argument is also an attribute (saved with the
    model), and the schedule position (:class:`~sb3_sparse.common.callbacks.TopologyState`) is
    saved as ``topology_state``.
    """

    policy: Any
    policy_class: Any
    topology_state: TopologyState

    def _init_dst(self, arguments: dict[str, Any], policy_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """Validate the DST ``arguments``, store them as attributes and return the policy kwargs."""
        dst = {name: arguments[name] for name in DST_ARGUMENTS}
        sparsity = SparsityConfig(**{name: dst[name] for name in SPARSITY_ARGUMENTS})
        TopologyConfig(**{name: dst[name] for name in TOPOLOGY_ARGUMENTS})
        clash = sorted(set(policy_kwargs or {}) & set(DST_ARGUMENTS))
        if clash:
            raise ValueError(
                f"policy_kwargs sets {clash}: pass them as arguments of {type(self).__name__} instead, "
                f"e.g. {type(self).__name__}(..., {clash[0]}=...)"
            )
        for name, value in sparsity.as_kwargs().items():
            setattr(self, name, value)
        for name in TOPOLOGY_ARGUMENTS:
            setattr(self, name, dst[name])
        self.topology_state = TopologyState()
        return {**(policy_kwargs or {}), **sparsity.as_kwargs(), "sparse_algorithm": type(self).__name__}

    def _check_sparse_policy(self) -> None:
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, SparsePolicyMixin)):
            name = getattr(self.policy_class, "__name__", repr(self.policy_class))
            base = next(cls for cls in type(self).__mro__ if not issubclass(cls, SparseAlgorithmMixin)).__name__
            raise ValueError(
                f"{type(self).__name__} needs a sparse policy (MlpPolicy, CnnPolicy, MultiInputPolicy or a "
                f"subclass of SparsePolicyMixin), got {name}. A file saved by {base} cannot be loaded into "
                f"{type(self).__name__}: load it with {base}.load."
            )

    def _setup_model(self) -> None:
        self._check_sparse_policy()
        token = BUILDING_ALGORITHM.set(type(self).__name__)
        try:
            super()._setup_model()  # type: ignore[misc]
        finally:
            BUILDING_ALGORITHM.reset(token)

    def topology_callback(self) -> TopologyUpdateCallback:
        """The callback that performs this model's topology updates (continuing its saved schedule)."""
        arguments = {name: getattr(self, name) for name in TOPOLOGY_ARGUMENTS}
        return TopologyUpdateCallback(**arguments, state=self.topology_state, verbose=self.verbose)  # type: ignore[attr-defined]

    def _with_topology_callback(self, callback: MaybeCallback) -> BaseCallback:
        """The topology callback first, then the user's ``callback`` (as :meth:`learn` accepts it)."""
        callbacks: list[BaseCallback] = [self.topology_callback()]
        if isinstance(callback, list):
            callbacks += callback
        elif isinstance(callback, BaseCallback):
            callbacks.append(callback)
        elif callback is not None:
            callbacks.append(ConvertCallback(callback))
        return CallbackList(callbacks)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "topology_state"]  # type: ignore[misc]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()  # type: ignore[misc]
        return [*state_dicts, "topology_state"], variables
