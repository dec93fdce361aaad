"""Every bad DST input raises a ValueError at construction, naming the argument and its valid values."""

from typing import Any

import numpy as np
import pytest
from stable_baselines3 import SAC, TD3

from sb3_sparse import SparseSAC, SparseSACPolicy, SparseTD3, SparseTD3Policy, TopologyUpdateCallback
from sb3_sparse.common.config import SparsityConfig, TopologyConfig

ALGOS = [SparseSAC, SparseTD3]
POLICY_KWARGS = {"net_arch": [8]}

SPARSITY_MESSAGE = r"it must be a number in \[0, 1\)"
CHOICE_MESSAGE = "is not valid; choose one of"

# (keyword arguments, regex the message must match)
BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"sparsity": 1.0}, rf"sparsity=1\.0 is not valid; {SPARSITY_MESSAGE}"),
    ({"sparsity": -0.1}, rf"sparsity=-0\.1 is not valid; {SPARSITY_MESSAGE}"),
    ({"sparsity": 1.5}, rf"sparsity=1\.5 .*{SPARSITY_MESSAGE}"),
    ({"sparsity": True}, rf"sparsity=True .*{SPARSITY_MESSAGE}"),
    ({"sparsity": "0.5"}, rf"sparsity='0\.5' .*{SPARSITY_MESSAGE}"),
    ({"sparsity": None}, rf"sparsity=None .*{SPARSITY_MESSAGE}"),
    ({"sparsity": float("nan")}, rf"sparsity=nan .*{SPARSITY_MESSAGE}"),
    ({"actor_sparsity": 1.0}, rf"actor_sparsity=1\.0 .*{SPARSITY_MESSAGE}"),
    ({"actor_sparsity": -0.5}, rf"actor_sparsity=-0\.5 .*{SPARSITY_MESSAGE}"),
    ({"critic_sparsity": 1}, rf"critic_sparsity=1 .*{SPARSITY_MESSAGE}"),
    ({"critic_sparsity": "high"}, rf"critic_sparsity='high' .*{SPARSITY_MESSAGE}"),
    (
        {"sparsity_distribution": "gaussian"},
        rf"sparsity_distribution='gaussian' {CHOICE_MESSAGE} 'uniform', 'erdos_renyi', 'erk'",
    ),
    ({"sparsity_distribution": "ER"}, rf"sparsity_distribution='ER' {CHOICE_MESSAGE}"),
    ({"grow_method": "rigl"}, rf"grow_method='rigl' {CHOICE_MESSAGE} 'random', 'gradient', 'none'"),
    ({"grow_method": None}, rf"grow_method=None {CHOICE_MESSAGE}"),
    ({"actor_grow_method": "set"}, rf"actor_grow_method='set' {CHOICE_MESSAGE} 'random', 'gradient', 'none'"),
    ({"drop_fraction_schedule": "linear"}, rf"drop_fraction_schedule='linear' {CHOICE_MESSAGE} 'constant', 'cosine'"),
    ({"mask_init": "zeros"}, rf"mask_init='zeros' {CHOICE_MESSAGE} 'random', 'magnitude'"),
    ({"sparse_layers": "hiden"}, rf"sparse_layers='hiden' {CHOICE_MESSAGE} 'input', 'hidden', 'output', 'all'"),
    ({"sparse_layers": ["input", "heads"]}, rf"sparse_layers='heads' {CHOICE_MESSAGE}"),
    ({"sparse_layers": []}, r"sparse_layers is empty; choose 'all' or some of 'input', 'hidden', 'output'"),
    ({"sparse_layers": None}, r"sparse_layers=None is not valid; choose 'all' or some of 'input', 'hidden', 'output'"),
    ({"sparse_layers": 3}, r"sparse_layers=3 is not valid"),
    ({"topology_update_interval": 0}, r"topology_update_interval=0 is not valid; it must be a positive integer"),
    ({"topology_update_interval": -100}, r"topology_update_interval=-100 is not valid; it must be a positive integer"),
    ({"topology_update_interval": 1000.0}, r"topology_update_interval=1000\.0 is not valid; it must be a positive integer"),
    ({"topology_update_interval": True}, r"topology_update_interval=True is not valid"),
    ({"topology_update_interval": "1000"}, r"topology_update_interval='1000' is not valid"),
    ({"actor_topology_update_interval": 0}, r"actor_topology_update_interval=0 is not valid; it must be a positive integer"),
    ({"drop_fraction": 0.0}, r"drop_fraction=0\.0 is not valid; it must be a number in \(0, 1\]"),
    ({"drop_fraction": -0.1}, r"drop_fraction=-0\.1 is not valid; it must be a number in \(0, 1\]"),
    ({"drop_fraction": 1.5}, r"drop_fraction=1\.5 is not valid; it must be a number in \(0, 1\]"),
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
    ({"topology_update_start": -1}, r"topology_update_start=-1 is not valid; an env step must be >= 0"),
    ({"topology_update_end": 1.5}, r"topology_update_end=1\.5 is not valid; a fraction of the run must be in \[0, 1\]"),
    ({"topology_update_end": "end"}, r"topology_update_end='end' is not valid; give an env step \(int >= 0\) or a fraction"),
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
        r"erdos_renyi_lambdas=[\[(]7, -1[\])] is not valid; give a list of positive numbers",
    ),
    (
        {"erdos_renyi_lambdas": [], "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=.* is not valid; give a list of positive",
    ),
    (
        {"erdos_renyi_lambdas": 7, "sparsity_distribution": "erdos_renyi"},
        r"erdos_renyi_lambdas=7 is not valid; give a list of positive numbers, one per sparse layer depth",
    ),
]


