"""Episode replay buffers of the multi-agent learners (EPyMARL stores and samples whole episodes).

An episode of at most ``episode_limit`` steps is stored padded to that length: observations, states and
available actions at its ``T + 1`` time points (the last one is the state after the last step, for the
bootstrap of a truncated episode), and per step the joint action, team reward, termination flag and a
``filled`` flag (1 for real steps, 0 for padding). A batch is cut to the longest episode in it.
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch as th

from sb3_sparse.core.config import check_choice, is_integer, is_number


class EpisodeBatch(NamedTuple):
    """A batch of episodes as tensors, time in dimension 1 (``T`` steps, ``T + 1`` time points)."""

    observations: th.Tensor  # [batch, T + 1, n_agents, obs_dim]
    states: th.Tensor  # [batch, T + 1, state_dim]
    avail_actions: th.Tensor  # [batch, T + 1, n_agents, n_actions]
    actions: th.Tensor  # [batch, T, n_agents] (long)
    rewards: th.Tensor  # [batch, T]
    terminated: th.Tensor  # [batch, T]
    filled: th.Tensor  # [batch, T]


@dataclass
class Episode:
    """One episode being collected (numpy arrays, padded to the episode limit)."""

    observations: np.ndarray
    states: np.ndarray
    avail_actions: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    filled: np.ndarray
    length: int = 0

    @classmethod
    def empty(cls, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int) -> "Episode":
        return cls(
            observations=np.zeros((episode_limit + 1, n_agents, obs_dim), dtype=np.float32),
            states=np.zeros((episode_limit + 1, state_dim), dtype=np.float32),
            avail_actions=np.zeros((episode_limit + 1, n_agents, n_actions), dtype=np.float32),
            actions=np.zeros((episode_limit, n_agents), dtype=np.int64),
            rewards=np.zeros(episode_limit, dtype=np.float32),
            terminated=np.zeros(episode_limit, dtype=np.float32),
            filled=np.zeros(episode_limit, dtype=np.float32),
        )

    def start(self, observations: np.ndarray, state: np.ndarray, avail_actions: np.ndarray) -> None:
        """The first time point (after ``reset``)."""
        self.observations[0], self.states[0], self.avail_actions[0] = observations, state, avail_actions

    def add(
        self,
        actions: np.ndarray,
        reward: float,
        terminated: bool,
        observations: np.ndarray,
        state: np.ndarray,
        avail_actions: np.ndarray,
    ) -> None:
        """One step: the joint action, its team reward and termination, and the time point it led to."""
        t = self.length
        if t >= len(self.actions):
            raise ValueError(f"the episode is longer than the episode limit ({len(self.actions)} steps)")
        self.actions[t], self.rewards[t], self.terminated[t], self.filled[t] = actions, reward, terminated, 1.0
        self.observations[t + 1], self.states[t + 1], self.avail_actions[t + 1] = observations, state, avail_actions
        self.length = t + 1


_FIELDS = ("observations", "states", "avail_actions", "actions", "rewards", "terminated", "filled")


def _check_size(name: str, value: Any) -> int:
    if not is_integer(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not valid; it must be a positive integer (episodes)")
    return int(value)


class EpisodeReplayBuffer:
    """A ring buffer of ``buffer_size`` episodes, sampled uniformly.

    :param buffer_size: episodes kept (EPyMARL's QMIX: 5000)
    :param episode_limit: the longest episode
    :param n_agents: number of agents
    :param obs_dim: one agent's observation size
    :param state_dim: global state size
    :param n_actions: actions per agent
    :param device: where sampled batches go
    """

    def __init__(
        self,
        buffer_size: int,
        episode_limit: int,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        n_actions: int,
        device: th.device | str = "cpu",
    ):
        self.buffer_size = _check_size("buffer_size", buffer_size)
        self.episode_limit = _check_size("episode_limit", episode_limit)
        self.shape = (n_agents, obs_dim, state_dim, n_actions)
        self.device = th.device(device)
        template = Episode.empty(self.episode_limit, *self.shape)
        self.storage = {
            name: np.zeros((self.buffer_size, *getattr(template, name).shape), getattr(template, name).dtype)
            for name in _FIELDS
        }
        self.lengths = np.zeros(self.buffer_size, dtype=np.int64)
        self.pos = 0
        self.full = False
        self.episodes_added = 0

    def new_episode(self) -> Episode:
        """An empty episode of this buffer's shape, to collect into and then :meth:`add`."""
        return Episode.empty(self.episode_limit, *self.shape)

    def size(self) -> int:
        """Number of episodes stored."""
        return self.buffer_size if self.full else self.pos

    def add(self, episode: Episode) -> None:
        """Store a finished episode (over the oldest one when full)."""
        if episode.length == 0:
            raise ValueError("cannot store an episode without steps")
        for name in _FIELDS:
            self.storage[name][self.pos] = getattr(episode, name)
        self.lengths[self.pos] = episode.length
        self.pos = (self.pos + 1) % self.buffer_size
        self.full = self.full or self.pos == 0
        self.episodes_added += 1

    def extend_episode_limit(self, episode_limit: int) -> None:
        """Make room for episodes of up to ``episode_limit`` steps (the stored ones are kept, padded)."""
        extra = _check_size("episode_limit", episode_limit) - self.episode_limit
        if extra <= 0:
            return
        for name, array in self.storage.items():
            self.storage[name] = np.pad(array, [(0, 0), (0, extra)] + [(0, 0)] * (array.ndim - 2))
        self.episode_limit = int(episode_limit)

    def can_sample(self, batch_size: int) -> bool:
        return self.size() >= batch_size

    def newest(self, count: int) -> np.ndarray:
        """Slots of the ``count`` most recently added episodes (fewer if fewer are stored)."""
        count = min(count, self.size())
        return (self.pos - 1 - np.arange(count)) % self.buffer_size

    def sample(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        """``batch_size`` episodes drawn uniformly without replacement (EPyMARL's rule), cut to the longest."""
        if not self.can_sample(batch_size):
            raise ValueError(f"the buffer holds {self.size()} episodes, fewer than batch_size={batch_size}")
        return self.to_batch(rng.choice(self.size(), size=batch_size, replace=False))

    def to_batch(self, slots: np.ndarray) -> EpisodeBatch:
        """The episodes in ``slots`` as tensors, cut to the longest of them."""
        steps = int(self.lengths[slots].max())
        data = {}
        for name in _FIELDS:
            array = self.storage[name][slots]
            points = steps + 1 if name in ("observations", "states", "avail_actions") else steps
            data[name] = th.as_tensor(array[:, :points], device=self.device)
        return EpisodeBatch(**data)


class DualEpisodeReplayBuffer(EpisodeReplayBuffer):
    """MAST's dual buffers: each batch mixes the ``recent_size`` newest episodes with the whole buffer.

    MAST (Hu et al., 2024) pairs a small buffer of recent episodes with a large one; it does not publish
    the sizes or the mixing ratio. Here the recent buffer is the newest ``recent_size`` episodes of the
    large one (no copy), and ``recent_fraction`` of every batch is drawn from it.

    :param recent_size: episodes in the recent buffer
    :param recent_fraction: share of each batch drawn from the recent buffer, in [0, 1]
    """

    def __init__(self, *args: Any, recent_size: int = 100, recent_fraction: float = 0.5, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.recent_size = _check_size("recent_size", recent_size)
        if not is_number(recent_fraction) or not 0.0 <= recent_fraction <= 1.0:
            raise ValueError(f"recent_fraction={recent_fraction!r} is not valid; it must be a number in [0, 1]")
        self.recent_fraction = float(recent_fraction)

    def sample(self, batch_size: int, rng: np.random.Generator) -> EpisodeBatch:
        if not self.can_sample(batch_size):
            raise ValueError(f"the buffer holds {self.size()} episodes, fewer than batch_size={batch_size}")
        n_recent = min(round(batch_size * self.recent_fraction), self.recent_size, self.size())
        recent = rng.choice(self.newest(self.recent_size), size=n_recent, replace=False)
        rest = np.setdiff1d(np.arange(self.size()), recent)
        others = rng.choice(rest, size=batch_size - n_recent, replace=False)
        return self.to_batch(np.concatenate([recent, others]))


#: Episode buffers by name (``replay_buffer_class`` of the multi-agent learners accepts the name or the class).
EPISODE_BUFFERS: dict[str, type[EpisodeReplayBuffer]] = {"episode": EpisodeReplayBuffer, "dual": DualEpisodeReplayBuffer}


def get_episode_buffer_class(value: str | type[EpisodeReplayBuffer]) -> type[EpisodeReplayBuffer]:
    """The buffer class a ``replay_buffer_class`` value names (a name of :data:`EPISODE_BUFFERS` or a subclass)."""
    if isinstance(value, type) and issubclass(value, EpisodeReplayBuffer):
        return value
    if isinstance(value, str) and value in (cls.__name__ for cls in EPISODE_BUFFERS.values()):
        return next(cls for cls in EPISODE_BUFFERS.values() if cls.__name__ == value)
    check_choice("replay_buffer_class", value, tuple(EPISODE_BUFFERS))
    return EPISODE_BUFFERS[value]  # type: ignore[index]
