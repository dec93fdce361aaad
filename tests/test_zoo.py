"""rl-zoo3 / Optuna integration, in-process: registries, shipped YAML files, samplers, validation, export, plots."""

import csv
import inspect
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

from sb3_sparse import SparseSAC, SparseTD3, registry  # noqa: E402
from sb3_sparse.common.buffers import DualReplayBuffer, MultiStepReplayBuffer, find_replay_buffer_class  # noqa: E402
from sb3_sparse.common.flops import module_sparsity  # noqa: E402
from sb3_sparse.core.config import ModuleConfig  # noqa: E402
from sb3_sparse.core.regimes import REGIMES  # noqa: E402
from sb3_sparse.zoo import ZooError, hyperparams_path, register  # noqa: E402
from sb3_sparse.zoo.cli import COMMANDS, InferenceLoader, main, usage  # noqa: E402
from sb3_sparse.zoo.samplers import (  # noqa: E402
    MODULE_PARAMS,
    convert_sparse_params,
    dst_search_space,
    make_sampler,
    merge_trial_hyperparams,
    sample_dst_params,
)
from sb3_sparse.zoo.study import (  # noqa: E402
    best_entry,
    check_storage,
    export_best,
    load_study,
    normalize_storage,
    python_literal,
)
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


def zoo_entry(algo: str, env_id: str, file_name: str | None = None) -> dict:
    """The shipped entry for ``env_id`` (of ``<algo>.yml`` or ``file_name``), preprocessed as the zoo does."""
    from rl_zoo3 import exp_manager

    path = hyperparams_path(algo) if file_name is None else hyperparams_path(algo).parent / file_name
    with open(path) as file:
        entry = dict(yaml.safe_load(file)[env_id])
    for key in ("n_timesteps", "noise_type", "noise_std", "env_wrapper", "frame_stack"):  # rl-zoo3's own
        entry.pop(key, None)
    buffer_class = find_replay_buffer_class(entry.get("replay_buffer_class"))
    if buffer_class is not None:
        entry["replay_buffer_class"] = buffer_class
    for key in ("policy_kwargs", "replay_buffer_kwargs"):
        if isinstance(entry.get(key), str):
            entry[key] = eval(entry[key], vars(exp_manager))
    return exp_manager.ExperimentManager._preprocess_schedules(entry)  # "lin_7.3e-4" -> a schedule


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
    assert set(registry.ALGORITHMS) == {
        "sparse_sac",
        "sparse_td3",
        "sparse_tqc",
        "sparse_crossq",
        "sparse_dqn",
        "sparse_ppo",
        "sparse_a2c",
    }
    for name, entry in registry.ALGORITHMS.items():  # every algorithm of the registry, with its sampler
        assert ALGOS[name] is entry.sparse_class
        assert HYPERPARAMS_SAMPLER[name].__name__ == f"sample_{name}_params"
        assert HYPERPARAMS_CONVERTER[name] is convert_sparse_params
    assert ALGOS["sac"].__name__ == "SAC" and ALGOS["dqn"].__name__ == "DQN"  # rl-zoo3's own entries untouched


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
        sparsity = module_sparsity(model)
        if entry.get("erdos_renyi_lambdas"):
            for config in model.policy.module_configs.values():
                assert config.erdos_renyi_lambdas == tuple(entry["erdos_renyi_lambdas"])
            # published lambdas: about 50% sparse (DS-SAC's Hopper lambdas 7 / 20 give about 80%)
            assert 0.3 < sparsity["critic"] < 0.9, (env_id, sparsity)
        else:
            assert sparsity["global"] == pytest.approx(entry.get("sparsity", 0.5), abs=0.02), env_id
        model.env.close()


@pytest.mark.parametrize(
    ("algo", "file_name"),
    [("sparse_tqc", None), ("sparse_crossq", None), ("sparse_dqn", None), ("sparse_dqn", "sparse_dqn_mast.yml")],
)
def test_new_algorithms_shipped_entries_are_valid(algo, file_name):
    """The files of the newer algorithms: every entry passes validation; those whose env is installed build."""
    import gymnasium as gym

    algo_class = registry.ALGORITHMS[algo].sparse_class
    path = hyperparams_path(algo) if file_name is None else hyperparams_path(algo).parent / file_name
    entries = yaml.safe_load(path.read_text())
    assert len(entries) > 2 and ("default" in entries or file_name is not None)
    built = 0
    for env_id in entries:
        entry = zoo_entry(algo, env_id, file_name)
        check_hyperparams(algo_class, entry, env_id)
        if env_id in ("default", "atari"):  # atari: any ALE env (ale-py is not a dependency)
            continue
        try:
            gym.make(env_id).close()
        except gym.error.DependencyNotInstalled:  # Box2D envs without the box2d extra
            continue
        model = algo_class(env=env_id, **{**entry, "buffer_size": 1, "learning_starts": 0})
        assert module_sparsity(model)["global"] == pytest.approx(entry.get("sparsity", 0.5), abs=0.02), env_id
        model.env.close()
        built += 1
    assert built >= 1


