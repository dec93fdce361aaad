"""Cooperative multi-agent environments as fixed-size numpy arrays, for value-decomposition learners (QMIX, VDN).

:class:`MultiAgentEnv` adapts a PettingZoo parallel env: every agent gets a padded observation row, an
action-availability row and a share of one team reward, whatever agents come and go inside the env.
:class:`GymParallelEnv` turns the gymnasium multi-agent envs of lbforaging and rware (Tuple spaces, list rewards)
into PettingZoo parallel envs, and :func:`make_marl_env` builds either from an env id through :data:`MARL_ENVS`.

PettingZoo, lbforaging, rware and mpe2 are optional (``pip install "sb3-sparse[marl]"``): they are imported when an
env of their family is built, so this module imports without them.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    from pettingzoo import ParallelEnv
    from pettingzoo.utils.env import ParallelEnv as _ParallelEnvBase
else:
    try:
        from pettingzoo.utils.env import ParallelEnv as _ParallelEnvBase
    except ImportError:  # GymParallelEnv still works, it is just not a pettingzoo.ParallelEnv subclass
        _ParallelEnvBase = object

MARL_INSTALL_HINT = 'pip install "sb3-sparse[marl]"'
REWARD_MODES = ("sum", "mean")
# attributes that hold an env's own episode length (PettingZoo MPE, gymnasium specs and wrappers, lbforaging, rware)
_EPISODE_LIMIT_ATTRIBUTES = ("max_cycles", "max_episode_steps", "_max_episode_steps", "max_steps")


def _import_family(module: str, family: str) -> ModuleType:
    """Import an optional package, telling the user how to install it when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"The {family} environments need the `{module}` package, which could not be imported ({error}). "
            f"Install the multi-agent extra: {MARL_INSTALL_HINT}"
        ) from error


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        return None
    return int(value)


def find_episode_limit(env: Any) -> int | None:
    """
    The shortest episode length an env declares about itself, or ``None``.

    Looks at ``max_cycles`` (PettingZoo MPE), ``max_episode_steps`` / ``_max_episode_steps`` (lbforaging, gymnasium
    wrappers), ``max_steps`` (rware) on the env and on ``env.unwrapped``, and at ``env.spec.max_episode_steps``.

    :param env: a PettingZoo or gymnasium env
    :return: the smallest positive limit found
    """
    limits = []
    for holder in (env, getattr(env, "unwrapped", None)):
        if holder is None:
            continue
        for name in _EPISODE_LIMIT_ATTRIBUTES:
            limits.append(_positive_int(getattr(holder, name, None)))
        limits.append(_positive_int(getattr(getattr(holder, "spec", None), "max_episode_steps", None)))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


