"""Published DST recipes: each one builds a working SparseSAC / SparseTD3 with its settings."""

import pytest
import torch as th

from sb3_sparse import SparseSAC, SparseTD3, flops_report, module_sparsity, sparse_recipe
from sb3_sparse.common.algorithm import DST_ARGUMENTS
from sb3_sparse.common.recipes import DS_SAC_LAMBDAS, DS_TD3_LAMBDAS, RECIPES
from sb3_sparse.core.config import ModuleConfig, normalize_sparse_layers
from sb3_sparse.core.distributions import active_count, erdos_renyi_scale
from sb3_sparse.core.masking import get_mask, sparse_weights

ALGORITHMS = {"sparse_sac": SparseSAC, "sparse_td3": SparseTD3}
# Every recipe with every one of these algorithms it is for.
RECIPE_ALGOS = [
    (name, algorithm) for name, (algorithms, _) in RECIPES.items() for algorithm in algorithms if algorithm in ALGORITHMS
]


@pytest.mark.parametrize(("name", "algorithm"), RECIPE_ALGOS, ids=[f"{name}-{algorithm}" for name, algorithm in RECIPE_ALGOS])
def test_recipe_constructs_and_learns(name, algorithm):
    cls = ALGORITHMS[algorithm]
    kwargs = sparse_recipe(name, algorithm=algorithm)
    kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), "net_arch": [64, 64]}
    kwargs["learning_starts"] = 10
    kwargs["batch_size"] = 8
    model = cls("MlpPolicy", "Pendulum-v1", buffer_size=100, seed=0, **kwargs)
    recipe = sparse_recipe(name)
    # Every DST argument of the recipe reached the model (stored once, as given) and each module's settings.
    for key, value in recipe.items():
        if key in DST_ARGUMENTS:
            assert model.dst_config[key] == value, key
    for module, config in model.policy.module_configs.items():
        expected = {key: value for key, value in recipe.items() if key in DST_ARGUMENTS and key != "modules"}
        expected.update(recipe.get("modules", {}).get(module, {}))
        for key, value in expected.items():
            if key == "sparse_layers":
                assert config.sparse_layers == normalize_sparse_layers(value), (module, key)
            elif key == "erdos_renyi_lambdas":
                assert list(config.erdos_renyi_lambdas) == value, (module, key)
            else:
                assert getattr(config, key) == value, (module, key)
    # The masks start at each module's initial sparsity (gmp: dense, ne: 80%).
    sparsity = module_sparsity(model)
    for module, config in model.policy.module_configs.items():
        assert sparsity[module] == pytest.approx(config.start_sparsity, abs=0.01), module
    model.learn(20)
    assert model.num_timesteps == 20


def test_recipe_values():
    assert sparse_recipe("ds_td3")["drop_fraction"] == 0.05
    assert sparse_recipe("ds_sac")["drop_fraction"] == 0.1
    assert sparse_recipe("rlx2")["mask_init"] == "magnitude"
    assert sparse_recipe("rlx2")["drop_fraction_schedule"] == "cosine"
    assert sparse_recipe("rlx2")["modules"] == {"actor": {"sparsity": 0.9}, "critic": {"sparsity": 0.85}}
    assert sparse_recipe("rigl")["topology_update_end"] == 0.8
    assert sparse_recipe("rigl")["regime"] == "rigl"
    assert sparse_recipe("gmp")["regime"] == "gmp"
    assert sparse_recipe("ne")["regime"] == "ne"
    assert sparse_recipe("static")["regime"] == "static"
    assert sparse_recipe("mst")["modules"]["actor"]["regime"] == "static"
    assert sparse_recipe("mst")["modules"]["critic"]["regime"] == "rigl"
    # Every recipe is a valid configuration of every module.
    for _, kwargs in RECIPES.values():
        flat = {key: value for key, value in kwargs.items() if key in DST_ARGUMENTS and key != "modules"}
        for overrides in kwargs.get("modules", {"all": {}}).values():
            ModuleConfig(**{**flat, **overrides})


def test_recipe_is_a_copy():
    kwargs = sparse_recipe("ds_td3")
    kwargs["policy_kwargs"]["optimizer_kwargs"]["weight_decay"] = 0.5
    kwargs["sparsity"] = 0.9
    assert RECIPES["ds_td3"][1]["policy_kwargs"]["optimizer_kwargs"]["weight_decay"] == 2e-4
    assert sparse_recipe("ds_td3")["sparsity"] == 0.5
    kwargs = sparse_recipe("mst")
    kwargs["modules"]["actor"]["regime"] = "set"
    assert sparse_recipe("mst")["modules"]["actor"]["regime"] == "static"


def test_recipe_for_another_algorithm():
    with pytest.raises(ValueError, match=r"recipe 'ds_sac' is for sparse_sac, not 'sparse_td3'"):
        sparse_recipe("ds_sac", algorithm="sparse_td3")
    with pytest.raises(ValueError, match=r"recipe 'ds_td3' is for sparse_td3, not 'sparse_sac'"):
        sparse_recipe("ds_td3", algorithm="sparse_sac")


def test_recipe_overrides():
    kwargs = sparse_recipe("static", algorithm="sparse_sac", seed=3, topology_update_interval=500)
    assert kwargs == {"regime": "static", "sparsity": 0.5, "seed": 3, "topology_update_interval": 500}
    with pytest.raises(ValueError, match=r"recipe 'static' already sets \['sparsity'\]; edit the returned dict"):
        sparse_recipe("static", sparsity=0.9)


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
    assert set(DS_TD3_LAMBDAS) == set(DS_SAC_LAMBDAS)


def test_ds_td3_halfcheetah_model():
    """DS-TD3 on HalfCheetah: ER masks with lambdas 7 and 64, about 51% sparsity (as in the paper)."""
    kwargs = sparse_recipe("ds_td3", "HalfCheetah-v5", algorithm="sparse_td3")
    model = SparseTD3("MlpPolicy", "HalfCheetah-v5", buffer_size=10, **kwargs)
    assert model.dst_config["erdos_renyi_lambdas"] == [7, 64]
    assert model.policy.module_configs["actor"].erdos_renyi_lambdas == (7.0, 64.0)
    for module in ("actor", "critic"):
        online = model.policy.sparse_bindings()[module].online
        (first, first_weight), (second, second_weight) = [(owner, weight) for _, owner, weight in sparse_weights(online)][:2]
        shape = tuple(getattr(first, first_weight).shape)
        assert int(get_mask(first, first_weight).sum()) == active_count(shape, 7 * erdos_renyi_scale(shape))
        assert int(get_mask(second, second_weight).sum()) == active_count((256, 256), 0.5)
    assert tuple(model.actor.mu[0].weight.shape) == (256, 17)
    sparsity = module_sparsity(model)
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
    with pytest.raises(ValueError, match=r"recipe='lottery' is not valid; choose one of 'ds_td3', 'ds_sac', 'rlx2'"):
        sparse_recipe("lottery")
    with pytest.raises(ValueError, match=r"recipe='rigl2' is not valid \(did you mean 'rigl'\?\)"):
        sparse_recipe("rigl2")


def test_unknown_env_for_lambdas():
    with pytest.raises(
        ValueError, match=r"env_id='Pendulum-v1' has no published lambdas for 'ds_td3'; choose one of HalfCheetah"
    ):
        sparse_recipe("ds_td3", "Pendulum-v1")
