"""SparseCrossQ: CrossQ (sb3-contrib) with dynamic sparse training."""

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import torch as th
from sb3_contrib import CrossQ
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from torch.nn import functional as F

from sb3_sparse.common import training
from sb3_sparse.common.algorithm import SparseAlgorithmMixin
from sb3_sparse.crossq.policies import BroPolicy, MlpPolicy, SimbaPolicy, SparseCrossQPolicy

SelfSparseCrossQ = TypeVar("SelfSparseCrossQ", bound="SparseCrossQ")


class SparseCrossQ(SparseAlgorithmMixin, CrossQ):
    """
    CrossQ with sparse actor and critics whose topology evolves during training.

    Takes every argument of :class:`sb3_contrib.CrossQ` (same defaults), plus the DST arguments below,
    with the defaults of :class:`~sb3_sparse.SparseSAC` (DS-SAC at 50% sparsity): every linear layer but
    the output layers sparse, random initial masks, a topology update every 1000 env steps that moves
    10% of each layer's active weights (magnitude drop, random growth) until 95% of the run. The
    BatchRenorm layers stay dense; CrossQ has no target networks. The actor is trained once every
    ``policy_delay`` gradient steps (its ``gradient_steps`` schedule unit counts those steps).

    :param policy: The policy model to use (MlpPolicy or a sparse policy class)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate for adam optimizer (can be a function of the remaining progress)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps, or a tuple of frequency and unit
    :param gradient_steps: How many gradient steps to do after each rollout (-1: as many as env steps)
    :param action_noise: the action noise type (None by default)
    :param replay_buffer_class: Replay buffer class to use (``ReplayBuffer`` by default)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
    :param n_steps: number of steps for n-step returns
    :param ent_coef: Entropy regularization coefficient ('auto' to learn it)
    :param target_entropy: target entropy when learning ``ent_coef`` (``ent_coef = 'auto'``)
    :param policy_delay: the actor is updated once every ``policy_delay`` gradient steps
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
        "SimbaPolicy": SimbaPolicy,
        "BroPolicy": BroPolicy,
    }
    policy: SparseCrossQPolicy

    def __init__(
        self,
        policy: str | type[SparseCrossQPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        policy_delay: int = 3,
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
                gamma=gamma,
                train_freq=train_freq,
                gradient_steps=gradient_steps,
                action_noise=action_noise,
                replay_buffer_class=replay_buffer_class,
                replay_buffer_kwargs=replay_buffer_kwargs,
                optimize_memory_usage=optimize_memory_usage,
                n_steps=n_steps,
                ent_coef=ent_coef,
                target_entropy=target_entropy,
                policy_delay=policy_delay,
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
        self: SelfSparseCrossQ,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SparseCrossQ",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSparseCrossQ:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=self._with_topology_callback(callback),
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """sb3-contrib's CrossQ step (same mathematics, same random draws and float operations, the same BatchRenorm
        train and eval modes) without the work it throws away: the actor loss back-propagates into the actor only,
        not into the critics' weights (whose gradient hooks, and so the dense gradients of gradient growth, see the
        critic loss alone)."""
        training.start_training(self)
        critic_only = training.parameters_not_in(self.critic, self.actor)
        ent_coef_losses, ent_coefs = [], []
        actor_losses, critic_losses = [], []

        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data, discounts = training.sample_replay(self, batch_size)
            # detached, so that the other losses do not change it (softlearning issue 60)
            ent_coef = th.exp(self.log_ent_coef.detach()) if self.log_ent_coef is not None else self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())

            with th.no_grad():
                self.actor.set_bn_training_mode(False)
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)

            # One forward pass of the current and the next state-actions: the critic's BatchRenorm statistics are
            # those of their mixture (CrossQ has no target network).
            all_obs = th.cat([replay_data.observations, replay_data.next_observations], dim=0)
            all_actions = th.cat([replay_data.actions, next_actions], dim=0)
            self.critic.set_bn_training_mode(True)
            all_q_values = th.cat(self.critic(all_obs, all_actions), dim=1)
            self.critic.set_bn_training_mode(False)
            # (2 * batch_size, n_critics) -> (n_critics, batch_size, 1) and (batch_size, n_critics)
            current_q_values, next_q_values = th.split(all_q_values, batch_size, dim=0)
            current_q_values = current_q_values.T[..., None]

            with th.no_grad():
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            critic_loss = 0.5 * sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)  # for type checker
            critic_losses.append(training.backward(self.critic.optimizer, critic_loss))
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                # the actor's BatchRenorm statistics follow the current states
                self.actor.set_bn_training_mode(True)
                actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
                log_prob = log_prob.reshape(-1, 1)
                self.actor.set_bn_training_mode(False)
                if self.ent_coef_optimizer is not None:
                    ent_coef_losses.append(training.entropy_coefficient_step(self, log_prob))

                # the actor loss reads the critics with their BatchRenorm layers in eval mode
                self.critic.set_bn_training_mode(False)
                with training.no_gradient_for(critic_only):
                    q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
                    min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
                    actor_losses.append(training.backward(self.actor.optimizer, (ent_coef * log_prob - min_qf_pi).mean()))
                self.actor.optimizer.step()

        losses = {"ent_coef": ent_coefs, "actor_loss": actor_losses, "critic_loss": critic_losses}
        training.record_training(self.logger, self._n_updates, {**losses, "ent_coef_loss": ent_coef_losses})
