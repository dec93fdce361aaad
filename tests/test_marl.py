"""QMIX / VDN: training with sparse modules, SB3's habits (save/load, callbacks, logger, seeding), real envs."""

import copy
import pickle

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import save_to_zip_file

from sb3_sparse import flops_report, sparse_recipe
from sb3_sparse.core.masking import get_mask, sparse_weights
from sb3_sparse.marl import QMIX, VDN, MlpQMIXPolicy, QMIXPolicy
from sb3_sparse.marl.buffers import EpisodeReplayBuffer
from sb3_sparse.marl.envs import MultiAgentEnv
from sb3_sparse.marl.learner import ValueDecompositionLearner
from sb3_sparse.marl.runner import EpisodeRunner

RIGL = {
    "regime": "rigl",
    "sparsity": 0.9,
    "sparsity_distribution": "erk",
    "sparse_layers": "all",
    "topology_update_interval": 100,
    "drop_fraction": 0.3,
}
SMALL = {"batch_size": 4, "buffer_size": 32, "exploration_steps": 300, "policy_kwargs": {"hidden_dim": 16}}


class MatchGame(ParallelEnv):
    """Each agent sees a one-hot cue and is rewarded when it picks the cued action; ``length`` steps per episode."""

    metadata = {"name": "match_v0"}

    def __init__(self, n_agents: int = 2, n_actions: int = 3, length: int = 6):
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.n_actions = n_actions
        self.length = length
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (self.n_actions,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(self.n_actions)

    def _observe(self):
        self.cues = {agent: int(self._rng.integers(self.n_actions)) for agent in self.agents}
        return {agent: np.eye(self.n_actions, dtype=np.float32)[cue] for agent, cue in self.cues.items()}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions):
        rewards = {agent: float(actions[agent] == self.cues[agent]) for agent in self.agents}
        self.t += 1
        observations = self._observe()
        truncations = {agent: self.t >= self.length for agent in self.agents}
        terminations = {agent: False for agent in self.agents}
        infos = {agent: {} for agent in self.agents}
        return observations, rewards, terminations, truncations, infos


def match_env(length: int = 6) -> MultiAgentEnv:
    return MultiAgentEnv(MatchGame(length=length), episode_limit=length)


class FirstTwoActions(MatchGame):
    """:class:`MatchGame` in which only actions 0 and 1 are ever available (an ``action_mask`` in the infos)."""

    def _infos(self):
        return {agent: {"action_mask": np.array([1, 1, 0], dtype=np.int8)} for agent in self.agents}

    def reset(self, seed=None, options=None):
        return super().reset(seed, options)[0], self._infos()

    def step(self, actions):
        assert all(action in (0, 1) for action in actions.values()), actions
        return *super().step(actions)[:4], self._infos()


def assert_masked(model) -> None:
    """Pruned weights are exactly 0 online and in the target, whose masks are the online ones."""
    policy = model.policy
    for online, target in ((policy.agent, policy.agent_target), (policy.mixer, policy.mixer_target)):
        target_masks = {name: (module, weight) for name, module, weight in sparse_weights(target)}
        for name, module, weight in sparse_weights(online):
            mask = get_mask(module, weight)
            target_module, target_weight = target_masks[name]
            assert th.equal(get_mask(target_module, target_weight), mask), name
            assert th.all(getattr(module, weight)[mask == 0] == 0), name
            assert th.all(getattr(target_module, target_weight)[mask == 0] == 0), name


def layer_counts(model) -> dict[str, int]:
    return {
        f"{part}.{name}": int(get_mask(module, weight).sum())
        for part in ("agent", "mixer")
        for name, module, weight in sparse_weights(getattr(model.policy, part))
    }


