"""QMIX and VDN: cooperative multi-agent Q-learning by value decomposition, with sparse networks.

SB3 has no multi-agent learner; this one is an SB3 algorithm (:class:`~stable_baselines3.common.base_class.
BaseAlgorithm`: logger, seeding, callbacks, ``_setup_learn``, ``save`` / ``load``, ``get_parameters``) made of
two parts: an :class:`~sb3_sparse.marl.runner.EpisodeRunner` collects one episode with epsilon-greedy agents
into an episode buffer, and a :class:`~sb3_sparse.marl.learner.ValueDecompositionLearner` takes one gradient
step on a batch of whole episodes, as EPyMARL's QMIX does; the target networks are copied every
``target_update_interval`` episodes. The agent network and the mixer are modules of the sparse engine, with the
DST arguments of the single-agent algorithms (:class:`~sb3_sparse.common.algorithm.SparseAlgorithmMixin`);
MAST's pieces (Soft Mellowmax targets, TD(lambda) / multi-step targets, dual buffers) are arguments.

Where SB3's machinery expects a gymnasium ``VecEnv`` (making and wrapping the env, resetting it, seeding it,
checking its spaces), the methods below override it and say why.
"""

import io
import pathlib
import sys
import time
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.save_util import load_from_pkl, load_from_zip_file, save_to_pkl
from stable_baselines3.common.type_aliases import MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean, set_random_seed

from sb3_sparse.common.algorithm import SparseAlgorithmMixin
from sb3_sparse.common.callbacks import TopologyUpdateCallback
from sb3_sparse.common.targets import check_mellowmax_parameters, get_target_operator
from sb3_sparse.core.config import check_step_or_fraction, is_integer, is_number
from sb3_sparse.marl.buffers import EpisodeReplayBuffer, get_episode_buffer_class
from sb3_sparse.marl.envs import MultiAgentEnv, make_marl_env
from sb3_sparse.marl.learner import ValueDecompositionLearner
from sb3_sparse.marl.policies import MlpQMIXPolicy, MlpVDNPolicy, QMIXPolicy, VDNPolicy
from sb3_sparse.marl.runner import EpisodeRunner, recurrent_actions

SelfQMIX = TypeVar("SelfQMIX", bound="QMIX")

#: What the learner needs to know of an env to build its networks and buffer (saved, so a model loads without one).
ENV_SHAPE = ("n_agents", "obs_dim", "state_dim", "n_actions", "episode_limit")


def env_shape(env: MultiAgentEnv) -> dict[str, int]:
    """The sizes of ``env`` that a learner builds its networks and buffer from (:data:`ENV_SHAPE`)."""
    return {name: int(getattr(env, name)) for name in ENV_SHAPE}


def agent_spaces(shape: dict[str, int]) -> tuple[spaces.Box, spaces.Discrete]:
    """One agent's observation and action spaces, as the policies take them, from an :func:`env_shape`."""
    return spaces.Box(-np.inf, np.inf, (shape["obs_dim"],), np.float32), spaces.Discrete(shape["n_actions"])


class MultiAgentTopologyCallback(TopologyUpdateCallback):
    """The engine's callback for the episode learners: one gradient step per episode."""

    def _horizon(self, name: str) -> int:
        assert self.engine is not None
        if self.engine.configs[name].schedule_unit == "env_steps":
            return self.model._total_timesteps
        model: Any = self.model
        remaining = max(0, model._total_timesteps - self.num_timesteps)  # at most one step per episode
        return int(self.engine.module_state(name)["optimizer_steps"] + remaining / model.episode_limit)

    def _lookahead(self, name: str) -> int:
        # the clock moves by at most one episode between a gradient step and the next
        assert self.engine is not None
        return self.model.episode_limit if self.engine.configs[name].schedule_unit == "env_steps" else 1  # type: ignore[attr-defined]


