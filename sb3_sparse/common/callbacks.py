"""The callback that drives the sparse engine during SB3 training."""

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse.common.flops import flops_report, module_sparsity
from sb3_sparse.common.policies import SparsePolicyMixin
from sb3_sparse.core.engine import ModuleBinding, SparseEngine

#: Attribute of the model that holds the engine's state (a plain dict, saved with the model).
STATE_ATTRIBUTE = "dst_state"


class TopologyUpdateCallback(BaseCallback):
    """
    Updates the masks of a sparse policy's modules on their regimes' schedules.

    Use it with any SB3 off-policy algorithm whose policy is sparse, e.g.
    ``SAC(SparseSACPolicy, env).learn(n, callback=TopologyUpdateCallback())``; the sparse algorithms
    (:class:`~sb3_sparse.SparseSAC`, ...) add it themselves. The schedule state is kept on the model
    (``model.dst_state``), so it is saved with it and a later ``learn(..., reset_num_timesteps=False)``
    continues it. When each module updates is its :class:`~sb3_sparse.core.schedules.UpdateSchedule`'s to say (the
    engine asks it, for the run's length that :meth:`_horizon` gives). Logs sparsity, changed and drop fractions,
    the agent's number of mask updates and FLOPs ratios under ``sparse/``, and each module's
    plasticity diagnostics under ``plasticity/<module>_<metric>`` when the engine measures them (once per
    ``topology_update_interval``, unless ``plasticity_metrics=False``; see :mod:`sb3_sparse.core.plasticity`).

    :param verbose: 1 to print each mask update
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose)
        self.engine: SparseEngine | None = None
        self.horizons: dict[str, int] = {}
        self.lookahead: dict[str, int] = {}
        self.bindings: dict[str, ModuleBinding] = {}
        # sparsity and FLOPs only change with the masks: computed after updates, logged every rollout
        self.mask_metrics: dict[str, float] = {}
        # the boundary of the last plasticity measurement of each module that was logged
        self._plasticity_logged: dict[str, Any] = {}

    @property
    def sparse_policy(self) -> SparsePolicyMixin:
        return self.model.policy  # type: ignore[return-value]

    def _init_callback(self) -> None:
        if not isinstance(self.model.policy, SparsePolicyMixin):
            raise ValueError(
                f"TopologyUpdateCallback needs a sparse policy (e.g. SparseSACPolicy), got {type(self.model.policy).__name__}"
            )

    def _on_training_start(self) -> None:
        state = self.model.__dict__.setdefault(STATE_ATTRIBUTE, {})
        self.engine = SparseEngine(self.sparse_policy.module_configs, state)
        self._on_rollout_start()
        self.horizons = {name: self._horizon(name) for name in self.bindings}
        self.lookahead = {name: self._lookahead(name) for name in self.bindings}
        for name in self.bindings:
            self._notice_if_no_update(name)
        # measurements of an earlier run of learn were logged then
        self._plasticity_logged = {name: self.engine.module_state(name).get("plasticity_step") for name in self.engine.configs}
        self._refresh_mask_metrics()
        self._record_metrics()

    def _horizon(self, name: str) -> int:
        """The run length in the module's schedule unit (env steps, or its expected optimizer steps)."""
        assert self.engine is not None
        total = self.model._total_timesteps
        if self.engine.configs[name].schedule_unit == "env_steps":
            return total
        model: Any = self.model
        train_freq = getattr(model, "train_freq", None)
        frequency = getattr(train_freq, "frequency", 1) or 1
        gradient_steps = getattr(model, "gradient_steps", 1)
        per_env_step = (frequency if gradient_steps < 0 else gradient_steps) / frequency
        if name in self.sparse_policy.delayed_modules:
            per_env_step /= getattr(model, "policy_delay", 1)
        learning_starts = getattr(model, "learning_starts", 0)
        remaining = max(0, total - max(self.num_timesteps, learning_starts))
        return int(self.engine.module_state(name)["optimizer_steps"] + remaining * per_env_step)

    def _lookahead(self, name: str) -> int:
        """How far the module's clock can move between two of its optimizer steps (the engine keeps dense
        gradients for a gradient-grown update that far ahead)."""
        assert self.engine is not None
        model: Any = self.model
        config = self.engine.configs[name]
        train_freq = getattr(model, "train_freq", None)
        frequency = getattr(train_freq, "frequency", 1) or 1
        if getattr(getattr(train_freq, "unit", None), "value", "step") != "step":
            return config.topology_update_interval  # trained at the end of episodes: any step may be the last
        delay = getattr(model, "policy_delay", 1) if name in self.sparse_policy.delayed_modules else 1
        n_envs = getattr(model, "n_envs", 1) or 1  # one call per step of all the envs, which trains every frequency calls
        if config.schedule_unit == "env_steps":
            return frequency * delay * n_envs
        gradient_steps = getattr(model, "gradient_steps", 1)
        return max(1, frequency * n_envs if gradient_steps < 0 else gradient_steps)

    def _notice_if_no_update(self, name: str) -> None:
        """Say once (through the logger, shown with verbose >= 1) when no update can happen in this run."""
        assert self.engine is not None
        schedule = self.engine.schedule(name, self.horizons[name])
        now = self.engine.clock(name, self.num_timesteps)
        if schedule.regime.dynamic and schedule.next_update(now) is None:
            self.logger.log(
                f"sb3-sparse: no mask update of module {name!r} in this run: no multiple of topology_update_interval "
                f"({schedule.interval}) after step {now} lies in both the update window (steps {schedule.start} to "
                f"{schedule.end}) and the run ({schedule.horizon} steps); lower topology_update_interval or raise "
                "topology_update_end"
            )

    def _on_rollout_start(self) -> None:
        # Where the networks and optimizers are, once per rollout (a user may replace an optimizer between
        # two calls of learn or in a callback; within a rollout, no training happens)
        assert self.engine is not None
        self.bindings = self.sparse_policy.sparse_bindings()
        self.engine.attach(self.bindings)

    def _on_step(self) -> bool:
        assert self.engine is not None
        updated = self.engine.step(self.bindings, self.num_timesteps, self.horizons, self.lookahead)
        self._record_plasticity()
        if updated:
            self._refresh_mask_metrics()
            self._record_metrics()
            if self.verbose >= 1:
                for name in updated:
                    fraction = self.engine.module_state(name)["changed_fraction"]
                    print(f"Mask update at step {self.num_timesteps}: {name} changed {fraction:.2%} of its active weights")
        return True

    def _on_rollout_end(self) -> None:
        self._record_metrics()

    def _on_training_end(self) -> None:
        if self.engine is not None:
            self._on_step()  # the updates crossed by the last training phase (e.g. a train() of many gradient steps)
            self.engine.detach()

    def _refresh_mask_metrics(self) -> None:
        report = flops_report(self.sparse_policy)
        self.mask_metrics = {f"sparse/{name}_sparsity": value for name, value in module_sparsity(self.sparse_policy).items()}
        self.mask_metrics["sparse/train_flops_ratio"] = report["training_flops_ratio"]
        self.mask_metrics["sparse/inference_flops_ratio"] = report["inference_flops_ratio"]

    def _record_plasticity(self) -> None:
        """Log each new plasticity measurement of the engine once (``plasticity/<module>_<metric>``)."""
        assert self.engine is not None
        for name in self.engine.configs:
            state = self.engine.module_state(name)
            step = state.get("plasticity_step")
            if step is not None and step != self._plasticity_logged.get(name):
                self._plasticity_logged[name] = step
                for metric, value in state["plasticity"].items():
                    self.logger.record(f"plasticity/{name}_{metric}", value)

    def _record_metrics(self) -> None:
        """Log the mask metrics and, from the engine's state, each module's last changed and drop fractions, the
        agent's number of mask updates and the run's FLOPs ratio."""
        assert self.engine is not None
        for key, value in self.mask_metrics.items():
            self.logger.record(key, value)
        train_flops = dense_train_flops = 0.0
        for name in self.engine.configs:
            state = self.engine.module_state(name)
            train_flops += state["train_flops"]
            dense_train_flops += state["dense_train_flops"]
            self.logger.record(f"sparse/{name}_changed_fraction", state["changed_fraction"])
            self.logger.record(f"sparse/{name}_drop_fraction", state["drop_fraction"])
        self.logger.record("sparse/n_topology_updates", self.engine.state["n_updates"])
        if dense_train_flops > 0:
            self.logger.record("sparse/run_train_flops_ratio", train_flops / dense_train_flops)