@pytest.mark.parametrize("algo", ["sparse_ppo", "sparse_a2c"])
def test_on_policy_shipped_entries_build_and_align_with_rollouts(algo):
    """Every entry passes validation and builds; an env-step interval is a multiple of the rollout."""
    from rl_zoo3 import exp_manager

    algo_class = registry.ALGORITHMS[algo].sparse_class
    entries = yaml.safe_load(hyperparams_path(algo).read_text())
    assert {"default", "CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"} <= set(entries)
    for env_id in entries:
        entry = zoo_entry(algo, env_id)
        n_envs = entry.pop("n_envs", 1)  # rl-zoo3's own keys
        entry.pop("normalize", None)
        check_hyperparams(algo_class, entry, env_id)
        if entry.get("schedule_unit", "env_steps") == "env_steps":
            rollout = entry.get("n_steps", inspect.signature(algo_class).parameters["n_steps"].default) * n_envs
            assert entry["topology_update_interval"] % rollout == 0, env_id
        if env_id != "default":
            model = algo_class(env=exp_manager.make_vec_env(env_id, n_envs=n_envs), **entry)
            assert module_sparsity(model)["global"] == pytest.approx(entry["sparsity"], abs=0.02), env_id
            model.env.close()


def test_ds_td3_entry_keeps_weight_decay():
    entry = zoo_entry("sparse_td3", "HalfCheetah-v5")
    assert entry["policy_kwargs"] == {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}}
    assert entry["batch_size"] == 100 and entry["learning_starts"] == 25000 and entry["drop_fraction"] == 0.05


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [
        ("sparse_sac", "Pendulum-v1"),
        ("sparse_td3", "Pendulum-v1"),
        ("sparse_tqc", "Pendulum-v1"),
        ("sparse_crossq", "Pendulum-v1"),
        ("sparse_dqn", "CartPole-v1"),
    ],
)
def test_samplers_tune_dst_knobs_and_build_models(algo, env_id):
    entry = registry.ALGORITHMS[algo]
    sampler = make_sampler(entry)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    modules = entry.modules
    space = dst_search_space()
    for _ in range(4):
        trial = study.ask()
        params = sampler(trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
        # the DST knobs, a module's own one (actor_sparsity) under modules, and only for the modules it has
        assert set(space) - set(MODULE_PARAMS) <= set(params) and not set(MODULE_PARAMS) & set(params)
        actor_regime = trial.params.get("actor_regime", "same")
        if "actor" in modules:
            own_regime = {} if actor_regime == "same" else {"regime": actor_regime}
            assert params["modules"] == {"actor": {"sparsity": trial.params["actor_sparsity"], **own_regime}}
        else:
            assert "modules" not in params and "actor_sparsity" not in trial.params and "actor_regime" not in trial.params
        if entry.zoo_sampler is not None:
            assert "policy_kwargs" in params and "learning_rate" in params  # rl-zoo3's own search space
        else:  # no rl-zoo3 sampler for the base algorithm (CrossQ): the DST and value knobs only
            assert set(params) <= set(space) | {"modules", "replay_buffer_class", "replay_buffer_kwargs"}
        # the value knobs: a buffer of the package, its n-step returns, the target operator where there is one
        assert params["replay_buffer_class"] in (MultiStepReplayBuffer, DualReplayBuffer)
        assert params["replay_buffer_kwargs"]["n_steps"] == trial.params["buffer_n_steps"]
        assert ("recent_fraction" in params["replay_buffer_kwargs"]) == (params["replay_buffer_class"] is DualReplayBuffer)
        assert ("target_operator" in params) == (algo == "sparse_dqn")
        model = entry.sparse_class("MlpPolicy", env_id, buffer_size=10, **params)
        assert type(model.replay_buffer) is params["replay_buffer_class"]
        configs = model.policy.module_configs
        for name, config in configs.items():
            assert config.regime == (actor_regime if name == "actor" and actor_regime != "same" else params["regime"])
        for name, config in configs.items():
            expected = params["sparsity"] if name != "actor" else trial.params["actor_sparsity"]
            assert config.sparsity == pytest.approx(expected) and config.drop_fraction == pytest.approx(
                params["drop_fraction"]
            )
        study.tell(trial, 0.0)


def test_sampled_sparsities_are_ones_their_regimes_take():
    """A sparse-to-dense regime (``ne``) grows from its initial sparsity: no sparsity above it is sampled for it."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    regimes = set()
    for _ in range(300):
        trial = study.ask()
        params = sample_dst_params(trial)
        actor = params.get("modules", {}).get("actor", {})
        ModuleConfig(regime=params["regime"], sparsity=params["sparsity"])
        ModuleConfig(regime=actor.get("regime", params["regime"]), sparsity=actor["sparsity"])
        regimes.add(params["regime"])
        study.tell(trial, 0.0)
    assert "ne" in regimes


@pytest.mark.parametrize(("algo", "env_id"), [("sparse_ppo", "Pendulum-v1"), ("sparse_a2c", "CartPole-v1")])
def test_on_policy_samplers_tune_dst_knobs_without_a_replay_buffer(algo, env_id):
    entry = registry.ALGORITHMS[algo]
    sampler = make_sampler(entry)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        trial = study.ask()
        params = sampler(trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
        assert set(dst_search_space()) - set(MODULE_PARAMS) <= set(params)
        assert "replay_buffer_class" not in params and "learning_rate" in params  # rl-zoo3's own space, no buffer
        try:
            model = entry.sparse_class("MlpPolicy", env_id, **params)
        except ValueError as error:  # sparse-to-dense needs a final sparsity below its start
            assert "regime 'ne' grows" in str(error)
            continue
        assert model.policy.module_configs["critic"].regime == params["regime"]
        study.tell(trial, 0.0)


def test_trial_keeps_yaml_dst_settings():
    """rl-zoo3 replaces policy_kwargs wholesale: the merge keeps the YAML's keys and clears what the trial overrides."""
    base = {
        "policy_kwargs": {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}},
        "erdos_renyi_lambdas": [7, 64],
        "modules": {"critic": {"sparsity": 0.8}, "actor": {"regime": "static", "sparsity": 0.6}},
        "mask_init": "magnitude",
    }
    sampled = {"policy_kwargs": {"net_arch": [64, 64]}, "sparsity": 0.7, "learning_rate": 1e-3}
    sampled["modules"] = {"actor": {"sparsity": 0.9}}  # a tuned actor_sparsity
    kwargs = dict(base)
    kwargs.update(merge_trial_hyperparams(base, sampled))
    assert kwargs["policy_kwargs"] == {"net_arch": [64, 64], "optimizer_kwargs": {"weight_decay": 2e-4}}
    # the YAML's per-module sparsity would beat the tuned one: cleared; its other per-module settings stay
    assert kwargs["erdos_renyi_lambdas"] is None and kwargs["modules"] == {"actor": {"regime": "static", "sparsity": 0.9}}
    assert kwargs["mask_init"] == "magnitude" and kwargs["sparsity"] == 0.7
    model = SparseSAC("MlpPolicy", "Pendulum-v1", buffer_size=10, **kwargs)
    assert model.policy.optimizer_kwargs == {"weight_decay": 2e-4}
    configs = model.policy.module_configs
    assert configs["critic"].sparsity == 0.7 and configs["actor"].sparsity == 0.9 and configs["actor"].regime == "static"
    assert configs["critic"].mask_init == "magnitude" and configs["critic"].erdos_renyi_lambdas is None
    # nothing per module left: no modules at all
    merged = merge_trial_hyperparams({"modules": {"critic": {"sparsity": 0.8}}}, {"sparsity": 0.5})
    assert merged == {"sparsity": 0.5, "modules": None}


