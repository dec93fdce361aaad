"""Published DST recipes as constructor arguments of SparseSAC / SparseTD3.

``SparseTD3("MlpPolicy", "HalfCheetah-v5", **sparse_recipe("ds_td3", "HalfCheetah-v5"))`` trains
with the DS-TD3 settings. Each recipe returns plain keyword arguments, so it can be edited,
merged with other arguments, or written into an rl-zoo3 hyperparameter file.
"""

import copy
from typing import Any

from sb3_sparse.common.config import check_choice

# Erdos-Renyi lambdas (first layer, second layer) of DS-TD3 / DS-SAC (Sokar et al., 2022).
DS_TD3_LAMBDAS = {"HalfCheetah": (7, 64), "Hopper": (7, 64), "Walker2d": (7, 64), "Ant": (40, 64), "Humanoid": (61, 64)}
DS_SAC_LAMBDAS = {"HalfCheetah": (12, 80), "Walker2d": (12, 80), "Hopper": (7, 20), "Ant": (30, 64), "Humanoid": (61, 64)}

RECIPES: dict[str, dict[str, Any]] = {
    # DS-TD3: TD3 settings of the paper (256-256 networks, not SB3's TD3 default of 400-300; the
    # lambdas are tuned for them); ER lambdas per env (see sparse_recipe), SET every 1000 steps.
    "ds_td3": {
        "learning_rate": 1e-3,
        "batch_size": 100,
        "learning_starts": 25_000,
        "policy_kwargs": {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}},
        "sparsity": 0.5,
        "sparse_layers": ["input", "hidden"],
        "topology_update_interval": 1000,
        "drop_fraction": 0.05,
        "drop_fraction_schedule": "constant",
        "grow_method": "random",
        "topology_update_end": 0.95,
    },
    # DS-SAC: SAC with alpha 0.2, zeta 0.1, SET every 1000 steps.
    "ds_sac": {
        "learning_rate": 3e-4,
        "batch_size": 256,
        "ent_coef": 0.2,
        "sparsity": 0.5,
        "sparse_layers": ["input", "hidden"],
        "topology_update_interval": 1000,
        "drop_fraction": 0.1,
        "drop_fraction_schedule": "constant",
        "grow_method": "random",
        "topology_update_end": 0.95,
    },
    # RLx2-style topology: every layer sparse (ERK, as ER overflows on small layers), magnitude init,
    # RigL growth with cosine drop fraction from 0.5, every 10k steps; sparsities of TD3 HalfCheetah.
    # (RLx2's multi-step targets and dynamic buffer are not part of this recipe.)
    "rlx2": {
        "actor_sparsity": 0.9,
        "critic_sparsity": 0.85,
        "sparsity_distribution": "erk",
        "sparse_layers": "all",
        "mask_init": "magnitude",
        "topology_update_interval": 10_000,
        "drop_fraction": 0.5,
        "drop_fraction_schedule": "cosine",
        "grow_method": "gradient",
    },
    # Graesser et al. (2022) SAC: ERK 90% with sparse output layers, RigL every 1000 steps,
    # cosine drop fraction from 0.5, last update at 80% of training.
    "rigl": {
        "sparsity": 0.9,
        "sparsity_distribution": "erk",
        "sparse_layers": "all",
        "topology_update_interval": 1000,
        "drop_fraction": 0.5,
        "drop_fraction_schedule": "cosine",
        "grow_method": "gradient",
        "topology_update_end": 0.8,
    },
    # Static sparse training: a random mask fixed at initialisation.
    "static": {"sparsity": 0.5, "grow_method": "none"},
    # MST (2025): critic dynamic-sparse, actor static-sparse, sparsity 0.6 with ER-style init (ERK).
    # The critic's growth criterion is not in our summary of the paper: RigL is used.
    "mst": {
        "sparsity": 0.6,
        "sparsity_distribution": "erk",
        "grow_method": "gradient",
        "actor_grow_method": "none",
    },
}


def sparse_recipe(name: str, env_id: str | None = None) -> dict[str, Any]:
    """Keyword arguments of a published recipe.

    :param name: one of ``"ds_td3"``, ``"ds_sac"``, ``"rlx2"``, ``"rigl"``, ``"static"``, ``"mst"``
    :param env_id: for ``"ds_td3"`` / ``"ds_sac"``, a MuJoCo env (e.g. ``"HalfCheetah-v5"``) whose
        published Erdos-Renyi lambdas to use; without it the 50% sparsity is spread uniformly
    :return: a new dict of constructor arguments
    """
    check_choice("name", name, tuple(RECIPES))
    kwargs = copy.deepcopy(RECIPES[name])
    if env_id is not None and name in ("ds_td3", "ds_sac"):
        table = DS_TD3_LAMBDAS if name == "ds_td3" else DS_SAC_LAMBDAS
        family = env_id.split("-")[0]
        if family not in table:
            raise ValueError(f"env_id={env_id!r} has no published lambdas for {name!r}; choose one of {', '.join(table)}")
        kwargs.update(sparsity_distribution="erdos_renyi", erdos_renyi_lambdas=list(table[family]))
    return kwargs
