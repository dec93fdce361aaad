"""The callback that rewires sparse networks during training (drop-and-grow)."""

import copy
import warnings
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse.common.config import NETWORKS, StepOrFraction, TopologyConfig
from sb3_sparse.common.flops import flops_report, network_sparsity
from sb3_sparse.common.policies import SparsePolicyMixin
from sb3_sparse.common.topology import rewire_layer


class TopologyState:
    """Where the topology updates of each network stand; saved with the model (``state_dict``)."""

    def __init__(self) -> None:
        self.networks: dict[str, dict[str, Any]] = {
            network: {
                "n_updates": 0,
                "last_update_step": -1,
                "last_changed_fraction": 0.0,
                "gradient_steps_at_last_update": 0,
            }
            for network in NETWORKS
        }

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.networks)

    def load_state_dict(self, state_dict: dict[str, dict[str, Any]], strict: bool = True) -> None:
        if strict and set(state_dict) != set(self.networks):
            raise ValueError(f"topology state has networks {sorted(state_dict)}, expected {sorted(self.networks)}")
        for network, values in state_dict.items():
            self.networks.setdefault(network, {}).update(values)

    @property
    def n_updates(self) -> int:
        return sum(values["n_updates"] for values in self.networks.values())


class TopologyUpdateCallback(BaseCallback):
    """
    Periodic drop-and-grow of the masked layers of a sparse policy.

    Use it with any SB3 off-policy algorithm whose policy is sparse, e.g.
    ``SAC(SparseSACPolicy, env).learn(n, callback=TopologyUpdateCallback())``;
    :class:`~sb3_sparse.SparseSAC` and :class:`~sb3_sparse.SparseTD3` add it themselves.
    Every ``topology_update_interval`` env steps, inside ``[topology_update_start, topology_update_end]``
    and only if the network was trained since its last update, each sparse layer drops its
    ``drop_fraction`` smallest active weights and grows as many new connections (see
    :func:`~sb3_sparse.common.topology.rewire_layer`); the target network then takes the new masks.
    Logs sparsity, drop fraction, changed fraction and FLOPs ratios under ``sparse/``.

    :param topology_update_interval: env steps between two topology updates
    :param drop_fraction: fraction of each layer's active weights moved per update (initial value
        of the cosine schedule)
    :param drop_fraction_schedule: ``"constant"`` or ``"cosine"``
    :param grow_method: ``"random"`` (SET), ``"gradient"`` (RigL) or ``"none"`` (static sparse)
    :param topology_update_start: first env step of updates (int) or fraction of the run (float)
    :param topology_update_end: last env step of updates (int) or fraction of the run (float)
    :param actor_topology_update_interval: the actor's own interval (default: the same)
    :param actor_grow_method: the actor's own grow method (default: the same; ``"none"``: static actor)
    :param state: schedule state to continue from (a model's ``topology_state``); a new one by default
    :param verbose: 1 to print each topology update
    """

    def __init__(
        self,
        topology_update_interval: int = 1000,
        drop_fraction: float = 0.1,
        drop_fraction_schedule: str = "constant",
        grow_method: str = "random",
        topology_update_start: StepOrFraction = 0,
        topology_update_end: StepOrFraction = 0.95,
        actor_topology_update_interval: int | None = None,
        actor_grow_method: str | None = None,
        state: TopologyState | None = None,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        self.config = TopologyConfig(
            topology_update_interval=topology_update_interval,
            drop_fraction=drop_fraction,
            drop_fraction_schedule=drop_fraction_schedule,
            grow_method=grow_method,
            topology_update_start=topology_update_start,
            topology_update_end=topology_update_end,
            actor_topology_update_interval=actor_topology_update_interval,
            actor_grow_method=actor_grow_method,
        )
        self.state = state if state is not None else TopologyState()
        self.window = (0, 0)
        self.previous_step = 0
        self.metrics: dict[str, float] = {}

    @property
    def sparse_policy(self) -> SparsePolicyMixin:
        return self.model.policy  # type: ignore[return-value]

    def _init_callback(self) -> None:
        if not isinstance(self.model.policy, SparsePolicyMixin):
            raise ValueError(
                f"TopologyUpdateCallback needs a sparse policy (e.g. SparseSACPolicy, SparseTD3Policy), "
                f"got {type(self.model.policy).__name__}"
            )

    def _on_training_start(self) -> None:
        self.window = self.config.resolve_window(self.model._total_timesteps)
        self.previous_step = self.model.num_timesteps
        for network in self.sparse_policy.masked_networks():
            grow_method = self.config.network_grow_method(network)
            layers = [layer for _, layer in self.sparse_policy.masked_layers(network)]
            for layer in layers:
                layer.track_dense_grad = grow_method == "gradient"
            if grow_method != "none" and layers:
                self._warn_if_no_update(network)
        self._refresh_metrics()

    def _warn_if_no_update(self, network: str) -> None:
        """Say so when the run is too short for any topology update (it would silently be static)."""
        interval = self.config.interval(network)
        start, end = self.window
        first_update = (max(self.previous_step, start - 1) // interval + 1) * interval
        last_step = min(end, self.model._total_timesteps)
        if first_update > last_step:
            warnings.warn(
                f"no topology update of the {network} will happen in this run: the first update step "
                f"({first_update}) is after the last step of updates ({last_step}); lower "
                "topology_update_interval or raise topology_update_end (the network stays static sparse)"
            )

    def _on_step(self) -> bool:
        step = self.num_timesteps
        for network in self.sparse_policy.masked_networks():
            interval = self.config.interval(network)
            if step // interval > self.previous_step // interval:
                self.update_topology(network, step)
        self.previous_step = step
        return True

    def _on_rollout_end(self) -> None:
        for key, value in self.metrics.items():
            self.logger.record(key, value)
        for network in self.sparse_policy.masked_networks():
            fraction = 0.0
            if self.config.network_grow_method(network) != "none":
                fraction = self.config.drop_fraction_at(self.num_timesteps, *self.window)
            self.logger.record(f"sparse/{network}_drop_fraction", fraction)

    def update_topology(self, network: str, step: int) -> int:
        """Drop-and-grow every sparse layer of ``network`` now, if it is due; return the connections moved."""
        policy = self.sparse_policy
        grow_method = self.config.network_grow_method(network)
        drop_fraction = self.config.drop_fraction_at(step, *self.window)
        record = self.state.networks[network]
        layers = [layer for _, layer in policy.masked_layers(network)]
        trained = self.model._n_updates > record["gradient_steps_at_last_update"]  # type: ignore[attr-defined]
        if grow_method == "none" or drop_fraction == 0.0 or not layers or not trained:
            return 0
        if grow_method == "gradient" and any(layer.dense_grad is None for layer in layers):
            return 0
        optimizer: th.optim.Optimizer = policy.masked_networks()[network][0].optimizer  # type: ignore[assignment]
        moved = sum(rewire_layer(layer, drop_fraction, grow_method, optimizer) for layer in layers)
        policy.sync_target_masks(network)
        record["n_updates"] += 1
        record["last_update_step"] = step
        record["last_changed_fraction"] = moved / max(1, sum(layer.n_active for layer in layers))
        record["gradient_steps_at_last_update"] = self.model._n_updates  # type: ignore[attr-defined]
        self._refresh_metrics()
        if self.verbose >= 1:
            print(
                f"Topology update at step {step}: {network} moved {moved} connections "
                f"({record['last_changed_fraction']:.2%} of active, drop fraction {drop_fraction:.3f})"
            )
        return moved

    def _refresh_metrics(self) -> None:
        sparsity = network_sparsity(self.sparse_policy)
        report = flops_report(self.sparse_policy)
        self.metrics = {f"sparse/{name}_sparsity": value for name, value in sparsity.items()}
        for network, values in self.state.networks.items():
            self.metrics[f"sparse/{network}_changed_fraction"] = values["last_changed_fraction"]
        self.metrics["sparse/n_topology_updates"] = self.state.n_updates
        self.metrics["sparse/train_flops_ratio"] = report["training_flops_ratio"]
        self.metrics["sparse/inference_flops_ratio"] = report["inference_flops_ratio"]
