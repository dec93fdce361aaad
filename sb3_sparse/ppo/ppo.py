"""SparsePPO: Proximal Policy Optimization (clip version) with dynamic sparse training."""

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_sparse.common.algorithm import SparseAlgorithmMixin
from sb3_sparse.ppo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SparseActorCriticPolicy

SelfSparsePPO = TypeVar("SelfSparsePPO", bound="SparsePPO")


class SparsePPO(SparseAlgorithmMixin, PPO):
    """
    Proximal Policy Optimization (clip version) with a sparse actor and critic whose topology evolves during training.

    Takes every argument of :class:`stable_baselines3.PPO` (same defaults), plus the DST arguments below, with the
    defaults of the other sparse algorithms: 50% sparsity in every layer of the actor's and the critic's MLPs but
    the output heads, random initial masks, a topology update every 1000 env steps that moves 10% of each layer's
    active weights (magnitude drop, random growth) until 95% of the run; the features extractor stays dense.
    A mask update happens between an optimisation phase (``n_epochs`` passes over the rollout in minibatches of
    ``batch_size``) and the next rollout, never inside either: the updates due during a rollout and its
    optimisation are made before the next rollout (an interval that is a multiple of the rollout, ``n_steps *
    n_envs`` env steps or the phase's gradient steps, makes one at a time).
    See :func:`sb3_sparse.sparse_recipe` for Graesser et al.'s PPO settings and gradual magnitude pruning.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy or a sparse policy class)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function
        of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update
        (i.e. rollout buffer size is n_steps * n_envs where n_envs is number of environment copies running in parallel)
        NOTE: n_steps * n_envs must be greater than 1 (because of the advantage normalization)
        See https://github.com/pytorch/pytorch/issues/29372
    :param batch_size: Minibatch size
    :param n_epochs: Number of epoch when optimizing the surrogate loss
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
    :param clip_range: Clipping parameter, it can be a function of the current progress
        remaining (from 1 to 0).
    :param clip_range_vf: Clipping parameter for the value function,
        it can be a function of the current progress remaining (from 1 to 0).
        This is a parameter specific to the OpenAI implementation. If None is passed (default),
        no clipping will be done on the value function.
        IMPORTANT: this clipping depends on the reward scaling.
    :param normalize_advantage: Whether to normalize or not the advantage
    :param ent_coef: Entropy coefficient for the loss calculation
    :param vf_coef: Value function coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
        instead of action noise exploration (default: False)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
        Default: -1 (only sample at the beginning of the rollout)
    :param rollout_buffer_class: Rollout buffer class to use. If ``None``, it will be automatically selected.
    :param rollout_buffer_kwargs: Keyword arguments to pass to the rollout buffer on creation
    :param target_kl: Limit the KL divergence between updates,
        because the clipping is not enough to prevent large update
        see issue #213 (cf https://github.com/hill-a/stable-baselines/issues/213)
        By default, there is no limit on the kl div.
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (not the DST
        settings, which are arguments of this class)
    :param verbose: Verbosity level: 0 no output, 1 info (and one line per topology update), 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
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
    :param backend: what computes the sparse layers' products: ``"auto"`` (per layer and batch, CSR sparse
        products where they were measured faster, dense masked products elsewhere), ``"masked"`` or ``"csr"``
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
        ``"actor"``, ``"critic"``, ``"encoder"`` (the features extractor: dense unless named here)
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: SparseActorCriticPolicy

    def __init__(
        self,
        policy: str | type[SparseActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
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
                n_steps=n_steps,
                batch_size=batch_size,
                n_epochs=n_epochs,
                gamma=gamma,
                gae_lambda=gae_lambda,
                clip_range=clip_range,
                clip_range_vf=clip_range_vf,
                normalize_advantage=normalize_advantage,
                ent_coef=ent_coef,
                vf_coef=vf_coef,
                max_grad_norm=max_grad_norm,
                use_sde=use_sde,
                sde_sample_freq=sde_sample_freq,
                rollout_buffer_class=rollout_buffer_class,
                rollout_buffer_kwargs=rollout_buffer_kwargs,
                target_kl=target_kl,
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

    def _maybe_recommend_cpu(self, mlp_class_name: str = SparseActorCriticPolicy.__name__) -> None:
        # SB3 recommends the CPU for its MLP policy; the sparse one is as small
        super()._maybe_recommend_cpu(mlp_class_name)

    def learn(
        self: SelfSparsePPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "SparsePPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSparsePPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=self._with_topology_callback(callback),
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