def test_convert_sparse_params():
    params = {"one_minus_gamma": 0.01, "batch_size_pow": 7, "net_arch": "small", "train_freq": 4, "noise_type": None}
    params.update(noise_std=0.3, sparsity=0.8, regime="rigl", actor_sparsity=0.9)
    converted = convert_sparse_params(params)
    assert converted["gamma"] == pytest.approx(0.99) and converted["batch_size"] == 128
    assert converted["policy_kwargs"] == {"net_arch": [64, 64]} and converted["gradient_steps"] == 4
    assert converted["sparsity"] == 0.8 and converted["regime"] == "rigl"
    assert converted["modules"] == {"actor": {"sparsity": 0.9}} and "actor_sparsity" not in converted
    assert converted["noise_type"] is None and "noise_std" not in converted
    # a trial of a sampler without rl-zoo3 base (sparse_crossq): the DST knobs as they are
    assert convert_sparse_params({"sparsity": 0.6, "regime": "set"}) == {"sparsity": 0.6, "regime": "set"}
    # the actor's own regime (MST: a static actor, a dynamic critic); "same" leaves the flat regime alone
    mst = convert_sparse_params({"regime": "rigl", "actor_regime": "static", "actor_sparsity": 0.6})
    assert mst == {"regime": "rigl", "modules": {"actor": {"regime": "static", "sparsity": 0.6}}}
    assert convert_sparse_params({"regime": "gmp", "actor_regime": "same"}) == {"regime": "gmp"}


