"""Published DST recipes as constructor arguments of the sparse algorithms.

``SparseTD3("MlpPolicy", "HalfCheetah-v5", **sparse_recipe("ds_td3", "HalfCheetah-v5", algorithm="sparse_td3"))``
trains with the DS-TD3 settings. Each recipe returns plain keyword arguments, so it can be edited,
merged with other arguments, or written into an rl-zoo3 hyperparameter file.
"""

import copy
from typing import Any

from sb3_sparse.common.buffers import DualReplayBuffer, DynamicReplayBuffer
from sb3_sparse.core.config import check_choice

# Erdos-Renyi lambdas (first layer, second layer) of DS-TD3 / DS-SAC (Sokar et al., 2022).
DS_TD3_LAMBDAS = {"HalfCheetah": (7, 64), "Hopper": (7, 64), "Walker2d": (7, 64), "Ant": (40, 64), "Humanoid": (61, 64)}
DS_SAC_LAMBDAS = {"HalfCheetah": (12, 80), "Walker2d": (12, 80), "Hopper": (7, 20), "Ant": (30, 64), "Humanoid": (61, 64)}

ACTOR_CRITIC = ("sparse_sac", "sparse_td3", "sparse_tqc", "sparse_crossq")
ON_POLICY = ("sparse_ppo", "sparse_a2c")
ALL = (*ACTOR_CRITIC, "sparse_dqn", *ON_POLICY)

# Graesser et al. (2022), PPO on MuJoCo: ERK 90% with sparse output layers, in PPO's training steps (320 per
# rollout of 2048 env steps in their runs, SB3's PPO defaults), the last mask change at 75% of training (their
# configuration files: 120k of 156k steps).
_GRAESSER_PPO = {
    "sparsity": 0.9,
    "sparsity_distribution": "erk",
    "sparse_layers": "all",
    "schedule_unit": "gradient_steps",
    "topology_update_end": 0.75,
}

# The sparse schedule of MAST's comparisons (Hu et al., 2024): every layer (of SparseDQN's Q-network; of QMIX's
# agent network and mixer hypernetworks) at 90% (ERK), a topology update every 10k env steps (about MAST's 200
# episodes), cosine drop fraction from 0.5 until 80% of the run (RigL's schedule; MAST does not publish it).
_MAST_SPARSE = {
    "sparsity": 0.9,
    "sparsity_distribution": "erk",
    "sparse_layers": "all",
    "topology_update_interval": 10_000,
    "drop_fraction": 0.5,
    "drop_fraction_schedule": "cosine",
    "topology_update_end": 0.8,
}

