"""DeepMind Control Suite tasks as gymnasium ids for SB3's off-policy algorithms and rl-zoo3: ``dmc/<domain>-<task>-v0``.

shimmy registers the suite as ``dm_control/<domain>-<task>-v0``, with dict observations and float64
spaces; SB3's ``MlpPolicy`` (and the residual policies) take one flat ``Box``. The ids registered here by
:func:`register_dmc_envs` (on ``import sb3_sparse``: registration imports neither dm_control nor shimmy)
make the same tasks as a :class:`DMCEnv`:

- the observation dict flattened to one float32 vector (keys in sorted order, as gymnasium's
  ``FlattenObservation`` of shimmy's env, which SimBa uses);
- a float32 action space with DMC's bounds ([-1, 1] for most tasks);
- episodes of DMC's own length, 1000 control steps, which end with ``truncated=True``: the suite's tasks
  have no terminal states, so the registered ``max_episode_steps`` is ``None`` and no ``TimeLimit`` is added.

:class:`ActionRepeat` applies each action several times (SimBa, TD-MPC2 and MR.Q use 2 on DMC). It is a
wrapper rather than an env argument so that rl-zoo3 applies it everywhere from a file's ``env_wrapper``
(training, evaluation, ``enjoy``); rl-zoo3 does not pass a file's ``env_kwargs`` to its evaluation env.

dm_control needs the ``dmc`` extra; without it, making one of these ids raises
``gymnasium.error.DependencyNotInstalled`` naming the extra.
"""

import warnings
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: Namespace of the registered ids (``dmc/<domain>-<task>-v0``).
DMC_NAMESPACE = "dmc"
#: What to install when dm_control or shimmy is missing.
DMC_INSTALL_HINT = 'DeepMind Control tasks need the dmc extra: pip install "sb3-sparse[dmc]"'
#: DMC's episode length in control steps (every registered task: a time limit of 1000 control timesteps).
DMC_EPISODE_STEPS = 1000

#: The suite's tasks (``dm_control.suite.ALL_TASKS`` of dm_control 1.0.50), as ``(domain, task)``, without
#: ``lqr`` (unbounded actions and episodes).
DMC_TASKS: tuple[tuple[str, str], ...] = (
    ("acrobot", "swingup"),
    ("acrobot", "swingup_sparse"),
    ("ball_in_cup", "catch"),
    ("cartpole", "balance"),
    ("cartpole", "balance_sparse"),
    ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"),
    ("cartpole", "two_poles"),
    ("cartpole", "three_poles"),
    ("cheetah", "run"),
    ("dog", "stand"),
    ("dog", "walk"),
    ("dog", "trot"),
    ("dog", "run"),
    ("dog", "fetch"),
    ("finger", "spin"),
    ("finger", "turn_easy"),
    ("finger", "turn_hard"),
    ("fish", "upright"),
    ("fish", "swim"),
    ("hopper", "stand"),
    ("hopper", "hop"),
    ("humanoid", "stand"),
    ("humanoid", "walk"),
    ("humanoid", "run"),
    ("humanoid", "run_pure_state"),
    ("humanoid_CMU", "stand"),
    ("humanoid_CMU", "walk"),
    ("humanoid_CMU", "run"),
    ("manipulator", "bring_ball"),
    ("manipulator", "bring_peg"),
    ("manipulator", "insert_ball"),
    ("manipulator", "insert_peg"),
    ("pendulum", "swingup"),
    ("point_mass", "easy"),
    ("point_mass", "hard"),
    ("quadruped", "walk"),
    ("quadruped", "run"),
    ("quadruped", "escape"),
    ("quadruped", "fetch"),
    ("reacher", "easy"),
    ("reacher", "hard"),
    ("stacker", "stack_2"),
    ("stacker", "stack_4"),
    ("swimmer", "swimmer6"),
    ("swimmer", "swimmer15"),
    ("walker", "stand"),
    ("walker", "walk"),
    ("walker", "run"),
)


def dmc_env_id(domain: str, task: str) -> str:
    """The registered id of a suite task: ``dmc_env_id("dog", "run") == "dmc/dog-run-v0"``."""
    return f"{DMC_NAMESPACE}/{domain}-{task}-v0"