@pytest.mark.parametrize("policy", ["RnnPolicy", "MlpPolicy"])
def test_rigl_updates_agent_and_mixer_and_keeps_exact_zeros(policy):
    model = QMIX(policy, match_env(), seed=0, target_update_interval=5, **SMALL, **RIGL)
    counts = layer_counts(model)
    masks = {name: get_mask(m, w).clone() for name, m, w in sparse_weights(model.policy.agent)}
    model.learn(600)
    modules = model.dst_state["modules"]
    assert modules["agent"]["n_updates"] >= 3 and modules["mixer"]["n_updates"] >= 3
    assert any(not th.equal(get_mask(m, w), masks[name]) for name, m, w in sparse_weights(model.policy.agent))
    assert layer_counts(model) == counts  # RigL keeps every layer's count
    assert_masked(model)
    assert flops_report(model)["sparsity"] == pytest.approx(0.9, abs=0.01)


def test_save_load_keeps_masks_schedule_and_predictions(tmp_path):
    model = QMIX("RnnPolicy", match_env(), seed=1, **SMALL, **RIGL)
    model.learn(300)
    model.save(tmp_path / "qmix.zip")
    loaded = QMIX.load(tmp_path / "qmix.zip", env=match_env())
    assert loaded.dst_state == model.dst_state
    assert loaded.num_timesteps == model.num_timesteps and loaded._episode_num == model._episode_num
    for (name, m, w), (_, m2, w2) in zip(sparse_weights(model.policy), sparse_weights(loaded.policy), strict=True):
        assert th.equal(get_mask(m, w), get_mask(m2, w2)), name
        assert th.equal(getattr(m, w), getattr(m2, w2)), name
    obs = np.random.default_rng(0).random((2, 3)).astype(np.float32)
    actions, state = model.predict(obs, deterministic=True)
    loaded_actions, loaded_state = loaded.predict(obs, deterministic=True)
    assert np.array_equal(actions, loaded_actions) and np.allclose(state[0], loaded_state[0])
    # training continues the schedule (chunked learn), with exact zeros after more mask updates
    updates = loaded.dst_state["modules"]["agent"]["n_updates"]
    loaded.learn(300, reset_num_timesteps=False)
    assert loaded.num_timesteps >= 600 and loaded.dst_state["modules"]["agent"]["n_updates"] > updates
    assert_masked(loaded)
    # a DST setting can be changed at load; a model loads without an env, for inference
    csr = QMIX.load(tmp_path / "qmix.zip", backend="masked")
    assert csr.get_env() is None and csr.policy.module_configs["agent"].backend == "masked"
    assert np.array_equal(csr.predict(obs, deterministic=True)[0], actions)
    with pytest.raises(ValueError, match="no env to learn from"):
        csr.learn(10)


def test_policy_save_load_copy_and_pickle(tmp_path):
    model = QMIX("RnnPolicy", match_env(), seed=2, **SMALL, **RIGL)
    model.learn(200)
    model.policy.save(tmp_path / "policy.pth")
    policy = QMIXPolicy.load(tmp_path / "policy.pth")
    inputs = model.policy.agent_inputs(th.rand(2, 3, 2, 3))
    for other in (policy, copy.deepcopy(model.policy), pickle.loads(pickle.dumps(model.policy))):
        assert th.allclose(other.unroll(inputs), model.policy.unroll(inputs))
        for (_, m, w), (_, m2, w2) in zip(sparse_weights(model.policy), sparse_weights(other), strict=True):
            assert th.equal(get_mask(m, w), get_mask(m2, w2))


def test_same_seed_same_run():
    runs = []
    for _ in range(2):
        model = QMIX("MlpPolicy", match_env(), seed=3, **SMALL, **RIGL)
        model.learn(300)
        runs.append(model.get_parameters()["policy"])
    assert all(th.equal(runs[0][key], runs[1][key]) for key in runs[0])


def test_callbacks_logger_and_progress_bar(tmp_path):
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            assert "infos" in self.locals and "dones" in self.locals
            return self.num_timesteps < 150

    model = QMIX("MlpPolicy", match_env(), seed=4, **SMALL, **RIGL)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    checkpoints = CheckpointCallback(60, str(tmp_path / "checkpoints"), name_prefix="qmix")
    model.learn(1000, callback=[checkpoints, StopAt()], log_interval=1, progress_bar=True)
    assert model.num_timesteps == 150
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["qmix_120_steps.zip", "qmix_60_steps.zip"]
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    for key in (
        "rollout/ep_rew_mean",
        "train/loss",
        "sparse/agent_sparsity",
        "sparse/mixer_sparsity",
        "rollout/exploration_rate",
    ):
        assert key in header
    assert QMIX.load(tmp_path / "checkpoints" / "qmix_120_steps.zip").num_timesteps == 120


