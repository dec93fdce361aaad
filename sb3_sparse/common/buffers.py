"""Replay buffers that make value learning reliable when the networks are sparse.

Sparse value networks fit noisy targets poorly; RLx2 (Tan et al., ICLR 2023) and MAST (Hu et al., 2024)
make the targets and the data more reliable instead of the networks larger:

- :class:`MultiStepReplayBuffer`: n-step returns (RLx2: 1-step targets until 300k env steps, then
  3-step), with SAC's soft-value entropy terms of the intermediate states;
- :class:`DualReplayBuffer`: MAST's dual buffers, part of each batch from the newest transitions;
- :class:`DynamicReplayBuffer`: RLx2's dynamic capacity, the oldest transitions are dropped while they
  are too far from the current policy.

Each is a ``replay_buffer_class`` for any SB3 off-policy algorithm (SAC, TD3, DQN, sb3-contrib's TQC and
CrossQ, and the sparse ones): they return their discounts in ``ReplayBufferSamples.discounts``, which
these algorithms use. What needs the model (the policy, the entropy coefficient, gamma) is installed by
:meth:`MultiStepReplayBuffer.attach`, which :class:`ReplayBufferCallback` (or a sparse algorithm) calls
at the start of training; these functions are not pickled with the buffer (``save_replay_buffer``).

Storage follows SB3: a *row* holds one time step of each of the ``n_envs`` environments, so a row is
``n_envs`` *transitions*. ``size()`` counts rows, as in SB3; each argument says which unit it takes.
"""

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_sparse.core.config import check_choice, is_integer, is_number

#: A function of a batch of (normalized) observations, as a tensor on the buffer's device.
ObservationFunction = Callable[[th.Tensor], th.Tensor]

#: Attributes holding functions of the model: installed by ``attach``, never pickled.
ATTACHED = ("entropy_bonus", "policy_action", "vec_normalize_env")


def _check_int(name: str, value: Any, low: int) -> int:
    """An integer >= ``low``."""
    if not is_integer(value) or value < low:
        raise ValueError(f"{name}={value!r} is not valid; it must be an integer >= {low}")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, open_ends: str = "") -> float:
    """A finite number in [low, high]; ``open_ends`` may contain ``"low"`` / ``"high"`` to exclude them."""
    valid = is_number(value) and np.isfinite(value) and low <= value <= high
    valid = valid and not ("low" in open_ends and value == low) and not ("high" in open_ends and value == high)
    if not valid:
        interval = f"{'(' if 'low' in open_ends else '['}{low}, {high}{')' if 'high' in open_ends else ']'}"
        raise ValueError(f"{name}={value!r} is not valid; it must be a number in {interval}")
    return float(value)


@contextmanager
def _evaluation(actor: BasePolicy) -> Iterator[None]:
    """Run ``actor`` in eval mode (CrossQ's batch renorm statistics are left alone) without gradients."""
    training = actor.training
    actor.set_training_mode(False)
    try:
        with th.no_grad():
            yield
    finally:
        actor.set_training_mode(training)


def _entropy_coefficient(model: Any) -> th.Tensor:
    log_ent_coef = getattr(model, "log_ent_coef", None)
    if log_ent_coef is not None:
        return th.exp(log_ent_coef.detach())
    return model.ent_coef_tensor


def _entropy_bonus(model: Any) -> ObservationFunction:
    """``-ent_coef * log pi(a|s)`` for a fresh action ``a ~ pi(.|s)`` of the model's current actor."""

    def bonus(observations: th.Tensor) -> th.Tensor:
        actor = model.actor
        with _evaluation(actor):
            _, log_prob = actor.action_log_prob(observations)
            return -_entropy_coefficient(model) * log_prob.reshape(-1)

    return bonus


def _policy_action(model: Any) -> ObservationFunction:
    """The model's deterministic actor actions, in [-1, 1] (the scale of the actions SB3 stores)."""

    def act(observations: th.Tensor) -> th.Tensor:
        actor = model.actor
        with _evaluation(actor):
            if hasattr(actor, "action_log_prob"):  # SAC, TQC, CrossQ: squashed Gaussian
                return actor(observations, deterministic=True)
            return actor(observations)  # TD3: tanh output

    return act


