"""rl-zoo3 / Optuna integration, in-process: registries, shipped YAML files, samplers, validation, export, plots."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

from sb3_sparse import SparseSAC, SparseTD3  # noqa: E402
from sb3_sparse.common.flops import network_sparsity  # noqa: E402
from sb3_sparse.zoo import ZooError, hyperparams_path, register  # noqa: E402
from sb3_sparse.zoo.cli import InferenceLoader, main  # noqa: E402
from sb3_sparse.zoo.samplers import (  # noqa: E402
    DST_SEARCH_SPACE,
    convert_sparse_params,
    merge_trial_hyperparams,
    sample_sparse_sac_params,
    sample_sparse_td3_params,
)
from sb3_sparse.zoo.study import best_entry, check_storage, export_best, normalize_storage, python_literal  # noqa: E402
from sb3_sparse.zoo.validation import check_hyperparams, coerce_steps  # noqa: E402

ENVS = [
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "Swimmer-v5",
]
CLASSES = {"sparse_sac": SparseSAC, "sparse_td3": SparseTD3}


def zoo_entry(algo: str, env_id: str) -> dict:
    """The shipped entry for ``env_id``, preprocessed the way rl-zoo3 does before building the model."""
    from rl_zoo3 import exp_manager

    with open(hyperparams_path(algo)) as file:
        entry = dict(yaml.safe_load(file)[env_id])
    for key in ("n_timesteps", "noise_type", "noise_std"):
        entry.pop(key, None)
    if isinstance(entry.get("policy_kwargs"), str):
        entry["policy_kwargs"] = eval(entry["policy_kwargs"], vars(exp_manager))
    return entry


def test_import_without_rl_zoo3():
    """``import sb3_sparse`` (and the zoo package) work without the zoo extra; register() says what to install."""
    code = (
        "import sys; sys.modules['rl_zoo3'] = None\n"
        "import sb3_sparse, sb3_sparse.zoo\n"
        "try:\n    sb3_sparse.zoo.register()\nexcept sb3_sparse.zoo.ZooError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "sb3-sparse[zoo]"' in result.stdout


def test_register_adds_algorithms_and_samplers():
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS

    register()
    register()  # idempotent
    assert ALGOS["sparse_sac"] is SparseSAC and ALGOS["sparse_td3"] is SparseTD3
    assert {"sparse_sac", "sparse_td3"} <= set(HYPERPARAMS_SAMPLER) & set(HYPERPARAMS_CONVERTER)
    assert ALGOS["sac"].__name__ == "SAC"  # rl-zoo3's own entries untouched


@pytest.mark.parametrize("algo", sorted(CLASSES))
def test_shipped_files_cover_the_envs_and_cite_sources(algo):
    text = hyperparams_path(algo).read_text()
    entries = yaml.safe_load(text)
    assert set(ENVS) | {"default"} <= set(entries)
    paper = "[DS-SAC]" if algo == "sparse_sac" else "[DS-TD3]"
    for source in (paper, "[zoo]", "[sb3-sparse]"):
        assert source in text
    top_level = os.path.join(os.path.dirname(__file__), os.pardir, "hyperparams", f"{algo}.yml")
    assert os.path.samefile(hyperparams_path(algo), top_level)  # the repository's hyperparams/ link


@pytest.mark.parametrize("algo", sorted(CLASSES))
def test_shipped_entries_build_the_model(algo):
    """Every shipped entry passes validation and builds its model; the published ER lambdas reach the masks."""
    for env_id in ENVS:
        entry = zoo_entry(algo, env_id)
        check_hyperparams(CLASSES[algo], entry, env_id)
        entry.update(buffer_size=1, learning_starts=0)
        model = CLASSES[algo](env=env_id, **entry)
        sparsity = network_sparsity(model)
        if entry.get("erdos_renyi_lambdas"):
            assert model.erdos_renyi_lambdas == list(entry["erdos_renyi_lambdas"])
            # published lambdas: about 50% sparse (DS-SAC's Hopper lambdas 7 / 20 give about 80%)
            assert 0.3 < sparsity["critic"] < 0.9, (env_id, sparsity)
        else:
            assert sparsity["global"] == pytest.approx(entry.get("sparsity", 0.5), abs=0.02), env_id
        model.env.close()


def test_ds_td3_entry_keeps_weight_decay():
    entry = zoo_entry("sparse_td3", "HalfCheetah-v5")
    assert entry["policy_kwargs"] == {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}}
    assert entry["batch_size"] == 100 and entry["learning_starts"] == 25000 and entry["drop_fraction"] == 0.05


@pytest.mark.parametrize("sampler", [sample_sparse_sac_params, sample_sparse_td3_params])
def test_samplers_tune_dst_knobs_and_build_models(sampler):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    algo_class = SparseSAC if sampler is sample_sparse_sac_params else SparseTD3
    for _ in range(4):
        trial = study.ask()
        params = sampler(trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
        assert set(DST_SEARCH_SPACE) <= set(params)
        assert "policy_kwargs" in params and "learning_rate" in params  # rl-zoo3's own search space
        model = algo_class("MlpPolicy", "Pendulum-v1", buffer_size=10, **params)
        assert model.sparsity == params["sparsity"] and model.grow_method == params["grow_method"]
        study.tell(trial, 0.0)


def test_trial_keeps_yaml_dst_settings():
    """rl-zoo3 replaces policy_kwargs wholesale: the merge keeps the YAML's keys and clears what the trial overrides."""
    base = {
        "policy_kwargs": {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}},
        "erdos_renyi_lambdas": [7, 64],
        "critic_sparsity": 0.8,
        "mask_init": "magnitude",
    }
    sampled = {"policy_kwargs": {"net_arch": [64, 64]}, "sparsity": 0.7, "learning_rate": 1e-3}
    kwargs = dict(base)
    kwargs.update(merge_trial_hyperparams(base, sampled))
    assert kwargs["policy_kwargs"] == {"net_arch": [64, 64], "optimizer_kwargs": {"weight_decay": 2e-4}}
    assert kwargs["erdos_renyi_lambdas"] is None and kwargs["critic_sparsity"] is None
    assert kwargs["mask_init"] == "magnitude" and kwargs["sparsity"] == 0.7
    model = SparseSAC("MlpPolicy", "Pendulum-v1", buffer_size=10, **kwargs)
    assert model.policy.optimizer_kwargs == {"weight_decay": 2e-4}
    assert model.mask_init == "magnitude"