class GymParallelEnv(_ParallelEnvBase):
    """
    A gymnasium multi-agent env (lbforaging, rware) as a PettingZoo parallel env with agents ``agent_0``, ``agent_1``...

    Such envs have Tuple observation and action spaces, take a tuple of actions and return a list of rewards (or one
    shared reward, given to every agent) and one ``terminated`` flag for the team. lbforaging and rware report
    reaching their own step limit (``max_episode_steps`` / ``max_steps``) as ``terminated=True``; a time limit is a
    truncation (the learner must bootstrap there), so when the step count reaches ``max_steps`` this wrapper reports
    truncation instead.
    A real termination on exactly that step is then reported as truncation too: the envs do not tell them apart.

    :param env: the gymnasium env (from ``gymnasium.make``)
    :param max_steps: the env's step limit; default: found from the env (see :func:`find_episode_limit`)
    """

    def __init__(self, env: gym.Env, max_steps: int | None = None) -> None:
        observation_space, action_space = env.observation_space, env.action_space
        if not isinstance(observation_space, spaces.Tuple) or not isinstance(action_space, spaces.Tuple):
            raise ValueError(
                "GymParallelEnv wraps multi-agent gymnasium envs with Tuple observation and action spaces (one entry per "
                f"agent), got observation space {observation_space} and action space {action_space}"
            )
        if len(observation_space.spaces) != len(action_space.spaces):
            raise ValueError(
                f"GymParallelEnv: {len(observation_space.spaces)} observation spaces but {len(action_space.spaces)} "
                "action spaces; they must have one entry per agent"
            )
        self.env = env
        self.possible_agents = [f"agent_{i}" for i in range(len(action_space.spaces))]
        self.agents: list[str] = []
        self.observation_spaces = dict(zip(self.possible_agents, observation_space.spaces, strict=True))
        self.action_spaces = dict(zip(self.possible_agents, action_space.spaces, strict=True))
        self.max_steps = max_steps if max_steps is not None else find_episode_limit(env)
        spec = getattr(env, "spec", None)
        self.metadata = {
            "name": spec.id if spec is not None else type(env.unwrapped).__name__,
            "render_modes": list(env.metadata.get("render_modes", [])),
            "is_parallelizable": True,
        }
        self.render_mode = env.render_mode
        self.steps = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _per_agent(self, values: Any, name: str) -> list[Any]:
        """One value per agent: sequences are split, a single (team) value is shared."""
        if not isinstance(values, list | tuple | np.ndarray) or np.ndim(values) == 0:
            return [values] * len(self.possible_agents)
        values = list(values)
        if len(values) != len(self.possible_agents):
            raise ValueError(f"GymParallelEnv: the env returned {len(values)} {name} for {len(self.possible_agents)} agents")
        return values

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        observations, info = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        self.steps = 0
        obs = self._per_agent(observations, "observations")
        return dict(zip(self.agents, obs, strict=True)), {agent: dict(info) for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("GymParallelEnv.step() called after the episode ended (or before reset()): call reset()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"GymParallelEnv.step(): no action for the live agents {missing}")
        # agents that left (only envs with per-agent done flags remove some) still need a placeholder action
        joint = tuple(actions[agent] if agent in self.agents else 0 for agent in self.possible_agents)
        observations, rewards, terminated, truncated, info = self.env.step(joint)
        self.steps += 1
        obs = self._per_agent(observations, "observations")
        reward = self._per_agent(rewards, "rewards")
        term = [bool(flag) for flag in self._per_agent(terminated, "terminated flags")]
        trunc = [bool(flag) for flag in self._per_agent(truncated, "truncated flags")]
        if self.max_steps is not None and self.steps >= self.max_steps:
            term, trunc = [False] * len(term), [True] * len(trunc)
        acting = list(self.agents)
        index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self.agents = [agent for agent in acting if not (term[index[agent]] or trunc[index[agent]])]
        return (
            {agent: obs[index[agent]] for agent in acting},
            {agent: float(reward[index[agent]]) for agent in acting},
            {agent: term[index[agent]] for agent in acting},
            {agent: trunc[index[agent]] for agent in acting},
            {agent: dict(info) for agent in acting},
        )

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    @property
    def unwrapped(self) -> Any:
        return self

    def __repr__(self) -> str:
        return f"GymParallelEnv({self.env}, max_steps={self.max_steps})"


class MultiAgentEnv:
    """
    Adapter over a PettingZoo ParallelEnv for cooperative value-decomposition learners.

    Gives the fixed-size arrays an episode buffer needs: observations ``[n_agents, obs_dim]`` (flattened, padded with
    zeros to the largest agent's size), a global state ``[state_dim]``, action availability ``[n_actions]`` per agent
    (padding actions of agents with fewer actions are unavailable) and one team reward.

    Episode ends, as seen by the team:

    * an agent the env removes (terminated or truncated alone) gets zero observations from the next step on and
      only action 0 available; its action is not sent to the env.
    * the team episode ends when no agent is left. ``terminated`` is True when the last agents ended by
      termination (no bootstrap); ``truncated`` when any of them was truncated by the env, or when the adapter's own
      step count reaches ``episode_limit``. Both can be True (a termination on the limit step), as with gymnasium's
      ``TimeLimit``: a learner bootstraps only when ``terminated`` is False.
    * on the team's last step the agents keep their real available actions, so a truncated episode's last state
      bootstraps with the right maximum.

    Available actions come from the ``"action_mask"`` of a Dict observation (keys ``"observation"`` and
    ``"action_mask"``), else from ``infos[agent]["action_mask"]``, else all of the agent's Discrete actions.

    :param env: the PettingZoo parallel env
    :param episode_limit: the most steps of an episode; default: the env's own limit (``max_cycles``,
        ``max_episode_steps``, ``max_steps`` or ``spec.max_episode_steps``). The adapter enforces it itself.
    :param reward: team reward from the agents' rewards: ``"sum"`` (EPyMARL's common reward) or ``"mean"`` (the sum
        divided by ``n_agents``, departed agents included, so that the scale stays the same over an episode)
    :param env_id: the id the env was built from, for logging
    :param use_env_state: global state from ``env.state()`` (True), from the concatenated padded observations
        (False), or ``None``: ``env.state()`` when the env declares a ``state_space``, as PettingZoo envs with a state do
    """

    #: one env (SB3's callbacks, e.g. the progress bar, count steps by ``training_env.num_envs``)
    num_envs = 1

    def __init__(
        self,
        env: ParallelEnv,
        episode_limit: int | None = None,
        reward: str = "sum",
        env_id: str | None = None,
        use_env_state: bool | None = None,
    ) -> None:
        if reward not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got reward={reward!r}")
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            raise ValueError(f"MultiAgentEnv needs a PettingZoo parallel env with possible_agents, got {env!r}")
        self.env = env
        self.agents: list[str] = agents
        self.n_agents = len(agents)
        self.reward = reward
        self.env_id = env_id

        self._has_mask_obs: list[bool] = []
        self._obs_spaces: list[spaces.Space] = []
        self._obs_sizes: list[int] = []
        self._agent_actions: list[int] = []
        self._action_starts: list[int] = []
        for agent in agents:
            obs_space = env.observation_space(agent)
            has_mask = isinstance(obs_space, spaces.Dict) and {"observation", "action_mask"} <= set(obs_space.spaces)
            part = obs_space["observation"] if has_mask else obs_space
            try:
                size = spaces.flatdim(part)
            except ValueError as error:
                raise ValueError(f"The observation space of agent {agent!r} cannot be flattened: {part} ({error})") from error
            action_space = env.action_space(agent)
            if not isinstance(action_space, spaces.Discrete):
                raise ValueError(
                    f"MultiAgentEnv needs Discrete action spaces, agent {agent!r} has {action_space}"
                    " (for MPE, build the env with continuous_actions=False)"
                )
            self._has_mask_obs.append(has_mask)
            self._obs_spaces.append(part)
            self._obs_sizes.append(size)
            self._agent_actions.append(int(action_space.n))
            self._action_starts.append(int(action_space.start))
        self.obs_dim = max(self._obs_sizes)
        self.n_actions = max(self._agent_actions)

        state_space = getattr(env, "state_space", None)
        if use_env_state is None:
            use_env_state = state_space is not None
        if use_env_state and state_space is None:
            raise ValueError(f"use_env_state=True needs an env with a state_space and a state() method, {env} has none")
        self.use_env_state = bool(use_env_state)
        self.state_dim = (
            spaces.flatdim(state_space) if state_space is not None and use_env_state else self.n_agents * self.obs_dim
        )

        if episode_limit is None:
            episode_limit = find_episode_limit(env)
            if episode_limit is None:
                raise ValueError(
                    f"Cannot find the episode length of {env} (no max_cycles, max_episode_steps, max_steps or "
                    "spec.max_episode_steps): pass episode_limit=..."
                )
        elif _positive_int(episode_limit) is None:
            raise ValueError(f"episode_limit must be a positive int, got {episode_limit!r}")
        self.episode_limit = int(episode_limit)

        self._steps = 0
        self._needs_reset = True
        self._alive = np.zeros(self.n_agents, dtype=bool)
        self._avail = np.zeros((self.n_agents, self.n_actions), dtype=np.float32)

    # ----------------------------------------------------------------------------------------------------------------

    def _observations(self, observations: dict[str, Any], present: np.ndarray) -> np.ndarray:
        """Padded observation rows; zeros for the agents not ``present``."""
        out = np.zeros((self.n_agents, self.obs_dim), dtype=np.float32)
        for i, agent in enumerate(self.agents):
            if not present[i] or agent not in observations:
                continue
            obs = observations[agent]
            if self._has_mask_obs[i]:
                obs = obs["observation"]
            space = self._obs_spaces[i]
            flat = np.asarray(obs if isinstance(space, spaces.Box) else spaces.flatten(space, obs)).reshape(-1)
            if flat.size != self._obs_sizes[i]:
                raise ValueError(
                    f"agent {agent!r} returned an observation of {flat.size} values, its space {space} has "
                    f"{self._obs_sizes[i]}"
                )
            out[i, : flat.size] = flat
        return out

    def _available(self, observations: dict[str, Any], infos: dict[str, Any], live: np.ndarray) -> np.ndarray:
        """Available actions: the agents' masks for the ``live`` ones, only action 0 for the others."""
        out = np.zeros((self.n_agents, self.n_actions), dtype=np.float32)
        for i, agent in enumerate(self.agents):
            n = self._agent_actions[i]
            if not live[i]:
                out[i, 0] = 1.0
                continue
            mask = None
            if self._has_mask_obs[i] and agent in observations:
                mask = observations[agent]["action_mask"]
            elif isinstance(infos.get(agent), dict) and "action_mask" in infos[agent]:
                mask = infos[agent]["action_mask"]
            if mask is None:
                out[i, :n] = 1.0
                continue
            mask = np.asarray(mask).reshape(-1)
            if mask.size != n:
                raise ValueError(f"the action_mask of agent {agent!r} has {mask.size} entries for {n} actions")
            out[i, :n] = mask != 0
        return out

    def _state(self, obs: np.ndarray) -> np.ndarray:
        if not self.use_env_state:
            return obs.reshape(-1).copy()
        state = np.asarray(self.env.state(), dtype=np.float32).reshape(-1)
        if state.size != self.state_dim:
            raise ValueError(f"env.state() returned {state.size} values, the env's state_space has {self.state_dim}")
        return state

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.n_agents,):
            raise ValueError(f"step() expects one action per agent, shape ({self.n_agents},), got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            if not np.issubdtype(array.dtype, np.number) or not np.all(np.mod(array, 1) == 0):
                raise ValueError(f"step() expects integer actions, got {array!r}")
        array = array.astype(np.int64)
        invalid = [
            (agent, int(action))
            for agent, action, avail in zip(self.agents, array, self._avail, strict=True)
            if not (0 <= action < self.n_actions and avail[action] > 0)
        ]
        if invalid:
            details = ", ".join(
                f"{agent!r}: {action} (available: {np.flatnonzero(self._avail[self.agents.index(agent)]).tolist()})"
                for agent, action in invalid
            )
            raise ValueError(f"unavailable actions passed to step(): {details}")
        return array

    # ----------------------------------------------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Start an episode.

        :param seed: passed to the env's ``reset``: the same seed and actions give the same episode
        :param options: passed to the env's ``reset``
        :return: observations float32 ``[n_agents, obs_dim]``, state float32 ``[state_dim]``, available actions
            float32 ``[n_agents, n_actions]`` (1 = available)
        """
        observations, infos = self.env.reset(seed=seed, options=options)
        live = set(self.env.agents)
        self._alive = np.array([agent in live for agent in self.agents], dtype=bool)
        obs = self._observations(observations, self._alive)
        self._avail = self._available(observations, infos or {}, self._alive)
        self._steps = 0
        self._needs_reset = False
        return obs, self._state(obs), self._avail.copy()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool, bool, dict[str, Any]]:
        """
        Step all agents.

        :param actions: one action index per agent, ``[n_agents]``; each must be available
        :return: observations, state, available actions, team reward, terminated, truncated and an info dict with
            ``rewards`` (per-agent rewards ``[n_agents]``), ``alive`` (agents still in the episode ``[n_agents]``),
            ``episode_step`` and ``agent_infos`` (the env's per-agent infos)
        """
        if self._needs_reset:
            raise RuntimeError("MultiAgentEnv.step() called before reset() or after the episode ended: call reset()")
        array = self._check_actions(actions)
        acting = self._alive.copy()
        env_actions = {agent: int(array[i]) + self._action_starts[i] for i, agent in enumerate(self.agents) if acting[i]}
        observations, rewards, terminations, truncations, infos = self.env.step(env_actions)
        infos = infos or {}
        self._steps += 1

        live = set(self.env.agents)
        ended = [
            agent for i, agent in enumerate(self.agents) if acting[i] and (terminations.get(agent) or truncations.get(agent))
        ]
        alive = np.array([agent in live and agent not in ended for agent in self.agents], dtype=bool)
        team_over = not alive.any()
        env_truncated = team_over and any(bool(truncations.get(agent)) for agent in ended)
        terminated = team_over and not env_truncated
        limit_reached = self._steps >= self.episode_limit
        truncated = env_truncated or limit_reached

        per_agent = np.array(
            [float(rewards.get(agent, 0.0)) if acting[i] else 0.0 for i, agent in enumerate(self.agents)], dtype=np.float64
        )
        team_reward = float(per_agent.sum()) if self.reward == "sum" else float(per_agent.sum() / self.n_agents)

        obs = self._observations(observations, acting)
        # on the team's last step the agents that acted keep their real masks: a truncated episode bootstraps from them
        self._avail = self._available(observations, infos, acting if (team_over or limit_reached) else alive)
        self._alive = alive
        self._needs_reset = terminated or truncated
        info = {
            "rewards": per_agent.astype(np.float32),
            "alive": alive.copy(),
            "episode_step": self._steps,
            "agent_infos": infos,
        }
        return obs, self._state(obs), self._avail.copy(), team_reward, bool(terminated), bool(truncated), info

    def get_env_info(self) -> dict[str, int]:
        """The sizes a learner allocates its networks and buffers with (EPyMARL's ``get_env_info`` keys)."""
        return {
            "n_agents": self.n_agents,
            "obs_shape": self.obs_dim,
            "state_shape": self.state_dim,
            "n_actions": self.n_actions,
            "episode_limit": self.episode_limit,
        }

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        name = self.env_id if self.env_id is not None else str(self.env)
        return (
            f"MultiAgentEnv({name}, n_agents={self.n_agents}, obs_dim={self.obs_dim}, state_dim={self.state_dim}, "
            f"n_actions={self.n_actions}, episode_limit={self.episode_limit}, reward={self.reward!r})"
        )


# --------------------------------------------------------------------------------------------------------------------
# Families of env ids


@dataclass(frozen=True)
class MarlEnvFamily:
    """
    How to build the envs of one family from their ids.

    :param builder: ``builder(env_id, **env_kwargs)`` returns a PettingZoo parallel env, a gymnasium multi-agent env
        (wrapped in :class:`GymParallelEnv`) or a :class:`MultiAgentEnv`
    :param matches: the ids of the family: a prefix, or a predicate over ids
    :param description: what the ids look like, shown when an id matches no family
    """

    builder: Callable[..., Any]
    matches: str | Callable[[str], bool]
    description: str = ""

    def match(self, env_id: str) -> bool:
        return env_id.startswith(self.matches) if isinstance(self.matches, str) else bool(self.matches(env_id))

    def __call__(self, env_id: str, **env_kwargs: Any) -> Any:
        return self.builder(env_id, **env_kwargs)


MARL_ENVS: dict[str, MarlEnvFamily] = {}


def register_marl_env(
    family: str,
    matches: str | Callable[[str], bool],
    builder: Callable[..., Any],
    description: str = "",
    override: bool = False,
) -> None:
    """
    Register a family of env ids for :func:`make_marl_env`.

    Families registered later are tried first, so a user family can take ids from a built-in one. An id can also
    name its family explicitly as ``"family:env_id"`` (EPyMARL's ``"lbforaging:Foraging-..."`` style).

    :param family: the family name
    :param matches: the family's ids: a prefix, or a predicate ``matches(env_id) -> bool``
    :param builder: ``builder(env_id, **env_kwargs)`` returning a PettingZoo parallel env, a gymnasium multi-agent
        env with Tuple spaces, or a :class:`MultiAgentEnv`
    :param description: what the ids look like, for error messages
    :param override: replace a family of the same name (else that is an error)
    """
    if family in MARL_ENVS and not override:
        raise ValueError(f"A multi-agent env family {family!r} is already registered (pass override=True to replace it)")
    if not description and isinstance(matches, str):
        description = f"ids starting with {matches!r}"
    MARL_ENVS.pop(family, None)  # a family registered again moves to the end: it is tried first
    MARL_ENVS[family] = MarlEnvFamily(builder, matches, description)


def _gym_make(env_id: str, family: str, **env_kwargs: Any) -> gym.Env:
    # these envs return list rewards, which gymnasium's passive checker warns about on every step
    env_kwargs.setdefault("disable_env_checker", True)
    try:
        return gym.make(env_id, **env_kwargs)
    except (gym.error.UnregisteredEnv, gym.error.DeprecatedEnv) as error:
        raise ValueError(f"Unknown {family} environment id {env_id!r}: {error}") from error


def _make_lbforaging(env_id: str, **env_kwargs: Any) -> GymParallelEnv:
    lbforaging = _import_family("lbforaging", "lbforaging (level-based foraging)")
    if env_id.startswith("Foraging-grid") and env_id not in gym.registry:
        lbforaging.register_grid_envs()  # grid-observation ids are only registered on demand
    return GymParallelEnv(_gym_make(env_id, "lbforaging", **env_kwargs))


def _make_rware(env_id: str, **env_kwargs: Any) -> GymParallelEnv:
    rware = _import_family("rware", "rware (multi-robot warehouse)")
    if env_id.startswith("rware-img") and env_id not in gym.registry:
        rware.image_registration()
    return GymParallelEnv(_gym_make(env_id, "rware", **env_kwargs))


_MPE_ID = re.compile(r"(simple\w*|collect_treasure)_v\d+")


def _is_mpe_id(env_id: str) -> bool:
    return _MPE_ID.fullmatch(env_id) is not None


def _make_mpe(env_id: str, **env_kwargs: Any) -> Any:
    _import_family("pettingzoo", "MPE (multi-agent particle)")
    mpe2 = _import_family("mpe2", "MPE (multi-agent particle)")
    try:
        module = importlib.import_module(f"mpe2.{env_id}")
    except ModuleNotFoundError as error:
        if error.name != f"mpe2.{env_id}":
            raise ImportError(f"Cannot build the MPE env {env_id!r} ({error}): {MARL_INSTALL_HINT}") from error
        known = sorted(info.name for info in pkgutil.iter_modules(mpe2.__path__) if _is_mpe_id(info.name))
        raise ValueError(f"Unknown MPE environment {env_id!r}; mpe2 has {known}") from error
    env_kwargs.setdefault("max_cycles", 25)  # EPyMARL's MPE tasks are 25 steps long
    return module.parallel_env(**env_kwargs)


def _is_module_path(env_id: str) -> bool:
    return re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", env_id) is not None


def _make_from_module(env_id: str, **env_kwargs: Any) -> Any:
    _import_family("pettingzoo", "PettingZoo")
    try:
        module = importlib.import_module(env_id)
    except ModuleNotFoundError as error:
        raise ImportError(
            f"Cannot import the PettingZoo env module {env_id!r} ({error}): install the package that provides it "
            f"(PettingZoo and the bundled env families: {MARL_INSTALL_HINT})"
        ) from error
    if not callable(getattr(module, "parallel_env", None)):
        raise ValueError(f"Module {env_id!r} has no parallel_env() function to build a PettingZoo parallel env")
    return module.parallel_env(**env_kwargs)


register_marl_env("pettingzoo", _is_module_path, _make_from_module, "a 'package.module' with a parallel_env() function")
register_marl_env("mpe", _is_mpe_id, _make_mpe, "mpe2 modules such as 'simple_spread_v3' (25-step episodes)")
register_marl_env("rware", "rware", _make_rware, "ids such as 'rware-tiny-2ag-v2'")
register_marl_env("lbforaging", "Foraging", _make_lbforaging, "ids such as 'Foraging-8x8-2p-2f-coop-v3'")


def _family_of(env_id: str) -> tuple[str, str]:
    """The family and the id within it; ``"family:id"`` names the family explicitly."""
    prefix, sep, rest = env_id.partition(":")
    if sep and prefix in MARL_ENVS:
        return prefix, rest
    for family in reversed(list(MARL_ENVS)):
        if MARL_ENVS[family].match(env_id):
            return family, env_id
    known = "; ".join(f"{name}: {entry.description}" if entry.description else name for name, entry in MARL_ENVS.items())
    raise ValueError(
        f"Unknown multi-agent environment id {env_id!r}. Known families: {known}. "
        "Register others with register_marl_env(), or pass a PettingZoo parallel env"
    )


def _wrap(env: Any, episode_limit: int | None, reward: str | None, env_id: str | None) -> MultiAgentEnv:
    if isinstance(env, MultiAgentEnv):
        if (episode_limit is not None and episode_limit != env.episode_limit) or (reward is not None and reward != env.reward):
            raise ValueError(
                f"{env!r} is already a MultiAgentEnv: its episode_limit and reward cannot be changed "
                "(build it with them, or pass the PettingZoo env instead)"
            )
        return env
    if isinstance(env, gym.Env):
        env = GymParallelEnv(env)
    return MultiAgentEnv(env, episode_limit=episode_limit, reward=reward or "sum", env_id=env_id)


def make_marl_env(
    env_id: Any, episode_limit: int | None = None, reward: str | None = None, **env_kwargs: Any
) -> MultiAgentEnv:
    """
    Build a cooperative multi-agent env from an id, or adapt one already built.

    Ids: any lbforaging id (``"Foraging-8x8-2p-2f-coop-v3"``, 50 steps), any rware id (``"rware-tiny-2ag-v2"``,
    500 steps), an mpe2 module name (``"simple_spread_v3"``, 25 steps), a ``"package.module"`` with a
    ``parallel_env(**kwargs)`` function, a ``"family:env_id"``, or any family of :data:`MARL_ENVS`.

    :param env_id: an env id, a PettingZoo parallel env, a gymnasium multi-agent env or a :class:`MultiAgentEnv`
        (returned as is)
    :param episode_limit: see :class:`MultiAgentEnv` (default: the env's own episode length)
    :param reward: ``"sum"`` (default) or ``"mean"`` of the agents' rewards
    :param env_kwargs: passed to the env's constructor (e.g. ``max_cycles``, ``N``); only with an id
    :return: the adapter
    """
    if reward is not None and reward not in REWARD_MODES:
        raise ValueError(f"reward must be one of {REWARD_MODES}, got reward={reward!r}")
    if not isinstance(env_id, str):
        if env_kwargs:
            raise ValueError(
                f"Constructor arguments {sorted(env_kwargs)} can only be used with an env id, not with a built env"
            )
        return _wrap(env_id, episode_limit, reward, None)
    family, inner_id = _family_of(env_id)
    return _wrap(MARL_ENVS[family](inner_id, **env_kwargs), episode_limit, reward, env_id)
