"""Every bad DST input raises a ValueError at construction, naming the argument and its valid values."""

import sys
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import SAC, TD3

from sb3_sparse import SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy, TopologyUpdateCallback
from sb3_sparse.core.config import MODULE_SETTINGS, ModuleConfig

ALGOS = [SparseSAC, SparseTD3]
POLICY_KWARGS = {"net_arch": [8]}

SPARSITY_MESSAGE = r"it must be a number in \[0, 1\)"
CHOICE_MESSAGE = "is not valid; choose one of"
REGIMES = "'dense', 'static', 'set', 'rigl', 'gmp', 'ne', 'srigl'"

# (keyword arguments, regex the message must match)
BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"sparsity": 1.0}, rf"sparsity=1\.0 is not valid; {SPARSITY_MESSAGE}"),
    ({"sparsity": -0.1}, rf"sparsity=-0\.1 is not valid; {SPARSITY_MESSAGE}"),
    ({"sparsity": 1.5}, rf"sparsity=1\.5 .*{SPARSITY_MESSAGE}"),
    ({"sparsity": True}, rf"sparsity=True .*{SPARSITY_MESSAGE}"),
    ({"sparsity": "0.5"}, rf"sparsity='0\.5' .*{SPARSITY_MESSAGE}"),
    ({"sparsity": float("nan")}, rf"sparsity=nan .*{SPARSITY_MESSAGE}"),
    ({"initial_sparsity": 1.0}, rf"initial_sparsity=1\.0 .*{SPARSITY_MESSAGE}"),
    ({"modules": {"actor": {"sparsity": 1.0}}}, rf"sparsity=1\.0 .*{SPARSITY_MESSAGE} \(module 'actor'\)"),
    ({"modules": {"actor": {"sparsity": -0.5}}}, rf"sparsity=-0\.5 .*{SPARSITY_MESSAGE} \(module 'actor'\)"),
    ({"modules": {"critic": {"sparsity": 1}}}, rf"sparsity=1 .*{SPARSITY_MESSAGE} \(module 'critic'\)"),
    ({"modules": {"critic": {"sparsity": "high"}}}, rf"sparsity='high' .*{SPARSITY_MESSAGE} \(module 'critic'\)"),
    ({"modules": {"critic": {"sparsity": None}}}, rf"sparsity=None .*{SPARSITY_MESSAGE} \(module 'critic'\)"),
    (
        {"sparsity_distribution": "gaussian"},
        rf"sparsity_distribution='gaussian' {CHOICE_MESSAGE} 'uniform', 'erdos_renyi', 'erk'",
    ),
    ({"sparsity_distribution": "ER"}, rf"sparsity_distribution='ER' {CHOICE_MESSAGE}"),
    ({"regime": "random"}, rf"regime='random' {CHOICE_MESSAGE} {REGIMES}"),
    ({"regime": "rigll"}, rf"regime='rigll' is not valid \(did you mean 'rigl'\?\); choose one of {REGIMES}"),
    ({"regime": 3}, rf"regime=3 {CHOICE_MESSAGE}"),
    ({"modules": {"actor": {"regime": "frozen"}}}, rf"regime='frozen' {CHOICE_MESSAGE} {REGIMES} \(module 'actor'\)"),
    ({"drop_fraction_schedule": "linear"}, rf"drop_fraction_schedule='linear' {CHOICE_MESSAGE} 'constant', 'cosine'"),
    ({"mask_init": "zeros"}, rf"mask_init='zeros' {CHOICE_MESSAGE} 'random', 'magnitude'"),
    ({"schedule_unit": "updates"}, rf"schedule_unit='updates' {CHOICE_MESSAGE} 'env_steps', 'gradient_steps'"),
    (
        {"sparse_layers": "hiden"},
        r"sparse_layers='hiden' is not valid \(did you mean 'hidden'\?\); choose one of 'input', 'hidden', 'output', 'all'",
    ),
    ({"sparse_layers": ["input", "heads"]}, r"sparse_layers='heads' is not valid.*; choose one of"),
    ({"sparse_layers": []}, r"sparse_layers is empty; choose 'all' or some of 'input', 'hidden', 'output'"),
    ({"sparse_layers": 3}, r"sparse_layers=3 is not valid; choose 'all' or some of 'input', 'hidden', 'output'"),
    ({"topology_update_interval": 0}, r"topology_update_interval=0 is not valid; it must be a positive integer"),
    ({"topology_update_interval": -100}, r"topology_update_interval=-100 is not valid; it must be a positive integer"),
    ({"topology_update_interval": 1000.0}, r"topology_update_interval=1000\.0 is not valid; it must be a positive integer"),
    ({"topology_update_interval": True}, r"topology_update_interval=True is not valid"),
    ({"topology_update_interval": "1000"}, r"topology_update_interval='1000' is not valid"),
    (
        {"modules": {"actor": {"topology_update_interval": 0}}},
        r"topology_update_interval=0 is not valid; it must be a positive integer .*\(module 'actor'\)",
    ),
    ({"drop_fraction": -0.1}, r"drop_fraction=-0\.1 is not valid; it must be a number in \[0, 1\]"),
    ({"drop_fraction": 1.5}, r"drop_fraction=1\.5 is not valid; it must be a number in \[0, 1\]"),
    ({"drop_fraction": True}, r"drop_fraction=True is not valid"),
    ({"drop_fraction": "0.1"}, r"drop_fraction='0\.1' is not valid"),
    (
        {"topology_update_start": 500, "topology_update_end": 100},
        r"topology_update_end=100 is before topology_update_start=500",
    ),
    (
        {"topology_update_start": 0.5, "topology_update_end": 0.2},
        r"topology_update_end=0\.2 is before topology_update_start=0\.5",
    ),
    ({"topology_update_start": -1}, r"topology_update_start=-1 is not valid; a step must be >= 0"),
    (
        {"topology_update_end": 1.5},
        r"topology_update_end=1\.5 is not valid; give a step \(int >= 0\) or a fraction of the run \(float in \[0, 1\]\)",
    ),
    ({"topology_update_end": "end"}, r"topology_update_end='end' is not valid; give a step \(int >= 0\) or a fraction"),
    ({"topology_update_start": True}, r"topology_update_start=True is not valid"),
    (
        {"erdos_renyi_lambdas": [7, 64]},
        r"erdos_renyi_lambdas is only valid with sparsity_distribution='erdos_renyi' \(got 'uniform'\)",
    ),
    (
        {"erdos_renyi_lambdas": [7, 64], "sparsity_distribution": "erk"},
        r"erdos_renyi_lambdas is only valid with sparsity_distribution='erdos_renyi' \(got 'erk'\)",
    ),
    (
        {"erdos_renyi_lambdas": [7, -1], "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=[\[(]7, -1[\])] is not valid; give a list of positive finite numbers",
    ),
    (
        {"erdos_renyi_lambdas": [float("nan"), 64], "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=[\[(]nan, 64[\])] is not valid; give a list of positive finite numbers",
    ),
    (
        {"erdos_renyi_lambdas": [float("inf"), 64], "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=[\[(]inf, 64[\])] is not valid",
    ),
    (
        {"erdos_renyi_lambdas": [], "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=.* is not valid; give a list of positive",
    ),
    (
        {"erdos_renyi_lambdas": 7, "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=7 is not valid; give a list of positive finite numbers, one per sparse layer depth",
    ),
    (
        {"regime": "gmp", "sparsity": 0.5, "initial_sparsity": 0.6},
        r"regime 'gmp' prunes: initial_sparsity=0\.6 must not exceed sparsity=0\.5",
    ),
    (
        {"regime": "ne", "sparsity": 0.5, "initial_sparsity": 0.3},
        r"regime 'ne' grows: initial_sparsity=0\.3 must not be below sparsity=0\.5",
    ),
    (
        {"regime": "ne", "sparsity": 0.9},  # ne starts at 0.8 by default
        r"regime 'ne' grows: initial_sparsity=0\.8 must not be below sparsity=0\.9",
    ),
    (
        {"regime": "gmp", "sparsity_distribution": "erdos_renyi", "erdos_renyi_lambdas": [1, 2]},
        r"erdos_renyi_lambdas fix the densities; a regime whose sparsity changes needs 'erk' or 'uniform'",
    ),
    ({"modules": ["actor"]}, r"modules=\['actor'\] is not valid; give a dict such as"),
    ({"modules": {"actor": 0.9}}, r"modules\['actor'\]=0\.9 is not valid; give a dict of DST settings"),
    (
        {"modules": {"actr": {"sparsity": 0.9}}},
        r"modules has no module 'actr' \(did you mean 'actor'\?\); this algorithm has 'actor', 'critic'",
    ),
    ({"modules": {"policy": {}}}, r"modules has no module 'policy'; this algorithm has 'actor', 'critic'"),
    (
        {"modules": {"critic": {"sparsty": 0.9}}},
        r"modules\['critic'\]: 'sparsty' is not a DST setting; did you mean 'sparsity'\? \(valid: regime, sparsity,",
    ),
    (
        {"modules": {"actor": {"grow_method": "gradient"}}},
        r"modules\['actor'\]: 'grow_method' is not a DST setting",
    ),
]


def make(cls: type, **kwargs: Any) -> Any:
    return cls("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10, **kwargs)


@pytest.mark.parametrize("cls", ALGOS)
@pytest.mark.parametrize(("kwargs", "match"), BAD_ARGUMENTS, ids=[str(kwargs) for kwargs, _ in BAD_ARGUMENTS])
def test_bad_argument(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(cls, **kwargs)


@pytest.mark.parametrize(("algo_cls", "policy_cls"), [(SAC, SparseSACPolicy), (TD3, SparseTD3Policy)])
@pytest.mark.parametrize(("kwargs", "match"), BAD_ARGUMENTS, ids=[str(kwargs) for kwargs, _ in BAD_ARGUMENTS])
def test_bad_policy_argument(algo_cls, policy_cls, kwargs, match):
    # The policies validate their dst_config themselves (e.g. SAC(SparseSACPolicy, ...)).
    with pytest.raises(ValueError, match=match):
        algo_cls(policy_cls, "Pendulum-v1", policy_kwargs={**POLICY_KWARGS, "dst_config": kwargs}, buffer_size=10)


# The per-module settings alone (not the modules argument), on ModuleConfig directly.
MODULE_ONLY = [(kwargs, match) for kwargs, match in BAD_ARGUMENTS if set(kwargs) <= set(MODULE_SETTINGS)]


@pytest.mark.parametrize(("kwargs", "match"), MODULE_ONLY, ids=[str(kwargs) for kwargs, _ in MODULE_ONLY])
def test_bad_module_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModuleConfig(**kwargs)


def test_unknown_flat_argument():
    with pytest.raises(ValueError, match=r"DST arguments: 'sparsty' is not a DST setting; did you mean 'sparsity'\?"):
        SAC(SparseSACPolicy, "Pendulum-v1", policy_kwargs={**POLICY_KWARGS, "dst_config": {"sparsty": 0.9}}, buffer_size=10)


@pytest.mark.parametrize("cls", ALGOS)
def test_erdos_renyi_lambdas_wrong_length(cls):
    with pytest.raises(ValueError, match=r"erdos_renyi_lambdas has 3 values but the module has 2 sparse layer depths"):
        cls(
            "MlpPolicy",
            "Pendulum-v1",
            sparsity_distribution="erdos_renyi",
            erdos_renyi_lambdas=[1, 2, 3],
            policy_kwargs={"net_arch": [8, 8]},
            buffer_size=10,
        )
    # With the output layers sparse too there are 3 depths.
    with pytest.raises(ValueError, match=r"has 2 values but the module has 3 sparse layer depths \(sparse_layers=\['input', "):
        cls(
            "MlpPolicy",
            "Pendulum-v1",
            sparsity_distribution="erdos_renyi",
            erdos_renyi_lambdas=[1, 2],
            sparse_layers="all",
            policy_kwargs={"net_arch": [8, 8]},
            buffer_size=10,
        )


@pytest.mark.parametrize("cls", ALGOS)
def test_erdos_renyi_lambdas_needing_density_above_one(cls):
    # 64 on the 3 -> 16 input layer: 64 * 19 / 48 > 1
    with pytest.raises(ValueError, match=r"erdos_renyi_lambdas: a layer of shape \(16, 3\) would need density 25\.333 > 1"):
        cls(
            "MlpPolicy",
            "Pendulum-v1",
            sparsity_distribution="erdos_renyi",
            erdos_renyi_lambdas=[64, 1],
            policy_kwargs={"net_arch": [16, 16]},
            buffer_size=10,
        )


@pytest.mark.parametrize("cls", ALGOS)
def test_erdos_renyi_solved_overflow(cls):
    with pytest.raises(ValueError, match=r"sparsity_distribution='erdos_renyi'.* > 1; use sparsity_distribution='erk'"):
        cls("MlpPolicy", "Pendulum-v1", sparsity_distribution="erdos_renyi", sparsity=0.5, buffer_size=10)


@pytest.mark.parametrize("cls", ALGOS)
def test_dst_config_in_policy_kwargs(cls):
    with pytest.raises(
        ValueError, match=rf"policy_kwargs sets 'dst_config': pass the DST settings as arguments of {cls.__name__}"
    ):
        cls("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], "dst_config": {"sparsity": 0.5}}, buffer_size=10)


@pytest.mark.parametrize("cls", ALGOS)
def test_dense_policy_class(cls):
    from stable_baselines3.sac.policies import SACPolicy

    with pytest.raises(ValueError, match=rf"{cls.__name__} needs a sparse policy .*got SACPolicy"):
        cls(SACPolicy, "Pendulum-v1", buffer_size=10)


def test_unknown_policy_alias():
    with pytest.raises(
        ValueError,
        match=r"SparseSAC needs a sparse policy \(MlpPolicy, CnnPolicy, MultiInputPolicy, SimbaPolicy, BroPolicy .*got 'Dense",
    ):
        SparseSAC("DensePolicy", "Pendulum-v1")


def test_callback_on_dense_sac():
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10)
    with pytest.raises(ValueError, match=r"TopologyUpdateCallback needs a sparse policy .*got SACPolicy"):
        model.learn(10, callback=TopologyUpdateCallback())
    assert model.num_timesteps == 0


@pytest.mark.parametrize("cls", ALGOS)
def test_unsupported_optimizer_named_at_construction(cls):
    import torch as th

    with pytest.raises(ValueError, match=r"the optimizer of module 'actor' is Adafactor"):
        cls(
            "MlpPolicy",
            "Pendulum-v1",
            regime="rigl",
            policy_kwargs={"net_arch": [8], "optimizer_class": th.optim.Adafactor},
            buffer_size=10,
        )
    # A static module has nothing to reset: any optimizer is fine.
    cls(
        "MlpPolicy",
        "Pendulum-v1",
        regime="static",
        learning_starts=5,
        batch_size=4,
        policy_kwargs={"net_arch": [8], "optimizer_class": th.optim.Adafactor},
        buffer_size=20,
    ).learn(10)


@pytest.mark.parametrize("cls", ALGOS)
def test_mixed_window_types_resolved_at_learn(cls, capsys):
    # An env step and a fraction can only be compared once the run length is known: here the window
    # resolves to nothing (end 100 < start 500), so the run makes no update and says so.
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        topology_update_start=500,
        topology_update_end=0.1,
        topology_update_interval=100,
        learning_starts=10,
        batch_size=8,
        policy_kwargs=dict(POLICY_KWARGS),
        buffer_size=100,
        verbose=1,
    )
    model.learn(60)
    assert "no mask update of module 'critic' in this run" in capsys.readouterr().out
    assert all(record["n_updates"] == 0 for record in model.dst_state["modules"].values())


def test_valid_edge_values_are_accepted():
    # The edges of the valid ranges construct.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        sparsity=0.0,
        modules={"actor": {"sparsity": 0.999}},
        drop_fraction=0.0,
        topology_update_interval=1,
        topology_update_start=0,
        topology_update_end=0,
        sparse_layers="output",
        policy_kwargs=dict(POLICY_KWARGS),
        buffer_size=10,
    )
    assert model.policy.module_configs["actor"].sparsity == 0.999
    assert model.policy.module_configs["critic"].sparsity == 0.0
    assert model.policy.module_configs["actor"].sparse_layers == ("output",)
    assert model.policy.module_configs["actor"].drop_fraction == 0.0


@pytest.mark.parametrize("cls", ALGOS)
def test_numpy_numbers_are_accepted(cls):
    # Values from NumPy (e.g. a sweep built with np.linspace / np.arange) are numbers like Python ones.
    model = make(
        cls,
        sparsity=np.float32(0.75),
        drop_fraction=np.float64(0.2),
        topology_update_interval=np.int64(500),
        topology_update_start=np.int32(100),
        topology_update_end=np.int64(900),
        modules={"critic": {"topology_update_interval": np.uint16(250)}},
    )
    for name, config in model.policy.module_configs.items():
        assert config.sparsity == 0.75 and isinstance(config.sparsity, float)
        assert config.drop_fraction == 0.2 and isinstance(config.drop_fraction, float)
        assert config.topology_update_interval == (250 if name == "critic" else 500)
        assert type(config.topology_update_interval) is int
        assert config.topology_update_start == 100 and type(config.topology_update_start) is int
        assert config.topology_update_end == 900 and type(config.topology_update_end) is int


def test_none_means_the_default():
    # A flat setting of None (e.g. left unset in a hyperparameter file) keeps the default; per module it is an error.
    model = make(SparseSAC, sparsity=None, regime=None, sparse_layers=None)
    assert model.policy.module_configs["actor"] == ModuleConfig()


def test_per_module_overrides():
    model = make(
        SparseTD3,
        regime="set",
        sparsity=0.6,
        modules={"actor": {"regime": "static", "sparsity": 0.9}, "critic": {"drop_fraction": 0.3}},
    )
    actor, critic = model.policy.module_configs["actor"], model.policy.module_configs["critic"]
    assert (actor.regime, actor.sparsity) == ("static", 0.9)
    assert (critic.regime, critic.sparsity, critic.drop_fraction) == ("set", 0.6, 0.3)
    assert actor.drop_fraction == 0.05  # SparseTD3's default
    # The settings are stored once, as given.
    assert model.dst_config["modules"] == {"actor": {"regime": "static", "sparsity": 0.9}, "critic": {"drop_fraction": 0.3}}
    assert model.dst_config["sparsity"] == 0.6
    assert "dst_config" not in model.policy_kwargs


# --------------------------------------------------------------------------------------------------------------------
# The sb3-sparse command: every build-time mistake is one line on stderr, exit status 2, and nothing on disk.

BAD_YAML = "Pendulum-v1: [1, 2\n"
SAC_ARGS = ["--algo", "sparse_sac", "--env", "Pendulum-v1", "-n", "100", "--eval-freq", "-1"]
QMIX_ARGS = ["--algo", "qmix", "--env", "simple_spread_v3", "-n", "50"]
STUDY = ["--storage", "study.log", "--study-name", "s"]

# (command line, the start of the message after "error: ", what the message must also hold)
BAD_COMMANDS: list[tuple[list[str], str, str]] = [
    (["trian"], "sb3-sparse: error: command='trian' is not valid (did you mean 'train'?)", "choose one of"),
    (["train", "--algo", "sparse_sca", "--env", "Pendulum-v1"], "sb3-sparse train: error: ", "did you mean 'sparse_sac'?"),
    (["tune", "--algo", "qmx", "--env", "simple_spread_v3"], "sb3-sparse tune: error: ", "did you mean 'qmix'?"),
    (["train", "--algo", "sparse_sac", "--env", "Pendulm-v1"], "sb3-sparse train: error: ", "did you mean 'Pendulum-v1'?"),
    (["enjoy", "--algo", "sparse_sac", "--env", "Pendulm-v1"], "sb3-sparse enjoy: error: ", "unknown env id"),
    (["train", *SAC_ARGS, "--gym-packages", "no_such_package"], "sb3-sparse train: error: ", "cannot be imported"),
    (["train", *SAC_ARGS, "-conf", "bad.yml"], "sb3-sparse train: error: ", "bad.yml is not valid YAML"),
    (["train", *SAC_ARGS, "-params", "sparsty:0.5"], "sb3-sparse train: error: ", "did you mean 'sparsity'?"),
    (["train", *SAC_ARGS, "-params", "regime:'rigel'"], "sb3-sparse train: error: ", "did you mean 'rigl'?"),
    (
        ["train", *SAC_ARGS, "-params", "modules:dict(actor=dict(sparsty=0.5))"],
        "sb3-sparse train: error: ",
        "'sparsty' is not a DST setting; did you mean 'sparsity'?",
    ),
    (["train", *SAC_ARGS, "--bogus"], "sb3-sparse train: error: unrecognized arguments: --bogus", ""),
    (["tune", *SAC_ARGS, *STUDY, "-params", "sparsty:0.5"], "sb3-sparse tune: error: ", "did you mean 'sparsity'?"),
    (["tune", *SAC_ARGS, *STUDY, "-conf", "bad.yml"], "sb3-sparse tune: error: ", "is not valid YAML"),
    (["best", "--algo", "sparse_sac"], "sb3-sparse best: error: the following arguments are required: --env", ""),
    (["best", "--algo", "sparse_sca", "--env", "E", *STUDY], "sb3-sparse best: error: ", "did you mean 'sparse_sac'?"),
    (["best", "--algo", "qmix", "--env", "E", *STUDY], "sb3-sparse best: error: ", "marl train|enjoy|tune"),
    (["record-video", "--algo", "vdn", "--env", "E"], "sb3-sparse record-video: error: ", "is a multi-agent learner"),
    (
        ["enjoy", "--algo", "sparse_td3", "--env", "Hopper-v5", "--pretrained"],
        "sb3-sparse enjoy: error: no pretrained agent for --algo sparse_td3 --env Hopper-v5; available: ",
        "sparse_sac on Pendulum-v1",
    ),
    (["record-video", "--algo", "vdn", "--env", "E", "--pretrained"], "sb3-sparse record-video: error: no pretrained", ""),
    (["agents", "--bogus"], "sb3-sparse agents: error: unrecognized arguments: --bogus", ""),
    (["marl", "train", "--algo", "qmx", "--env", "simple_spread_v3"], "sb3-sparse marl train: error: ", "'qmix'"),
    (["train", "--algo", "qmix", "--env", "nowhere_v3"], "sb3-sparse train: error: --env 'nowhere_v3'", ""),
    (["train", *QMIX_ARGS, "-params", "regime:rigel"], "sb3-sparse train: error: ", "did you mean 'rigl'?"),
    (
        ["marl", "train", *QMIX_ARGS, "-params", "modules:dict(agent=dict(sparsty=0.5))"],
        "sb3-sparse marl train: error: ",
        "'sparsty' is not a DST setting; did you mean 'sparsity'?",
    ),
    (["marl", "tune", *QMIX_ARGS, *STUDY, "-conf", "bad.yml"], "sb3-sparse marl tune: error: ", "is not valid YAML"),
    (["marl", "tune", *QMIX_ARGS, *STUDY, "-params", "sparsty:0.5"], "sb3-sparse marl tune: error: ", "'sparsity'?"),
]


@pytest.mark.parametrize(("argv", "start", "holds"), BAD_COMMANDS, ids=lambda value: " ".join(value[:4]))
def test_command_mistakes_are_one_line_and_leave_nothing(argv, start, holds, tmp_path, capsys, monkeypatch):
    pytest.importorskip("rl_zoo3")
    from sb3_sparse.zoo.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SB3_SPARSE_TRACEBACK", raising=False)
    (tmp_path / "bad.yml").write_text(BAD_YAML)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(start) and holds in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.yml"]  # no log folder, run folder or study


@pytest.mark.parametrize("pretrained", [True, False], ids=["pretrained", "zoo"])
def test_enjoy_without_a_display_says_to_pass_no_render(pretrained, tmp_path, capsys, monkeypatch):
    """A window on a Linux machine without a display: one line naming --no-render, not GLFW's or pygame's abort."""
    pytest.importorskip("rl_zoo3")
    from sb3_sparse.zoo.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SB3_SPARSE_TRACEBACK"):
        monkeypatch.delenv(name, raising=False)
    argv = ["enjoy", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-n", "5"]
    assert main([*argv, "--pretrained"] if pretrained else [*argv, "-f", "logs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sb3-sparse enjoy: error: no display") and "--no-render" in err, err
    assert list(tmp_path.iterdir()) == []
