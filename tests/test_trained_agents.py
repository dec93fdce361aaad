"""The trained agents shipped in ``sb3_sparse/trained_agents/``: ``sb3-sparse agents``, ``enjoy --pretrained``, the index."""

import math

import pytest

pytest.importorskip("yaml")

from sb3_sparse.zoo.agents import AGENTS_DIR, check_index, evaluate_agent, find_agent, read_index
from sb3_sparse.zoo.cli import main

AGENTS = read_index()


def test_agents_lists_them_all(capsys):
    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    assert len(AGENTS) >= 5
    for agent in AGENTS:
        assert any(agent.algo in line and agent.env in line and agent.file in line for line in out.splitlines()), agent.file
    # single-agent, value-based and multi-agent ones
    assert {"sparse_dqn", "qmix"} <= {agent.algo for agent in AGENTS}


def test_index_matches_the_files():
    assert check_index(AGENTS) == []
    assert len({(agent.algo, agent.env) for agent in AGENTS}) == len(AGENTS)
    for agent in AGENTS:
        assert 0.0 < agent.sparsity < 1.0, agent.file
        assert math.isfinite(agent.mean_return) and agent.std_return >= 0, agent.file
        trained = agent.command.startswith(f"python -m sb3_sparse train --algo {agent.algo} --env {agent.env} ")
        benchmarked = agent.command.startswith("python -m benchmarks.run ") and f" --envs {agent.env} " in agent.command
        assert trained or benchmarked, agent.command  # a zoo command, or a benchmark run's own
        assert agent.file.endswith(".pt") and agent.file_size < agent.dense_size, agent.file  # CSR: smaller than dense
    # small enough to ship in the wheel: about 50 KiB per agent, and no more than ten of them
    assert sum(path.stat().st_size for path in AGENTS_DIR.iterdir()) < 512 * 1024


@pytest.mark.parametrize("agent", AGENTS, ids=[agent.file for agent in AGENTS])
def test_enjoy_pretrained_runs_each_agent(agent, capsys):
    # a few steps (an episode for a multi-agent learner)
    n = "1" if agent.multi_agent else "5"
    assert main(["enjoy", "--algo", agent.algo, "--env", agent.env, "--pretrained", "--no-render", "-n", n]) == 0
    assert str(agent.path) in capsys.readouterr().out


def test_reevaluated_return_is_finite():
    agent = find_agent("sparse_sac", "Pendulum-v1")
    returns = evaluate_agent(agent, n_episodes=2)
    assert len(returns) == 2 and all(math.isfinite(value) for value in returns)
    # the trained agent, not a random one (about -1200 on Pendulum)
    assert min(returns) > -600


def test_record_video_of_a_pretrained_agent(tmp_path):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (gymnasium[classic-control], in the zoo extra)")
    argv = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "--pretrained", "-n", "20"]
    assert main(["enjoy", *argv, "--record", str(tmp_path / "enjoy")]) == 0
    assert main(["record-video", *argv, "-o", str(tmp_path / "record")]) == 0
    for folder in ("enjoy", "record"):
        videos = list((tmp_path / folder).glob("*.mp4"))
        assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_missing_pretrained_agent_is_one_line(capsys):
    assert main(["enjoy", "--algo", "sparse_sac", "--env", "Humanoid-v5", "--pretrained"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        "sb3-sparse enjoy: error: no pretrained agent for --algo sparse_sac --env Humanoid-v5; available: "
    )
    assert all(f"{agent.algo} on {agent.env}" in err[0] for agent in AGENTS)


def test_multi_agent_agents_are_not_recorded(tmp_path, capsys):
    assert main(["enjoy", "--algo", "qmix", "--env", "simple_spread_v3", "--pretrained", "--record", str(tmp_path / "v")]) == 2
    assert "--record is for single-agent agents" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_the_table_and_the_commands_come_from_the_script():
    """The docs table is the index's, and each agent's command is the one benchmarks/trained_agents.py runs."""
    from benchmarks.trained_agents import SPECS, TABLE_FILE, table_markdown

    assert TABLE_FILE.read_text() == table_markdown(AGENTS)
    commands = {(spec.algo, spec.env): spec.command for spec in SPECS}
    assert {(agent.algo, agent.env): agent.command for agent in AGENTS} == commands


def test_an_agent_from_a_benchmark_run(tmp_path, monkeypatch):
    """A finished benchmark run's exported actor is shipped as is: its command is the run's own, its policy the
    file the harness wrote, its steps and day those of the run."""
    from benchmarks.profile import RunSpec
    from benchmarks.runner import run_one
    from benchmarks.trained_agents import Spec, from_benchmark_run
    from sb3_sparse import module_sparsity

    run = RunSpec(
        profile="test", algo="sac", env_id="Pendulum-v1", label="set-0.9", method="set", seed=2, sparsity=0.9,
        total_timesteps=60, eval_freq=60, n_eval_episodes=1, checkpoint_freq=1000, final_evals=1,
        algo_kwargs={"learning_starts": 30, "batch_size": 16},
    )  # fmt: skip
    assert run_one(run, tmp_path) == "done"
    item = Spec("sparse_sac", "Pendulum-v1", "SET, 90%", run=f"test:{run.run_id}")
    assert item.command == "python -m benchmarks.run test --envs Pendulum-v1 --methods set-0.9 --seeds 2"
    monkeypatch.setattr(Spec, "run_dir", lambda self: tmp_path / self.run_parts[1])
    policy, n_timesteps, date, cpu = from_benchmark_run(item, tmp_path / "agent.pt")
    assert (tmp_path / "agent.pt").read_bytes() == (tmp_path / run.run_id / "policy.pt").read_bytes()
    assert module_sparsity(policy)["actor"] == pytest.approx(0.9, abs=0.01) and n_timesteps == 60
    assert len(date) == 10 and cpu
    with pytest.raises(SystemExit, match="no finished run"):
        unfinished = Spec("sparse_sac", "Pendulum-v1", "SET", run="test:sac/Pendulum-v1/set-0.9/seed3")
        from_benchmark_run(unfinished, tmp_path / "x.pt")