class MultiStepReplayBuffer(ReplayBuffer):
    """
    Replay buffer returning n-step returns, with RLx2's delayed switch from 1-step targets.

    The return of a transition sums the discounted rewards of up to ``n_steps`` transitions of its
    environment and stops at the end of the episode (termination or timeout) and at the newest
    transition; the discount ``gamma ** k`` of its actual length ``k`` is returned in ``discounts``, and
    ``dones`` is the termination (not timeout) of its last transition. With ``n_steps=1`` the samples
    are exactly those of SB3's ``ReplayBuffer``. Sampling is uniform over a window, the newest
    :meth:`size` rows (all valid rows here; subclasses shrink or split it).

    :param buffer_size: Max number of transitions in the buffer (``buffer_size // n_envs`` rows)
    :param observation_space: Observation space (not ``Dict``)
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: Not supported (must be ``False``)
    :param handle_timeout_termination: Handle timeout termination (due to timelimit)
        separately and treat the task as infinite horizon task.
    :param n_steps: Number of transitions summed in a return (1: one-step targets)
    :param gamma: Discount factor; :meth:`attach` replaces it by the model's
    :param n_step_start: Env steps added to the buffer before the n-step returns start (1-step returns
        until then; RLx2: 300k)
    :param entropy_terms: When an entropy function is attached (SAC family), add the soft-value entropy
        bonus of the intermediate states to the return: ``sum_{i=1}^{k-1} gamma**i * bonus(s_i)`` with
        ``bonus(s) = -ent_coef * log pi(a|s)``, ``a ~ pi(.|s)``. The last state's term is already in the
        algorithm's target.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        n_steps: int = 1,
        gamma: float = 0.99,
        n_step_start: int = 0,
        entropy_terms: bool = True,
    ):
        name = type(self).__name__
        if optimize_memory_usage:
            raise ValueError(f"{name} does not support optimize_memory_usage=True; use optimize_memory_usage=False")
        if isinstance(observation_space, spaces.Dict):
            raise ValueError(f"{name} does not support Dict observation spaces")
        _check_int("buffer_size", buffer_size, 1)
        _check_int("n_envs", n_envs, 1)
        super().__init__(buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination)
        self.n_steps = _check_int("n_steps", n_steps, 1)
        self.gamma = _check_float("gamma", gamma, 0.0, 1.0)
        self.n_step_start = _check_int("n_step_start", n_step_start, 0)
        if not isinstance(entropy_terms, (bool, np.bool_)):
            raise ValueError(f"entropy_terms={entropy_terms!r} is not valid; it must be True or False")
        self.entropy_terms = bool(entropy_terms)
        #: env steps added so far (each ``add`` is ``n_envs`` env steps)
        self.env_steps = 0
        #: soft-value entropy bonus of a batch of observations (installed by ``attach``)
        self.entropy_bonus: ObservationFunction | None = None
        #: deterministic policy actions in [-1, 1] of a batch of observations (installed by ``attach``)
        self.policy_action: ObservationFunction | None = None
        #: the model's ``VecNormalize`` (or None), to normalize observations outside ``sample``
        self.vec_normalize_env: Callable[[], VecNormalize | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the data and counters, not the attached functions (they reference the model)."""
        state = self.__dict__.copy()
        state.update(dict.fromkeys(ATTACHED))
        return state

    @property
    def active_n_steps(self) -> int:
        """The number of steps of the returns sampled now: 1 before ``n_step_start`` env steps, then ``n_steps``."""
        return self.n_steps if self.env_steps >= self.n_step_start else 1

    def attach(self, model: BaseAlgorithm) -> None:
        """
        Install the functions of ``model`` the buffer uses (called again after a load: they are not pickled).

        The entropy bonus for an actor with ``action_log_prob`` and an entropy coefficient (SAC, TQC,
        CrossQ), the deterministic policy actions for an actor of a continuous action space, and the
        model's ``gamma`` (with a warning when it differs from the buffer's).

        :param model: the SB3 model that trains from this buffer
        """
        actor = getattr(model, "actor", None)
        has_coefficient = getattr(model, "log_ent_coef", None) is not None or hasattr(model, "ent_coef_tensor")
        self.entropy_bonus = _entropy_bonus(model) if hasattr(actor, "action_log_prob") and has_coefficient else None
        continuous = isinstance(model.action_space, spaces.Box)
        self.policy_action = _policy_action(model) if actor is not None and continuous else None
        self.vec_normalize_env = model.get_vec_normalize_env
        gamma = getattr(model, "gamma", self.gamma)
        if gamma != self.gamma:
            warnings.warn(
                f"{type(self).__name__}: gamma={self.gamma} differs from the model's gamma={gamma}; "
                "the model's gamma is used for the n-step returns"
            )
            self.gamma = float(gamma)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super().add(obs, next_obs, action, reward, done, infos)
        self.env_steps += self.n_envs

    def reset(self) -> None:
        """Empty the buffer and restart the env step count."""
        super().reset()
        self.env_steps = 0

    def size(self) -> int:
        """The number of rows in the sampling window (the newest ones)."""
        return self.buffer_size if self.full else self.pos

    def window_rows(self, offsets: np.ndarray, count: int) -> np.ndarray:
        """
        Map ``offsets`` in [0, count) to the ``count`` newest rows, in increasing row order.

        All valid rows map to themselves, so uniform sampling matches SB3's ``ReplayBuffer``.

        :param offsets: integers in [0, count)
        :param count: number of newest rows, at most the number of valid rows
        :return: row indices
        """
        start = self.pos - count
        if start >= 0:
            return offsets + start
        # the rows wrap around the end of the storage: [0, pos) and [buffer_size - (count - pos), buffer_size)
        return np.where(offsets < self.pos, offsets, offsets + self.buffer_size - count)

    def _check_not_empty(self) -> int:
        size = self.size()
        if size == 0:
            raise ValueError(f"cannot sample from an empty {type(self).__name__}")
        return size

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """
        Sample transitions uniformly from the window, with their n-step returns.

        :param batch_size: Number of transitions to sample
        :param env: associated VecNormalize to normalize the observations/rewards when sampling
        :return: the samples, their discounts in ``discounts``
        """
        size = self._check_not_empty()
        return self._get_samples(self.window_rows(np.random.randint(0, size, size=batch_size), size), env=env)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        steps = np.arange(self.active_n_steps)
        rows = (batch_inds[:, None] + steps) % self.buffer_size  # [batch, n]: the segment of each sample
        envs = env_indices[:, None]
        newest = (self.pos - 1) % self.buffer_size
        ends = (self.dones[rows, envs] > 0) | (self.timeouts[rows, envs] > 0) | (rows == newest)
        ends[:, -1] = True
        lengths = ends.argmax(axis=1) + 1  # k: transitions in each return
        included = steps < lengths[:, None]
        powers = (self.gamma**steps).astype(np.float32)
        rewards = self._normalize_reward(self.rewards[rows, envs], env)
        returns = np.where(included, rewards * powers, np.float32(0.0)).sum(axis=1, dtype=np.float32)
        if self.entropy_terms and self.entropy_bonus is not None and len(steps) > 1:
            returns += self._entropy_terms(rows, envs, included, powers, env)

        last = rows[np.arange(len(batch_inds)), lengths - 1]
        dones = self.dones[last, env_indices] * (1 - self.timeouts[last, env_indices])
        discounts = (self.gamma**lengths).astype(np.float32)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(self.next_observations[last, env_indices, :], env),
            dones.reshape(-1, 1),
            returns.reshape(-1, 1),
            discounts.reshape(-1, 1),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))

    def _entropy_terms(
        self, rows: np.ndarray, envs: np.ndarray, included: np.ndarray, powers: np.ndarray, env: VecNormalize | None
    ) -> np.ndarray:
        """``sum_{i=1}^{k-1} gamma**i * bonus(s_i)`` per sample, ``s_i`` the state reached by its transition ``i - 1``."""
        assert self.entropy_bonus is not None
        intermediate = included[:, 1:]  # state s_i for i = 1..k-1
        previous_rows = rows[:, :-1][intermediate]
        previous_envs = np.broadcast_to(envs, rows.shape)[:, :-1][intermediate]
        observations = self._normalize_obs(self.next_observations[previous_rows, previous_envs, :], env)
        bonus = self.entropy_bonus(self.to_torch(observations))  # type: ignore[arg-type]
        terms = np.zeros(intermediate.shape, dtype=np.float32)
        terms[intermediate] = bonus.reshape(-1).detach().cpu().numpy()
        return (terms * powers[1:]).sum(axis=1, dtype=np.float32)


