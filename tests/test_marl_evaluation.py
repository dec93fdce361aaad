"""evaluate_marl_policy and MultiAgentEvalCallback: SB3's evaluation helpers for the multi-agent learners."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import StopTrainingOnRewardThreshold
from stable_baselines3.common.logger import configure

pytest.importorskip("mpe2")

from sb3_sparse.marl import QMIX
from sb3_sparse.marl.envs import make_marl_env
from sb3_sparse.marl.evaluation import MultiAgentEvalCallback, evaluate_marl_policy

ENV_ID = "simple_spread_v3"  # 3 agents, 25-step episodes
TINY = dict(batch_size=4, buffer_size=16, policy_kwargs=dict(hidden_dim=16, mixing_embed_dim=8, hypernet_embed=16))


def tiny_model(seed: int = 0, env=None) -> QMIX:
    return QMIX("RnnPolicy", env if env is not None else make_marl_env(ENV_ID), seed=seed, device="cpu", **TINY)


def seeded_env(seed: int):
    env = make_marl_env(ENV_ID)
    env.reset(seed=seed)
    return env


def manual_returns(model: QMIX, env, n_episodes: int, carry_state: bool = True) -> list[float]:
    """Team returns of greedy episodes, stepped by hand (the loop of the marl guide)."""
    returns = []
    for _ in range(n_episodes):
        observations, _, available = env.reset()
        recurrent, done, total = None, False, 0.0
        while not done:
            actions, state = model.predict(observations, state=recurrent, deterministic=True, action_masks=available)
            recurrent = state if carry_state else None
            observations, _, available, reward, terminated, truncated, _ = env.step(actions)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


def test_returns_match_a_manual_rollout():
    model = tiny_model()
    returns, lengths = evaluate_marl_policy(model, seeded_env(3), n_eval_episodes=3, return_episode_rewards=True)
    assert returns == pytest.approx(manual_returns(model, seeded_env(3), 3), abs=1e-9)
    assert lengths == [25, 25, 25]
    assert len(set(returns)) == 3  # each episode is a fresh one (unseeded resets go on from the first seed)
    # the check can fail: dropping the recurrent state at every step gives other actions, hence other returns
    assert returns != pytest.approx(manual_returns(model, seeded_env(3), 3, carry_state=False), abs=1e-9)
    # another seed, other episodes
    assert returns != pytest.approx(evaluate_marl_policy(model, seeded_env(4), 3, True, True)[0], abs=1e-9)


def test_mean_std_and_options():
    model = tiny_model()
    returns, _ = evaluate_marl_policy(model, seeded_env(5), 4, return_episode_rewards=True)
    mean, std = evaluate_marl_policy(model, seeded_env(5), 4)
    assert isinstance(mean, float) and isinstance(std, float)
    assert mean == pytest.approx(np.mean(returns)) and std == pytest.approx(np.std(returns))
    # an env id works too (SB3's helpers take one)
    id_returns, id_lengths = evaluate_marl_policy(model, ENV_ID, 1, return_episode_rewards=True)
    assert len(id_returns) == 1 and id_lengths == [25]
    with pytest.raises(AssertionError, match="not above"):
        evaluate_marl_policy(model, seeded_env(5), 2, reward_threshold=1e9)
    with pytest.raises(ValueError, match="n_eval_episodes=0"):
        evaluate_marl_policy(model, seeded_env(5), 0)


def test_stochastic_evaluation_explores():
    model = tiny_model()
    model.exploration_rate = 1.0  # every action random: the greedy returns cannot all come back
    greedy = evaluate_marl_policy(model, seeded_env(6), 2, return_episode_rewards=True)[0]
    random = evaluate_marl_policy(model, seeded_env(6), 2, deterministic=False, return_episode_rewards=True)[0]
    assert greedy != pytest.approx(random, abs=1e-9)


def test_eval_callback_writes_evaluations_and_best_model(tmp_path):
    model = tiny_model()
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    callback = MultiAgentEvalCallback(
        seeded_env(1), n_eval_episodes=2, eval_freq=50, log_path=str(tmp_path), best_model_save_path=str(tmp_path), verbose=0
    )
    model.learn(150, callback=callback)

    data = np.load(tmp_path / "evaluations.npz")
    assert data["timesteps"].tolist() == [50, 100, 150]  # eval_freq counts env steps
    assert data["results"].shape == (3, 2) and data["ep_lengths"].tolist() == [[25, 25]] * 3
    means = data["results"].mean(axis=1)
    assert callback.last_mean_reward == pytest.approx(means[-1])
    assert callback.best_mean_reward == pytest.approx(means.max())

    best = QMIX.load(tmp_path / "best_model.zip", device="cpu")
    assert best.num_timesteps == 50 * (int(np.argmax(means)) + 1)  # saved at the evaluation of the best mean
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"eval/mean_reward", "eval/mean_ep_length"} <= set(header)


def test_eval_callback_keeps_its_results_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_model()
    callback = MultiAgentEvalCallback(seeded_env(1), n_eval_episodes=2, eval_freq=40, verbose=0)
    model.learn(80, callback=callback)
    assert callback.evaluations_timesteps == [40, 80]
    assert [len(r) for r in callback.evaluations_results] == [2, 2] and callback.evaluations_length == [[25, 25]] * 2
    assert callback.last_mean_reward == pytest.approx(np.mean(callback.evaluations_results[-1]))
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_evaluating_does_not_disturb_training(tmp_path):
    """Greedy evaluations in the middle of training episodes leave the training run exactly as it was."""
    plain = tiny_model(seed=2)
    plain.learn(200)
    evaluated = tiny_model(seed=2)
    evaluated.learn(200, callback=MultiAgentEvalCallback(seeded_env(0), n_eval_episodes=1, eval_freq=30, verbose=0))
    assert evaluated._n_updates == plain._n_updates > 0
    for (name, a), b in zip(plain.policy.state_dict().items(), evaluated.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name


def test_eval_callback_stops_training_and_rejects_the_training_env():
    model = tiny_model()
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9, verbose=0)  # any mean return is above it
    model.learn(500, callback=MultiAgentEvalCallback(seeded_env(1), 1, eval_freq=40, callback_on_new_best=stop, verbose=0))
    assert model.num_timesteps == 40  # stopped at the first evaluation, mid-episode

    with pytest.raises(ValueError, match="apart from the training env"):
        model.learn(50, callback=MultiAgentEvalCallback(model.get_env(), 1, eval_freq=10, verbose=0))
    with pytest.raises(ValueError, match="n_eval_episodes"):
        MultiAgentEvalCallback(seeded_env(1), n_eval_episodes=0)