#: name -> (the algorithms it is for, its keyword arguments)
RECIPES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    # DS-TD3: TD3 settings of the paper (256-256 networks, not SB3's TD3 default of 400-300; the
    # lambdas are tuned for them); ER lambdas per env (see sparse_recipe), SET every 1000 steps.
    "ds_td3": (
        ("sparse_td3",),
        {
            "learning_rate": 1e-3,
            "batch_size": 100,
            "learning_starts": 25_000,
            "policy_kwargs": {"net_arch": [256, 256], "optimizer_kwargs": {"weight_decay": 2e-4}},
            "regime": "set",
            "sparsity": 0.5,
            "sparse_layers": ["input", "hidden"],
            "topology_update_interval": 1000,
            "drop_fraction": 0.05,
            "drop_fraction_schedule": "constant",
            "topology_update_end": 0.95,
        },
    ),
    # DS-SAC: SAC with alpha 0.2, zeta 0.1, SET every 1000 steps.
    "ds_sac": (
        ("sparse_sac",),
        {
            "learning_rate": 3e-4,
            "batch_size": 256,
            "ent_coef": 0.2,
            "regime": "set",
            "sparsity": 0.5,
            "sparse_layers": ["input", "hidden"],
            "topology_update_interval": 1000,
            "drop_fraction": 0.1,
            "drop_fraction_schedule": "constant",
            "topology_update_end": 0.95,
        },
    ),
    # RLx2 (Tan et al., 2023): every layer sparse (ERK, as ER overflows on small layers), magnitude init,
    # RigL with cosine drop fraction from 0.5 every 10k steps; sparsities of TD3 HalfCheetah (actor 90%,
    # critic 85%); 1-step targets until 300k env steps, then 3-step (with SAC's entropy terms); the dynamic
    # buffer drops its oldest 10% every 10k steps while the policy distance exceeds 0.2 (down to 1e5
    # transitions for TD3, 2e5 for SAC: see sparse_recipe). RLx2's code also skips the optimizer step at a
    # mask update; this recipe does not.
    "rlx2": (
        ("sparse_sac", "sparse_td3"),
        {
            "regime": "rigl",
            "sparsity_distribution": "erk",
            "sparse_layers": "all",
            "mask_init": "magnitude",
            "topology_update_interval": 10_000,
            "drop_fraction": 0.5,
            "drop_fraction_schedule": "cosine",
            "modules": {"actor": {"sparsity": 0.9}, "critic": {"sparsity": 0.85}},
            "replay_buffer_class": DynamicReplayBuffer,
            "replay_buffer_kwargs": {"n_steps": 3, "n_step_start": 300_000, "min_size": 100_000},
        },
    ),
    # MAST (Hu et al., 2024) for single-agent value learning: RigL on every layer at 90% (ERK; an update every
    # 10k env steps, about MAST's 200 episodes, cosine drop fraction from 0.5 until 80% of the run), Soft
    # Mellowmax targets (omega 10, alpha 1), 3-step returns, and dual buffers (half of each batch from the
    # newest 5000 transitions). The paper does not publish alpha, the buffer sizes or the mixing ratio.
    "mast": (
        ("sparse_dqn",),
        {
            **_MAST_SPARSE,
            "regime": "rigl",
            "target_operator": "soft_mellowmax",
            "mellowmax_omega": 10.0,
            "mellowmax_alpha": 1.0,
            "replay_buffer_class": DualReplayBuffer,
            "replay_buffer_kwargs": {"n_steps": 3, "recent_size": 5000, "recent_fraction": 0.5},
        },
    ),
    # Graesser et al. (2022) SAC: ERK 90% with sparse output layers, RigL every 1000 steps, cosine drop
    # fraction from 0.5, last update at 80% of training.
    "rigl": (
        ALL,
        {
            "regime": "rigl",
            "sparsity": 0.9,
            "sparsity_distribution": "erk",
            "sparse_layers": "all",
            "topology_update_interval": 1000,
            "drop_fraction": 0.5,
            "drop_fraction_schedule": "cosine",
            "topology_update_end": 0.8,
        },
    ),
    # SRigL (Lasby et al. 2024) on the RigL recipe above: constant fan-in per unit, drop and grow per unit, units
    # with fewer than 30% of their fan-in among the weights RigL would keep or grow ablated (the paper's gamma_sal).
    "srigl": (
        ALL,
        {
            "regime": "srigl",
            "sparsity": 0.9,
            "sparsity_distribution": "erk",
            "sparse_layers": "all",
            "topology_update_interval": 1000,
            "drop_fraction": 0.5,
            "drop_fraction_schedule": "cosine",
            "topology_update_end": 0.8,
            "ablation_threshold": 0.3,
        },
    ),
    # Graesser et al. (2022) SAC pruning: dense to 90% ERK between 20% and 80% of training, every 1000 steps.
    "gmp": (
        ALL,
        {
            "regime": "gmp",
            "sparsity": 0.9,
            "initial_sparsity": 0.0,
            "sparsity_distribution": "erk",
            "sparse_layers": "all",
            "topology_update_interval": 1000,
            "topology_update_start": 0.2,
            "topology_update_end": 0.8,
        },
    ),
    # Graesser et al. (2022) PPO: RigL every 250 training steps with drop fraction 0.3 (the paper's values; their
    # configuration files hold 1000 and 0.1), cosine decay.
    "graesser_ppo": (
        ("sparse_ppo",),
        {
            **_GRAESSER_PPO,
            "regime": "rigl",
            "topology_update_interval": 250,
            "drop_fraction": 0.3,
            "drop_fraction_schedule": "cosine",
        },
    ),
    # Graesser et al. (2022) PPO pruning: dense to 90% ERK between 20% and 75% of training, every 500 training steps.
    "gmp_ppo": (
        ("sparse_ppo",),
        {
            **_GRAESSER_PPO,
            "regime": "gmp",
            "initial_sparsity": 0.0,
            "topology_update_interval": 500,
            "topology_update_start": 0.2,
        },
    ),
    # Neuroplastic Expansion (Liu et al. 2024): from 80% to 25% sparsity by gradient growth, pruning 0.4x
    # the grown count; then drop-and-grow at 0.2 (cosine). The code's interval (100 or 10000) is not
    # settled by the paper; 1000 is used here.
    "ne": (
        ALL,
        {
            "regime": "ne",
            "initial_sparsity": 0.8,
            "sparsity": 0.25,
            "sparsity_distribution": "erk",
            "topology_update_interval": 1000,
            "drop_fraction": 0.2,
            "drop_fraction_schedule": "cosine",
            "topology_update_end": 0.8,
        },
    ),
    # SET (Mocanu et al. 2018) as DS-SAC applies it, for any algorithm: 50% uniform, 10% of each layer's
    # active weights dropped by magnitude and regrown at random every 1000 steps until 95% of the run.
    "set": (
        ALL,
        {
            "regime": "set",
            "sparsity": 0.5,
            "topology_update_interval": 1000,
            "drop_fraction": 0.1,
            "drop_fraction_schedule": "constant",
            "topology_update_end": 0.95,
        },
    ),
    # Static sparse training: a random mask fixed at initialisation.
    "static": (ALL, {"regime": "static", "sparsity": 0.5}),
    # MST (2025), module-specific DST for residual LayerNorm networks (use it with "SimbaPolicy", whose
    # encoder is dense unless `modules` names it): critic dynamic-sparse, actor static-sparse, sparsity 0.6
    # with ER-style layer densities ("erk": ER with any density that would exceed 1 redistributed, which
    # SimBa's narrow input projections need). The paper does not publish the critic's growth criterion or
    # schedule: RigL with Graesser et al.'s SAC schedule is used (an update every 1000 steps, drop fraction
    # 0.5 decaying by cosine, last update at 80% of the run).
    "mst": (
        ACTOR_CRITIC,
        {
            "sparsity": 0.6,
            "sparsity_distribution": "erk",
            "modules": {
                "actor": {"regime": "static"},
                "critic": {
                    "regime": "rigl",
                    "topology_update_interval": 1000,
                    "drop_fraction": 0.5,
                    "drop_fraction_schedule": "cosine",
                    "topology_update_end": 0.8,
                },
            },
        },
    ),
}