def test_dense_qmix_learns_the_match_game():
    model = QMIX(
        "MlpPolicy", match_env(), seed=0, batch_size=16, buffer_size=200, exploration_steps=1500, target_update_interval=20
    )
    model.learn(3000)
    returns = [info["r"] for info in list(model.ep_info_buffer)[-20:]]
    assert np.mean(returns) > 9.0  # 12 is perfect; random play gets 4
    assert "mixer" in model.dst_state["modules"] and flops_report(model)["sparsity"] == 0.0


@pytest.mark.parametrize("algo", [QMIX, VDN])
def test_mast_recipe_and_each_ablation_train(algo):
    recipe = sparse_recipe("mast", algorithm=algo.__name__.lower())
    recipe.update(topology_update_interval=100, replay_buffer_kwargs={"recent_size": 8, "recent_fraction": 0.5})
    model = algo("MlpPolicy", match_env(), seed=5, **SMALL, **recipe)
    phases = []

    def record(locals_, globals_):
        phases.append(model._lambda_phase())
        return True

    model.learn(400, callback=record)
    # hybrid targets: TD(lambda) for the first half of the run, then 3-step returns
    assert model.target_operator == "soft_mellowmax"
    assert phases[:199] == [True] * 199 and phases[200:] == [False] * (len(phases) - 200)
    assert model.dst_state["modules"]["agent"]["n_updates"] >= 2
    assert_masked(model)
    for ablation in (
        {"target_operator": "max"},
        {"td_lambda": 0.0},
        {"replay_buffer_class": "episode", "replay_buffer_kwargs": None},
        {"regime": "static"},
    ):
        algo("MlpPolicy", match_env(), seed=5, **SMALL, **{**recipe, **ablation}).learn(100)


def test_vdn_has_only_the_agent_module():
    model = VDN("MlpPolicy", match_env(), seed=6, **SMALL, **RIGL)
    model.learn(200)
    assert list(model.dst_state["modules"]) == ["agent"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "CnnPolicy"}, "policy='CnnPolicy' is not valid; choose one of 'RnnPolicy', 'MlpPolicy'"),
        ({"batch_size": 0}, "batch_size=0 is not valid"),
        ({"batch_size": 64, "buffer_size": 32}, "batch_size=64 is larger than buffer_size=32"),
        ({"td_lambda": 1.5}, r"td_lambda=1.5 is not valid; it must be a number in \[0, 1\]"),
        ({"target_operator": "softmax"}, "target_operator='softmax' is not valid"),
        ({"regime": "rigel"}, "did you mean 'rigl'"),
        ({"modules": {"critic": {}}}, "modules has no module 'critic'"),
        ({"replay_buffer_class": "dual", "replay_buffer_kwargs": {"recent_fraction": 2}}, "recent_fraction=2"),
        ({"mellowmax_omega": 0}, "mellowmax_omega=0 is not valid"),
    ],
)
def test_bad_arguments_are_named_at_construction(kwargs, message):
    arguments = {"policy": "MlpPolicy", **kwargs}
    with pytest.raises(ValueError, match=message):
        QMIX(arguments.pop("policy"), match_env(), **arguments)


def test_misspelt_keyword_and_mismatched_env():
    with pytest.raises(TypeError, match="did you mean 'learning_rate'"):
        QMIX("MlpPolicy", match_env(), learning_rat=1e-3)
    model = QMIX("MlpPolicy", match_env())
    with pytest.raises(ValueError, match="n_agents 3 \\(model: 2\\)"):
        model.set_env(MultiAgentEnv(MatchGame(n_agents=3), episode_limit=6))