class DualReplayBuffer(MultiStepReplayBuffer):
    """
    MAST's dual replay buffers: part of each batch comes from the newest transitions.

    One storage serves both buffers: the small one is the newest ``recent_size`` rows of the window,
    the large one the whole window. ``round(recent_fraction * batch_size)`` indices of each batch come
    uniformly from the recent rows (first in the batch), the rest uniformly from the window. MAST (Hu et
    al., 2024) does not publish the mixing ratio nor the sizes; 0.5 is our default.

    :param recent_size: Number of newest rows forming the small buffer (transitions with ``n_envs=1``),
        at least 1; a larger value than the window (e.g. a model loaded with ``buffer_size=1``) means
        the whole window
    :param recent_fraction: Fraction of each batch drawn from the recent rows, in [0, 1]
    :param kwargs: the arguments of :class:`MultiStepReplayBuffer`
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        recent_size: int = 10_000,
        recent_fraction: float = 0.5,
        **kwargs: Any,
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            **kwargs,
        )
        self.recent_size = _check_int("recent_size", recent_size, 1)
        self.recent_fraction = _check_float("recent_fraction", recent_fraction, 0.0, 1.0)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """
        Sample ``round(recent_fraction * batch_size)`` transitions from the recent rows, the rest from the window.

        :param batch_size: Number of transitions to sample
        :param env: associated VecNormalize to normalize the observations/rewards when sampling
        :return: the samples, their discounts in ``discounts``
        """
        size = self._check_not_empty()
        recent = min(self.recent_size, size)
        n_recent = round(self.recent_fraction * batch_size)
        batch_inds = np.concatenate(
            [
                self.window_rows(np.random.randint(0, recent, size=n_recent), recent),
                self.window_rows(np.random.randint(0, size, size=batch_size - n_recent), size),
            ]
        )
        return self._get_samples(batch_inds, env=env)


class DynamicReplayBuffer(MultiStepReplayBuffer):
    """
    RLx2's dynamic-capacity buffer: the oldest transitions are dropped while they are off-policy.

    Every ``check_interval`` env steps (in ``add``), the policy distance of the oldest ``check_size``
    transitions of the window, ``0.5 * mean((pi(s) - a)**2)`` (actions in [-1, 1], averaged over the
    action dimensions and the transitions), is stored in ``policy_distance``. While it exceeds
    ``distance_threshold`` and the window holds more than ``min_size`` transitions, the capacity (in
    rows, ``capacity``) shrinks to the window minus its oldest ``drop_fraction``, never below
    ``min_size`` transitions; it stays reduced, so only the newest ``capacity`` rows are sampled. The
    storage keeps its memory; a ``buffer_size`` at most ``min_size`` never shrinks.

    The policy is installed by :meth:`attach`: by :class:`ReplayBufferCallback` or a sparse algorithm.

    :param check_interval: Env steps between two checks
    :param check_size: Number of oldest transitions of the window checked (RLx2: 8 x batch size)
    :param distance_threshold: Policy distance above which the capacity shrinks
    :param min_size: Transitions the window never drops below (RLx2: 1e5 for TD3, 2e5 for SAC)
    :param drop_fraction: Fraction of the window dropped at a shrink, in (0, 1)
    :param kwargs: the arguments of :class:`MultiStepReplayBuffer`
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        check_interval: int = 10_000,
        check_size: int = 2048,
        distance_threshold: float = 0.2,
        min_size: int = 100_000,
        drop_fraction: float = 0.1,
        **kwargs: Any,
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            **kwargs,
        )
        self.check_interval = _check_int("check_interval", check_interval, 1)
        self.check_size = _check_int("check_size", check_size, 1)
        self.distance_threshold = _check_float("distance_threshold", distance_threshold, 0.0, math.inf, "high")
        self.min_size = _check_int("min_size", min_size, 1)
        self.drop_fraction = _check_float("drop_fraction", drop_fraction, 0.0, 1.0, "low high")
        #: rows that can be sampled (the newest ones)
        self.capacity = self.buffer_size
        #: the policy distance of the last check (None before one)
        self.policy_distance: float | None = None
        self.warned_unattached = False

    def attach(self, model: BaseAlgorithm) -> None:
        """
        Install the functions of ``model`` (see :meth:`MultiStepReplayBuffer.attach`).

        :param model: the SB3 model that trains from this buffer; it needs a continuous-action actor
        """
        if not isinstance(model.action_space, spaces.Box) or getattr(model, "actor", None) is None:
            raise ValueError(
                f"DynamicReplayBuffer needs a continuous-action actor (SAC, TD3, TQC, CrossQ): {type(model).__name__} "
                f"with action space {model.action_space} has none; use MultiStepReplayBuffer or DualReplayBuffer"
            )
        super().attach(model)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super().add(obs, next_obs, action, reward, done, infos)
        if self.env_steps // self.check_interval > (self.env_steps - self.n_envs) // self.check_interval:
            self.check()

    def reset(self) -> None:
        """Empty the buffer, restart the env step count and restore the full capacity."""
        super().reset()
        self.capacity = self.buffer_size
        self.policy_distance = None

    def size(self) -> int:
        """The number of rows in the sampling window: the newest ones, at most ``capacity``."""
        return min(super().size(), self.capacity)

    def check(self) -> None:
        """Measure the policy distance of the oldest transitions and shrink the capacity when it is too large."""
        if self.policy_action is None:
            if not self.warned_unattached:
                warnings.warn(
                    "DynamicReplayBuffer cannot check the policy distance: no policy is attached. "
                    "Train with callback=ReplayBufferCallback() (the sparse algorithms add it) or call "
                    "replay_buffer.attach(model); until then the capacity does not change."
                )
                self.warned_unattached = True
            return
        size = self.size()
        oldest = (self.pos - size + np.arange(min(size, math.ceil(self.check_size / self.n_envs)))) % self.buffer_size
        observations = self.observations[oldest].reshape(-1, *self.obs_shape)[: self.check_size]
        actions = self.actions[oldest].reshape(-1, self.action_dim)[: self.check_size]
        env = self.vec_normalize_env() if self.vec_normalize_env is not None else None
        policy = self.policy_action(self.to_torch(self._normalize_obs(observations, env)))  # type: ignore[arg-type]
        squared = (policy.detach().cpu().numpy().reshape(actions.shape) - actions) ** 2
        self.policy_distance = float(0.5 * squared.mean())
        if self.policy_distance > self.distance_threshold and size * self.n_envs > self.min_size:
            dropped = max(1, round(size * self.drop_fraction))
            self.capacity = max(math.ceil(self.min_size / self.n_envs), size - dropped)


