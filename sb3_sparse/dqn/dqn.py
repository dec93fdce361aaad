"""SparseDQN: Deep Q-Network with dynamic sparse training."""

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.dqn import DQN

from sb3_sparse.common.algorithm import SparseAlgorithmMixin
from sb3_sparse.common.targets import check_mellowmax_parameters, get_target_operator
from sb3_sparse.dqn.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseDQNPolicy

SelfSparseDQN = TypeVar("SelfSparseDQN", bound="SparseDQN")


class SparseDQN(SparseAlgorithmMixin, DQN):
    """
    Deep Q-Network with a sparse Q-network whose topology evolves during training.

    Takes every argument of :class:`stable_baselines3.DQN` (same defaults), plus the DST arguments
    below. The defaults: 50% sparsity in every layer of the Q-network's MLP but the output layer,
    random initial masks, a topology update every 1000 env steps that moves 10% of each layer's active
    weights (magnitude drop, random growth) until 95% of the run; the target network follows the masks.
    The features extractor stays dense. The TD target bootstraps with the max over the target network's
    Q-values, as in SB3 (``target_operator="soft_mellowmax"``: MAST's operator, Hu et al., 2024).

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy or a sparse policy class)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate (can be a function of the remaining progress)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1), 1 for hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps, or a tuple of frequency and unit
    :param gradient_steps: How many gradient steps to do after each rollout (-1: as many as env steps)
    :param replay_buffer_class: Replay buffer class to use (``ReplayBuffer`` by default)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param optimize_memory_usage: Enable a memory efficient variant of the replay buffer
    :param n_steps: number of steps for n-step returns
    :param target_update_interval: update the target network every ``target_update_interval`` environment steps
    :param exploration_fraction: fraction of entire training period over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability
    :param exploration_final_eps: final value of random action probability
    :param max_grad_norm: The maximum value for the gradient clipping
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
        ``{"q_net": {"regime": "rigl", "sparsity": 0.8}}``; modules: ``"q_net"``
    :param target_operator: how the TD target reduces the target network's next Q-values over the actions:
        ``"max"`` (SB3's DQN: its ``train`` runs unchanged), ``"soft_mellowmax"`` (Gan et al., 2020, used by
        MAST) or an operator added with :func:`~sb3_sparse.common.targets.register_target_operator`
        (called as ``fn(q, dim=1)``)
    :param mellowmax_omega: Soft Mellowmax's ``omega`` (> 0; the larger, the closer to the max). Only
        read by ``"soft_mellowmax"`` (always validated). MAST gives a range (5 to 10), not one value: the
        default is our choice
    :param mellowmax_alpha: Soft Mellowmax's ``alpha`` (>= 0; 0 is the plain mellowmax). Only read by
        ``"soft_mellowmax"`` (always validated). MAST gives no value: the default is our choice
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: SparseDQNPolicy

    def __init__(
        self,
        policy: str | type[SparseDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
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
        target_operator: str = "max",
        mellowmax_omega: float = 10.0,
        mellowmax_alpha: float = 1.0,
        _init_setup_model: bool = True,
    ) -> None:
        self._init_dst(locals())
        get_target_operator(target_operator)
        self.target_operator = target_operator
        self.mellowmax_omega, self.mellowmax_alpha = check_mellowmax_parameters(
            mellowmax_omega, mellowmax_alpha, prefix="mellowmax_"
        )
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
                replay_buffer_class=replay_buffer_class,
                replay_buffer_kwargs=replay_buffer_kwargs,
                optimize_memory_usage=optimize_memory_usage,
                n_steps=n_steps,
                target_update_interval=target_update_interval,
                exploration_fraction=exploration_fraction,
                exploration_initial_eps=exploration_initial_eps,
                exploration_final_eps=exploration_final_eps,
                max_grad_norm=max_grad_norm,
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
        self: SelfSparseDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SparseDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSparseDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=self._with_topology_callback(callback),
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's :meth:`~stable_baselines3.DQN.train`, with ``target_operator`` in place of the max."""
        if self.target_operator == "max":
            super().train(gradient_steps, batch_size)
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                next_q_values = self._next_state_values(self.q_net_target(replay_data.next_observations))
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = self.q_net(replay_data.observations)
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def _next_state_values(self, next_q_values: th.Tensor) -> th.Tensor:
        """The target operator over the actions of the target network's ``next_q_values``, shaped ``[batch, 1]``."""
        operator = get_target_operator(self.target_operator)
        params: dict[str, float] = {}
        if self.target_operator == "soft_mellowmax":
            params = {"omega": self.mellowmax_omega, "alpha": self.mellowmax_alpha}
        return operator(next_q_values, dim=1, **params).reshape(-1, 1)
