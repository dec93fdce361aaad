"""QMIX and VDN: cooperative multi-agent Q-learning by value decomposition, with sparse networks.

SB3 has no multi-agent learner, so this one is written in SB3's manner around SB3's own pieces (logger,
callbacks, saving, seeding): ``QMIX(policy, env).learn(n)``, ``predict``, ``save`` / ``load``. It follows
EPyMARL's QMIX: one episode is collected with epsilon-greedy agents, stored in an episode buffer, and
one gradient step is taken on a batch of whole episodes; the target networks are copied every
``target_update_interval`` episodes. The agent network and the mixer are modules of the sparse engine,
driven by the same :class:`~sb3_sparse.common.callbacks.TopologyUpdateCallback` as the single-agent
algorithms; MAST's pieces (Soft Mellowmax targets, TD(lambda) / multi-step targets, dual buffers) are
arguments.
"""

import io
import pathlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback, ProgressBarCallback
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.save_util import (
    load_from_pkl,
    load_from_zip_file,
    recursive_getattr,
    save_to_pkl,
    save_to_zip_file,
)
from stable_baselines3.common.type_aliases import MaybeCallback, TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import ConstantSchedule, get_device, safe_mean, set_random_seed
from stable_baselines3.common.utils import configure_logger as sb3_configure_logger

from sb3_sparse.common.algorithm import _suggest_keywords
from sb3_sparse.common.callbacks import STATE_ATTRIBUTE, TopologyUpdateCallback
from sb3_sparse.common.targets import check_mellowmax_parameters, get_target_operator, lambda_returns, n_step_returns
from sb3_sparse.core.config import MODULE_SETTINGS, check_step_or_fraction, is_integer, is_number, resolve_modules
from sb3_sparse.marl.buffers import EpisodeBatch, EpisodeReplayBuffer, get_episode_buffer_class
from sb3_sparse.marl.envs import MultiAgentEnv, make_marl_env
from sb3_sparse.marl.policies import MlpQMIXPolicy, MlpVDNPolicy, QMIXPolicy, VDNPolicy

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