#: The multi-agent learners, which take the recipes of :data:`MULTI_AGENT_RECIPES` under the same names.
MULTI_AGENT = ("qmix", "vdn")

#: name -> keyword arguments of :class:`~sb3_sparse.marl.QMIX` / :class:`~sb3_sparse.marl.VDN`: MAST and the
#: sparse baselines of its paper (its *Tiny* baseline, a dense policy of the same size, is
#: :func:`sb3_sparse.marl.policies.tiny_policy_kwargs`).
MULTI_AGENT_RECIPES: dict[str, dict[str, Any]] = {
    "static": {**_MAST_SPARSE, "regime": "static"},
    "set": {**_MAST_SPARSE, "regime": "set"},
    "rigl": {**_MAST_SPARSE, "regime": "rigl"},
    # RLx2's pieces that apply to episodes: RigL with 3-step targets (its dynamic buffer ranks transitions by
    # policy distance, which episode batches do not have)
    "rlx2": {**_MAST_SPARSE, "regime": "rigl", "n_steps": 3},
    # MAST: RigL, Soft Mellowmax targets (omega 10; alpha 1 is ours), hybrid targets: TD(lambda) for the first
    # half of the run, 3-step returns after it, and dual buffers (half of each batch from the newest 100
    # episodes). MAST does not publish lambda, the switch point, the buffer sizes or the mixing ratio:
    # lambda 0.6 is pymarl2's QMIX value, the rest are ours.
    "mast": {
        **_MAST_SPARSE,
        "regime": "rigl",
        "target_operator": "soft_mellowmax",
        "mellowmax_omega": 10.0,
        "mellowmax_alpha": 1.0,
        "td_lambda": 0.6,
        "td_lambda_end": 0.5,
        "n_steps": 3,
        "replay_buffer_class": "dual",
        "replay_buffer_kwargs": {"recent_size": 100, "recent_fraction": 0.5},
    },
}


