"""The engine: builds each module's initial masks and updates them on its regime's schedule.

It knows nothing of SB3: an adapter hands it, for each named module, the online network, its
target network (whose masks follow the online ones) and the optimizer that trains it
(:class:`ModuleBinding`), and calls :meth:`SparseEngine.step` with the env step. The engine's whole
state is a plain dict of numbers (:attr:`SparseEngine.state`), so it can be saved as JSON.

When a module updates is decided by its :class:`~sb3_sparse.core.schedules.UpdateSchedule`, which the
engine asks at every step. At each interval boundary it also reads the module's plasticity diagnostics
(:mod:`sb3_sparse.core.plasticity`): a probe armed just before the boundary (as far ahead as dense
gradients are kept) records one training batch, from which come the ``plasticity`` metrics of the
module's state and its dormant units (for ``ne`` and ``recycle_dormant``).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch as th
from torch import nn

from sb3_sparse.core.accounting import count_module
from sb3_sparse.core.backends import mark_column_major_producers, set_backend
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.masking import (
    commit_dense_gradients,
    get_mask,
    set_mask,
    sparse_weights,
    sparsify,
    track_dense_gradients,
    weight_state,
)
from sb3_sparse.core.optim import check_optimizer, reset_state
from sb3_sparse.core.plasticity import PlasticityProbe, incoming_indices, recycle_layers
from sb3_sparse.core.regimes import get_regime
from sb3_sparse.core.schedules import UpdateSchedule, layer_targets
from sb3_sparse.core.update import init_mask, update_fan_in, update_mask

#: A weight that may be made sparse: (owning module, parameter name, role, depth in its chain).
Candidate = tuple[nn.Module, str, str, int]


def matrix_shape(weight: th.Tensor) -> tuple[int, int]:
    """(fan-out, fan-in) of a weight: convolution kernels count their receptive field as inputs."""
    return weight.shape[0], math.prod(weight.shape[1:])


def layer_counts(binding: "ModuleBinding") -> tuple[list[tuple[int, int]], list[int]]:
    """The (fan-out, fan-in) shape and the active count of each masked weight of a module's online network."""
    weights = binding.weights()
    shapes = [matrix_shape(getattr(module, name)) for _, module, name in weights]
    return shapes, [int(get_mask(module, name).sum().item()) for _, module, name in weights]


def sparsify_module(config: ModuleConfig, candidates: Sequence[Candidate], network: nn.Module | None = None) -> int:
    """Make the candidates that ``config.sparse_layers`` selects sparse, with initial masks.

    :param network: the network that holds the candidates: its layers that feed sparse products return their
        outputs in the layout those read (:func:`~sb3_sparse.core.backends.mark_column_major_producers`)

    :return: the number of weights made sparse (0 for the ``dense`` regime)
    """
    regime = get_regime(config.regime)
    if not regime.masked:
        return 0
    selected = [candidate for candidate in candidates if candidate[2] in config.sparse_layers]
    shapes = [matrix_shape(getattr(module, name)) for module, name, _, _ in selected]
    counts = layer_targets(config, shapes, config.start_sparsity, [depth for _, _, _, depth in selected])
    for (module, name, role, _), shape, count in zip(selected, shapes, counts, strict=True):
        count = regime.layer_count(shape, count)
        sparsify(module, name, init_mask(getattr(module, name), count, config.mask_init, regime.constant_fan_in))
        weight_state(module, name).role = role
    for module, _, _, _ in candidates:  # the dense layers too: they may read the outputs of sparse products
        set_backend(module, config.backend)
    if network is not None:
        mark_column_major_producers(network)
    return len(selected)