class ReplayBufferCallback(BaseCallback):
    """
    Attaches the model to its replay buffer at the start of training and logs the buffer.

    For plain SB3 algorithms, e.g.
    ``SAC("MlpPolicy", env, replay_buffer_class=DynamicReplayBuffer).learn(n, callback=ReplayBufferCallback())``;
    the sparse algorithms add it themselves. At each rollout end it records ``buffer/size`` (transitions
    in the window) and, for a :class:`DynamicReplayBuffer`, ``buffer/capacity`` (transitions) and
    ``buffer/policy_distance`` (once measured).

    :param verbose: Verbosity level
    """

    def _on_training_start(self) -> None:
        buffer: Any = getattr(self.model, "replay_buffer", None)
        if hasattr(buffer, "attach"):
            buffer.attach(self.model)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = getattr(self.model, "replay_buffer", None)
        if not isinstance(buffer, ReplayBuffer):
            return
        self.logger.record("buffer/size", buffer.size() * buffer.n_envs)
        if isinstance(buffer, DynamicReplayBuffer):
            self.logger.record("buffer/capacity", buffer.capacity * buffer.n_envs)
            if buffer.policy_distance is not None:
                self.logger.record("buffer/policy_distance", buffer.policy_distance)


#: The package's replay buffers by name.
REPLAY_BUFFERS: dict[str, type[ReplayBuffer]] = {
    "multi_step": MultiStepReplayBuffer,
    "dual": DualReplayBuffer,
    "dynamic": DynamicReplayBuffer,
}


def get_replay_buffer_class(name: str) -> type[ReplayBuffer]:
    """
    The replay buffer class registered as ``name``.

    :param name: ``"multi_step"``, ``"dual"`` or ``"dynamic"``
    :return: the class, to pass as ``replay_buffer_class``
    """
    check_choice("replay_buffer", name, tuple(REPLAY_BUFFERS))
    return REPLAY_BUFFERS[name]


def find_replay_buffer_class(value: Any) -> type[ReplayBuffer] | None:
    """
    The package's replay buffer class that a hyperparameter value names, if any (for YAML files and profiles).

    :param value: a registry name (``"dual"``), a class name (``"DualReplayBuffer"``) or its dotted path
        (``"sb3_sparse.common.buffers.DualReplayBuffer"``)
    :return: the class; None for anything else (another library's buffer, a class, None)
    """
    if not isinstance(value, str):
        return None
    if value in REPLAY_BUFFERS:
        return REPLAY_BUFFERS[value]
    module, _, name = value.rpartition(".")
    if module not in ("", __name__):
        return None
    return next((cls for cls in REPLAY_BUFFERS.values() if cls.__name__ == name), None)