def recipe_algorithms(name: str) -> tuple[str, ...]:
    """The algorithm names (``sparse_sac``, ...) that recipe ``name`` is for."""
    check_choice("recipe", name, tuple(RECIPES))
    return RECIPES[name][0] + (MULTI_AGENT if name in MULTI_AGENT_RECIPES else ())


def sparse_recipe(name: str, env_id: str | None = None, algorithm: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a published recipe.

    :param name: one of ``"ds_td3"``, ``"ds_sac"``, ``"rlx2"``, ``"mast"``, ``"rigl"``, ``"srigl"``, ``"gmp"``,
        ``"graesser_ppo"``, ``"gmp_ppo"``, ``"ne"``, ``"set"``, ``"static"``, ``"mst"``
    :param env_id: for ``"ds_td3"`` / ``"ds_sac"``, a MuJoCo env (e.g. ``"HalfCheetah-v5"``) whose
        published Erdos-Renyi lambdas to use; without it the 50% sparsity is spread uniformly
    :param algorithm: the algorithm name it will be used with (e.g. ``"sparse_sac"``; ``"qmix"`` / ``"vdn"``
        get the multi-agent form of ``"mast"``, ``"rigl"``, ``"set"``, ``"static"`` and ``"rlx2"``, see
        :data:`MULTI_AGENT_RECIPES`): raises if the recipe is not for it; ``"rlx2"`` with ``"sparse_sac"`` keeps at
        least 2e5 transitions in its buffer (1e5 otherwise)
    :param overrides: arguments to add; one that the recipe also sets raises (pass it after editing the dict instead)
    :return: a new dict of constructor arguments
    """
    algorithms = recipe_algorithms(name)
    if algorithm is not None and algorithm not in algorithms:
        raise ValueError(f"recipe {name!r} is for {', '.join(algorithms)}, not {algorithm!r}")
    kwargs = copy.deepcopy(MULTI_AGENT_RECIPES[name] if algorithm in MULTI_AGENT else RECIPES[name][1])
    if env_id is not None and name in ("ds_td3", "ds_sac"):
        table = DS_TD3_LAMBDAS if name == "ds_td3" else DS_SAC_LAMBDAS
        family = env_id.split("-")[0]
        if family not in table:
            raise ValueError(f"env_id={env_id!r} has no published lambdas for {name!r}; choose one of {', '.join(table)}")
        kwargs.update(sparsity_distribution="erdos_renyi", erdos_renyi_lambdas=list(table[family]))
    if name == "rlx2" and algorithm == "sparse_sac":
        kwargs["replay_buffer_kwargs"]["min_size"] = 200_000
    clash = sorted(set(overrides) & set(kwargs))
    if clash:
        raise ValueError(f"recipe {name!r} already sets {clash}; edit the returned dict to change them")
    return {**kwargs, **overrides}