def test_best_trial_export_round_trips():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from rl_zoo3 import exp_manager

    register()
    params = {"one_minus_gamma": 0.02, "batch_size_pow": 8, "learning_rate": 1e-3, "train_freq": 2, "tau": 0.01}
    params.update(net_arch="medium", sparsity=0.75, actor_sparsity=0.9, regime="rigl")
    distributions = {
        "one_minus_gamma": FloatDistribution(1e-4, 0.03, log=True),
        "batch_size_pow": IntDistribution(2, 11),
        "learning_rate": FloatDistribution(1e-5, 0.002, log=True),
        "train_freq": IntDistribution(1, 10),
        "tau": FloatDistribution(0.001, 0.08, log=True),
        "net_arch": CategoricalDistribution(["small", "medium", "big"]),
        "sparsity": FloatDistribution(0.2, 0.95),
        "actor_sparsity": FloatDistribution(0.2, 0.95),
        "regime": CategoricalDistribution(["set", "rigl", "static"]),
    }
    study = optuna.create_study(direction="maximize", study_name="export")
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=-150.0))
    base = {"n_timesteps": 20000, "policy": "MlpPolicy", "erdos_renyi_lambdas": [7, 64], "drop_fraction": 0.05}
    base["policy_kwargs"] = "dict(optimizer_kwargs=dict(weight_decay=2e-4))"
    base["modules"] = {"actor": {"mask_init": "magnitude", "sparsity": 0.5}, "critic": {"sparsity": 0.8}}
    entry = best_entry(study, "sparse_td3", base)
    assert entry["sparsity"] == 0.75 and entry["regime"] == "rigl" and entry["drop_fraction"] == 0.05
    # the tuned actor_sparsity joins the file's per-module settings; the file's per-module sparsities go
    assert entry["modules"] == {"actor": {"mask_init": "magnitude", "sparsity": 0.9}}
    assert "erdos_renyi_lambdas" not in entry  # the tuned sparsity must act
    assert eval(entry["policy_kwargs"], vars(exp_manager)) == {
        "optimizer_kwargs": {"weight_decay": 2e-4},
        "net_arch": [256, 256],
    }
    text = export_best(study, "sparse_td3", "Pendulum-v1", base, None)
    assert text.startswith("# Best trial of Optuna study 'export'")
    assert yaml.safe_load(text)["Pendulum-v1"] == entry
    exported = {key: value for key, value in entry.items() if key != "n_timesteps"}
    exported["policy_kwargs"] = eval(exported["policy_kwargs"], vars(exp_manager))
    check_hyperparams(SparseTD3, exported, "exported")  # the file trains as is
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
        ({"regime": "rigll"}, "regime='rigll' is not valid (did you mean 'rigl'?); choose one of"),
        ({"modules": {"actr": {"sparsity": 0.8}}}, "modules has no module 'actr' (did you mean 'actor'?)"),
        (
            {"modules": {"actor": {"sparsty": 0.8}}},
            "modules['actor']: 'sparsty' is not a DST setting; did you mean 'sparsity'?",
        ),
        (
            {"modules": {"critic": {"sparsity": 1.0}}},
            "sparsity=1.0 is not valid; it must be a number in [0, 1) (module 'critic')",
        ),
        ({"grow_method": "gradient"}, "'grow_method' is no longer an argument of SparseSAC: use regime ("),
        ({"actor_sparsity": 0.8}, "'actor_sparsity' is no longer an argument of SparseSAC: use modules: {actor: {sparsity"),
        ({"drop_fraction_schedule": "linear"}, "drop_fraction_schedule='linear' is not valid"),
        ({"topology_update_interval": 0}, "topology_update_interval=0 is not valid"),
        ({"backend": "sparse"}, "backend='sparse' is not valid; choose one of 'auto', 'masked', 'csr', 'condensed'"),
        ({"modules": {"critic": {"backend": "cs"}}}, "backend='cs' is not valid (did you mean 'csr'?)"),
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
    if "modules" not in entry:  # a top-level value is every module's: no module named in the message
        assert "(module " not in str(error.value)


def test_backend_is_a_file_setting():
    check_hyperparams(SparseSAC, {"policy": "MlpPolicy", "backend": "csr", "modules": {"actor": {"backend": "masked"}}}, "x")


def test_validation_of_other_algorithms():
    """DQN's module is q_net: an actor setting is no module of it; old names get the plain did-you-mean."""
    dqn = registry.ALGORITHMS["sparse_dqn"].sparse_class
    check_hyperparams(dqn, {"policy": "MlpPolicy", "modules": {"q_net": {"regime": "static"}}}, "x")
    with pytest.raises(ZooError, match=r"modules has no module 'actor'; this algorithm has 'q_net'"):
        check_hyperparams(dqn, {"policy": "MlpPolicy", "modules": {"actor": {"sparsity": 0.8}}}, "x")
    with pytest.raises(ZooError, match="'actor_sparsity' is not an argument of SparseDQN"):
        check_hyperparams(dqn, {"policy": "MlpPolicy", "actor_sparsity": 0.8}, "x")


def test_coerce_steps():
    entry = {"topology_update_interval": 1e4, "topology_update_end": 9.5e5, "topology_update_start": 0.1}
    entry["modules"] = {"actor": {"topology_update_interval": 2e4, "topology_update_end": 0.5}}
    coerce_steps(entry)
    assert entry == {
        "topology_update_interval": 10000,
        "topology_update_end": 950000,
        "topology_update_start": 0.1,
        "modules": {"actor": {"topology_update_interval": 20000, "topology_update_end": 0.5}},
    }
    assert isinstance(entry["topology_update_interval"], int)
    assert isinstance(entry["modules"]["actor"]["topology_update_interval"], int)
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
    assert model.dst_config["sparsity"] == 0.5 and module_sparsity(model)["global"] == pytest.approx(0.5, abs=0.01)


