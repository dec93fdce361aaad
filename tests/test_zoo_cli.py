"""The real ``sb3-sparse`` command end to end, on tiny budgets: train -> files -> enjoy -> plot, tune -> best YAML."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

from sb3_sparse import SparseSAC  # noqa: E402
from sb3_sparse.common.flops import module_sparsity  # noqa: E402
from sb3_sparse.zoo.cli import main  # noqa: E402

# A YAML entry that sets DST knobs away from their defaults, to check they reach the model.
DST_YAML = """\
Pendulum-v1:
  n_timesteps: 20000
  policy: 'MlpPolicy'
  learning_starts: 100
  batch_size: 64
  policy_kwargs: "dict(net_arch=[64, 64])"
  sparsity: 0.7
  sparsity_distribution: 'erk'
  sparse_layers: 'all'
  mask_init: 'magnitude'
  topology_update_interval: !!float 1e2
  drop_fraction: 0.3
  drop_fraction_schedule: 'cosine'
  regime: 'rigl'
  topology_update_end: 0.9
  modules: {actor: {sparsity: 0.8, regime: static}}
"""


def cli(
    *args: str, cwd, module: str = "sb3_sparse", timeout: int = 240, env_vars: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` (``sb3-sparse`` itself when ``module`` is ``"script"``) in ``cwd``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "MUJOCO_GL": "egl"}
    env.update(env_vars or {})
    if module == "script":
        script = shutil.which("sb3-sparse")
        command = [script] if script else [sys.executable, "-m", "sb3_sparse"]
    else:
        command = [sys.executable, "-m", module]
    result = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:])
    return result


def test_train_enjoy_plot_end_to_end(tmp_path, monkeypatch):
    (tmp_path / "my_sparse_sac.yml").write_text(DST_YAML)
    common = ["--env", "Pendulum-v1", "-n", "300", "--eval-freq", "150", "--eval-episodes", "1", "--num-threads", "1"]
    # a dense SAC run through the same command (rl-zoo3's own algorithm), next to the sparse one
    dense = subprocess.Popen(
        [sys.executable, "-m", "sb3_sparse.train", "--algo", "sac", *common, "-params", "learning_starts:100", "--seed", "1"],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = cli(
        "train", "--algo", "sparse_sac", *common, "-conf", "my_sparse_sac.yml", "--seed", "0", cwd=tmp_path, module="script"
    )
    assert result.returncode == 0
    assert dense.wait(timeout=240) == 0, dense.stderr.read() if dense.stderr else ""

    run = tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1"
    for name in ("Pendulum-v1.zip", "best_model.zip", "evaluations.npz", "0.monitor.csv", "sparsity.csv"):
        assert (run / name).is_file(), name
    config = yaml.unsafe_load((run / "Pendulum-v1" / "config.yml").read_text())
    assert config["regime"] == "rigl" and config["modules"] == {"actor": {"sparsity": 0.8, "regime": "static"}}
    assert "Mask update at step" in result.stdout  # SparseSAC's own log line reached rl-zoo3's output

    # every DST knob of the YAML reached the model, the per-module ones only their module
    model = SparseSAC.load(run / "Pendulum-v1.zip", buffer_size=1)
    expected = {
        "sparsity": 0.7,
        "sparsity_distribution": "erk",
        "sparse_layers": ("input", "hidden", "output"),
        "mask_init": "magnitude",
        "topology_update_interval": 100,
        "drop_fraction": 0.3,
        "drop_fraction_schedule": "cosine",
        "regime": "rigl",
        "topology_update_end": 0.9,
    }
    configs = model.policy.module_configs
    for name, value in expected.items():
        assert getattr(configs["critic"], name) == value, name
        actor_value = {"sparsity": 0.8, "regime": "static"}.get(name, value)
        assert getattr(configs["actor"], name) == actor_value, name
    sparsity = module_sparsity(model)
    assert sparsity["actor"] == pytest.approx(0.8, abs=0.02) and sparsity["critic"] == pytest.approx(0.7, abs=0.02)
    assert model.dst_state["modules"]["critic"]["n_updates"] >= 1
    assert model.dst_state["modules"]["actor"]["n_updates"] == 0  # modules: {actor: {regime: static}}
    with open(run / "sparsity.csv") as file:
        header = file.readline()
    assert header.startswith("timesteps,actor_sparsity,critic_sparsity")

    # enjoy loads it (python -m sb3_sparse.enjoy), without the 1M-transition buffer
    result = cli(
        "--algo",
        "sparse_sac",
        "--env",
        "Pendulum-v1",
        "-f",
        "logs/",
        "--no-render",
        "-n",
        "200",
        cwd=tmp_path,
        module="sb3_sparse.enjoy",
    )
    assert result.returncode == 0
    assert "Loading logs/sparse_sac/Pendulum-v1_1/Pendulum-v1.zip" in result.stdout
    assert "Mean reward:" in result.stdout

    # our figures and rl-zoo3's, saved to PNG
    result = cli("plot", "run", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-o", "run.png", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "run.png").stat().st_size > 10_000
    monkeypatch.chdir(tmp_path)  # in-process from here on: each subprocess costs seconds of imports
    assert main(["plot", "compare", "--env", "Pendulum-v1", "--algos", "sac", "sparse_sac", "-o", "cmp.png"]) == 0
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    plot_train = ["plot", "train", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-f", "logs", "-w", "1"]
    assert main([*plot_train, "--save-fig", "zoo.png"]) == 0  # rl-zoo3's plot_train, saved instead of shown
    assert (tmp_path / "zoo.png").stat().st_size > 10_000


def test_record_video(tmp_path):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (gymnasium[classic-control], in the zoo extra)")
    SparseSAC("MlpPolicy", "Pendulum-v1", buffer_size=10, seed=0).save(
        tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1"
    )
    result = cli(
        "record-video", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-f", "logs", "-n", "20", "-o", "videos", cwd=tmp_path
    )
    assert result.returncode == 0
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_tune_exports_best_trial(tmp_path, monkeypatch):
    """tune: 3 trials with successive halving, intermediate evaluations reported, best trial exported as a YAML entry."""
    args = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-n", "200", "--n-trials", "3", "--n-evaluations", "2"]
    args += ["--eval-episodes", "1", "--pruner", "halving", "--sampler", "random", "--no-optim-plots", "--num-threads", "1"]
    args += ["--storage", "study.log", "--study-name", "tiny", "-params", "learning_starts:100", "--seed", "3"]
    result = cli(*args, cwd=tmp_path, module="sb3_sparse.tune")
    assert result.returncode == 0
    line = r"^Trial (\d) finished: (COMPLETE|PRUNED), .*; best so far: trial \d, value -?[\d.e+]+$"
    progress = re.findall(line, result.stdout, re.MULTILINE)
    assert sorted(int(number) for number, _ in progress) == [0, 1, 2]  # one line per finished trial, on stdout
    study = optuna.load_study(
        study_name="tiny",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log"))),
    )
    states = [trial.state for trial in study.trials]
    assert len(states) == 3 and all(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
    assert any(trial.intermediate_values for trial in study.trials)  # the pruner gets reports
    assert {"sparsity", "actor_sparsity", "regime", "drop_fraction_schedule", "learning_rate"} <= set(study.trials[0].params)
    assert not list((tmp_path / "logs" / "sparse_sac").glob("Pendulum-v1_*"))  # no empty run folder left for enjoy

    best_file = tmp_path / "logs" / "sparse_sac" / "best_Pendulum-v1.yml"
    entry = yaml.safe_load(best_file.read_text())["Pendulum-v1"]
    # the budget it was tuned at, as a comment (rl-zoo3 would pass a key to the constructor)
    budget = "# Tuned at: n_timesteps 200, n_evaluations 2, eval_episodes 1, sampler random, pruner halving, 3 trials ("
    assert budget in best_file.read_text()
    assert entry["sparsity"] == study.best_trial.params["sparsity"]
    best = study.best_trial.params
    own_regime = {} if best["actor_regime"] == "same" else {"regime": best["actor_regime"]}
    assert entry["modules"] == {"actor": {"sparsity": best["actor_sparsity"], **own_regime}}
    assert entry["learning_starts"] == 100 and entry["policy"] == "MlpPolicy" and entry["n_timesteps"] == 20000
    assert entry["sparse_layers"] == ["input", "hidden"]  # the YAML's DST settings that were not tuned

    # the same export from the storage, on demand (e.g. while other workers still run)
    result = cli(
        "best",
        "--algo",
        "sparse_sac",
        "--env",
        "Pendulum-v1",
        "--storage",
        "study.log",
        "--study-name",
        "tiny",
        "-o",
        "b.yml",
        cwd=tmp_path,
    )
    assert result.returncode == 0
    exported = yaml.safe_load((tmp_path / "b.yml").read_text())["Pendulum-v1"]
    assert budget in (tmp_path / "b.yml").read_text()
    tuned = ("sparsity", "modules", "regime", "drop_fraction", "learning_rate", "policy_kwargs", "gamma")
    assert {key: exported[key] for key in tuned} == {key: entry[key] for key in tuned}
    assert "learning_starts" not in exported  # its base is the shipped entry (the tune run also had -params)

    # the exported entry trains as is (in-process, to save the start-up of another interpreter)
    monkeypatch.chdir(tmp_path)
    args = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", str(best_file), "-n", "120", "--eval-freq", "-1"]
    assert main(["train", *args, "--verbose", "0"]) == 0

    # a trial straight from the storage: --trial-id 0 (which rl-zoo3 alone would ignore)
    args = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-n", "120", "--eval-freq", "-1", "--verbose", "0"]
    assert main(["train", *args, "--storage", "study.log", "--study-name", "tiny", "--trial-id", "0"]) == 0
    config = yaml.unsafe_load((tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_2" / "Pendulum-v1" / "config.yml").read_text())
    assert config["sparsity"] == study.trials[0].params["sparsity"]
    assert config["regime"] == study.trials[0].params["regime"]
    first = study.trials[0].params
    own_regime = {} if first["actor_regime"] == "same" else {"regime": first["actor_regime"]}
    assert config["modules"] == {"actor": {"sparsity": first["actor_sparsity"], **own_regime}}
    with zipfile.ZipFile(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1.zip") as archive:
        assert "policy.pth" in archive.namelist()


def test_bad_yaml_exits_cleanly_from_the_shell(tmp_path):
    (tmp_path / "bad.yml").write_text(
        "Pendulum-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  sparsity_distribution: gaussian\n"
    )
    result = cli("train", "--algo", "sparse_td3", "--env", "Pendulum-v1", "-conf", "bad.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("sb3-sparse train: error: bad.yml (entry for Pendulum-v1): sparsity_distribution='gaussian' is not valid")
    )


def test_one_line_errors_from_the_shell(tmp_path):
    """A model the constructor rejects: one line, status 2, no run folder; SB3_SPARSE_TRACEBACK=0: one line for anything."""
    result = cli("train", "--algo", "sparse_sac", "--env", "CartPole-v1", "-n", "100", cwd=tmp_path, module="script")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sb3-sparse train: error: cannot create sparse_sac for CartPole-v1 from ")
    assert err[0].endswith("The algorithm only supports (Box,) as action spaces but Discrete(2) was provided")
    assert not (tmp_path / "logs").exists()

    # an error that is not a user mistake (rl-zoo3 asserts): with SB3_SPARSE_TRACEBACK=0 one line and status 1
    args = ["train", "--algo", "sac", "--env", "Pendulum-v1", "-i", "missing.zip"]
    result = cli(*args, cwd=tmp_path, env_vars={"SB3_SPARSE_TRACEBACK": "0"})
    assert result.returncode == 1
    message = "error: AssertionError: The trained_agent must be a valid path to a .zip file"
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr

    result = cli("--version", cwd=tmp_path, module="script")
    assert result.returncode == 0 and re.fullmatch(r"sb3-sparse \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(("algo", "env_id"), [("sparse_ppo", "CartPole-v1"), ("sparse_a2c", "Pendulum-v1")])
def test_on_policy_train_and_enjoy(tmp_path, monkeypatch, algo, env_id):
    """The on-policy algorithms through the command, in-process: train with the shipped entry, then enjoy."""
    from sb3_sparse import registry

    monkeypatch.chdir(tmp_path)
    args = ["--algo", algo, "--env", env_id, "--num-threads", "1", "--seed", "0"]
    assert main(["train", *args, "-n", "1024", "--eval-freq", "512", "--eval-episodes", "1", "--verbose", "0"]) == 0
    run = tmp_path / "logs" / algo / f"{env_id}_1"
    assert (run / "sparsity.csv").read_text().startswith("timesteps,actor_sparsity,critic_sparsity,encoder_sparsity")
    model = registry.ALGORITHMS[algo].sparse_class.load(run / f"{env_id}.zip")
    assert module_sparsity(model)["actor"] == pytest.approx(0.5, abs=0.02)
    assert model.dst_state["n_updates"] == 1  # the shipped interval is 1024 env steps
    assert main(["enjoy", "--algo", algo, "--env", env_id, "-f", "logs/", "--no-render", "-n", "50"]) == 0