@dataclass
class ModuleBinding:
    """Where a module lives now (the objects change with ``load``, ``deepcopy``, a new optimizer).

    :param online: the network that is trained
    :param target: its target network (same structure), or ``None``
    :param optimizer: the optimizer that steps ``online``'s weights (its steps are the module's clock)
    :param other_optimizers: optimizers that step some of ``online``'s weights too (e.g. the actor's, for
        an encoder of which the actor and the critic each have a copy): their state is reset as well
    :param exclude: names of sub-modules of ``online`` (and of ``target``) that are not part of the module:
        left out of its masks, updates and FLOPs (e.g. a features extractor, dense or a module of its own)
    """

    online: nn.Module
    target: nn.Module | None = None
    optimizer: th.optim.Optimizer | None = None
    other_optimizers: tuple[th.optim.Optimizer, ...] = ()
    exclude: tuple[str, ...] = field(default_factory=tuple)

    @property
    def optimizers(self) -> tuple[th.optim.Optimizer, ...]:
        """Every optimizer that trains the module's weights, its clock first (none without ``optimizer``)."""
        return () if self.optimizer is None else (self.optimizer, *self.other_optimizers)

    def weights(self, target: bool = False) -> list[tuple[str, nn.Module, str]]:
        """The module's masked weights in its online (or target) network, as :func:`sparse_weights` gives them."""
        network = self.target if target else self.online
        return [] if network is None else list(sparse_weights(network, exclude=self.exclude))


def new_module_state() -> dict[str, Any]:
    """The state of a module before its first step (a state saved by an earlier version gets the keys it lacks)."""
    return {
        "n_updates": 0,
        "checked_step": 0,
        "last_update_step": -1,
        "optimizer_steps": 0,
        "optimizer_steps_at_update": 0,
        "accounted_steps": 0,
        "changed_fraction": 0.0,
        "drop_fraction": 0.0,
        "train_flops": 0.0,
        "dense_train_flops": 0.0,
    }