def test_convert_sparse_params():
    params = {"one_minus_gamma": 0.01, "batch_size_pow": 7, "net_arch": "small", "train_freq": 4, "noise_type": None}
    params.update(noise_std=0.3, sparsity=0.8, grow_method="gradient")
    converted = convert_sparse_params(params)
    assert converted["gamma"] == pytest.approx(0.99) and converted["batch_size"] == 128
    assert converted["policy_kwargs"] == {"net_arch": [64, 64]} and converted["gradient_steps"] == 4
    assert converted["sparsity"] == 0.8 and converted["grow_method"] == "gradient"
    assert converted["noise_type"] is None and "noise_std" not in converted


def test_best_trial_export_round_trips():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from rl_zoo3 import exp_manager

    register()
    params = {"one_minus_gamma": 0.02, "batch_size_pow": 8, "learning_rate": 1e-3, "train_freq": 2, "tau": 0.01}
    params.update(net_arch="medium", sparsity=0.75, actor_sparsity=0.9, grow_method="gradient")
    distributions = {
        "one_minus_gamma": FloatDistribution(1e-4, 0.03, log=True),
        "batch_size_pow": IntDistribution(2, 11),
        "learning_rate": FloatDistribution(1e-5, 0.002, log=True),
        "train_freq": IntDistribution(1, 10),
        "tau": FloatDistribution(0.001, 0.08, log=True),
        "net_arch": CategoricalDistribution(["small", "medium", "big"]),
        "sparsity": FloatDistribution(0.2, 0.95),
        "actor_sparsity": FloatDistribution(0.2, 0.95),
        "grow_method": CategoricalDistribution(["random", "gradient", "none"]),
    }
    study = optuna.create_study(direction="maximize", study_name="export")
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=-150.0))
    base = {"n_timesteps": 20000, "policy": "MlpPolicy", "erdos_renyi_lambdas": [7, 64], "drop_fraction": 0.05}
    base["policy_kwargs"] = "dict(optimizer_kwargs=dict(weight_decay=2e-4))"
    entry = best_entry(study, "sparse_td3", base)
    assert entry["sparsity"] == 0.75 and entry["actor_sparsity"] == 0.9 and entry["drop_fraction"] == 0.05
    assert "erdos_renyi_lambdas" not in entry  # the tuned sparsity must act
    assert eval(entry["policy_kwargs"], vars(exp_manager)) == {
        "optimizer_kwargs": {"weight_decay": 2e-4},
        "net_arch": [256, 256],
    }
    text = export_best(study, "sparse_td3", "Pendulum-v1", base, None)
    assert text.startswith("# Best trial of Optuna study 'export'")
    assert yaml.safe_load(text)["Pendulum-v1"] == entry
    from torch import nn

    assert python_literal({"activation_fn": nn.ReLU, "net_arch": [64]}) == "dict(activation_fn=nn.ReLU, net_arch=[64])"
    empty = optuna.create_study(study_name="empty")
    with pytest.raises(ZooError, match="no completed trial"):
        best_entry(empty, "sparse_sac")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"sparsty": 0.5}, "'sparsty' is not an argument of SparseSAC; did you mean 'sparsity'?"),
        ({"sparsity": 1.5}, "sparsity=1.5 is not valid"),
        ({"grow_method": "rigl"}, "grow_method='rigl' is not valid; choose one of"),
        ({"drop_fraction_schedule": "linear"}, "drop_fraction_schedule='linear' is not valid"),
        ({"topology_update_interval": 0}, "topology_update_interval=0 is not valid"),
        ({"erdos_renyi_lambdas": [7, 64]}, "erdos_renyi_lambdas is only valid with sparsity_distribution='erdos_renyi'"),
        ({"policy_kwargs": {"sparsity": 0.9}}, "policy_kwargs sets ['sparsity']; make them top-level keys"),
        ({"seed": 3}, "'seed' is set by rl-zoo3 from the command line"),
    ],
)
def test_validation_messages(entry, message):
    with pytest.raises(ZooError) as error:
        check_hyperparams(SparseSAC, {"policy": "MlpPolicy", **entry}, "my.yml (entry for Pendulum-v1)")
    assert str(error.value).startswith("my.yml (entry for Pendulum-v1): ")
    assert message in str(error.value)


