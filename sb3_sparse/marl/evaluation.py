"""Evaluation of the multi-agent learners, in SB3's manner: ``evaluate_policy`` and ``EvalCallback`` for QMIX / VDN.

SB3's own helpers expect a gymnasium env or a ``VecEnv``; a :class:`~sb3_sparse.marl.envs.MultiAgentEnv` returns
the observations of all agents, the global state and the available actions, and the learners' ``predict`` carries
a recurrent state through the episode. These do the same job for them, with the same outputs (``eval/`` logger
keys, ``evaluations.npz``, ``best_model.zip``), so plots and scripts written for SB3's files keep working.
"""

import os
from typing import Any, Literal, overload

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EventCallback

from sb3_sparse.core.config import is_integer
from sb3_sparse.marl.envs import MultiAgentEnv, make_marl_env


def _as_env(env: Any) -> MultiAgentEnv:
    """``env`` itself, or the env an id names (SB3's helpers also take an env id)."""
    return make_marl_env(env) if isinstance(env, str) else env


@overload
def evaluate_marl_policy(
    model: Any,
    env: MultiAgentEnv | str,
    n_eval_episodes: int = ...,
    deterministic: bool = ...,
    return_episode_rewards: Literal[False] = ...,
    *,
    render: bool = ...,
    reward_threshold: float | None = ...,
) -> tuple[float, float]: ...


@overload
def evaluate_marl_policy(
    model: Any,
    env: MultiAgentEnv | str,
    n_eval_episodes: int,
    deterministic: bool,
    return_episode_rewards: Literal[True],
    *,
    render: bool = ...,
    reward_threshold: float | None = ...,
) -> tuple[list[float], list[int]]: ...


@overload
def evaluate_marl_policy(
    model: Any,
    env: MultiAgentEnv | str,
    n_eval_episodes: int = ...,
    deterministic: bool = ...,
    *,
    return_episode_rewards: Literal[True],
    render: bool = ...,
    reward_threshold: float | None = ...,
) -> tuple[list[float], list[int]]: ...


def evaluate_marl_policy(
    model: Any,
    env: MultiAgentEnv | str,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    return_episode_rewards: bool = False,
    *,
    render: bool = False,
    reward_threshold: float | None = None,
) -> tuple[float, float] | tuple[list[float], list[int]]:
    """
    Run ``n_eval_episodes`` episodes of a multi-agent learner and return the team returns (SB3's ``evaluate_policy``).

    Each episode starts with a plain ``env.reset()``: seed the env once beforehand (``env.reset(seed=...)``) for
    repeatable evaluations, as with SB3. The recurrent state returned by ``predict`` is carried through the episode
    and the env's available actions are passed as ``action_masks``.

    :param model: a :class:`~sb3_sparse.marl.QMIX` / :class:`~sb3_sparse.marl.VDN` (anything with their ``predict``)
    :param env: the env to evaluate on (a :class:`~sb3_sparse.marl.envs.MultiAgentEnv`, or an env id)
    :param n_eval_episodes: number of episodes
    :param deterministic: greedy actions (otherwise epsilon-greedy at the model's current exploration rate)
    :param return_episode_rewards: return the lists of episode returns and lengths instead of the mean and std
        of the returns
    :param render: call ``env.render()`` after every step
    :param reward_threshold: raise an ``AssertionError`` when the mean return is not above it (as SB3 does)
    :return: ``(mean return, std of the returns)``, or ``(returns, lengths)`` with ``return_episode_rewards``
    """
    if not is_integer(n_eval_episodes) or n_eval_episodes <= 0:
        raise ValueError(f"n_eval_episodes={n_eval_episodes!r} is not valid; it must be a positive integer")
    env = _as_env(env)
    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    for _ in range(n_eval_episodes):
        observations, _, available = env.reset()
        recurrent = None
        episode_return, length, done = 0.0, 0, False
        while not done:
            actions, recurrent = model.predict(
                observations, state=recurrent, deterministic=deterministic, action_masks=available
            )
            observations, _, available, reward, terminated, truncated, _ = env.step(actions)
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
            if render:
                env.render()
        episode_returns.append(episode_return)
        episode_lengths.append(length)
    mean_return, std_return = float(np.mean(episode_returns)), float(np.std(episode_returns))
    if reward_threshold is not None:
        assert mean_return > reward_threshold, f"mean return {mean_return:.2f} is not above {reward_threshold:.2f}"
    if return_episode_rewards:
        return episode_returns, episode_lengths
    return mean_return, std_return


