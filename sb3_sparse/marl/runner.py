"""The episode runner of the multi-agent learners: whole episodes of epsilon-greedy agents into the episode buffer.

EPyMARL's learners collect one episode at a time, the agents acting on their own observations (and recurrent
state) with epsilon-greedy exploration over their available actions; the episode is stored whole.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th

from sb3_sparse.marl.buffers import Episode, EpisodeReplayBuffer
from sb3_sparse.marl.envs import MultiAgentEnv
from sb3_sparse.marl.policies import QMIXPolicy


@th.no_grad()
def epsilon_greedy(
    policy: QMIXPolicy,
    observations: np.ndarray,
    avail_actions: np.ndarray | None,
    hidden: th.Tensor | None,
    last_actions: np.ndarray,
    epsilon: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, th.Tensor]:
    """Joint actions of ``[n_envs, n_agents, obs_dim]`` observations and the agents' next recurrent state.

    Each agent takes its best available action, or with probability ``epsilon`` one of its available actions
    drawn uniformly.

    :param avail_actions: ``[n_envs, n_agents, n_actions]`` (1: available; ``None``: all)
    :param hidden: the recurrent state (``None``: the start of an episode)
    :param last_actions: ``[n_envs, n_agents]`` (``-1``: none yet)
    """
    device = policy.device
    obs = th.as_tensor(observations, device=device, dtype=th.float32)
    inputs = policy.agent_inputs(obs, th.as_tensor(last_actions, device=device))
    q_values, hidden = policy.agent_q_values(inputs, hidden)
    avail = None if avail_actions is None else th.as_tensor(avail_actions, device=device)
    actions = policy.greedy_actions(q_values, avail).cpu().numpy()
    if epsilon > 0:
        explore = rng.random(actions.shape) < epsilon
        allowed = np.ones(q_values.shape, dtype=bool) if avail_actions is None else np.asarray(avail_actions) > 0
        random_actions = np.array([[rng.choice(np.flatnonzero(a)) for a in env_allowed] for env_allowed in allowed])
        actions = np.where(explore, random_actions, actions)
    return actions, hidden


def recurrent_actions(
    policy: QMIXPolicy,
    observation: np.ndarray,
    state: tuple[np.ndarray, ...] | None,
    episode_start: np.ndarray | None,
    action_masks: np.ndarray | None,
    epsilon: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """:func:`epsilon_greedy` on numpy arrays, with the recurrent state passed in and out as sb3-contrib's
    recurrent policies do (the algorithms' ``predict``).

    :param observation: ``[n_agents, obs_dim]`` (or ``[n_envs, n_agents, obs_dim]``)
    :param state: ``(recurrent state, last actions)`` as the previous call returned it (``None``: episode start)
    :param episode_start: per env, whether this step starts an episode (resets ``state``)
    :param action_masks: available actions, ``[n_agents, n_actions]`` (or per env; 1: available)
    :return: the actions ``[n_agents]`` (or ``[n_envs, n_agents]``) and the next state
    """
    n_agents = policy.n_agents
    observation = np.asarray(observation, dtype=np.float32)
    single = observation.ndim == 2
    obs = observation[None] if single else observation
    n_envs = obs.shape[0]
    masks = None if action_masks is None else np.asarray(action_masks)
    if masks is not None and single:
        masks = masks[None]
    if state is None:
        hidden = None
        last_actions = -np.ones((n_envs, n_agents), dtype=np.int64)
    else:
        hidden = th.as_tensor(state[0], device=policy.device).reshape(n_envs, n_agents, -1)
        last_actions = np.array(state[1]).reshape(n_envs, n_agents)
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(n_envs)
            hidden = hidden * th.as_tensor(~starts, device=policy.device, dtype=hidden.dtype).view(-1, 1, 1)
            last_actions[starts] = -1
    policy.set_training_mode(False)
    actions, next_hidden = epsilon_greedy(policy, obs, masks, hidden, last_actions, epsilon, rng)
    next_state = (next_hidden.cpu().numpy(), actions.copy())
    if single:
        return actions[0], (next_state[0][0], next_state[1][0])
    return actions, next_state


@dataclass
class EpisodeRunner:
    """Plays episodes of ``env`` with ``policy``'s epsilon-greedy agents and stores each one in ``buffer``.

    :param env: the multi-agent env
    :param policy: the agents
    :param buffer: where finished (or interrupted) episodes go
    :param rng: the generator of the exploration
    :param episode_limit: the most steps of an episode (the buffer's length)
    :param time_limit_bootstrap: an episode cut by its time limit is stored as not terminated, so its last state is
        bootstrapped (``True``, the default); ``False`` stores the time limit as a terminal step, as EPyMARL's
        gymma envs (LBF, RWARE, MPE) do
    """

    env: MultiAgentEnv
    policy: QMIXPolicy
    buffer: EpisodeReplayBuffer
    rng: np.random.Generator
    episode_limit: int
    time_limit_bootstrap: bool = True

    def run(
        self, epsilon: Callable[[], float], on_step: Callable[[dict[str, Any]], bool], seed: int | None = None
    ) -> tuple[Episode, bool]:
        """Play one episode and store it.

        :param epsilon: the exploration rate to act with, asked before every step
        :param on_step: called after every step with the step's values (``actions``, ``rewards``, ``dones``,
            ``infos``, ...); ``False`` ends the episode there (it is stored as it is)
        :param seed: seed of the env's reset
        :return: the episode and whether ``on_step`` let it finish
        """
        self.policy.set_training_mode(False)
        n_agents = self.policy.n_agents
        observations, state, avail = self.env.reset(seed=seed)
        episode = self.buffer.new_episode()
        episode.start(observations, state, avail)
        hidden = None
        last_actions = -np.ones((1, n_agents), dtype=np.int64)
        keep_going = True
        done = False
        while not done and keep_going:
            actions, hidden = epsilon_greedy(
                self.policy, observations[None], avail[None], hidden, last_actions, epsilon(), self.rng
            )
            observations, state, avail, reward, terminated, truncated, info = self.env.step(actions[0])
            done = terminated or truncated or episode.length + 1 >= self.episode_limit
            stored_terminal = terminated or (done and not self.time_limit_bootstrap)
            episode.add(actions[0], reward, stored_terminal, observations, state, avail)
            last_actions = actions
            keep_going = on_step(
                {
                    "actions": actions,
                    "rewards": np.array([reward]),
                    "dones": np.array([done]),
                    "infos": [info],
                    "new_obs": observations[None],
                }
            )
        self.buffer.add(episode)
        return episode, keep_going