@pytest.mark.parametrize(
    ("env_id", "steps"),
    [("Foraging-8x8-2p-2f-coop-v3", 150), ("simple_spread_v3", 100), ("rware-tiny-2ag-v2", 1000)],
)
@pytest.mark.parametrize("algo", [QMIX, VDN])
def test_short_real_runs(env_id, steps, algo):
    model = algo("RnnPolicy", env_id, seed=0, batch_size=2, buffer_size=8, policy_kwargs={"hidden_dim": 16}, **RIGL)
    model.learn(steps)
    assert model.num_timesteps >= steps and model._n_updates >= 1
    assert_masked(model) if algo is QMIX else None
    assert isinstance(model.policy, MlpQMIXPolicy) is False


def test_set_random_seed_repeats_a_continued_run():
    runs = []
    for _ in range(2):
        model = QMIX("MlpPolicy", match_env(), seed=7, **SMALL)
        model.learn(150)
        model.set_random_seed(11)
        model.learn(150, reset_num_timesteps=False)
        runs.append(model.get_parameters()["policy"])
    assert all(th.equal(runs[0][key], runs[1][key]) for key in runs[0])


def test_a_stopping_callback_ends_learn_without_another_gradient_step():
    model = QMIX("MlpPolicy", match_env(), seed=8, **SMALL)
    model.learn(100)
    updates, steps = model._n_updates, model.num_timesteps
    model.learn(100, callback=lambda locals_, globals_: False, reset_num_timesteps=False)
    assert model._n_updates == updates and model.num_timesteps == steps + 1


def test_predict_batches_envs_and_resets_state_at_episode_starts():
    model = QMIX("RnnPolicy", match_env(), seed=9, **SMALL)
    rng = np.random.default_rng(0)
    obs = rng.random((2, 2, 3)).astype(np.float32)  # 2 envs, 2 agents
    batched, state = model.predict(obs, deterministic=True)
    singles = [model.predict(obs[i], deterministic=True) for i in range(2)]
    assert np.array_equal(batched, np.stack([a for a, _ in singles]))
    assert np.allclose(state[0][1], singles[1][1][0])
    # the recurrent state carries over, unless an episode starts
    _, carried = model.predict(obs, state=state, deterministic=True)
    _, restarted = model.predict(obs, state=state, episode_start=np.array([True, False]), deterministic=True)
    assert np.allclose(restarted[0][0], state[0][0]) and np.allclose(restarted[0][1], carried[0][1])
    assert not np.allclose(carried[0][0], state[0][0])


def test_tensorboard_log(tmp_path):
    pytest.importorskip("tensorboard")
    model = QMIX("MlpPolicy", match_env(), seed=10, tensorboard_log=str(tmp_path), **SMALL)
    model.learn(120, tb_log_name="run")
    model.learn(60, tb_log_name="run", reset_num_timesteps=False)
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["run_1"] and any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run_1").iterdir())


def runner_for(env: MultiAgentEnv, time_limit_bootstrap: bool = True) -> EpisodeRunner:
    policy = QMIX("MlpPolicy", env, seed=0, **SMALL).policy
    buffer = EpisodeReplayBuffer(8, env.episode_limit, env.n_agents, env.obs_dim, env.state_dim, env.n_actions)
    return EpisodeRunner(env, policy, buffer, np.random.default_rng(0), env.episode_limit, time_limit_bootstrap)


def test_runner_stores_whole_episodes_exploring_only_available_actions():
    runner = runner_for(MultiAgentEnv(FirstTwoActions(), episode_limit=6))
    steps = []
    for _ in range(4):
        episode, finished = runner.run(lambda: 1.0, lambda values: steps.append(values["dones"][0]) is None)
        assert finished and episode.length == 6 and episode.filled.tolist() == [1.0] * 6
    assert runner.buffer.size() == 4 and steps == [False] * 5 + [True] + ([False] * 5 + [True]) * 3
    actions = runner.buffer.storage["actions"][:4]
    assert set(np.unique(actions)) == {0, 1}  # random actions, all of them available
    assert runner.buffer.storage["avail_actions"][:4, :, :, 2].max() == 0
    # a callback's False ends the episode there; the steps so far are stored
    episode, finished = runner.run(lambda: 0.0, lambda values: False)
    assert not finished and episode.length == 1 and runner.buffer.size() == 5