def test_coerce_steps():
    entry = {"topology_update_interval": 1e4, "topology_update_end": 9.5e5, "topology_update_start": 0.1}
    coerce_steps(entry)
    assert entry == {"topology_update_interval": 10000, "topology_update_end": 950000, "topology_update_start": 0.1}
    assert isinstance(entry["topology_update_interval"], int)
    check_hyperparams(SparseSAC, entry, "x")


def test_storage_checks():
    check_storage("studies/sac.log")
    check_storage("postgresql://user:pw@127.0.0.1:5432/optuna")
    with pytest.raises(ZooError, match="neither a journal file"):
        check_storage("study.db")
    assert normalize_storage("studies/x.log") == "studies/x.log"
    url = normalize_storage("postgresql://u@127.0.0.1/db")
    assert url.endswith("://u@127.0.0.1/db") and url.startswith("postgresql")


def test_inference_loader_does_not_allocate_the_replay_buffer(tmp_path):
    """rl-zoo3's enjoy passes buffer_size=1 only to algorithms it knows by name; ours must not get 1M transitions."""
    SparseSAC("MlpPolicy", "Pendulum-v1", buffer_size=5000).save(tmp_path / "model")
    model = InferenceLoader(SparseSAC).load(str(tmp_path / "model"))
    assert model.replay_buffer.buffer_size == 1
    assert model.sparsity == 0.5 and network_sparsity(model)["global"] == pytest.approx(0.5, abs=0.01)


