"""SparseTQC: Truncated Quantile Critics (sb3-contrib) with dynamic sparse training."""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch as th
from sb3_contrib import TQC
from sb3_contrib.common.utils import quantile_huber_loss
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

from sb3_sparse.common.algorithm import SparseAlgorithmMixin
from sb3_sparse.common.training import (
    backward,
    entropy_coefficient,
    no_gradient_for,
    parameters_not_in,
    record_training,
    sample_replay,
    start_training,
    update_targets,
)
from sb3_sparse.tqc.policies import BroPolicy, CnnPolicy, MlpPolicy, MultiInputPolicy, SimbaPolicy, SparseTQCPolicy

SelfSparseTQC = TypeVar("SelfSparseTQC", bound="SparseTQC")


class SparseTQC(SparseAlgorithmMixin, TQC):
    """
    Truncated Quantile Critics with sparse actor and quantile critics whose topology evolves during training.

    Takes every argument of :class:`sb3_contrib.TQC` (same defaults), plus the DST arguments below,
    with the defaults of :class:`~sb3_sparse.SparseSAC` (DS-SAC at 50% sparsity): every layer but the
    output layers (the actor's heads, each quantile network's last layer) sparse, random initial masks,
    a topology update every 1000 env steps that moves 10% of each layer's active weights (magnitude
    drop, random growth) until 95% of the run; the target critics follow the critics' masks.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy or a sparse policy class)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate for adam optimizer (can be a function of the remaining progress)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1)
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps, or a tuple of frequency and unit
    :param gradient_steps: How many gradient steps to do after each rollout (-1: as many as env steps)
    :param action_noise: the action noise type (None by default)
    :param replay_buffer_class: Replay buffer class to use (``ReplayBuffer`` by default)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
    :param n_steps: number of steps for n-step returns
    :param ent_coef: Entropy regularization coefficient ('auto' to learn it)
    :param target_update_interval: update the target network every ``target_update_interval`` gradient steps
    :param target_entropy: target entropy when learning ``ent_coef`` (``ent_coef = 'auto'``)
    :param top_quantiles_to_drop_per_net: Number of quantiles to drop per network
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
    :param use_sde_at_warmup: Whether to use gSDE instead of uniform sampling during the warm up phase
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (not the DST
        settings, which are arguments of this class)
    :param verbose: Verbosity level: 0 no output, 1 info (and one line per topology update), 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run
    :param regime: how the masks evolve: ``"set"`` (drop by magnitude, grow at random), ``"rigl"`` (grow
        by dense gradient), ``"static"``, ``"gmp"`` (dense-to-sparse pruning), ``"ne"`` (sparse-to-dense
        growth), ``"dense"`` or a registered regime
    :param sparsity: (final) fraction of the sparse layers' weights that are pruned, in [0, 1)
    :param initial_sparsity: sparsity of the initial masks (default: the regime's: ``gmp`` 0, ``ne`` 0.8,
        the others ``sparsity``)
    :param sparsity_distribution: how a module's sparsity is spread over its layers: ``"uniform"``,
        ``"erdos_renyi"`` (solved for ``sparsity``, or from ``erdos_renyi_lambdas``) or ``"erk"``
    :param erdos_renyi_lambdas: one Erdos-Renyi lambda per sparse layer depth, e.g. ``[7, 64]`` (DS-TD3)
    :param sparse_layers: which linear layers are sparse: ``"input"`` (first layer), ``"hidden"``,
        ``"output"`` (the heads), a list of these, or ``"all"``. Default: all but the output layer
    :param mask_init: initial mask: ``"random"`` or ``"magnitude"`` (largest initial weights, RLx2)
    :param topology_update_interval: steps between two mask updates
    :param drop_fraction: fraction of each sparse layer's active weights dropped and regrown per update
        (initial value of the cosine schedule)
    :param drop_fraction_schedule: ``"constant"`` or ``"cosine"`` (decays to 0 at ``topology_update_end``)
    :param topology_update_start: first step of mask updates (int), or fraction of the run (float)
    :param topology_update_end: last step of mask updates (int), or fraction of the run (float); ``gmp``
        and ``ne`` reach their final sparsity there
    :param schedule_unit: ``"env_steps"`` or ``"gradient_steps"`` (each module's own optimizer steps)
    :param backend: what computes the sparse layers' products: ``"auto"`` (per layer and batch, CSR or condensed
        products where they were measured faster, dense masked products elsewhere), ``"masked"``, ``"csr"`` or
        ``"condensed"`` (gathered sums of each unit's active weights, for constant fan-in)
    :param plasticity_metrics: log each module's plasticity diagnostics (dormant-unit ratio, near-zero weight
        fraction, feature rank, weight and gradient norms) under ``plasticity/`` once per
        ``topology_update_interval``; ``False`` switches them off (no hook is set at all)
    :param dormant_threshold: ReDo's tau, in [0, 1): a unit whose mean ``|activity|`` over a batch, divided by
        its layer's mean, is at most this is dormant (dormant ratio, ``recycle_dormant``, ``ne``)
    :param recycle_dormant: recycle the dormant units at each update of a module, as ReDo does (fresh incoming
        weights, zero outgoing weights, fresh optimizer state), whatever its regime (``static`` and ``dense``
        modules at each ``topology_update_interval`` of their update window)
    :param ablation_threshold: SRigL's gamma_sal, in [0, 1], for the ``srigl`` regime: at an update, a unit with
        fewer than this fraction of its fan-in among the weights RigL would keep or grow is ablated (0: never)
    :param modules: per-module overrides of the settings above, e.g.
        ``{"actor": {"regime": "static"}, "critic": {"regime": "rigl", "sparsity": 0.8}}``; modules:
        ``"actor"``, ``"critic"``
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
        "SimbaPolicy": SimbaPolicy,
        "BroPolicy": BroPolicy,
    }
    policy: SparseTQCPolicy

    def __init__(
        self,
        policy: str | type[SparseTQCPolicy],
        env: GymEnv | str,
        learning_rate: float | Callable = 3e-4,
        buffer_size: int = 1000000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        top_quantiles_to_drop_per_net: int = 2,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        regime: str = "set",
        sparsity: float = 0.5,
        initial_sparsity: float | None = None,
        sparsity_distribution: str = "uniform",
        erdos_renyi_lambdas: Sequence[float] | None = None,
        sparse_layers: str | Sequence[str] = ("input", "hidden"),
        mask_init: str = "random",
        topology_update_interval: int = 1000,
        drop_fraction: float = 0.1,
        drop_fraction_schedule: str = "constant",
        topology_update_start: int | float = 0,
        topology_update_end: int | float = 0.95,
        schedule_unit: str = "env_steps",
        backend: str = "auto",
        plasticity_metrics: bool = True,
        dormant_threshold: float = 0.1,
        recycle_dormant: bool = False,
        ablation_threshold: float = 0.3,
        modules: dict[str, dict[str, Any]] | None = None,
        _init_setup_model: bool = True,
    ):
        self._init_dst(locals())
        try:
            super().__init__(
                policy,
                env,
                learning_rate=learning_rate,
                buffer_size=buffer_size,
                learning_starts=learning_starts,
                batch_size=batch_size,
                tau=tau,
                gamma=gamma,
                train_freq=train_freq,
                gradient_steps=gradient_steps,
                action_noise=action_noise,
                replay_buffer_class=replay_buffer_class,
                replay_buffer_kwargs=replay_buffer_kwargs,
                optimize_memory_usage=optimize_memory_usage,
                n_steps=n_steps,
                ent_coef=ent_coef,
                target_update_interval=target_update_interval,
                target_entropy=target_entropy,
                top_quantiles_to_drop_per_net=top_quantiles_to_drop_per_net,
                use_sde=use_sde,
                sde_sample_freq=sde_sample_freq,
                use_sde_at_warmup=use_sde_at_warmup,
                stats_window_size=stats_window_size,
                tensorboard_log=tensorboard_log,
                policy_kwargs=policy_kwargs,
                verbose=verbose,
                seed=seed,
                device=device,
                _init_setup_model=_init_setup_model,
            )
        except AssertionError as error:
            self._check_spaces(error)

    def learn(
        self: SelfSparseTQC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SparseTQC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSparseTQC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=self._with_topology_callback(callback),
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """sb3-contrib's TQC step (same mathematics, same random draws and float operations) without the work it
        throws away: the actor loss back-propagates into the actor only, not into the quantile critics' weights
        (whose gradient hooks, and so the dense gradients of gradient growth, see the critic loss alone); the
        target networks are updated in one call per operation."""
        start_training(self)
        critic_only = parameters_not_in(self.critic, self.actor)
        critic_params, target_params = list(self.critic.parameters()), list(self.critic_target.parameters())
        # quantiles kept per sample after dropping the top ones of each net, to control overestimation
        n_target_quantiles = self.critic.quantiles_total - self.top_quantiles_to_drop_per_net * self.critic.n_critics
        ent_coef_losses: list[float] = []
        ent_coefs: list[float] = []
        actor_losses, critic_losses = [], []

        for gradient_step in range(gradient_steps):
            replay_data, discounts = sample_replay(self, batch_size)
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef = entropy_coefficient(self, log_prob, ent_coef_losses)
            ent_coefs.append(ent_coef.item())

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
                # batch x nets x quantiles, sorted over nets and quantiles, the top ones dropped
                next_quantiles = self.critic_target(replay_data.next_observations, next_actions)
                next_quantiles, _ = th.sort(next_quantiles.reshape(batch_size, -1))
                next_quantiles = next_quantiles[:, :n_target_quantiles]
                # td error + entropy term
                target_quantiles = next_quantiles - ent_coef * next_log_prob.reshape(-1, 1)
                target_quantiles = replay_data.rewards + (1 - replay_data.dones) * discounts * target_quantiles
                # broadcastable to (batch_size, n_critics, n_target_quantiles)
                target_quantiles.unsqueeze_(dim=1)

            current_quantiles = self.critic(replay_data.observations, replay_data.actions)
            # not summed over the quantile dimension, as in sb3-contrib (the paper sums)
            critic_loss = quantile_huber_loss(current_quantiles, target_quantiles, sum_over_quantiles=False)
            critic_losses.append(backward(self.critic.optimizer, critic_loss))
            self.critic.optimizer.step()

            with no_gradient_for(critic_only):
                qf_pi = self.critic(replay_data.observations, actions_pi).mean(dim=2).mean(dim=1, keepdim=True)
                actor_losses.append(backward(self.actor.optimizer, (ent_coef * log_prob - qf_pi).mean()))
            self.actor.optimizer.step()
            if gradient_step % self.target_update_interval == 0:
                update_targets(self, critic_params, target_params)

        self._n_updates += gradient_steps
        losses = {"ent_coef": ent_coefs, "actor_loss": actor_losses, "critic_loss": critic_losses}
        record_training(self.logger, self._n_updates, {**losses, "ent_coef_loss": ent_coef_losses})