@pytest.mark.parametrize("bootstrap", [True, False])
def test_time_limit_is_a_truncation_or_as_in_epymarl_a_terminal_step(bootstrap):
    runner = runner_for(match_env(), time_limit_bootstrap=bootstrap)
    episode, _ = runner.run(lambda: 0.5, lambda values: True)
    assert episode.terminated.tolist() == [0.0] * 5 + [0.0 if bootstrap else 1.0]
    model = QMIX("MlpPolicy", match_env(), seed=0, time_limit_bootstrap=bootstrap, **SMALL)
    model.learn(12)
    assert model.replay_buffer.storage["terminated"][:2, -1].tolist() == [0.0 if bootstrap else 1.0] * 2
    assert QMIX("MlpPolicy", match_env()).time_limit_bootstrap is True  # the default: bootstrap
    with pytest.raises(ValueError, match="time_limit_bootstrap='no' is not valid"):
        QMIX("MlpPolicy", match_env(), time_limit_bootstrap="no")


@pytest.mark.parametrize("algo", [QMIX, VDN])
def test_qmix_and_vdn_share_the_learner_and_its_loss(algo):
    model = algo("MlpPolicy", match_env(), seed=0, standardize_rewards=False, **SMALL)
    model.learn(60)
    assert type(model.learner) is ValueDecompositionLearner and model.learner.policy is model.policy
    batch = model.replay_buffer.sample(4, np.random.default_rng(0))
    policy = model.policy
    with th.no_grad():  # one-step double-Q targets of the team value, by hand
        inputs = policy.agent_inputs(batch.observations)
        online, target = policy.unroll(inputs), policy.unroll(inputs, target=True)
        chosen = online[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        best = online[:, 1:].argmax(-1, keepdim=True)
        next_values = policy.mix(target[:, 1:].gather(-1, best).squeeze(-1), batch.states[:, 1:], target=True).squeeze(-1)
        targets = batch.rewards + model.gamma * (1 - batch.terminated) * next_values
        q_tot = policy.mix(chosen, batch.states[:, :-1]).squeeze(-1)
        expected = (((q_tot - targets) * batch.filled) ** 2).sum() / batch.filled.sum()
    before = [p.clone() for p in policy.agent.parameters()]
    values = model.learner.train_step(batch)
    assert values["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert any(not th.equal(a, b) for a, b in zip(before, policy.agent.parameters(), strict=True))
    model.learner.update_targets()
    assert all(th.equal(a, b) for a, b in zip(policy.agent.parameters(), policy.agent_target.parameters(), strict=True))


def test_sb3_machinery_learning_rate_schedule_and_parameters(tmp_path):
    model = QMIX("MlpPolicy", match_env(), seed=12, learning_rate=lambda progress: 1e-3 * (0.5 + progress), **SMALL)
    assert isinstance(model, BaseAlgorithm)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    model.learn(120, log_interval=1)
    # SB3's remaining progress drives the schedule: 0 at the last gradient step, after 120 env steps
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert "train/learning_rate" in (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    other = QMIX("MlpPolicy", match_env(), seed=13, **SMALL)
    obs = np.random.default_rng(0).random((2, 3)).astype(np.float32)
    other.set_parameters(model.get_parameters())
    assert np.array_equal(other.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    assert set(model.get_parameters()) == {"policy", "policy.optimizer"}
    model.save(tmp_path / "model.zip")
    third = QMIX("MlpPolicy", match_env(), seed=14, **SMALL)
    third.set_parameters(str(tmp_path / "model.zip"))
    assert all(th.equal(a, b) for a, b in zip(third.policy.parameters(), model.policy.parameters(), strict=True))
    # a deep copy and a pickle (of a model logging to no file) train on from where it is, with their own learner
    third.learn(30)
    for copied in (copy.deepcopy(third), pickle.loads(pickle.dumps(third))):
        assert copied.learner.policy is copied.policy and copied.learner.reward_stats is copied.reward_stats
        copied.learn(30, reset_num_timesteps=False)
        assert copied.num_timesteps == 60 and third.num_timesteps == 30


def test_set_env_with_a_longer_episode_limit_extends_the_buffer(tmp_path):
    model = QMIX("MlpPolicy", match_env(), seed=15, **SMALL)
    model.learn(30)
    stored = model.replay_buffer.storage["rewards"][:5].copy()
    model.set_env(match_env(length=9))
    assert model.episode_limit == 9 and model.replay_buffer.episode_limit == 9
    assert np.array_equal(model.replay_buffer.storage["rewards"][:5, :6], stored)
    model.learn(36, reset_num_timesteps=False)
    assert model.replay_buffer.lengths[5:9].tolist() == [9] * 4 and model._n_updates > 0
    model.set_env(match_env(length=4))  # shorter episodes fit
    assert model.episode_limit == 9
    model.learn(8, reset_num_timesteps=False)
    with pytest.raises(ValueError, match=r"n_actions 4 \(model: 3\)"):
        model.set_env(MultiAgentEnv(MatchGame(n_actions=4), episode_limit=6))
    model.save(tmp_path / "model.zip")
    with pytest.raises(ValueError, match=r"n_agents 3 \(model: 2\), obs_dim 4 \(model: 3\)"):
        QMIX.load(tmp_path / "model.zip", env=MultiAgentEnv(MatchGame(n_agents=3, n_actions=4), episode_limit=6))
    assert QMIX.load(tmp_path / "model.zip", env=match_env(length=12)).replay_buffer.episode_limit == 12


def test_a_loaded_replay_buffer_follows_the_episode_limit(tmp_path):
    short = QMIX("MlpPolicy", match_env(), seed=16, **SMALL)
    short.learn(30)
    short.save_replay_buffer(tmp_path / "buffer.pkl")
    longer = QMIX("MlpPolicy", match_env(length=9), seed=16, **SMALL)
    longer.load_replay_buffer(tmp_path / "buffer.pkl")
    assert longer.replay_buffer.size() == 5 and longer.replay_buffer.episode_limit == 9
    longer.learn(18)
    assert longer.replay_buffer.lengths[:7].tolist() == [6] * 5 + [9] * 2 and longer._n_updates == 2


def test_a_file_saved_by_version_0_1_loads(tmp_path):
    """sb3-sparse 0.1 saved the constructor's arguments and the training state, not SB3's attributes."""
    model = QMIX("RnnPolicy", match_env(), seed=17, **SMALL, **RIGL)
    model.learn(120)
    state = ("num_timesteps", "_total_timesteps", "_episode_num", "_n_updates", "_last_target_update", "exploration_rate")
    data = {name: getattr(model, name) for name in (*state, "reward_stats", "dst_state", "env_shape", "dst_config")}
    init_kwargs = {**SMALL, "seed": 17, "learning_rate": 5e-4, "gamma": 0.99}
    save_to_zip_file(
        tmp_path / "old.zip",
        data={**data, "policy_class": QMIXPolicy, "init_kwargs": init_kwargs},
        params=model.get_parameters(),
    )
    loaded = QMIX.load(tmp_path / "old.zip", env=match_env())
    assert loaded.dst_state == model.dst_state and loaded.num_timesteps == 120 and loaded.batch_size == 4
    assert loaded.time_limit_bootstrap is True  # 0.1's behaviour
    obs = np.random.default_rng(0).random((2, 3)).astype(np.float32)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(60, reset_num_timesteps=False)
    assert_masked(loaded)
    save_to_zip_file(tmp_path / "other.zip", data={"x": 1}, params=model.get_parameters())
    with pytest.raises(KeyError):  # neither format
        QMIX.load(tmp_path / "other.zip")