class QMIX:
    """
    QMIX (Rashid et al., 2018) with parameter-shared agents, in EPyMARL's form, and DST on its networks.

    Defaults are EPyMARL's QMIX (buffer of 5000 episodes, batch of 32 episodes, Adam lr 5e-4, GRU agents of
    width 64, targets copied every 200 episodes, mixing width 32, double Q-learning, epsilon from 1 to 0.05
    over 50k steps, standardised rewards) and dense networks. ``sparse_recipe("mast", algorithm="qmix")`` gives
    MAST's settings.

    :param policy: ``"RnnPolicy"`` (GRU agents), ``"MlpPolicy"`` or a policy class
    :param env: a :class:`~sb3_sparse.marl.envs.MultiAgentEnv`, a PettingZoo parallel env or an env id of
        :func:`~sb3_sparse.marl.envs.make_marl_env` (``None``: only to load a model for inference)
    :param learning_rate: learning rate of the optimizer (agent and mixer together)
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
        settings from here to ``recycle_dormant`` are those of :class:`~sb3_sparse.core.config.ModuleConfig`,
        for every module (``agent``, and ``mixer`` with its hypernetworks)
    :param modules: per-module overrides of the DST settings, e.g. ``{"mixer": {"sparsity": 0.8}}``
    :param _init_setup_model: whether to build the networks and buffer now
    """

    policy_aliases: ClassVar[dict[str, type[QMIXPolicy]]] = {"RnnPolicy": QMIXPolicy, "MlpPolicy": MlpQMIXPolicy}
    policy: QMIXPolicy
    replay_buffer: EpisodeReplayBuffer | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _suggest_keywords(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @_suggest_keywords
    def __init__(
        self,
        policy: str | type[QMIXPolicy],
        env: MultiAgentEnv | Any | str | None,
        learning_rate: float = 5e-4,
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
        modules: dict[str, dict[str, Any]] | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        arguments = dict(locals())
        self.policy_class = self._policy_class(policy)
        flat = {name: arguments[name] for name in MODULE_SETTINGS}
        resolve_modules(tuple(self.policy_class.sparse_modules), flat, modules)
        self.dst_config: dict[str, Any] = {**flat, "modules": modules}
        self.__dict__.setdefault(STATE_ATTRIBUTE, {})
        #: the constructor's arguments that ``save`` keeps (the env and the DST settings are kept apart)
        self._init_kwargs = {
            name: arguments[name]
            for name in arguments
            if name not in ("self", "policy", "env", "_init_setup_model", "__class__", *MODULE_SETTINGS, "modules")
        }
        self._check_arguments()
        self.learning_rate = learning_rate
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
        self.replay_buffer_class = get_episode_buffer_class(replay_buffer_class)
        self.replay_buffer_kwargs = dict(replay_buffer_kwargs or {})
        self.n_steps = n_steps
        self.td_lambda = td_lambda
        self.td_lambda_end = td_lambda_end
        self.target_operator = target_operator
        self.mellowmax_omega, self.mellowmax_alpha = mellowmax_omega, mellowmax_alpha
        self.stats_window_size = stats_window_size
        self.tensorboard_log = tensorboard_log
        self.policy_kwargs = dict(policy_kwargs or {})
        self.verbose = verbose
        self.seed = seed
        self.device = get_device(device)
        #: trained once per episode (what the engine's callback reads)
        self.train_freq = TrainFreq(1, TrainFrequencyUnit.EPISODE)
        self.gradient_steps = 1

        self.env: MultiAgentEnv | None = None
        self.env_shape: dict[str, int] = {}
        if env is not None:
            self.set_env(env)
        self.num_timesteps = 0
        self._total_timesteps = 0
        self._episode_num = 0
        self._n_updates = 0
        self._last_target_update = 0  # episode of the last target copy
        self.exploration_rate = exploration_initial_eps
        self.reward_stats = RunningMeanStd(shape=())
        self.ep_info_buffer: deque[dict[str, float]] = deque(maxlen=stats_window_size)
        self._logger: Logger | None = None
        self._custom_logger = False
        self.replay_buffer = None
        self._rng = np.random.default_rng(seed)
        self._reset_seed: int | None = seed
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

    def _check_arguments(self) -> None:
        """Every argument that is not a DST setting, checked at construction with a message naming it."""
        kwargs = self._init_kwargs
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
        for name in ("learning_rate", "max_grad_norm"):
            if not is_number(kwargs[name]) or kwargs[name] <= 0:
                raise ValueError(f"{name}={kwargs[name]!r} is not valid; it must be a number > 0")
        if kwargs["td_lambda_end"] is not None:
            check_step_or_fraction("td_lambda_end", kwargs["td_lambda_end"])
        get_target_operator(kwargs["target_operator"])
        check_mellowmax_parameters(kwargs["mellowmax_omega"], kwargs["mellowmax_alpha"], prefix="mellowmax_")
        buffer_class = get_episode_buffer_class(kwargs["replay_buffer_class"])
        if kwargs["replay_buffer_kwargs"] is not None and not isinstance(kwargs["replay_buffer_kwargs"], dict):
            raise ValueError(f"replay_buffer_kwargs={kwargs['replay_buffer_kwargs']!r} is not valid; give a dict")
        buffer_class(1, 1, 1, 1, 1, 1, **(kwargs["replay_buffer_kwargs"] or {}))  # a mistake in its kwargs: say it now

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed Python, NumPy and PyTorch, the exploration and sampling generator, and the env's next reset (as SB3's
        ``set_random_seed``; ``None``: nothing)."""
        if seed is None:
            return
        set_random_seed(seed, using_cuda=self.device.type == "cuda")
        self._rng = np.random.default_rng(seed)
        self._reset_seed = seed

    # --- env ---------------------------------------------------------------------------------------------------

    def set_env(self, env: MultiAgentEnv | Any | str, force_reset: bool = True) -> None:
        """Use ``env`` from now on; its agents, observations, state and actions must match the model's."""
        env = env if isinstance(env, MultiAgentEnv) else make_marl_env(env)
        shape = env_shape(env)
        if self.env_shape:
            differs = [
                f"{name} {shape[name]} (model: {self.env_shape[name]})"
                for name in ENV_SHAPE[:4]
                if shape[name] != self.env_shape[name]
            ]
            if differs:
                raise ValueError(f"the env does not match the model: {', '.join(differs)}")
            shape["episode_limit"] = max(shape["episode_limit"], self.env_shape["episode_limit"])
        self.env = env
        self.env_shape = shape

    def get_env(self) -> MultiAgentEnv | None:
        return self.env

    def get_vec_normalize_env(self) -> None:
        """No observation normalization wrapper (for SB3's callbacks)."""
        return None

    @property
    def n_agents(self) -> int:
        return self.env_shape["n_agents"]

    @property
    def episode_limit(self) -> int:
        return self.env_shape["episode_limit"]

    # --- model -------------------------------------------------------------------------------------------------

    def _setup_model(self) -> None:
        if not self.env_shape:
            raise ValueError(f"{type(self).__name__} needs an env to build its networks (or load a saved model)")
        if self.seed is not None:
            set_random_seed(self.seed)
        observation_space, action_space = agent_spaces(self.env_shape)
        self.policy = self.policy_class(  # type: ignore[call-arg]
            observation_space,
            action_space,
            ConstantSchedule(self.learning_rate),
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

    # --- acting ------------------------------------------------------------------------------------------------

    @th.no_grad()
    def _act(
        self,
        observations: np.ndarray,
        avail_actions: np.ndarray | None,
        hidden: th.Tensor | None,
        last_actions: np.ndarray,
        epsilon: float,
    ) -> tuple[np.ndarray, th.Tensor]:
        """Epsilon-greedy joint actions of ``[n_envs, n_agents, obs_dim]`` observations, and the next recurrent state."""
        obs = th.as_tensor(observations, device=self.device, dtype=th.float32)
        inputs = self.policy.agent_inputs(obs, th.as_tensor(last_actions, device=self.device))
        q_values, hidden = self.policy.agent_q_values(inputs, hidden)
        avail = None if avail_actions is None else th.as_tensor(avail_actions, device=self.device)
        actions = self.policy.greedy_actions(q_values, avail).cpu().numpy()
        if epsilon > 0:
            explore = self._rng.random(actions.shape) < epsilon
            allowed = np.ones(q_values.shape, dtype=bool) if avail_actions is None else np.asarray(avail_actions) > 0
            random_actions = np.array([[self._rng.choice(np.flatnonzero(a)) for a in env_allowed] for env_allowed in allowed])
            actions = np.where(explore, random_actions, actions)
        return actions, hidden

    def predict(
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
        observation = np.asarray(observation, dtype=np.float32)
        single = observation.ndim == 2
        obs = observation[None] if single else observation
        n_envs = obs.shape[0]
        masks = None if action_masks is None else np.asarray(action_masks)
        if masks is not None and single:
            masks = masks[None]
        if state is None:
            hidden = None
            last_actions = -np.ones((n_envs, self.n_agents), dtype=np.int64)
        else:
            hidden_array, last_actions = state[0], np.array(state[1])
            hidden = th.as_tensor(hidden_array, device=self.device).reshape(n_envs, self.n_agents, -1)
            if episode_start is not None:
                starts = np.asarray(episode_start, dtype=bool).reshape(n_envs)
                hidden = hidden * th.as_tensor(~starts, device=self.device, dtype=hidden.dtype).view(-1, 1, 1)
                last_actions = last_actions.reshape(n_envs, self.n_agents)
                last_actions[starts] = -1
        self.policy.set_training_mode(False)
        actions, next_hidden = self._act(
            obs, masks, hidden, last_actions.reshape(n_envs, self.n_agents), 0.0 if deterministic else self.exploration_rate
        )
        next_state = (next_hidden.cpu().numpy(), actions.copy())
        if single:
            return actions[0], (next_state[0][0], next_state[1][0])
        return actions, next_state

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

    def _next_agent_values(self, batch: EpisodeBatch, online_q: th.Tensor, target_q: th.Tensor) -> th.Tensor:
        """Each agent's bootstrap value at time points ``1..T``: ``[batch, T, n_agents]``."""
        avail = batch.avail_actions[:, 1:] > 0
        any_avail = avail.any(dim=-1)  # padding time points have no available action
        avail = avail | ~any_avail.unsqueeze(-1)
        next_target = target_q[:, 1:]
        if self.target_operator == "max" and self.double_q:
            best = self.policy.greedy_actions(online_q[:, 1:].detach(), avail.float())
            values = next_target.gather(-1, best.unsqueeze(-1)).squeeze(-1)
        else:
            operator = get_target_operator(self.target_operator)
            params = (
                {"omega": self.mellowmax_omega, "alpha": self.mellowmax_alpha}
                if self.target_operator == "soft_mellowmax"
                else {}
            )
            values = operator(next_target.masked_fill(~avail, -float("inf")), dim=-1, **params)
        return th.where(any_avail, values, 0.0)

    def _targets(self, batch: EpisodeBatch, rewards: th.Tensor, next_values: th.Tensor) -> th.Tensor:
        """The team targets ``[batch, T]``: TD(lambda) in its phase, else ``n_steps``-step returns."""
        if self._lambda_phase():
            return lambda_returns(rewards, batch.terminated, next_values, self.gamma, self.td_lambda, batch.filled)
        return n_step_returns(rewards, batch.terminated, next_values, self.gamma, self.n_steps, batch.filled)

    def train(self) -> None:
        """One gradient step on a batch of episodes."""
        assert self.replay_buffer is not None
        self.policy.set_training_mode(True)
        batch = self.replay_buffer.sample(self.batch_size, self._rng)
        steps = batch.actions.shape[1]
        last_actions = th.cat([-th.ones_like(batch.actions[:, :1]), batch.actions], dim=1)
        inputs = self.policy.agent_inputs(batch.observations, last_actions)
        online_q = self.policy.unroll(inputs)
        chosen = online_q[:, :steps].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        rewards = batch.rewards
        filled = batch.filled
        if self.standardize_rewards:
            self.reward_stats.update(rewards[filled > 0].cpu().numpy().astype(np.float64))
            rewards = (rewards - float(self.reward_stats.mean)) / float(np.sqrt(self.reward_stats.var) + 1e-8)
        with th.no_grad():
            target_q = self.policy.unroll(inputs, target=True)
            next_values = self.policy.mix(self._next_agent_values(batch, online_q, target_q), batch.states[:, 1:], target=True)
            targets = self._targets(batch, rewards, next_values.squeeze(-1))
        q_tot = self.policy.mix(chosen, batch.states[:, :steps]).squeeze(-1)
        td_error = (q_tot - targets) * filled
        loss = (td_error**2).sum() / filled.sum()
        self.policy.optimizer.zero_grad()
        loss.backward()
        parameters = [p for group in self.policy.optimizer.param_groups for p in group["params"]]
        grad_norm = th.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1
        n_filled = float(filled.sum())
        td_error, q_tot = td_error.detach(), q_tot.detach()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/grad_norm", float(grad_norm))
        self.logger.record("train/td_error_abs", float(td_error.abs().sum()) / n_filled)
        self.logger.record("train/q_taken_mean", float((q_tot * filled).sum()) / n_filled)
        self.logger.record("train/target_mean", float((targets * filled).sum()) / n_filled)

    def _update_target(self) -> None:
        """Copy the online networks (masks included) into the targets every ``target_update_interval`` episodes."""
        if self._episode_num - self._last_target_update >= self.target_update_interval:
            self.policy.agent_target.load_state_dict(self.policy.agent.state_dict())
            self.policy.mixer_target.load_state_dict(self.policy.mixer.state_dict())
            self._last_target_update = self._episode_num

    def _update_exploration_rate(self) -> None:
        progress = 1.0 if self.exploration_steps == 0 else min(1.0, self.num_timesteps / self.exploration_steps)
        self.exploration_rate = self.exploration_initial_eps + progress * (
            self.exploration_final_eps - self.exploration_initial_eps
        )

    # --- the loop ----------------------------------------------------------------------------------------------

    @property
    def logger(self) -> Logger:
        if self._logger is None:
            self._logger = configure(folder=None, format_strings=["stdout"] if self.verbose >= 1 else [])
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Log with ``logger`` (SB3's :func:`~stable_baselines3.common.logger.configure`) instead of the default one."""
        self._logger = logger
        self._custom_logger = True

    def _setup_learn(
        self, total_timesteps: int, callback: MaybeCallback, reset_num_timesteps: bool, tb_log_name: str, progress_bar: bool
    ) -> tuple[int, BaseCallback]:
        if self.env is None:
            raise ValueError(f"{type(self).__name__} has no env to learn from: pass one to the constructor, load or set_env")
        if not is_integer(total_timesteps) or total_timesteps < 0:
            raise ValueError(f"total_timesteps={total_timesteps!r} is not valid; it must be an integer >= 0")
        self.start_time = time.time_ns()
        self._num_timesteps_at_start = self.num_timesteps
        if reset_num_timesteps:
            self.num_timesteps = 0
            self._episode_num = 0
            self._last_target_update = 0
            self.ep_info_buffer.clear()
        else:
            total_timesteps += self.num_timesteps
        self._total_timesteps = int(total_timesteps)
        if not self._custom_logger:
            self._logger = sb3_configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callbacks: list[BaseCallback] = [MultiAgentTopologyCallback(verbose=self.verbose)]
        if isinstance(callback, list):
            callbacks += callback
        elif isinstance(callback, BaseCallback):
            callbacks.append(callback)
        elif callback is not None:
            callbacks.append(ConvertCallback(callback))
        if progress_bar:
            callbacks.append(ProgressBarCallback())
        merged = CallbackList(callbacks)
        merged.init_callback(self)  # type: ignore[arg-type]
        return self._total_timesteps, merged

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
        keep_going = True
        while self.num_timesteps < total_timesteps and keep_going:
            callback.on_rollout_start()
            keep_going = self._collect_episode(callback)
            callback.on_rollout_end()
            if not keep_going:  # a callback stopped training (the episode so far is stored)
                break
            if self.replay_buffer.can_sample(self.batch_size) and self.num_timesteps >= self.learning_starts:
                self.train()
            self._update_target()
            if log_interval is not None and self._episode_num % log_interval == 0:
                self._dump_logs()
        callback.on_training_end()
        return self

    def _collect_episode(self, callback: BaseCallback) -> bool:
        """Run one epsilon-greedy episode into the buffer, calling ``callback`` at every step."""
        assert self.env is not None and self.replay_buffer is not None
        self.policy.set_training_mode(False)
        observations, state, avail = self.env.reset(seed=self._reset_seed)
        self._reset_seed = None
        episode = self.replay_buffer.new_episode()
        episode.start(observations, state, avail)
        hidden = None
        last_actions = -np.ones((1, self.n_agents), dtype=np.int64)
        episode_return = 0.0
        keep_going = True
        done = False
        while not done:
            self._update_exploration_rate()
            actions, hidden = self._act(observations[None], avail[None], hidden, last_actions, self.exploration_rate)
            observations, state, avail, reward, terminated, truncated, info = self.env.step(actions[0])
            done = terminated or truncated or episode.length + 1 >= self.episode_limit
            episode.add(actions[0], reward, terminated, observations, state, avail)
            last_actions = actions
            episode_return += reward
            self.num_timesteps += 1
            dones = np.array([done])
            infos = [info]
            callback.update_locals(locals())
            if not callback.on_step():
                keep_going = False
                break
        self.replay_buffer.add(episode)
        self._episode_num += 1
        self.ep_info_buffer.append({"r": episode_return, "l": episode.length})
        return keep_going

    def _dump_logs(self) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, 1e-9)
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

    #: attributes saved besides the constructor's arguments (the training state ``learn`` continues from)
    _saved_state: ClassVar[tuple[str, ...]] = (
        "num_timesteps",
        "_total_timesteps",
        "_episode_num",
        "_n_updates",
        "_last_target_update",
        "exploration_rate",
        "reward_stats",
        STATE_ATTRIBUTE,
        "env_shape",
        "dst_config",
    )

    def get_parameters(self) -> dict[str, dict[str, Any]]:
        """The policy's and the optimizer's ``state_dict`` (masks included), as SB3 names them."""
        return {"policy": self.policy.state_dict(), "policy.optimizer": self.policy.optimizer.state_dict()}

    def set_parameters(
        self, load_path_or_dict: str | dict[str, Any], exact_match: bool = True, device: th.device | str = "auto"
    ) -> None:
        """Load parameters from :meth:`get_parameters` or a saved file (see SB3's ``set_parameters``)."""
        if isinstance(load_path_or_dict, dict):
            params = load_path_or_dict
        else:
            _, loaded, _ = load_from_zip_file(load_path_or_dict, device=device, load_data=False)
            assert loaded is not None
            params = loaded
        missing = {"policy", "policy.optimizer"} - set(params)
        if exact_match and missing:
            raise ValueError(f"names of parameters do not match the model's: missing {sorted(missing)}")
        for name, state in params.items():
            recursive_getattr(self, name).load_state_dict(state)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """Save the model (networks, masks, optimizer, DST schedule, training counters) to a zip file, as SB3 does.

        :param exclude: saved attributes to leave out
        :param include: other attributes to save
        """
        names = set(self._saved_state) - set(exclude or ()) | set(include or ())
        data = {name: getattr(self, name) for name in sorted(names)}
        data.update(policy_class=self.policy_class, init_kwargs=self._init_kwargs)
        save_to_zip_file(path, data=data, params=self.get_parameters())

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
        self.replay_buffer = buffer

    @classmethod
    def load(
        cls: type[SelfQMIX],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: MultiAgentEnv | Any | str | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfQMIX:
        """Load a model saved by :meth:`save` (with ``env``, to continue training).

        :param kwargs: constructor arguments that replace the saved ones (e.g. ``learning_rate``, ``verbose``, a DST
            setting such as ``backend="csr"``)
        """
        data, params, _ = load_from_zip_file(
            path, device=device, custom_objects=custom_objects, print_system_info=print_system_info
        )
        assert data is not None and params is not None
        init_kwargs = {
            **data.pop("init_kwargs"),
            **{k: v for k, v in kwargs.items() if k not in MODULE_SETTINGS and k != "modules"},
        }
        dst_config = data.pop("dst_config")
        dst_config.update({k: v for k, v in kwargs.items() if k in MODULE_SETTINGS or k == "modules"})
        init_kwargs["device"] = device
        model = cls(data.pop("policy_class"), None, **init_kwargs, **dst_config, _init_setup_model=False)
        model.__dict__.update(data)
        if env is not None:
            model.set_env(env)
        model._setup_model()
        model.set_parameters(params, exact_match=True, device=device)
        return model


class VDN(QMIX):
    """
    VDN (Sunehag et al., 2018): :class:`QMIX` with the team value as the sum of the agents' values (no mixing
    network: ``agent`` is the only sparse module). Same arguments and defaults (EPyMARL's VDN shares QMIX's).
    """

    policy_aliases: ClassVar[dict[str, type[QMIXPolicy]]] = {"RnnPolicy": VDNPolicy, "MlpPolicy": MlpVDNPolicy}

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
