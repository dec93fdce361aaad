"""Published DST recipes: each one builds a working SparseSAC / SparseTD3."""

import pytest
import torch as th

from sb3_sparse import SparseSAC, SparseTD3, flops_report, network_sparsity, sparse_recipe
from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.core.distributions import active_count, erdos_renyi_scale
from sb3_sparse.common.recipes import DS_SAC_LAMBDAS, DS_TD3_LAMBDAS, RECIPES

# ds_sac sets ent_coef, an argument of SAC only; every other recipe suits both algorithms.
RECIPE_ALGOS = [(name, cls) for name in RECIPES for cls in (SparseSAC, SparseTD3) if (name, cls) != ("ds_sac", SparseTD3)]


@pytest.mark.parametrize(("name", "cls"), RECIPE_ALGOS, ids=[f"{name}-{cls.__name__}" for name, cls in RECIPE_ALGOS])
def test_recipe_constructs_and_learns(name, cls):
    kwargs = sparse_recipe(name)
    kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), "net_arch": [64, 64]}
    kwargs["learning_starts"] = 10
    kwargs["batch_size"] = 8
    model = cls("MlpPolicy", "Pendulum-v1", buffer_size=100, seed=0, **kwargs)
    # Every DST argument of the recipe reached the model.
    for key, value in sparse_recipe(name).items():
        if key == "sparse_layers":
            assert model.sparse_layers == (["input", "hidden", "output"] if value == "all" else list(value))
        elif key in DST_ARGUMENTS:
            assert getattr(model, key) == value, key
    sparsity = network_sparsity(model)
    for network in ("actor", "critic"):
        expected = kwargs.get(f"{network}_sparsity") or kwargs.get("sparsity", 0.5)
        assert sparsity[network] == pytest.approx(expected, abs=0.01)
    model.learn(20)
    assert model.num_timesteps == 20


def test_recipe_values():
    assert sparse_recipe("ds_td3")["drop_fraction"] == 0.05
    assert sparse_recipe("ds_sac")["drop_fraction"] == 0.1
    assert sparse_recipe("rlx2")["mask_init"] == "magnitude"
    assert sparse_recipe("rlx2")["drop_fraction_schedule"] == "cosine"
    assert sparse_recipe("rigl")["topology_update_end"] == 0.8
    assert sparse_recipe("static")["grow_method"] == "none"
    assert sparse_recipe("mst")["actor_grow_method"] == "none"


def test_recipe_is_a_copy():
    kwargs = sparse_recipe("ds_td3")
    kwargs["policy_kwargs"]["optimizer_kwargs"]["weight_decay"] = 0.5
    kwargs["sparsity"] = 0.9
    assert RECIPES["ds_td3"]["policy_kwargs"]["optimizer_kwargs"]["weight_decay"] == 2e-4
    assert sparse_recipe("ds_td3")["sparsity"] == 0.5


@pytest.mark.parametrize(("env_id", "lambdas"), [("HalfCheetah-v5", [7, 64]), ("Ant-v5", [40, 64]), ("Humanoid-v5", [61, 64])])
def test_ds_td3_lambdas(env_id, lambdas):
    kwargs = sparse_recipe("ds_td3", env_id)
    assert kwargs["sparsity_distribution"] == "erdos_renyi"
    assert kwargs["erdos_renyi_lambdas"] == lambdas


@pytest.mark.parametrize(
    ("env_id", "lambdas"), [("HalfCheetah-v5", [12, 80]), ("Hopper-v5", [7, 20]), ("Walker2d-v4", [12, 80])]
)
def test_ds_sac_lambdas(env_id, lambdas):
    assert sparse_recipe("ds_sac", env_id)["erdos_renyi_lambdas"] == lambdas


def test_lambda_tables_cover_the_same_envs():
    assert set(DS_TD3_LAMBDAS) == set(DS_SAC_LAMBDAS) | {"Hopper"}


def test_ds_td3_halfcheetah_model():
    """DS-TD3 on HalfCheetah: ER masks with lambdas 7 and 64, about 51% sparsity (as in the paper)."""
    kwargs = sparse_recipe("ds_td3", "HalfCheetah-v5")
    model = SparseTD3("MlpPolicy", "HalfCheetah-v5", buffer_size=10, **kwargs)
    assert model.erdos_renyi_lambdas == [7, 64]
    for network in ("actor", "critic"):
        first, second = (layer for _, layer in model.policy.masked_layers(network)[:2])
        assert first.n_active == active_count(tuple(first.weight.shape), 7 * erdos_renyi_scale(tuple(first.weight.shape)))
        assert second.n_active == active_count((256, 256), 0.5)
    assert tuple(model.actor.mu[0].weight.shape) == (256, 17)
    sparsity = network_sparsity(model)
    assert sparsity["actor"] == pytest.approx(0.504, abs=0.002)
    assert sparsity["critic"] == pytest.approx(0.514, abs=0.002)
    assert isinstance(model.actor.optimizer, th.optim.Adam)
    assert model.actor.optimizer.defaults["weight_decay"] == 2e-4
    assert model.batch_size == 100 and model.learning_starts == 25_000
    # The paper's network size: 214,784 weights for HalfCheetah.
    assert flops_report(model)["weights"] == 214_784


def test_env_id_ignored_by_other_recipes():
    assert sparse_recipe("rigl", "HalfCheetah-v5") == sparse_recipe("rigl")


def test_unknown_recipe():
    with pytest.raises(ValueError, match=r"name='set' is not valid; choose one of 'ds_td3', 'ds_sac', 'rlx2'"):
        sparse_recipe("set")


def test_unknown_env_for_lambdas():
    with pytest.raises(
        ValueError, match=r"env_id='Pendulum-v1' has no published lambdas for 'ds_td3'; choose one of HalfCheetah"
    ):
        sparse_recipe("ds_td3", "Pendulum-v1")