def write_fake_run(run_dir, rewards, sparse=True, evaluations=True):
    """An rl-zoo3 run folder with monitor, evaluations (unless told not) and (for sparse runs) sparsity files."""
    run_dir.mkdir(parents=True)
    with open(run_dir / "0.monitor.csv", "w") as file:
        file.write('#{"t_start": 0.0, "env_id": "Pendulum-v1"}\nr,l,t\n')
        for index, reward in enumerate(rewards):
            file.write(f"{reward},200,{index}\n")
    steps = np.arange(1, 4) * 200 * len(rewards) // 3
    if evaluations:
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


def legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend is not None else []


def panel_texts(ax) -> str:
    return " ".join(text.get_text() for text in ax.texts)


def test_plot_compare_never_passes_training_returns_off_as_evaluations(tmp_path, capsys, monkeypatch):
    """Runs without evaluations.npz are named; auto falls back per env with honest labels; eval skips them; empty envs said."""
    from sb3_sparse.zoo.plots import compare_figure

    logs = tmp_path / "logs"
    write_fake_run(logs / "sac" / "Pendulum-v1_1", [-1500, -1200, -900, -600], sparse=False)
    write_fake_run(logs / "sparse_sac" / "Pendulum-v1_1", [-1400, -1100, -800, -500])
    write_fake_run(logs / "sparse_sac" / "Pendulum-v1_2", [-1300, -1000, -700, -400], evaluations=False)
    algos = ["sac", "sparse_sac"]

    fig, notes = compare_figure([str(logs)], ["Pendulum-v1"], algos, source="auto")
    ax = fig.axes[0]
    assert legend_labels(ax) == ["sac (1 run, train)", "sparse_sac (2 runs, train)"]  # the whole panel: one kind
    assert ax.get_ylabel().startswith("training return") and "training" in ax.get_title()
    assert len(notes) == 1 and "1 of 3 runs have no evaluations.npz" in notes[0] and "Pendulum-v1_2" in notes[0]

    fig, notes = compare_figure([str(logs)], ["Pendulum-v1"], algos, source="eval")
    ax = fig.axes[0]
    assert legend_labels(ax) == ["sac (1 run, eval)", "sparse_sac (1 run, eval)"]  # the run without evaluations is left out
    assert ax.get_ylabel().startswith("evaluation return")
    skipped = logs / "sparse_sac" / "Pendulum-v1_2"
    assert notes == [f"{skipped}: no evaluations.npz (train with --eval-freq, or use --source train); skipped"]

    fig, notes = compare_figure([str(logs)], ["Pendulum-v1", "Hopper-v5"], algos, source="train")
    assert notes == [f"Hopper-v5: no runs at all of sac, sparse_sac in {logs}"]
    assert "no runs of sac, sparse_sac" in panel_texts(fig.axes[1]) and not legend_labels(fig.axes[1])

    # from the command line: notes on stderr; nothing but runs without evaluations -> one line, exit status 2
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "compare", "--env", "Pendulum-v1", "Hopper-v5", "-o", "cmp.png"]) == 0
    err = capsys.readouterr().err
    assert "note: Hopper-v5: no runs at all" in err and "plotting training returns instead" in err
    assert main(["plot", "compare", "--env", "Pendulum-v1", "--algos", "sparse_sac", "--source", "eval"]) == 0
    write_fake_run(logs / "td3" / "Pendulum-v1_1", [-1500, -1200, -900, -600], sparse=False, evaluations=False)
    capsys.readouterr()
    assert main(["plot", "compare", "--env", "Pendulum-v1", "--algos", "td3", "--source", "eval", "-o", "td3.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sb3-sparse plot: error: no evaluation results (evaluations.npz) in the runs of td3")
    assert not (tmp_path / "td3.png").exists()


def test_plot_run_of_a_dense_run_says_why_sparsity_is_missing(tmp_path, capsys, monkeypatch):
    from sb3_sparse.zoo.plots import run_figure

    write_fake_run(tmp_path / "logs" / "sac" / "Pendulum-v1_1", [-1500, -1200, -900, -600], sparse=False)
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "run", "--algo", "sac", "--env", "Pendulum-v1", "-o", "dense.png"]) == 0
    out, err = capsys.readouterr()
    assert "Saved dense.png" in out
    assert err.strip() == "note: sac is a dense algorithm: its runs have no sparsity.csv, so there is no sparsity to plot"
    fig, notes = run_figure("logs/sac/Pendulum-v1_1")
    assert all("dense algorithm" in panel_texts(ax) for ax in fig.axes[1:]) and not fig.axes[0].texts
    # a sparse run without sparsity.csv (e.g. written by a tuning trial) and one without any topology update
    write_fake_run(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1", [-1500, -1200, -900], sparse=False)
    _, notes = run_figure("logs/sparse_sac/Pendulum-v1_1")
    assert len(notes) == 1 and notes[0].startswith("no sparsity.csv in logs/sparse_sac/Pendulum-v1_1 (a sparse_sac")
    header = "timesteps,actor_sparsity,actor_changed_fraction\n"
    (tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "sparsity.csv").write_text(header + "0,0.5,\n")
    fig, notes = run_figure("logs/sparse_sac/Pendulum-v1_1")
    assert len(notes) == 2 and notes[0].startswith("no topology update in this run") and fig.axes[2].texts
    assert notes[1].startswith("no plasticity.csv in") and all(ax.texts for ax in fig.axes[3:])


def test_help_shows_the_arguments_of_best(capsys):
    assert main(["--help"]) == 0
    usage_line = "sb3-sparse best --algo ALGO --env ENV --storage FILE_OR_URL --study-name NAME [-conf FILE] [-o FILE]"
    assert usage_line in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["best", "--help"])
    assert capsys.readouterr().out.startswith("usage: sb3-sparse best [-h] --algo ALGO --env ENV --storage FILE_OR_URL")


