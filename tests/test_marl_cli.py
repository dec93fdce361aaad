"""``sb3-sparse marl train / enjoy / tune`` end to end, on tiny budgets (simple_spread_v3: 25-step episodes)."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("mpe2")

from sb3_sparse import flops_report
from sb3_sparse.marl import QMIX, VDN
from sb3_sparse.zoo.cli import main
from sb3_sparse.zoo.marl import parse_value

ENV_ID = "simple_spread_v3"
#: a tiny learner: 4-episode batches from a 16-episode buffer, narrow networks
TINY = [
    "-params",
    "batch_size:4",
    "buffer_size:16",
    "policy_kwargs:dict(hidden_dim=16, mixing_embed_dim=8, hypernet_embed=16)",
]


def marl(*args: str) -> int:
    return main(["marl", *args])


def train(folder, *args: str, algo: str = "qmix") -> int:
    return marl("train", "--algo", algo, "--env", ENV_ID, "-f", str(folder), "--device", "cpu", "--verbose", "0", *args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One QMIX run of 300 steps with evaluations and checkpoints (shared by the tests that read a run)."""
    folder = tmp_path_factory.mktemp("logs")
    args = [
        "-n",
        "300",
        "--seed",
        "7",
        "--eval-freq",
        "100",
        "--eval-episodes",
        "2",
        "--save-freq",
        "150",
        "--log-interval",
        "4",
    ]
    args += TINY
    assert train(folder, *args) == 0
    return folder