@pytest.mark.parametrize("cls", ALGOS)
@pytest.mark.parametrize(("kwargs", "match"), BAD_ARGUMENTS, ids=[str(kwargs) for kwargs, _ in BAD_ARGUMENTS])
def test_bad_argument(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10, **kwargs)


SPARSITY_ONLY = [(kwargs, match) for kwargs, match in BAD_ARGUMENTS if set(kwargs) <= set(SparsityConfig.__dataclass_fields__)]


@pytest.mark.parametrize(("algo_cls", "policy_cls"), [(SAC, SparseSACPolicy), (TD3, SparseTD3Policy)])
@pytest.mark.parametrize(("kwargs", "match"), SPARSITY_ONLY, ids=[str(kwargs) for kwargs, _ in SPARSITY_ONLY])
def test_bad_policy_argument(algo_cls, policy_cls, kwargs, match):
    # The policies validate the sparsity arguments themselves (e.g. SAC(SparseSACPolicy, ...)).
    with pytest.raises(ValueError, match=match):
        algo_cls(policy_cls, "Pendulum-v1", policy_kwargs={**POLICY_KWARGS, **kwargs}, buffer_size=10)


TOPOLOGY_ONLY = [(kwargs, match) for kwargs, match in BAD_ARGUMENTS if set(kwargs) <= set(TopologyConfig.__dataclass_fields__)]


@pytest.mark.parametrize(("kwargs", "match"), TOPOLOGY_ONLY, ids=[str(kwargs) for kwargs, _ in TOPOLOGY_ONLY])
def test_bad_callback_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TopologyUpdateCallback(**kwargs)


@pytest.mark.parametrize("cls", ALGOS)
def test_erdos_renyi_lambdas_wrong_length(cls):
    with pytest.raises(ValueError, match=r"erdos_renyi_lambdas has 3 values but the actor has 2 sparse layer depths"):
        cls(
            "MlpPolicy",
            "Pendulum-v1",
            sparsity_distribution="erdos_renyi",
            erdos_renyi_lambdas=[1, 2, 3],
            policy_kwargs={"net_arch": [8, 8]},
            buffer_size=10,
        )
    # With the output layers sparse too there are 3 depths.
    with pytest.raises(ValueError, match=r"has 2 values but the actor has 3 sparse layer depths \(sparse_layers=\['input', "):
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
@pytest.mark.parametrize("name", ["sparsity", "sparse_layers", "mask_init", "erdos_renyi_lambdas", "critic_sparsity"])
def test_sparsity_argument_in_policy_kwargs(cls, name):
    with pytest.raises(ValueError, match=rf"policy_kwargs sets \['{name}'\]: pass them as arguments of {cls.__name__}"):
        cls("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], name: 0.5}, buffer_size=10)


@pytest.mark.parametrize("cls", ALGOS)
@pytest.mark.parametrize("name", ["grow_method", "topology_update_interval", "drop_fraction"])
def test_topology_argument_in_policy_kwargs(cls, name):
    with pytest.raises(ValueError, match=rf"policy_kwargs sets \['{name}'\]: pass them as arguments of {cls.__name__}"):
        cls("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], name: 1}, buffer_size=10)


@pytest.mark.parametrize("cls", ALGOS)
def test_dense_policy_class(cls):
    from stable_baselines3.sac.policies import SACPolicy

    with pytest.raises(ValueError, match=rf"{cls.__name__} needs a sparse policy .*got SACPolicy"):
        cls(SACPolicy, "Pendulum-v1", buffer_size=10)


def test_unknown_policy_alias():
    with pytest.raises(ValueError, match="Policy DensePolicy unknown"):
        SparseSAC("DensePolicy", "Pendulum-v1")


def test_callback_on_dense_sac():
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(POLICY_KWARGS), buffer_size=10)
    with pytest.raises(ValueError, match=r"TopologyUpdateCallback needs a sparse policy .*got SACPolicy"):
        model.learn(10, callback=TopologyUpdateCallback())
    assert model.num_timesteps == 0


@pytest.mark.parametrize("cls", ALGOS)
def test_window_of_mixed_types_checked_at_learn(cls):
    # An env step and a fraction can only be compared once the run length is known.
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        topology_update_start=500,
        topology_update_end=0.1,
        policy_kwargs=dict(POLICY_KWARGS),
        buffer_size=10,
    )
    with pytest.raises(ValueError, match=r"topology_update_end=100 is before topology_update_start=500"):
        model.learn(1000)
    assert model.num_timesteps == 0


def test_valid_edge_values_are_accepted():
    # The edges of the valid ranges construct.
    model = SparseTD3(
        "MlpPolicy",
        "Pendulum-v1",
        sparsity=0.0,
        actor_sparsity=0.999,
        drop_fraction=1.0,
        topology_update_interval=1,
        topology_update_start=0,
        topology_update_end=0,
        sparse_layers="output",
        policy_kwargs=dict(POLICY_KWARGS),
        buffer_size=10,
    )
    assert model.actor_sparsity == 0.999
    assert model.sparse_layers == ["output"]


@pytest.mark.parametrize("cls", ALGOS)
def test_numpy_numbers_are_accepted(cls):
    # Values from NumPy (e.g. a sweep built with np.linspace) are numbers like Python floats.
    model = cls(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs=dict(POLICY_KWARGS),
        buffer_size=10,
        sparsity=np.float32(0.75),
        drop_fraction=np.float64(0.2),
    )
    assert model.sparsity == 0.75 and isinstance(model.sparsity, float)
    assert model.policy.sparsity_config.sparsity == 0.75