def write_fake_run(run_dir, rewards, sparse=True):
    """An rl-zoo3 run folder with monitor, evaluations and (for sparse runs) sparsity files."""
    run_dir.mkdir(parents=True)
    with open(run_dir / "0.monitor.csv", "w") as file:
        file.write('#{"t_start": 0.0, "env_id": "Pendulum-v1"}\nr,l,t\n')
        for index, reward in enumerate(rewards):
            file.write(f"{reward},200,{index}\n")
    steps = np.arange(1, 4) * 200 * len(rewards) // 3
    np.savez(run_dir / "evaluations.npz", timesteps=steps, results=np.array([[r, r + 10] for r in rewards[:3]]))
    if sparse:
        with open(run_dir / "sparsity.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["timesteps", "actor_sparsity", "critic_sparsity", "global_sparsity", "actor_changed_fraction"])
            writer.writerows([[0, 0.5, 0.6, 0.55, ""], [1000, 0.5, 0.6, 0.55, 0.1], [2000, 0.5, 0.6, 0.55, 0.05]])


def test_plots_write_png(tmp_path):
    from sb3_sparse.zoo.plots import plot_compare, plot_run

    write_fake_run(tmp_path / "logs" / "sac" / "Pendulum-v1_1", [-1500, -1200, -900, -600])
    write_fake_run(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1", [-1400, -1100, -800, -500])
    write_fake_run(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_2", [-1300, -1000, -700, -400])
    run = plot_run(str(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_2"), str(tmp_path / "run.png"))
    compare = plot_compare([str(tmp_path / "logs")], ["Pendulum-v1"], ["sac", "sparse_sac"], str(tmp_path / "cmp.png"))
    for path in (run, compare):
        assert os.path.getsize(path) > 10_000
        with open(path, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ZooError, match="no runs of td3"):
        plot_compare([str(tmp_path / "logs")], ["Pendulum-v1"], ["td3"], str(tmp_path / "none.png"))


def test_cli_bad_yaml_value_is_one_line(tmp_path, capsys, monkeypatch):
    """A bad DST value in a YAML ends with one clear line and exit status 2, not a traceback inside rl-zoo3."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yml").write_text("Pendulum-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  drop_fraction: 2.0\n")
    status = main(["train", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", "bad.yml", "--eval-freq", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    message = "bad.yml (entry for Pendulum-v1): drop_fraction=2.0 is not valid; it must be a number in (0, 1]"
    assert err == [f"sb3-sparse train: error: {message}"]
    assert not (tmp_path / "logs" / "sparse_sac").exists() or not any((tmp_path / "logs" / "sparse_sac").iterdir())


def test_cli_unknown_algo_and_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "sparse_ppo", "--env", "Pendulum-v1"])
    assert exit_info.value.code == 2
    assert "argument --algo: invalid choice: 'sparse_ppo'" in capsys.readouterr().err
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
    assert main(["plot", "pie"]) == 2
    assert main(["enjoy", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-f", "nowhere", "--no-render"]) == 2
    assert "sb3-sparse enjoy: error: The nowhere/sparse_sac folder was not found" in capsys.readouterr().err


def test_python_config_example_is_valid():
    """examples/zoo_config.py (a .py hyperparameter file, for Python objects) passes validation and builds."""
    import runpy

    path = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "zoo_config.py")
    entries = runpy.run_path(path)["hyperparams"]
    assert {"Pendulum-v1", "default"} <= set(entries)
    for env_id, entry in entries.items():
        entry = {key: value for key, value in entry.items() if key not in ("n_timesteps", "noise_type", "noise_std")}
        for algo_class in CLASSES.values():
            check_hyperparams(algo_class, entry, env_id)
    entry = {key: value for key, value in entries["Pendulum-v1"].items() if key != "n_timesteps"}
    model = SparseSAC(env="Pendulum-v1", buffer_size=10, **entry)
    assert model.grow_method == "gradient" and model.sparse_layers == ["input", "hidden", "output"]