class MultiAgentEvalCallback(EventCallback):
    """
    Evaluate a multi-agent learner every ``eval_freq`` env steps (SB3's ``EvalCallback`` for QMIX / VDN).

    The learners call the callbacks once per env step, so ``eval_freq`` counts env steps; an evaluation can fall in
    the middle of a training episode: it runs on ``eval_env``, which must therefore be a separate env. Logs
    ``eval/mean_reward`` and ``eval/mean_ep_length``, keeps every evaluation in ``evaluations_timesteps``,
    ``evaluations_results`` and ``evaluations_length`` (whether or not it writes them), writes them to
    ``<log_path>/evaluations.npz`` (``timesteps``, ``results``, ``ep_lengths``, as SB3) and saves
    ``<best_model_save_path>/best_model.zip`` on a new best mean.

    :param eval_env: the env to evaluate on (a :class:`~sb3_sparse.marl.envs.MultiAgentEnv` or an env id); seed it
        once beforehand for repeatable evaluations
    :param n_eval_episodes: episodes per evaluation
    :param eval_freq: env steps between evaluations (0 or less: never)
    :param log_path: folder of ``evaluations.npz`` (``None``: not written)
    :param best_model_save_path: folder of ``best_model.zip`` (``None``: not saved)
    :param deterministic: greedy actions
    :param verbose: 0 silent, 1 a line per evaluation
    :param callback_on_new_best: called (``on_step``) on a new best mean return; ``False`` stops training
    :param callback_after_eval: called (``on_step``) after every evaluation; ``False`` stops training
    :param render: render the evaluation episodes
    """

    def __init__(
        self,
        eval_env: MultiAgentEnv | str,
        n_eval_episodes: int = 5,
        eval_freq: int = 10000,
        log_path: str | None = None,
        best_model_save_path: str | None = None,
        deterministic: bool = True,
        verbose: int = 1,
        callback_on_new_best: BaseCallback | None = None,
        callback_after_eval: BaseCallback | None = None,
        render: bool = False,
    ):
        super().__init__(callback_after_eval, verbose=verbose)
        if not is_integer(n_eval_episodes) or n_eval_episodes <= 0:
            raise ValueError(f"n_eval_episodes={n_eval_episodes!r} is not valid; it must be a positive integer")
        if not is_integer(eval_freq):
            raise ValueError(f"eval_freq={eval_freq!r} is not valid; it must be an integer (env steps, 0: never)")
        self.eval_env = _as_env(eval_env)
        self.n_eval_episodes = int(n_eval_episodes)
        self.eval_freq = int(eval_freq)
        self.deterministic = deterministic
        self.render = render
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self
        self.best_model_save_path = best_model_save_path
        #: SB3's convention: the file is ``<log_path>/evaluations.npz``
        self.log_path = os.path.join(log_path, "evaluations") if log_path is not None else None
        self.best_mean_reward = -np.inf
        self.last_mean_reward = -np.inf
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[list[float]] = []
        self.evaluations_length: list[list[int]] = []

    def _init_callback(self) -> None:
        if self.eval_env is self.model.get_env():
            raise ValueError(
                "MultiAgentEvalCallback needs an eval_env apart from the training env: an evaluation can fall in the "
                "middle of a training episode"
            )
        if self.best_model_save_path is not None:
            os.makedirs(self.best_model_save_path, exist_ok=True)
        if self.log_path is not None:
            os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq != 0:
            return True
        continue_training = True
        returns, lengths = evaluate_marl_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.n_eval_episodes,
            deterministic=self.deterministic,
            return_episode_rewards=True,
            render=self.render,
        )
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append(returns)
        self.evaluations_length.append(lengths)
        if self.log_path is not None:
            np.savez(
                self.log_path,
                timesteps=self.evaluations_timesteps,
                results=self.evaluations_results,
                ep_lengths=self.evaluations_length,
            )
        mean_return, std_return = float(np.mean(returns)), float(np.std(returns))
        mean_length, std_length = float(np.mean(lengths)), float(np.std(lengths))
        self.last_mean_reward = mean_return
        if self.verbose >= 1:
            print(f"Eval num_timesteps={self.num_timesteps}, episode_reward={mean_return:.2f} +/- {std_return:.2f}")
            print(f"Episode length: {mean_length:.2f} +/- {std_length:.2f}")
        self.logger.record("eval/mean_reward", mean_return)
        self.logger.record("eval/mean_ep_length", mean_length)
        # dumped now, so that the evaluation is logged at its own step
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if mean_return > self.best_mean_reward:
            if self.verbose >= 1:
                print("New best mean reward!")
            if self.best_model_save_path is not None:
                self.model.save(os.path.join(self.best_model_save_path, "best_model.zip"))
            self.best_mean_reward = mean_return
            if self.callback_on_new_best is not None:
                continue_training = self.callback_on_new_best.on_step()
        if self.callback is not None:
            continue_training = continue_training and self._on_event()
        return continue_training

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback.update_locals(locals_)


__all__ = ["MultiAgentEvalCallback", "evaluate_marl_policy"]