class _OptimizerStepHook:
    """Optimizer pre-step hook: count the module's steps and keep the dense gradients of this step's loss.

    :param keeping: the engine's record of where dense gradients are kept (``{module name: (network, on)}``): the
        weights are walked only while they may be kept, not at every step
    """

    def __init__(
        self,
        state: dict[str, Any],
        binding: ModuleBinding,
        track_gradients: bool,
        clock: bool = True,
        keeping: dict[str, tuple[nn.Module, bool]] | None = None,
        name: str = "",
    ):
        self.state = state
        self.binding = binding
        self.track_gradients = track_gradients
        self.clock = clock
        self.keeping = {} if keeping is None else keeping
        self.name = name

    def __call__(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.clock:
            self.state["optimizer_steps"] += 1
        if self.track_gradients and self.keeping.get(self.name) != (self.binding.online, False):
            commit_dense_gradients(self.binding.online, self.binding.exclude)


def uses_probe(config: ModuleConfig) -> bool:
    """Whether a module needs the activity of its units: for its plasticity metrics, recycling, or its regime."""
    return config.plasticity_metrics or config.recycle_dormant or get_regime(config.regime).resets_dormant


class SparseEngine:
    """Drives the mask updates of named modules, each with its own :class:`ModuleConfig`.

    :param configs: ``{module name: ModuleConfig}``
    :param state: the saved :attr:`state` to continue from (a new one by default); it is used in place
    """

    def __init__(self, configs: Mapping[str, ModuleConfig], state: dict[str, Any] | None = None):
        self.configs = dict(configs)
        #: the whole engine state, plain numbers only (JSON): ``{"n_updates": ..., "modules": {name: {"n_updates": ...}}}``;
        #: the top-level ``n_updates`` counts the agent's mask updates (see :meth:`step`)
        self.state: dict[str, Any] = state if state is not None else {}
        modules = self.state.setdefault("modules", {})
        for name in self.configs:
            module = modules.setdefault(name, {})
            for key, value in new_module_state().items():
                module.setdefault(key, value)
        # a state saved before the agent's count existed: its modules' updates, as if they had updated together
        self.state.setdefault("n_updates", max((module["n_updates"] for module in modules.values()), default=0))
        self._schedules: dict[str, UpdateSchedule] = {}
        self._hooks: dict[str, Any] = {}
        self._step_flops: dict[str, tuple[int, int]] = {}  # per training step, until the masks change
        self._keeping: dict[str, tuple[nn.Module, bool]] = {}  # whether each module keeps dense gradients now
        # the activity recorders of the modules that use them, when each was last read, and the dormant units found
        self._probes = {name: PlasticityProbe() for name, config in self.configs.items() if uses_probe(config)}
        self._measured: dict[str, int] = {}
        self._dormant: dict[str, dict[Any, th.Tensor]] = {}

    def module_state(self, name: str) -> dict[str, Any]:
        return self.state["modules"][name]

    def attach(self, bindings: Mapping[str, ModuleBinding]) -> None:
        """Hook each module's optimizers (again, if they were replaced) and turn dense-gradient tracking on or off."""
        for name, binding in bindings.items():
            if name not in self.configs or binding.optimizer is None:
                continue
            optimizers = binding.optimizers
            previous = self._hooks.get(name)
            if previous is not None and previous[0] == optimizers:  # optimizers compare by identity
                continue  # attached already (this runs every env step: keep it cheap)
            if previous is not None:
                for handle in previous[1]:
                    handle.remove()
            regime = get_regime(self.configs[name].regime)
            if regime.dynamic or self.configs[name].recycle_dormant:  # updates reset the state of changed weights
                for optimizer in optimizers:
                    check_optimizer(optimizer, name)
            track = regime.dynamic and regime.uses_gradient()
            if not track:
                track_dense_gradients(binding.online, False, binding.exclude)
            state = self.module_state(name)
            handles = [
                optimizer.register_step_pre_hook(_OptimizerStepHook(state, binding, track, index == 0, self._keeping, name))
                for index, optimizer in enumerate(optimizers)
            ]
            self._hooks[name] = (optimizers, handles)

    def detach(self) -> None:
        """Remove the optimizer hooks and any armed plasticity probe (at the end of training)."""
        for _, handles in self._hooks.values():
            for handle in handles:
                handle.remove()
        self._hooks.clear()
        for probe in self._probes.values():
            probe.reset()

    def schedule(self, name: str, horizon: int | None = None) -> UpdateSchedule:
        """The module's update schedule for a run of ``horizon`` steps in its unit (by default, the last one given)."""
        schedule = self._schedules.get(name)
        if schedule is None or (horizon is not None and horizon != schedule.horizon):
            config = self.configs[name]
            schedule = UpdateSchedule(config, get_regime(config.regime), horizon or 0)
            self._schedules[name] = schedule
        return schedule

    def clock(self, name: str, env_step: int) -> int:
        """The module's current step in its schedule unit."""
        return self.schedule(name).clock(env_step, int(self.module_state(name)["optimizer_steps"]))

    def step(
        self,
        bindings: Mapping[str, ModuleBinding],
        env_step: int,
        horizons: Mapping[str, int],
        lookahead: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Account FLOPs and update the masks of every module whose update is due.

        Each module's :class:`~sb3_sparse.core.schedules.UpdateSchedule` (for a run of ``horizons[name]``
        steps) lists the interval boundaries that its clock crossed since the last call and says at which of
        them the mask is updated; the engine updates it at each, in order, at that boundary's progress
        (catch-up: a call after a long training phase, e.g. one ``train()`` of many gradient steps, does every
        update it crossed). Updates are done only if the module has been trained since its last update (none
        during ``learning_starts``). Updates caught up in one call have one training batch behind them: a
        gradient-grown regime ranks each with the same dense gradient (the last training step's), and the
        dormant units measured before the call serve its first update (or recycling) only. A module with
        ``recycle_dormant`` recycles its dormant units at its updates; a ``static`` or ``dense`` one (never
        updated otherwise) at a boundary inside its window; at most once per call.

        At every crossing, the module's plasticity metrics are read from the training batch recorded just
        before it (by a probe armed ``lookahead`` steps ahead; none before training starts) into its state
        (``"plasticity"``, with ``"plasticity_step"``: the last boundary crossed).

        A gradient-grown regime needs the dense gradient of the last training step before the update,
        which costs a dense product on a sparse compute backend: dense gradients are kept only while the
        next boundary is at most ``lookahead`` steps of the module's clock away (or an update waits for one:
        it is retried from its boundary at the next call).

        The agent's count of mask updates (``state["n_updates"]``) grows, at each call, by the largest number of
        updates that one module made in it: modules updated at the same step count once.

        :param horizons: each module's run length in its schedule unit (to resolve fractions)
        :param lookahead: per module, how far the clock can move between a training step and the next call
            (the training frequency); 1 by default
        :return: the names of the modules updated
        """
        updated: dict[str, int] = {}
        for name, binding in bindings.items():
            if name not in self.configs:
                continue
            self.account(name, binding)
            schedule = self.schedule(name, horizons[name])
            state = self.module_state(name)
            clock = self.clock(name, env_step)
            crossed = schedule.boundaries(state["checked_step"], clock)
            state["checked_step"] = clock
            if crossed:
                self._measure(name, crossed[-1])
                n_updates = self._update_at(name, binding, schedule, crossed)
                if n_updates:
                    updated[name] = n_updates
            ahead = (lookahead or {}).get(name, 1)
            if schedule.regime.dynamic and schedule.regime.uses_gradient():
                waiting = bool(schedule.boundaries(state["checked_step"], clock))
                self._keep_dense_gradients(name, binding, waiting or schedule.steps_to_next(clock) <= ahead)
            probe = self._probes.get(name)
            if probe is not None and not probe.armed and schedule.steps_to_next(clock) <= ahead:
                probe.arm(binding.online, binding.optimizer, binding.exclude)
        if updated:
            self.state["n_updates"] += max(updated.values())
        return list(updated)

    def _measure(self, name: str, boundary: int) -> None:
        """Read the module's probe at an interval boundary: its plasticity metrics and its dormant units."""
        probe = self._probes.get(name)
        if probe is None or not probe.armed or self._measured.get(name) == boundary:
            return
        config = self.configs[name]
        if probe.recorded:
            state = self.module_state(name)
            if config.plasticity_metrics:
                metrics = probe.metrics(config.dormant_threshold)
                if metrics:
                    state["plasticity"] = metrics
                    state["plasticity_step"] = boundary
            self._dormant[name] = probe.dormant(config.dormant_threshold)
        self._measured[name] = boundary
        probe.reset()

    def _update_at(self, name: str, binding: ModuleBinding, schedule: UpdateSchedule, boundaries: range) -> int:
        """Update (and recycle the dormant units of) the module at each of ``boundaries`` where that is due.

        :return: the number of mask updates done
        """
        state = self.module_state(name)
        dormant = self._dormant.pop(name, {})
        if not (state["optimizer_steps"] > state["optimizer_steps_at_update"] or binding.optimizer is None):
            return 0  # not trained since the last update
        n_updates = 0
        fresh = True  # the dormant units were measured before this call: they serve its first update only
        for boundary in boundaries:
            mask_due = schedule.mask_update_due(boundary, lambda: self._final_reached(binding, schedule))
            if mask_due:
                resets = {layer.producer: incoming_indices(layer, units) for layer, units in dormant.items()} if fresh else {}
                if not self.update(name, binding, schedule.progress(boundary), boundary, resets):
                    state["checked_step"] = boundary - 1  # no dense gradient yet: retry from here at the next call
                    self._dormant[name] = dormant if fresh else {}
                    return n_updates
                n_updates += 1
            recycle = fresh and schedule.recycle_due(boundary, mask_due)
            if recycle:
                self.recycle(name, binding, dormant)
            fresh = fresh and not (mask_due or recycle)
        return n_updates

    @th.no_grad()
    def recycle(self, name: str, binding: ModuleBinding, dormant: Mapping[Any, th.Tensor]) -> int:
        """Recycle the module's dormant units as ReDo does (:func:`~sb3_sparse.core.plasticity.recycle_units`).

        Masks do not change (pruned positions stay 0); the target network's masks are synced all the same and
        its weights follow the online ones by the algorithm's own target updates.

        :param dormant: the dormant units of each neuron layer, in forward order (:meth:`PlasticityProbe.dormant
            <sb3_sparse.core.plasticity.PlasticityProbe.dormant>`)
        :return: the number of units recycled
        """
        count = recycle_layers(dormant, binding.optimizers)
        self.sync_target(binding)
        state = self.module_state(name)
        state["optimizer_steps_at_update"] = state["optimizer_steps"]
        if state.get("plasticity_step") is not None and self._measured.get(name) == state["plasticity_step"]:
            state["plasticity"]["recycled_units"] = count
        return count

    def _keep_dense_gradients(self, name: str, binding: ModuleBinding, keep: bool) -> None:
        """Turn dense-gradient tracking of the module on or off (only when that changes: this runs every step)."""
        if self._keeping.get(name) == (binding.online, keep):
            return
        track_dense_gradients(binding.online, keep, binding.exclude)
        self._keeping[name] = (binding.online, keep)

    @staticmethod
    def _final_reached(binding: ModuleBinding, schedule: UpdateSchedule) -> bool:
        """Whether the module's layers hold their final active counts (those at the end of the window)."""
        shapes, current = layer_counts(binding)
        return current == schedule.active_counts(shapes, current, 1.0)

    @th.no_grad()
    def update(
        self,
        name: str,
        binding: ModuleBinding,
        progress: float,
        step: int,
        dormant: Mapping[nn.Module, th.Tensor] | None = None,
    ) -> bool:
        """Update the masks of module ``name`` now (target counts and swaps at ``progress``); sync its target.

        :param dormant: per layer, flat indices of weights whose optimizer state is reset too when the regime
            resets dormant units (``ne``: the incoming weights of its dormant units)
        :return: whether a gradient-scored update could run (it needs a captured dense gradient)
        """
        schedule = self.schedule(name)
        weights = binding.weights()
        if not weights:
            return False
        if schedule.regime.uses_gradient() and any(weight_state(m, w).dense_grad is None for _, m, w in weights):
            return False
        regime = schedule.regime
        shapes, current = layer_counts(binding)
        changed = exchanged = 0
        for (_, module, weight_name), n_active, n_target in zip(
            weights, current, schedule.active_counts(shapes, current, progress), strict=True
        ):
            weight = getattr(module, weight_name)
            mask = get_mask(module, weight_name)
            n_swap = schedule.swap_count(n_active, n_target, progress)
            dense_grad = weight_state(module, weight_name).dense_grad
            if regime.constant_fan_in:
                assert regime.grow_score is not None
                ablation = 0.0 if weight_state(module, weight_name).role == "output" else self.configs[name].ablation_threshold
                dropped, grown = update_fan_in(
                    weight, mask, n_target, n_swap, regime.drop_score, regime.grow_score, dense_grad, ablation
                )
            else:
                dropped, grown = update_mask(weight, mask, n_target, n_swap, regime.drop_score, regime.grow_score, dense_grad)
            set_mask(module, weight_name, mask)
            extra = (dormant or {}).get(module) if regime.resets_dormant and weight_name == "weight" else None
            changed_positions = th.cat([dropped, grown, *([] if extra is None else [extra.to(dropped.device)])])
            for optimizer in binding.optimizers:
                reset_state(optimizer, weight, changed_positions)
            changed += max(dropped.numel(), grown.numel())
            exchanged += min(dropped.numel(), grown.numel())
        self.sync_target(binding)
        self._step_flops.pop(name, None)
        state = self.module_state(name)
        state["n_updates"] += 1
        state["last_update_step"] = step
        state["optimizer_steps_at_update"] = state["optimizer_steps"]
        state["changed_fraction"] = changed / max(1, sum(current))
        state["drop_fraction"] = exchanged / max(1, sum(current))
        return True

    @staticmethod
    @th.no_grad()
    def sync_target(binding: ModuleBinding) -> None:
        """Copy the online masks into the target network and zero its newly pruned weights (RLx2's rule).

        Online weights without a target copy (a module whose target network covers only part of it, such as
        the actor's copy of an encoder in SAC) are skipped.
        """
        if binding.target is None:
            return
        target_weights = {qualified: (module, name) for qualified, module, name in binding.weights(target=True)}
        for qualified, module, name in binding.weights():
            if qualified in target_weights:
                target_module, target_name = target_weights[qualified]
                set_mask(target_module, target_name, get_mask(module, name))

    def account(self, name: str, binding: ModuleBinding) -> None:
        """Add the training FLOPs of the module's optimizer steps since the last call, at its current density."""
        state = self.module_state(name)
        new_steps = state["optimizer_steps"] - state["accounted_steps"]
        if new_steps <= 0:
            return
        if name not in self._step_flops:  # per copy of the module: flops_report weights modules by their copies
            self._step_flops[name] = count_module(name, binding.online, binding.exclude, binding.target is not None).training
        sparse, dense = self._step_flops[name]
        state["train_flops"] += new_steps * sparse
        state["dense_train_flops"] += new_steps * dense
        state["accounted_steps"] = state["optimizer_steps"]