class QMIX(SparseAlgorithmMixin, BaseAlgorithm):
    """
    QMIX (Rashid et al., 2018) with parameter-shared agents, in EPyMARL's form, and DST on its networks.

    Defaults are EPyMARL's QMIX (buffer of 5000 episodes, batch of 32 episodes, Adam lr 5e-4, agents of width
    64, targets copied every 200 episodes, mixing width 32, double Q-learning, epsilon from 1 to 0.05 over 50k
    steps, standardised rewards) and dense networks, with two differences, each a setting: the agents are GRUs
    (``"RnnPolicy"``; EPyMARL's ``qmix.yaml`` now sets ``use_rnn: False``, ``"MlpPolicy"`` here) and an episode
    cut by its time limit bootstraps from its last state (``time_limit_bootstrap=True``; EPyMARL's gymma envs
    store the limit as a terminal step, ``False`` here). ``sparse_recipe("mast", algorithm="qmix")`` gives MAST's
    settings.

    :param policy: ``"RnnPolicy"`` (GRU agents), ``"MlpPolicy"`` or a policy class
    :param env: a :class:`~sb3_sparse.marl.envs.MultiAgentEnv`, a PettingZoo parallel env or an env id of
        :func:`~sb3_sparse.marl.envs.make_marl_env` (``None``: only to load a model for inference)
    :param learning_rate: learning rate of the optimizer (agent and mixer together), or a schedule of the
        remaining progress (from 1 to 0), as SB3 takes it
    :param buffer_size: episodes in the replay buffer
    :param learning_starts: env steps before training starts (it also waits for ``batch_size`` episodes)
    :param batch_size: episodes per gradient step
    :param gamma: discount factor
    :param target_update_interval: episodes between two copies of the online networks into the targets
    :param exploration_initial_eps: initial probability of a random action
    :param exploration_final_eps: final probability of a random action
    :param exploration_steps: env steps over which it decreases linearly (EPyMARL's ``epsilon_anneal_time``)
    :param double_q: the max target takes the target network's value of the online network's best action
        (with ``target_operator="max"``)
    :param max_grad_norm: maximum gradient norm (clipping)
    :param standardize_rewards: divide rewards minus their running mean by their running std (EPyMARL's QMIX)
    :param time_limit_bootstrap: an episode that reaches its time limit (the env's truncation or
        ``episode_limit``) is stored as not terminated and bootstraps from its last state (``True``, the default);
        ``False`` stores it as terminal, as EPyMARL's gymma envs (LBF, RWARE, MPE) do
    :param replay_buffer_class: ``"episode"``, ``"dual"`` (MAST's dual buffers) or an
        :class:`~sb3_sparse.marl.buffers.EpisodeReplayBuffer` subclass
    :param replay_buffer_kwargs: its keyword arguments (``"dual"``: ``recent_size``, ``recent_fraction``)
    :param n_steps: rewards summed before bootstrapping (1: one-step targets)
    :param td_lambda: lambda of TD(lambda) targets, used instead of the ``n_steps`` targets until
        ``td_lambda_end`` (0: no TD(lambda))
    :param td_lambda_end: env step (int) or fraction of the run (float) from which the ``n_steps`` targets replace
        TD(lambda) (MAST's hybrid targets); ``None``: TD(lambda) throughout
    :param target_operator: ``"max"`` or ``"soft_mellowmax"`` over each agent's target Q-values (see
        :mod:`sb3_sparse.common.targets`)
    :param mellowmax_omega: Soft Mellowmax temperature
    :param mellowmax_alpha: Soft Mellowmax weighting temperature
    :param stats_window_size: episodes averaged in the logged ``rollout/`` statistics
    :param tensorboard_log: log location for tensorboard (``None``: none)
    :param policy_kwargs: keyword arguments of the policy (``hidden_dim``, ``use_rnn``, ``mixing_embed_dim``, ...)
    :param verbose: 0 no output, 1 info (training statistics, mask updates), 2 debug
    :param seed: seed of the random generators (Python, NumPy, PyTorch, the env's first reset, sampling)
    :param device: device of the networks (``"auto"``: CUDA when available)
    :param regime: how each sparse module's mask evolves (``"dense"`` by default: EPyMARL's QMIX); the DST
        settings from here to ``ablation_threshold`` are those of :class:`~sb3_sparse.core.config.ModuleConfig`,
        for every module (``agent``, and ``mixer`` with its hypernetworks)
    :param modules: per-module overrides of the DST settings, e.g. ``{"mixer": {"sparsity": 0.8}}``
    :param _init_setup_model: whether to build the networks and buffer now
    """

    policy_aliases: ClassVar[dict[str, type[QMIXPolicy]]] = {  # type: ignore[assignment]
        "RnnPolicy": QMIXPolicy,
        "MlpPolicy": MlpQMIXPolicy,
    }
    policy: QMIXPolicy  # type: ignore[assignment]
    env: MultiAgentEnv | None  # type: ignore[assignment]
    replay_buffer: EpisodeReplayBuffer | None
    learner: ValueDecompositionLearner

    def __init__(
        self,
        policy: str | type[QMIXPolicy],
        env: MultiAgentEnv | Any | str | None,
        learning_rate: float | Schedule = 5e-4,
        buffer_size: int = 5000,
        learning_starts: int = 0,
        batch_size: int = 32,
        gamma: float = 0.99,
        target_update_interval: int = 200,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        exploration_steps: int = 50_000,
        double_q: bool = True,
        max_grad_norm: float = 10.0,
        standardize_rewards: bool = True,
        time_limit_bootstrap: bool = True,
        replay_buffer_class: str | type[EpisodeReplayBuffer] = "episode",
        replay_buffer_kwargs: dict[str, Any] | None = None,
        n_steps: int = 1,
        td_lambda: float = 0.0,
        td_lambda_end: int | float | None = None,
        target_operator: str = "max",
        mellowmax_omega: float = 10.0,
        mellowmax_alpha: float = 1.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        regime: str = "dense",
        sparsity: float = 0.5,
        initial_sparsity: float | None = None,
        sparsity_distribution: str = "uniform",
        erdos_renyi_lambdas: list[float] | None = None,
        sparse_layers: str | list[str] = ("input", "hidden"),  # type: ignore[assignment]
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
    ) -> None:
        policy_class = self._policy_class(policy)
        self._init_dst({**locals(), "policy": policy_class})
        self._check_arguments(locals())
        super().__init__(
            policy_class,  # type: ignore[arg-type]
            None,  # SB3 would make a gymnasium VecEnv of it: set_env takes the multi-agent env below
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
        )
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.gamma = gamma
        self.target_update_interval = target_update_interval
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_steps = exploration_steps
        self.double_q = double_q
        self.max_grad_norm = max_grad_norm
        self.standardize_rewards = standardize_rewards
        self.time_limit_bootstrap = time_limit_bootstrap
        self.replay_buffer_class = get_episode_buffer_class(replay_buffer_class)
        self.replay_buffer_kwargs = dict(replay_buffer_kwargs or {})
        self.n_steps = n_steps
        self.td_lambda = td_lambda
        self.td_lambda_end = td_lambda_end
        self.target_operator = target_operator
        self.mellowmax_omega, self.mellowmax_alpha = mellowmax_omega, mellowmax_alpha

        self._last_target_update = 0  # episode of the last target copy
        self.exploration_rate = exploration_initial_eps
        self.reward_stats = RunningMeanStd(shape=())
        self.replay_buffer = None
        self._rng = np.random.default_rng(seed)
        self._reset_seed: int | None = seed
        self.env_shape: dict[str, int] = {}
        if env is not None:
            self.set_env(env)
        if _init_setup_model:
            self._setup_model()

    @classmethod
    def _policy_class(cls, policy: str | type[QMIXPolicy]) -> type[QMIXPolicy]:
        if isinstance(policy, str):
            if policy not in cls.policy_aliases:
                raise ValueError(f"policy={policy!r} is not valid; choose one of {', '.join(map(repr, cls.policy_aliases))}")
            return cls.policy_aliases[policy]
        if not (isinstance(policy, type) and issubclass(policy, QMIXPolicy)):
            raise ValueError(
                f"policy={policy!r} is not valid; give one of {', '.join(cls.policy_aliases)} or a QMIXPolicy subclass"
            )
        return policy

    @staticmethod
    def _check_arguments(kwargs: dict[str, Any]) -> None:
        """Every argument that is not a DST setting, checked at construction with a message naming it."""
        for name in ("buffer_size", "batch_size", "target_update_interval", "n_steps", "stats_window_size"):
            if not is_integer(kwargs[name]) or kwargs[name] <= 0:
                raise ValueError(f"{name}={kwargs[name]!r} is not valid; it must be a positive integer")
        for name in ("learning_starts", "exploration_steps"):
            if not is_integer(kwargs[name]) or kwargs[name] < 0:
                raise ValueError(f"{name}={kwargs[name]!r} is not valid; it must be an integer >= 0")
        if kwargs["batch_size"] > kwargs["buffer_size"]:
            raise ValueError(f"batch_size={kwargs['batch_size']} is larger than buffer_size={kwargs['buffer_size']}")
        for name in ("gamma", "td_lambda", "exploration_initial_eps", "exploration_final_eps"):
            if not is_number(kwargs[name]) or not 0.0 <= kwargs[name] <= 1.0:
                raise ValueError(f"{name}={kwargs[name]!r} is not valid; it must be a number in [0, 1]")
        if not callable(kwargs["learning_rate"]) and (not is_number(kwargs["learning_rate"]) or kwargs["learning_rate"] <= 0):
            raise ValueError(f"learning_rate={kwargs['learning_rate']!r} is not valid; it must be a number > 0")
        if not is_number(kwargs["max_grad_norm"]) or kwargs["max_grad_norm"] <= 0:
            raise ValueError(f"max_grad_norm={kwargs['max_grad_norm']!r} is not valid; it must be a number > 0")
        for name in ("double_q", "standardize_rewards", "time_limit_bootstrap"):
            if not isinstance(kwargs[name], bool):
                raise ValueError(f"{name}={kwargs[name]!r} is not valid; it must be True or False")
        if kwargs["td_lambda_end"] is not None:
            check_step_or_fraction("td_lambda_end", kwargs["td_lambda_end"])
        get_target_operator(kwargs["target_operator"])
        check_mellowmax_parameters(kwargs["mellowmax_omega"], kwargs["mellowmax_alpha"], prefix="mellowmax_")
        buffer_class = get_episode_buffer_class(kwargs["replay_buffer_class"])
        if kwargs["replay_buffer_kwargs"] is not None and not isinstance(kwargs["replay_buffer_kwargs"], dict):
            raise ValueError(f"replay_buffer_kwargs={kwargs['replay_buffer_kwargs']!r} is not valid; give a dict")
        buffer_class(1, 1, 1, 1, 1, 1, **(kwargs["replay_buffer_kwargs"] or {}))  # a mistake in its kwargs: say it now

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed Python, NumPy and PyTorch, the exploration and sampling generator, and the env's next reset (``None``:
        nothing). SB3's seeds a ``VecEnv``; a multi-agent env is seeded through its next reset, as gymnasium's."""
        if seed is None:
            return
        set_random_seed(seed, using_cuda=self.device.type == "cuda")
        self._rng = np.random.default_rng(seed)
        self._reset_seed = seed

    # --- env ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _wrap_env(env: Any, verbose: int = 0, monitor_wrapper: bool = True) -> MultiAgentEnv:  # type: ignore[override]
        """The :class:`~sb3_sparse.marl.envs.MultiAgentEnv` of ``env`` (an id, a PettingZoo parallel env or one
        already). SB3 wraps an env in a ``Monitor`` and a ``VecEnv``; the runner reads the multi-agent env itself."""
        return env if isinstance(env, MultiAgentEnv) else make_marl_env(env)

    def set_env(self, env: MultiAgentEnv | Any | str, force_reset: bool = True) -> None:  # type: ignore[override]
        """Use ``env`` from now on. Its agents, observations, state and actions must match the model's (a
        ``ValueError`` names what differs); a longer episode limit makes room for longer episodes in the buffer.

        :param force_reset: SB3's argument, without effect here: every episode starts with a reset
        """
        env = self._wrap_env(env, self.verbose)
        shape = env_shape(env)
        if self.env_shape:
            differs = [
                f"{name} {shape[name]} (model: {self.env_shape[name]})"
                for name in ENV_SHAPE
                if name != "episode_limit" and shape[name] != self.env_shape[name]
            ]
            if differs:
                raise ValueError(f"the env does not match the model: {', '.join(differs)}")
            shape["episode_limit"] = max(shape["episode_limit"], self.env_shape["episode_limit"])
            if self.replay_buffer is not None:
                self.replay_buffer.extend_episode_limit(shape["episode_limit"])
        self.observation_space, self.action_space = agent_spaces(shape)
        self.n_envs = 1
        self.env = env
        self.env_shape = shape

    @property
    def n_agents(self) -> int:
        return self.env_shape["n_agents"]

    @property
    def episode_limit(self) -> int:
        return self.env_shape["episode_limit"]

    # --- model -------------------------------------------------------------------------------------------------

    def _setup_model(self) -> None:
        super()._setup_model()  # the DST settings given to load (SparseAlgorithmMixin); BaseAlgorithm's is abstract
        if not self.env_shape:
            raise ValueError(f"{type(self).__name__} needs an env to build its networks (or load a saved model)")
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        observation_space, action_space = agent_spaces(self.env_shape)
        self.policy = self.policy_class(  # type: ignore[call-arg]
            observation_space,
            action_space,
            self.lr_schedule,
            self.n_agents,
            self.env_shape["state_dim"],
            **self.policy_kwargs,
            dst_config=self.dst_config,
        ).to(self.device)
        self.replay_buffer = self.replay_buffer_class(
            self.buffer_size,
            self.episode_limit,
            self.n_agents,
            self.env_shape["obs_dim"],
            self.env_shape["state_dim"],
            self.env_shape["n_actions"],
            device=self.device,
            **self.replay_buffer_kwargs,
        )
        self.learner = ValueDecompositionLearner(
            self.policy,
            gamma=self.gamma,
            double_q=self.double_q,
            target_operator=self.target_operator,
            mellowmax_omega=self.mellowmax_omega,
            mellowmax_alpha=self.mellowmax_alpha,
            n_steps=self.n_steps,
            td_lambda=self.td_lambda,
            max_grad_norm=self.max_grad_norm,
            reward_stats=self.reward_stats if self.standardize_rewards else None,
        )

    # --- acting ------------------------------------------------------------------------------------------------

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        The agents' actions for their observations (and the recurrent state to pass at the next step).

        :param observation: ``[n_agents, obs_dim]`` (or ``[n_envs, n_agents, obs_dim]``)
        :param state: what the previous call returned (``None``: the start of an episode)
        :param episode_start: per env, whether this step starts an episode (resets ``state``)
        :param deterministic: greedy actions; otherwise epsilon-greedy at the current exploration rate
        :param action_masks: available actions, ``[n_agents, n_actions]`` (1: available), as the env gives them
        :return: the actions ``[n_agents]`` (or ``[n_envs, n_agents]``) and the next state
            ``(recurrent state, last actions)``
        """
        epsilon = 0.0 if deterministic else self.exploration_rate
        return recurrent_actions(self.policy, observation, state, episode_start, action_masks, epsilon, self._rng)

    def _update_exploration_rate(self) -> float:
        """Epsilon now: from ``exploration_initial_eps`` to ``exploration_final_eps`` over ``exploration_steps``."""
        progress = 1.0 if self.exploration_steps == 0 else min(1.0, self.num_timesteps / self.exploration_steps)
        self.exploration_rate = self.exploration_initial_eps + progress * (
            self.exploration_final_eps - self.exploration_initial_eps
        )
        return self.exploration_rate

    # --- training ----------------------------------------------------------------------------------------------

    def _lambda_phase(self) -> bool:
        """Whether TD(lambda) targets are used now (before ``td_lambda_end``)."""
        if self.td_lambda == 0.0:
            return False
        end = self.td_lambda_end
        if end is None:
            return True
        end_step = round(end * self._total_timesteps) if isinstance(end, float) else end
        return self.num_timesteps < end_step

    def train(self) -> None:
        """One gradient step on a batch of episodes."""
        assert self.replay_buffer is not None
        self._update_learning_rate(self.policy.optimizer)
        batch = self.replay_buffer.sample(self.batch_size, self._rng)
        values = self.learner.train_step(batch, use_lambda=self._lambda_phase())
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, value in values.items():
            self.logger.record(f"train/{key}", value)

    def _update_target(self) -> None:
        """Copy the online networks into the targets every ``target_update_interval`` episodes."""
        if self._episode_num - self._last_target_update >= self.target_update_interval:
            self.learner.update_targets()
            self._last_target_update = self._episode_num

    # --- the loop ----------------------------------------------------------------------------------------------

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        """The engine's callback first, then the user's (SB3 merges them and adds the progress bar)."""
        if callback is not None and not isinstance(callback, (list, BaseCallback)):
            callback = ConvertCallback(callback)
        user = callback if isinstance(callback, list) else [] if callback is None else [callback]
        return super()._init_callback([MultiAgentTopologyCallback(verbose=self.verbose), *user], progress_bar)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.env is None:
            raise ValueError(f"{type(self).__name__} has no env to learn from: pass one to the constructor, load or set_env")
        if not is_integer(total_timesteps) or total_timesteps < 0:
            raise ValueError(f"total_timesteps={total_timesteps!r} is not valid; it must be an integer >= 0")
        if reset_num_timesteps:
            self._last_target_update = 0
        # SB3's also resets the env once (the runner resets it again at the start of every episode, seeded if asked)
        return super()._setup_learn(int(total_timesteps), callback, reset_num_timesteps, tb_log_name, progress_bar)

    def learn(
        self: SelfQMIX,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "QMIX",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfQMIX:
        """
        Collect episodes and train, as SB3's ``learn``.

        :param total_timesteps: env steps to collect (the last episode is finished, so a few more may be taken)
        :param callback: SB3 callback(s) called at every env step (``None``, a list, a function or a ``BaseCallback``)
        :param log_interval: episodes between two logger dumps
        :param tb_log_name: name of the tensorboard run
        :param reset_num_timesteps: start the step count (and the schedules) anew; ``False`` continues them
        :param progress_bar: show a progress bar (tqdm and rich)
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None and self.replay_buffer is not None
        runner = EpisodeRunner(
            self.env, self.policy, self.replay_buffer, self._rng, self.episode_limit, self.time_limit_bootstrap
        )
        keep_going = True
        while self.num_timesteps < total_timesteps and keep_going:
            callback.on_rollout_start()
            keep_going = self._collect_episode(runner, callback)
            callback.on_rollout_end()
            if not keep_going:  # a callback stopped training (the episode so far is stored)
                break
            if self.replay_buffer.can_sample(self.batch_size) and self.num_timesteps >= self.learning_starts:
                self.train()
            self._update_target()
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()
        callback.on_training_end()
        return self

    def _collect_episode(self, runner: EpisodeRunner, callback: BaseCallback) -> bool:
        """One episode of ``runner``, counting env steps and calling ``callback`` at every step."""

        def on_step(values: dict[str, Any]) -> bool:
            self.num_timesteps += 1
            self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
            callback.update_locals(values)
            return callback.on_step()

        seed, self._reset_seed = self._reset_seed, None
        episode, keep_going = runner.run(self._update_exploration_rate, on_step, seed)
        self._episode_num += 1
        assert self.ep_info_buffer is not None
        self.ep_info_buffer.append({"r": float(episode.rewards[: episode.length].sum()), "l": episode.length})
        return keep_going

    def dump_logs(self) -> None:
        """Write the rollout and time statistics (SB3's off-policy keys) and what was recorded since the last dump."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # --- saving ------------------------------------------------------------------------------------------------

    def _excluded_save_params(self) -> list[str]:
        # the learner is rebuilt from the saved settings by _setup_model
        return [*super()._excluded_save_params(), "learner"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the episode buffer (a pickle), to resume training later with :meth:`load_replay_buffer`."""
        assert self.replay_buffer is not None, "the model has no replay buffer"
        save_to_pkl(path, self.replay_buffer, self.verbose)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Load an episode buffer saved by :meth:`save_replay_buffer` (it must have the model's shapes)."""
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, EpisodeReplayBuffer) or buffer.shape != self.replay_buffer.shape:  # type: ignore[union-attr]
            raise ValueError(f"{path} does not hold an episode buffer of this model's shapes")
        buffer.device = self.device
        buffer.extend_episode_limit(self.episode_limit)
        self.replay_buffer = buffer

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfQMIX],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: MultiAgentEnv | Any | str | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfQMIX:
        """Load a model saved by :meth:`save` (with ``env``, to continue training), as SB3's ``load``.

        :param force_reset: SB3's argument, without effect here: every episode starts with a reset
        :param kwargs: attributes that replace the saved ones (e.g. ``learning_rate``, ``verbose``, a DST setting such
            as ``backend="csr"``, validated like the constructor's)
        """
        # SB3's load wraps ``env`` in a VecEnv and checks its spaces: the multi-agent env is set after, by set_env
        try:
            model = super().load(path, None, device, custom_objects, print_system_info, force_reset, **kwargs)
        except KeyError:  # no spaces saved: a file of sb3-sparse 0.1, or not a model's
            data, params, _ = load_from_zip_file(path, device=device, custom_objects=custom_objects)
            if data is None or params is None or "init_kwargs" not in data:
                raise
            model = cls._load_constructor_file(data, params, device, **kwargs)
        if env is not None:
            model.set_env(env)
        return model

    @classmethod
    def _load_constructor_file(
        cls: type[SelfQMIX],
        data: dict[str, Any],
        params: dict[str, Any],
        device: th.device | str,
        **kwargs: Any,
    ) -> SelfQMIX:
        """A model from a file of sb3-sparse 0.1, which saved the constructor's arguments and the training state."""
        init_kwargs = {**data.pop("init_kwargs"), "device": device}
        model = cls(data.pop("policy_class"), None, **init_kwargs, **data.pop("dst_config"), _init_setup_model=False)
        model.__dict__.update(data)
        model.observation_space, model.action_space = agent_spaces(model.env_shape)
        model.__dict__.update(kwargs)
        model._setup_model()
        model.set_parameters(params, exact_match=True, device=device)
        return model


class VDN(QMIX):
    """
    VDN (Sunehag et al., 2018): :class:`QMIX` with the team value as the sum of the agents' values (no mixing
    network: ``agent`` is the only sparse module). Same arguments and defaults (EPyMARL's VDN shares QMIX's).
    """

    policy_aliases: ClassVar[dict[str, type[QMIXPolicy]]] = {"RnnPolicy": VDNPolicy, "MlpPolicy": MlpVDNPolicy}  # type: ignore[assignment]

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "VDN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> "VDN":
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)