def test_train_writes_the_run(trained):
    run = trained / "qmix" / f"{ENV_ID}_1"
    names = {path.name for path in run.iterdir()}
    expected = {"config.yml", "args.yml", "progress.csv", f"{ENV_ID}.zip", "best_model.zip", "evaluations.npz"}
    assert expected | {"rl_model_150_steps.zip", "rl_model_300_steps.zip"} <= names

    config = yaml.safe_load((run / "config.yml").read_text())[ENV_ID]
    assert config["n_timesteps"] == 300 and config["batch_size"] == 4 and config["buffer_size"] == 16
    assert config["policy_kwargs"] == {"hidden_dim": 16, "mixing_embed_dim": 8, "hypernet_embed": 16}  # -params replaces
    assert config["learning_rate"] == 5e-4 and config["target_update_interval"] == 200  # from the shipped file
    assert config["env_kwargs"] == {"max_cycles": 25}
    args = yaml.safe_load((run / "args.yml").read_text())
    assert args["seed"] == 7 and args["algo"] == "qmix" and args["eval_freq"] == 100

    model = QMIX.load(run / f"{ENV_ID}.zip", device="cpu")
    assert model.num_timesteps == 300 and model.batch_size == 4 and model.policy.hidden_dim == 16
    assert model.seed == 7 and model.dst_config["regime"] == "dense"
    assert QMIX.load(run / "rl_model_150_steps.zip", device="cpu").num_timesteps == 150
    evaluations = np.load(run / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [100, 200, 300] and evaluations["results"].shape == (3, 2)
    header = (run / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"rollout/ep_rew_mean", "eval/mean_reward", "train/loss"} <= set(header)


def test_config_trains_again_and_runs_are_numbered(trained, tmp_path):
    """config.yml is an entry for -conf; a second run of the same env gets the next id."""
    conf = trained / "qmix" / f"{ENV_ID}_1" / "config.yml"
    assert train(tmp_path, "-conf", str(conf), "-n", "50", "--eval-freq", "0", "--seed", "1") == 0
    assert train(tmp_path, "-conf", str(conf), "-n", "50", "--eval-freq", "0", "--seed", "1") == 0
    assert sorted(path.name for path in (tmp_path / "qmix").iterdir()) == [f"{ENV_ID}_1", f"{ENV_ID}_2"]
    model = QMIX.load(tmp_path / "qmix" / f"{ENV_ID}_2" / f"{ENV_ID}.zip", device="cpu")
    assert model.batch_size == 4 and model.policy.hidden_dim == 16 and model.num_timesteps >= 50


def test_train_and_enjoy_with_a_multi_agent_algo_run_the_marl_verbs(trained, tmp_path, capsys):
    """``sb3-sparse train --algo qmix`` is ``sb3-sparse marl train --algo qmix`` (and so for enjoy)."""
    argv = ["--algo", "qmix", "--env", ENV_ID, "-f", str(tmp_path), "-n", "50", "--eval-freq", "0", "--verbose", "0", *TINY]
    assert main(["train", *argv]) == 0
    assert QMIX.load(tmp_path / "qmix" / f"{ENV_ID}_1" / f"{ENV_ID}.zip", device="cpu").num_timesteps >= 50
    capsys.readouterr()
    assert main(["enjoy", "--algo", "qmix", "--env", ENV_ID, "-f", str(trained), "-n", "1"]) == 0
    assert "Mean return: " in capsys.readouterr().out


def test_recipe_mast_trains_a_sparse_model(tmp_path):
    assert train(tmp_path, "--recipe", "mast", "-n", "100", "--eval-freq", "0", "--seed", "0", *TINY, algo="vdn") == 0
    run = tmp_path / "vdn" / f"{ENV_ID}_1"
    model = VDN.load(run / f"{ENV_ID}.zip", device="cpu")
    assert flops_report(model)["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert model.dst_config["regime"] == "rigl" and model.target_operator == "soft_mellowmax"
    config = yaml.safe_load((run / "config.yml").read_text())[ENV_ID]
    assert config["regime"] == "rigl" and config["replay_buffer_class"] == "dual" and config["sparsity"] == 0.9


def test_recipe_clash_with_the_file_and_params_override(tmp_path, capsys):
    conf = tmp_path / "mine.yml"
    conf.write_text(f"{ENV_ID}:\n  n_timesteps: !!float 1e2\n  sparsity: 0.5\n  batch_size: 4\n  buffer_size: 16\n")
    assert train(tmp_path / "logs", "-conf", str(conf), "--recipe", "mast") == 2
    err = capsys.readouterr().err
    assert "--recipe mast sets ['sparsity']" in err and "0.5" in err
    assert not (tmp_path / "logs").exists()
    # -params settles it: it overrides both
    assert train(tmp_path / "logs", "-conf", str(conf), "--recipe", "mast", "--eval-freq", "0", "-params", "sparsity:0.7") == 0
    model = QMIX.load(tmp_path / "logs" / "qmix" / f"{ENV_ID}_1" / f"{ENV_ID}.zip", device="cpu")
    assert flops_report(model)["sparsity"] == pytest.approx(0.7, abs=0.01)
    assert model.num_timesteps >= 100  # n_timesteps from the file (a YAML float)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "qmx"], "--algo: algorithm='qmx' is not valid (did you mean 'qmix'?)"),
        (["--env", "simple_sprad_v3"], "Unknown MPE environment 'simple_sprad_v3'"),
        (["--recipe", "mastt"], "--recipe: recipe='mastt' is not valid"),
        (["--recipe", "ds_td3"], "is for sparse_td3"),
        (["-params", "lerning_rate:0.1"], "-params: 'lerning_rate' is not an argument of QMIX; did you mean 'learning_rate'?"),
        (["-params", "learning_rate:-1"], "learning_rate=-1 is not valid; it must be a number > 0 (from -params)"),
        (
            ["-params", "policy_kwargs:dict(hiden_dim=8)"],
            "'hiden_dim' is not an argument of QMIXPolicy; did you mean 'hidden_dim'?",
        ),
        (["-params", "policy_kwargs:dict(hidden_dim=0)"], "hidden_dim=0 is not valid"),
        (["-params", "regime:rigel"], "regime='rigel' is not valid (did you mean 'rigl'?)"),
        (["-params", "sparsity:1.5", "regime:set"], "sparsity=1.5 is not valid"),
        (["-params", "batch_size:64", "buffer_size:16"], "batch_size=64 is larger than buffer_size=16"),
        (["-params", "seed:3"], "'seed' is set on the command line (--seed)"),
        (["-params", "policy:CnnPolicy"], "policy='CnnPolicy' is not valid"),
        (["-params", "env_kwargs:dict(foo=1)"], "unexpected keyword argument 'foo'"),
        (["-params", "oops"], "-params expects key:value pairs, got 'oops'"),
        (["-conf", "missing.yml"], "hyperparameter file 'missing.yml' not found"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    argv = ["--algo", "qmix", "--env", ENV_ID, "-n", "50", "-f", str(tmp_path / "logs")]
    for flag in ("--algo", "--env"):  # the case's own value replaces the default one
        if flag in args:
            index = argv.index(flag)
            del argv[index : index + 2]
    assert marl("train", *argv, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sb3-sparse marl train: error: ") and message in err, err
    assert not (tmp_path / "logs").exists()


def test_unknown_entry_and_bad_yaml(tmp_path, capsys):
    (tmp_path / "other.yml").write_text("simple_tag_v3:\n  n_timesteps: 100\n")
    (tmp_path / "broken.yml").write_text("simple_spread_v3: [1, 2\n")
    assert train(tmp_path / "logs", "-conf", str(tmp_path / "other.yml")) == 2
    assert "has no entry for 'simple_spread_v3' and no 'default' entry" in capsys.readouterr().err
    assert train(tmp_path / "logs", "-conf", str(tmp_path / "broken.yml")) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    assert marl("trian") == 2
    assert "sb3-sparse marl: error: sub-command='trian' is not valid (did you mean 'train'?)" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_parse_value():
    assert parse_value("1e-3") == 1e-3 and parse_value("[1, 2]") == [1, 2] and parse_value("None") is None
    assert parse_value("dict(hidden_dim=32)") == {"hidden_dim": 32}
    assert parse_value("soft_mellowmax") == "soft_mellowmax"  # a bare word needs no quotes


def test_enjoy_prints_the_returns(trained, capsys):
    assert marl("enjoy", "--algo", "qmix", "--env", ENV_ID, "-f", str(trained), "-n", "3", "--device", "cpu") == 0
    out = capsys.readouterr().out
    assert f"{ENV_ID}_1/{ENV_ID}.zip (300 env steps of training)" in out
    match = re.search(r"Mean return: (-?\d+\.\d+) \+/- (\d+\.\d+) over 3 episodes", out)
    assert match is not None, out
    assert float(match.group(1)) < 0  # simple_spread's rewards are negative distances
    assert "Mean episode length: 25.00 +/- 0.00" in out

    assert marl("enjoy", "--algo", "qmix", "--env", ENV_ID, "-f", str(trained), "--load-best", "-n", "1") == 0
    assert "best_model.zip" in capsys.readouterr().out
    assert marl("enjoy", "--algo", "qmix", "--env", ENV_ID, "-f", str(trained), "--exp-id", "9") == 2
    assert "no run" in capsys.readouterr().err
    assert marl("enjoy", "--algo", "vdn", "--env", ENV_ID, "-f", str(trained)) == 2
    assert "no vdn run on simple_spread_v3" in capsys.readouterr().err


def load_study(optuna, path: str):
    return optuna.load_study(
        study_name="spread", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    )


def test_tune_shares_a_journal_storage(tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    storage = str(tmp_path / "studies" / "qmix.log")
    common = ["--algo", "qmix", "--env", ENV_ID, "--storage", storage, "--study-name", "spread", "-f", str(tmp_path / "logs")]
    tiny = ["-n", "250", "--eval-episodes", "2", "--device", "cpu", *TINY, "--recipe", "mast"]
    assert marl("tune", *common, *tiny, "--n-trials", "2", "--seed", "0") == 0
    out = capsys.readouterr().out
    assert "Trial 1 finished: COMPLETE" in out and "Best trial: " in out

    best_file = tmp_path / "logs" / "qmix" / f"best_{ENV_ID}.yml"
    best = load_study(optuna, storage).best_trial
    budget = "# Tuned at: n_timesteps 250, eval_episodes 2, sampler tpe, pruner none, 2 trials (2 complete)"
    assert budget in best_file.read_text()
    entry = yaml.safe_load(best_file.read_text())[ENV_ID]
    assert entry["learning_rate"] == best.params["learning_rate"] and entry["regime"] == best.params["regime"]
    assert entry["policy_kwargs"]["hidden_dim"] == best.params["hidden_dim"]
    assert entry["policy_kwargs"]["mixing_embed_dim"] == 8  # the rest of policy_kwargs kept
    assert entry["replay_buffer_class"] == "dual"  # the recipe's, not tuned
    assert {"sparsity", "drop_fraction", "target_operator"} <= set(best.params)  # DST knobs tuned: mast is sparse

    # a second worker on the same storage adds its trials to the study
    assert marl("tune", *common, *tiny, "--n-trials", "1", "--seed", "1", "--sampler", "random") == 0
    assert len(load_study(optuna, storage).trials) == 3
    assert "Trial 2 finished" in capsys.readouterr().out

    # the best entry trains with -conf
    assert train(tmp_path / "runs", "-conf", str(best_file), "-n", "50", "--eval-freq", "0") == 0
    model = QMIX.load(tmp_path / "runs" / "qmix" / f"{ENV_ID}_1" / f"{ENV_ID}.zip", device="cpu")
    assert model.learning_rate == pytest.approx(best.params["learning_rate"])


def test_tune_rejects_bad_input_before_opening_the_storage(tmp_path, capsys):
    pytest.importorskip("optuna")
    common = ["--algo", "qmix", "--env", ENV_ID, "--study-name", "s", "-f", str(tmp_path / "logs"), *TINY]
    assert marl("tune", *common, "--storage", str(tmp_path / "study.db")) == 2
    assert "neither a journal file" in capsys.readouterr().err
    assert marl("tune", *common, "--storage", str(tmp_path / "s.log"), "--sampler", "tpee") == 2
    assert "--sampler='tpee' is not valid (did you mean 'tpe'?)" in capsys.readouterr().err
    assert marl("tune", *common, "--storage", str(tmp_path / "s.log"), "-params", "gama:0.9") == 2
    assert "did you mean 'gamma'?" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_installed_command(tmp_path):
    """The real ``sb3-sparse`` entry point: ``marl`` is listed, and a mistake is one line with exit status 2."""
    script = shutil.which("sb3-sparse")
    command = [script] if script else [sys.executable, "-m", "sb3_sparse"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    listed = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0 and "marl" in listed.stdout
    result = subprocess.run(
        [*command, "marl", "train", "--algo", "qmix", "--env", ENV_ID, "-params", "target_operator:maxx"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sb3-sparse marl train: error: target_operator='maxx' is not valid (did you mean 'max'?); "
        "choose one of 'max', 'soft_mellowmax' (from -params)"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [[], ["train"], ["enjoy"], ["tune"]], ids=lambda command: " ".join(command) or "marl")
def test_help_lists_the_options_without_rst_markup(command, capsys):
    try:
        status = marl(*command, "-h")
    except SystemExit as exit_info:  # argparse's -h
        status = exit_info.code
    assert status in (0, None)
    out = capsys.readouterr().out
    assert ("--algo" in out) if command else all(name in out for name in ("train", "enjoy", "tune", "mast", "qmix"))
    assert re.search(r"``|:(?:class|func|mod|param):", out) is None


@pytest.mark.parametrize(
    ("env_id", "steps"), [("Foraging-8x8-2p-2f-coop-v3", "120"), ("rware-tiny-2ag-v2", "1000"), ("simple_spread_v3", "60")]
)
@pytest.mark.parametrize(("algo", "recipe"), [("qmix", []), ("vdn", ["--recipe", "rigl"])])
def test_train_each_env_family_dense_and_sparse(tmp_path, env_id, steps, algo, recipe):
    small = [
        "-params",
        "batch_size:2",
        "buffer_size:4",
        "policy_kwargs:dict(hidden_dim=8, mixing_embed_dim=4, hypernet_embed=8)",
    ]
    args = ["train", "--algo", algo, "--env", env_id, "-f", str(tmp_path), "-n", steps, "--eval-freq", "0", "--verbose", "0"]
    assert marl(*args, *recipe, *small) == 0
    model = (QMIX if algo == "qmix" else VDN).load(tmp_path / algo / f"{env_id}_1" / f"{env_id}.zip", device="cpu")
    assert model.num_timesteps >= int(steps) and model._n_updates >= 1
    assert flops_report(model)["sparsity"] == (pytest.approx(0.9, abs=0.01) if recipe else 0.0)