def test_cli_version(capsys):
    from sb3_sparse import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sb3-sparse {__version__}\n"


RST_MARKUP = re.compile(r"``|:(?:class|func|meth|mod|attr|obj|exc|data|ref|doc|param|type|return|returns|rtype|raises):|`_")

HELP_COMMANDS = [
    [],
    ["train"],
    ["tune"],
    ["enjoy"],
    ["record-video"],
    ["plot"],
    ["plot", "run"],
    ["plot", "compare"],
    ["plot", "train"],
    ["plot", "all"],
    ["plot", "from-file"],
    ["best"],
    ["agents"],
    ["enjoy", "--pretrained"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda command: " ".join(command) or "sb3-sparse")
def test_help_has_no_rst_markup(command, capsys):
    """-h is read in a terminal: no Sphinx roles, ``literals`` or :param: fields from docstrings."""
    try:
        status = main([*command, "-h"])
    except SystemExit as exit_info:  # argparse's -h
        status = exit_info.code
    assert status in (0, None)
    out = capsys.readouterr().out
    assert len(out.splitlines()) > 2
    assert RST_MARKUP.search(out) is None, RST_MARKUP.search(out)
    if not command:
        assert "SB3_SPARSE_TRACEBACK" in out  # the variable is documented in the epilog


def test_tuning_prints_one_line_per_finished_trial(capsys):
    from sb3_sparse.zoo.study import reporting_trials

    def objective(trial):
        value = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            trial.report(-5.0, step=3)
            raise optuna.TrialPruned()
        return -float(trial.number) - value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    with reporting_trials():
        study.optimize(objective, n_trials=3, callbacks=[lambda study, trial: None])
    study.optimize(objective, n_trials=1)  # the callback is gone once the command ends
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3, lines
    first = study.trials[0].value
    assert lines[0] == f"Trial 0 finished: COMPLETE, value {first:.6g}; best so far: trial 0, value {first:.6g}"
    assert lines[1] == f"Trial 1 finished: PRUNED, at step 3 (last value -5); best so far: trial 0, value {first:.6g}"
    assert lines[2].startswith("Trial 2 finished: COMPLETE, value -2.")


@pytest.mark.parametrize("storage", ["studies/missing.log", "sqlite:///studies/missing.db", "sqlite:///missing.db"])
def test_best_does_not_create_a_missing_storage(storage, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["best", "--algo", "sparse_sac", "--env", "Pendulum-v1", "--storage", storage, "--study-name", "s"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sb3-sparse best: error: storage {storage!r} not found")
    assert list(tmp_path.iterdir()) == []  # no journal file, database or folder left behind


def test_traceback_variable(capsys, monkeypatch):
    """SB3_SPARSE_TRACEBACK=0: any exception is one line and exit status 1; 1: tracebacks even for user mistakes."""
    train_missing_agent = ["train", "--algo", "sac", "--env", "Pendulum-v1", "-i", "missing.zip"]  # rl-zoo3 asserts
    monkeypatch.delenv("SB3_SPARSE_TRACEBACK", raising=False)
    with pytest.raises(AssertionError):
        main(train_missing_agent)
    monkeypatch.setenv("SB3_SPARSE_TRACEBACK", "0")
    capsys.readouterr()
    assert main(train_missing_agent) == 1
    assert capsys.readouterr().err == "error: AssertionError: The trained_agent must be a valid path to a .zip file\n"

    def broken(argv):
        raise KeyError("boom\nsecond line")

    monkeypatch.setitem(COMMANDS, "best", broken)
    assert main(["best"]) == 1
    assert capsys.readouterr().err == "error: KeyError: 'boom\\nsecond line'\n"
    assert main(["plot", "pie"]) == 2  # user mistakes keep their own line and status
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("sb3-sparse plot: error: unknown plot 'pie'")
    monkeypatch.setenv("SB3_SPARSE_TRACEBACK", "1")
    with pytest.raises(ZooError, match="unknown plot"):
        main(["plot", "pie"])


def test_cli_rejected_model_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    """rl-zoo3 creates logs/<algo>/<env>_<n>/ before it builds the model: a model the constructor rejects removes it."""
    monkeypatch.chdir(tmp_path)
    args = ["--eval-freq", "-1", "-n", "100", "--num-threads", "1"]
    # an unsupported action space (SB3 asserts inside the constructor); logs/ did not exist: nothing left at all
    assert main(["train", "--algo", "sparse_sac", "--env", "CartPole-v1", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sb3-sparse train: error: cannot create sparse_sac for CartPole-v1 from ")
    assert err[0].endswith("The algorithm only supports (Box,) as action spaces but Discrete(2) was provided")
    assert not (tmp_path / "logs").exists()
    # a value the constructor rejects, next to an earlier run: only this run's folder goes
    earlier = tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1"
    earlier.mkdir(parents=True)
    (earlier / "keep.txt").write_text("earlier run")
    bad = ["-params", "sparsity_distribution:'erdos_renyi'", "erdos_renyi_lambdas:[1.0]"]
    assert main(["train", "--algo", "sparse_sac", "--env", "Pendulum-v1", *args, *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "erdos_renyi_lambdas has 1 values" in err[0]
    assert sorted(path.name for path in (tmp_path / "logs" / "sparse_sac").iterdir()) == ["Pendulum-v1_1"]
    assert (earlier / "keep.txt").read_text() == "earlier run"


def test_cli_trains_sparse_dqn(tmp_path, capsys, monkeypatch):
    """sparse_dqn through the command (in-process): a few hundred steps with a mask update, its files, enjoy."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dqn.yml").write_text(
        "CartPole-v1:\n  n_timesteps: 300\n  policy: MlpPolicy\n  learning_starts: 50\n  train_freq: 4\n"
        "  buffer_size: 1000\n  policy_kwargs: dict(net_arch=[32, 32])\n  regime: rigl\n  sparsity: 0.8\n"
        "  topology_update_interval: !!float 1e2\n  modules: {q_net: {drop_fraction: 0.3}}\n"
    )
    args = ["--algo", "sparse_dqn", "--env", "CartPole-v1", "-conf", "dqn.yml", "--eval-freq", "-1", "--seed", "0"]
    assert main(["train", *args, "--num-threads", "1"]) == 0
    assert "Mask update at step 100: q_net changed" in capsys.readouterr().out
    run = tmp_path / "logs" / "sparse_dqn" / "CartPole-v1_1"
    model = registry.ALGORITHMS["sparse_dqn"].sparse_class.load(run / "CartPole-v1.zip", buffer_size=1)
    config = model.policy.module_configs["q_net"]
    assert config.regime == "rigl" and config.drop_fraction == 0.3 and config.topology_update_interval == 100
    assert module_sparsity(model)["q_net"] == pytest.approx(0.8, abs=0.02)
    assert model.dst_state["modules"]["q_net"]["n_updates"] >= 2
    with open(run / "sparsity.csv") as file:
        rows = list(csv.DictReader(file))
    header = ("timesteps", "q_net_sparsity", "global_sparsity", "q_net_changed_fraction", "n_topology_updates")
    assert tuple(rows[0]) == (*header, "training_flops_ratio")
    assert sum(row["q_net_changed_fraction"] != "" for row in rows) == model.dst_state["modules"]["q_net"]["n_updates"]
    # enjoy loads it without the full replay buffer
    enjoy = ["enjoy", "--algo", "sparse_dqn", "--env", "CartPole-v1", "-f", "logs", "--no-render", "-n", "50"]
    assert main(enjoy) == 0
    assert "Loading logs/sparse_dqn/CartPole-v1_1/CartPole-v1.zip" in capsys.readouterr().out
    # DQN's one module is q_net: a mistake from -params is one line that says so
    assert main(["train", *args, "-params", "modules:{'actor':{'sparsity':0.8}}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sb3-sparse train: error: dqn.yml (entry for CartPole-v1, with -params modules): "
        "modules has no module 'actor'; this algorithm has 'q_net'"
    ]


def test_cli_trial_id_rebuilds_the_trial_as_it_ran(tmp_path, monkeypatch):
    """--trial-id: the trial's policy_kwargs and modules merge into the file's (as while tuning), not replace them."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sac.yml").write_text(
        "Pendulum-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  learning_starts: 50\n"
        '  policy_kwargs: "dict(optimizer_kwargs=dict(weight_decay=1e-4))"\n'
        "  modules: {actor: {regime: static}, critic: {sparsity: 0.6}}\n"
    )
    distributions = {"sparsity": FloatDistribution(0.2, 0.95), "actor_sparsity": FloatDistribution(0.2, 0.95)}
    distributions["regime"] = CategoricalDistribution(["set", "rigl", "static"])
    distributions["one_minus_gamma"] = FloatDistribution(1e-4, 0.03, log=True)
    distributions["net_arch"] = CategoricalDistribution(["small", "medium", "big"])
    study = optuna.create_study(
        study_name="s", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("s.log"))
    )
    trials = [{"sparsity": 0.5, "actor_sparsity": 0.7, "regime": "set"}]
    trials.append({"sparsity": 0.8, "actor_sparsity": 0.9, "regime": "rigl", "one_minus_gamma": 0.02, "net_arch": "small"})
    for params in trials:
        used = {name: distributions[name] for name in params}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=used, value=-1.0))
    args = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", "sac.yml", "--eval-freq", "-1", "--verbose", "0"]
    args += ["--storage", "s.log", "--study-name", "s", "--trial-id", "1", "-params", "drop_fraction:0.2"]
    assert main(["train", *args]) == 0
    config = yaml.unsafe_load((tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1" / "config.yml").read_text())
    assert config["sparsity"] == 0.8 and config["regime"] == "rigl" and config["drop_fraction"] == 0.2  # -params last
    assert config["modules"] == {"actor": {"regime": "static", "sparsity": 0.9}}  # the file's critic sparsity: tuned over
    assert config["policy_kwargs"] == "dict(optimizer_kwargs=dict(weight_decay=0.0001), net_arch=[64, 64])"
    assert config["gamma"] == pytest.approx(0.98)
    model = SparseSAC.load(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1.zip", buffer_size=1)
    configs = model.policy.module_configs
    assert (configs["actor"].regime, configs["actor"].sparsity) == ("static", 0.9)
    assert (configs["critic"].regime, configs["critic"].sparsity) == ("rigl", 0.8)
    assert model.policy.optimizer_kwargs == {"weight_decay": 1e-4} and model.policy.net_arch == [64, 64]


def test_cli_bad_yaml_value_is_one_line(tmp_path, capsys, monkeypatch):
    """A bad DST value in a YAML ends with one clear line and exit status 2, not a traceback inside rl-zoo3."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yml").write_text("Pendulum-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  drop_fraction: 2.0\n")
    status = main(["train", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", "bad.yml", "--eval-freq", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    message = "bad.yml (entry for Pendulum-v1): drop_fraction=2.0 is not valid; it must be a number in [0, 1]"
    assert err == [f"sb3-sparse train: error: {message}"]
    assert not (tmp_path / "logs" / "sparse_sac").exists() or not any((tmp_path / "logs" / "sparse_sac").iterdir())


def test_env_ids_registered_by_rl_zoo3_and_gym_packages_pass_the_check(tmp_path, monkeypatch):
    from sb3_sparse.zoo.cli import check_zoo_arguments, zoo_arguments

    register()
    check_zoo_arguments(zoo_arguments(["--algo", "sparse_sac", "--env", "PendulumNoVel-v1"]))  # rl-zoo3's own
    (tmp_path / "my_envs.py").write_text(
        "import gymnasium as gym\n\ngym.register('MyPendulum-v0', entry_point='gymnasium.envs.classic_control:PendulumEnv')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ZooError, match="unknown env id --env 'MyPendulum-v0'"):
        check_zoo_arguments(zoo_arguments(["--env", "MyPendulum-v0"]))
    try:
        check_zoo_arguments(zoo_arguments(["--env", "MyPendulum-v0", "--gym-packages", "my_envs"]))
    finally:
        import gymnasium as gym

        gym.envs.registry.pop("MyPendulum-v0", None)
        sys.modules.pop("my_envs", None)


def test_cli_unknown_algo_and_command(capsys):
    assert main(["train", "--algo", "sparse_ddpg", "--env", "Pendulum-v1"]) == 2
    assert capsys.readouterr().err == (
        "sb3-sparse train: error: unknown algorithm --algo 'sparse_ddpg'; did you mean 'sparse_td3'? (see 'sb3-sparse -h')\n"
    )
    assert main(["fly"]) == 2
    assert "command='fly' is not valid; choose one of 'train', 'tune'" in capsys.readouterr().err
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
    for config in model.policy.module_configs.values():  # the RigL recipe reached every module
        assert config.regime == "rigl" and config.sparse_layers == ("input", "hidden", "output")


USER_REGIME = """
from sb3_sparse import register_regime
from sb3_sparse.core.regimes import SET


@register_regime
class HalfSET(SET):
    name = "half_set"
"""


@pytest.fixture
def user_regime(tmp_path, monkeypatch):
    """A module of the user's that registers a regime ``half_set`` when imported (unregistered afterwards)."""
    (tmp_path / "my_regimes.py").write_text(USER_REGIME)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_regimes"
    REGIMES.pop("half_set", None)
    sys.modules.pop("my_regimes", None)


def test_a_user_regime_works_from_a_yaml_file_and_tune(user_regime, tmp_path, capsys, monkeypatch):
    """Registered by an imported module (--gym-packages), a regime trains from a file, is in the help and is tuned."""
    monkeypatch.chdir(tmp_path)
    entry = "Pendulum-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  learning_starts: 50\n  regime: half_set\n"
    (tmp_path / "mine.yml").write_text(entry)
    args = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", "mine.yml", "--eval-freq", "-1", "--verbose", "0"]
    assert main(["train", *args]) == 2  # not imported: not registered
    assert "regime='half_set' is not valid" in capsys.readouterr().err
    assert main(["train", *args, "--gym-packages", user_regime]) == 0
    model = SparseSAC.load(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert {config.regime for config in model.policy.module_configs.values()} == {"half_set"}
    assert "dense, static, set, rigl, gmp, ne, srigl, half_set" in usage()
    assert "half_set" in dst_search_space()["regime"][1]
    tune = ["-n", "100", "--n-trials", "1", "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots"]
    tune += ["--sampler", "random", "--storage", "s.log", "--study-name", "s", "--gym-packages", user_regime]
    assert main(["tune", *args, *tune]) == 0
    trial = load_study("s.log", "s").trials[0]
    assert "half_set" in trial.distributions["regime"].choices and "half_set" in trial.distributions["actor_regime"].choices
