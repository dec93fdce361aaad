"""The callback that drives the sparse engine during SB3 training."""

import math
from typing import Any, NamedTuple

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_sparse.common.flops import flops_report, module_sparsity
from sb3_sparse.common.policies import SparsePolicyMixin
from sb3_sparse.core.engine import ModuleBinding, SparseEngine

#: Attribute of the model that holds the engine's state (a plain dict, saved with the model).
STATE_ATTRIBUTE = "dst_state"


class Rollouts(NamedTuple):
    """How an on-policy algorithm trains: a rollout of ``env_steps``, then ``gradient_steps`` optimizer steps."""

    env_steps: int
    gradient_steps: int


def on_policy_rollouts(model: Any) -> Rollouts | None:
    """The rollouts of an SB3 on-policy model (PPO, A2C and their subclasses), ``None`` for an off-policy one.

    An optimisation phase is ``n_epochs`` passes (1 without the attribute: A2C) over the rollout in minibatches of
    ``batch_size`` (the whole rollout without one), the last one shorter as SB3's rollout buffer makes it; PPO's
    ``target_kl`` may stop a phase early, so this is the most it does.
    """
    if not isinstance(model, OnPolicyAlgorithm):
        return None
    env_steps = model.n_steps * model.n_envs
    batch_size = getattr(model, "batch_size", None) or env_steps
    return Rollouts(env_steps, getattr(model, "n_epochs", 1) * math.ceil(env_steps / batch_size))


class TopologyUpdateCallback(BaseCallback):
    """
    Updates the masks of a sparse policy's modules on their regimes' schedules.

    Use it with any SB3 algorithm whose policy is sparse, e.g.
    ``SAC(SparseSACPolicy, env).learn(n, callback=TopologyUpdateCallback())`` or
    ``PPO(SparseActorCriticPolicy, env).learn(n, callback=TopologyUpdateCallback())``; the sparse algorithms
    (:class:`~sb3_sparse.SparseSAC`, ...) add it themselves. An off-policy model's masks are updated at the env
    step where an update is due; an on-policy model's (:func:`on_policy_rollouts`) only between an optimisation
    phase and the next rollout, so that a rollout is collected, and then optimised, by one network: the updates
    that a rollout and its optimisation crossed are made at the start of the next rollout (or at the end of
    training), gradient-grown ones from the dense gradients of the phase's last minibatch. The schedule state is
    kept on the model (``model.dst_state``), so it is saved with it and a later ``learn(..., reset_num_timesteps=False)``
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
        self.rollouts: Rollouts | None = None
        self._rollout_start = 0  # the env step at which the current rollout started (on-policy)
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
        self.rollouts = on_policy_rollouts(self.model)
        self._bind()
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
        optimizer_steps = self.engine.module_state(name)["optimizer_steps"]
        if self.rollouts is not None:
            remaining_rollouts = math.ceil(max(0, total - self.num_timesteps) / self.rollouts.env_steps)
            return int(optimizer_steps + remaining_rollouts * self.rollouts.gradient_steps)
        model: Any = self.model
        train_freq = getattr(model, "train_freq", None)
        frequency = getattr(train_freq, "frequency", 1) or 1
        gradient_steps = getattr(model, "gradient_steps", 1)
        per_env_step = (frequency if gradient_steps < 0 else gradient_steps) / frequency
        if name in self.sparse_policy.delayed_modules:
            per_env_step /= getattr(model, "policy_delay", 1)
        learning_starts = getattr(model, "learning_starts", 0)
        remaining = max(0, total - max(self.num_timesteps, learning_starts))
        return int(optimizer_steps + remaining * per_env_step)

    def _lookahead(self, name: str) -> int:
        """How far the module's clock can move between two of its optimizer steps (the engine keeps dense
        gradients for a gradient-grown update that far ahead)."""
        assert self.engine is not None
        model: Any = self.model
        config = self.engine.configs[name]
        if self.rollouts is not None:  # the engine steps once per rollout
            return self.rollouts.env_steps if config.schedule_unit == "env_steps" else self.rollouts.gradient_steps
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

    def _bind(self) -> None:
        # Where the networks and optimizers are, once per rollout (a user may replace an optimizer between
        # two calls of learn or in a callback; within a rollout, no training happens)
        assert self.engine is not None
        self.bindings = self.sparse_policy.sparse_bindings()
        self.engine.attach(self.bindings)

    def _on_rollout_start(self) -> None:
        self._bind()
        if self.rollouts is not None:
            # the updates due, and nothing armed while the rollout is collected (no training happens then)
            self._rollout_start = self.num_timesteps
            self._update_topology(lookahead=dict.fromkeys(self.bindings, 0))

    def _on_step(self) -> bool:
        if self.rollouts is None:
            self._update_topology()
        return True

    def _update_topology(self, env_step: int | None = None, lookahead: dict[str, int] | None = None) -> None:
        """Make the updates due at ``env_step`` (default: now), keeping dense gradients and arming plasticity probes
        ``lookahead`` steps ahead (default: the training frequency's)."""
        assert self.engine is not None
        now = self.num_timesteps if env_step is None else env_step
        updated = self.engine.step(self.bindings, now, self.horizons, self.lookahead if lookahead is None else lookahead)
        self._record_plasticity()
        if updated:
            self._refresh_mask_metrics()
            self._record_metrics()
            if self.verbose >= 1:
                for name in updated:
                    fraction = self.engine.module_state(name)["changed_fraction"]
                    print(f"Mask update at step {self.num_timesteps}: {name} changed {fraction:.2%} of its active weights")

    def _on_rollout_end(self) -> None:
        if self.rollouts is not None:
            # dense gradients and plasticity probes for the optimisation phase that follows: the clock read as at the
            # rollout's start, so that no update happens before the phase
            self._update_topology(env_step=self._rollout_start)
        self._record_metrics()

    def _on_training_end(self) -> None:
        if self.engine is not None:
            self._update_topology()  # the updates crossed by the last training phase (e.g. a train() of many gradient steps)
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