def _load_suite_env(
    domain: str, task: str, task_kwargs: dict[str, Any] | None, environment_kwargs: dict[str, Any] | None, **render: Any
) -> Any:
    """shimmy's gymnasium env of a suite task; a ``DependencyNotInstalled`` naming the extra when it cannot be made."""
    try:
        with warnings.catch_warnings():
            # without a display, dm_control's probe of GLFW warns at import (rendering: MUJOCO_GL=egl or osmesa)
            warnings.filterwarnings("ignore", message=".*DISPLAY environment variable is missing")
            from dm_control import suite
        from shimmy.dm_control_compatibility import DmControlCompatibilityV0
    except ImportError as error:
        raise gym.error.DependencyNotInstalled(f"{DMC_INSTALL_HINT} ({error})") from error
    try:
        dm_env = suite.load(domain, task, task_kwargs=task_kwargs, environment_kwargs=environment_kwargs)
    except AttributeError as error:
        # dm_control reads MuJoCo's structs by field name: a MuJoCo newer than the one it was built for fails here
        import dm_control
        import mujoco

        version = getattr(dm_control, "__version__", "?")
        raise gym.error.DependencyNotInstalled(
            f"dm_control {version} does not work with mujoco {mujoco.__version__} ({error}); {DMC_INSTALL_HINT} "
            "installs a MuJoCo it supports"
        ) from error
    return DmControlCompatibilityV0(dm_env, **render)


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """A DeepMind Control Suite task with a flat float32 observation, for SB3's ``MlpPolicy`` and the zoo.

    Made by ``gym.make("dmc/<domain>-<task>-v0", ...)``; one env rather than a stack of wrappers, so that
    ``env.spec`` stays the registered one. ``reset(seed=...)`` seeds the task's random state (initial
    states, targets), so episodes are reproducible.

    :param domain: the suite domain (``"dog"``)
    :param task: the task of the domain (``"run"``)
    :param render_mode: ``"rgb_array"``, ``"depth_array"`` or ``"human"`` (headless machines: set
        ``MUJOCO_GL=egl`` or ``osmesa``)
    :param render_kwargs: passed to dm_control's ``physics.render`` (``width``, ``height``, ``camera_id``)
    :param task_kwargs: passed to ``dm_control.suite.load`` (e.g. ``{"random": 0}``, ``{"time_limit": 10}``)
    :param environment_kwargs: passed to ``dm_control.suite.load`` (e.g. ``{"n_sub_steps": 2}``)
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 50}

    def __init__(
        self,
        domain: str,
        task: str,
        render_mode: str | None = None,
        render_kwargs: dict[str, Any] | None = None,
        task_kwargs: dict[str, Any] | None = None,
        environment_kwargs: dict[str, Any] | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.domain, self.task = domain, task
        self.render_mode = render_mode
        self._env = _load_suite_env(
            domain, task, task_kwargs, environment_kwargs, render_mode=render_mode, render_kwargs=render_kwargs
        )
        self._closed = False
        observation_space = self._env.observation_space
        self._keys = list(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else None
        self.observation_space = spaces.Box(-np.inf, np.inf, (spaces.flatdim(observation_space),), np.float32)
        inner_actions = self._env.action_space
        self.action_space = spaces.Box(
            inner_actions.low.astype(np.float32), inner_actions.high.astype(np.float32), dtype=np.float32
        )
        self._action_dtype = inner_actions.dtype
        self.metadata = {**type(self).metadata, "render_fps": max(1, round(1.0 / self.dt))}

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step (DMC's control timestep)."""
        return float(self._env.dt)

    @property
    def physics(self) -> Any:
        """dm_control's ``Physics`` of the task (MuJoCo model and data)."""
        return self._env.physics

    def _flatten(self, observation: Any) -> np.ndarray:
        if self._keys is None:
            return np.asarray(observation, dtype=np.float32).reshape(-1)
        return np.concatenate([np.asarray(observation[key], dtype=np.float32).reshape(-1) for key in self._keys])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        observation, info = self._env.reset(seed=seed, options=options)
        return self._flatten(observation), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self._env.step(np.asarray(action, dtype=self._action_dtype))
        return self._flatten(observation), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self._env.render()

    def close(self) -> None:
        if not self._closed:  # shimmy frees the physics: a second close would fail
            self._closed = True
            self._env.close()


class ActionRepeat(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """Apply each action ``repeat`` times and sum the rewards, stopping early where the episode ends.

    SimBa, TD-MPC2 and MR.Q train on DMC with 2 (their step budgets count control steps: 1M of them are
    500k agent steps). In an rl-zoo3 file, ``env_wrapper: [{sb3_sparse.common.envs.ActionRepeat: {repeat: 2}}]``:
    rl-zoo3 then puts its ``Monitor`` inside, so the logged episode lengths are control steps.

    :param env: the env to wrap
    :param repeat: how many times each action is applied
    """

    def __init__(self, env: gym.Env, repeat: int = 2):
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}")
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = repeat
        fps = env.metadata.get("render_fps")
        if fps:
            self.metadata = {**env.metadata, "render_fps": max(1, round(fps / repeat))}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            observation, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return observation, total, terminated, truncated, info


def register_dmc_envs() -> list[str]:
    """Register ``dmc/<domain>-<task>-v0`` for every task of :data:`DMC_TASKS` (idempotent, imports no dm_control).

    :return: the registered ids
    """
    ids = []
    for domain, task in DMC_TASKS:
        env_id = dmc_env_id(domain, task)
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="sb3_sparse.common.envs:DMCEnv",
                kwargs={"domain": domain, "task": task},
                max_episode_steps=None,
            )
        ids.append(env_id)
    return ids


__all__ = [
    "DMC_EPISODE_STEPS",
    "DMC_INSTALL_HINT",
    "DMC_NAMESPACE",
    "DMC_TASKS",
    "ActionRepeat",
    "DMCEnv",
    "dmc_env_id",
    "register_dmc_envs",
]
