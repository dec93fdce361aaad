"""A Python hyperparameter file for ``sb3-sparse train -conf examples/zoo_config.py``.

Use a ``.py`` file instead of YAML when an entry needs Python objects (an activation function, a
recipe from :func:`sb3_sparse.sparse_recipe`, a schedule). rl-zoo3 runs the file and reads its
``hyperparams`` dict: one entry per env id (or ``default``), the same keys as the YAML files.

    sb3-sparse train --algo sparse_sac --env Pendulum-v1 -conf examples/zoo_config.py -n 5000
    sb3-sparse train --algo sparse_td3 --env HalfCheetah-v5 -conf examples/zoo_config.py
"""

from torch import nn

from sb3_sparse import sparse_recipe

# DS-TD3 with its published Erdos-Renyi lambdas for HalfCheetah (256-256 networks, weight decay 2e-4).
ds_td3 = sparse_recipe("ds_td3", "HalfCheetah-v5")

hyperparams = {
    # RigL as in Graesser et al. (2022): ERK 90%, every layer sparse, gradient growth, cosine drop fraction.
    "Pendulum-v1": dict(
        n_timesteps=20_000,
        policy="MlpPolicy",
        learning_rate=1e-3,
        policy_kwargs=dict(net_arch=[256, 256], activation_fn=nn.ReLU),
        **sparse_recipe("rigl"),
    ),
    "HalfCheetah-v5": dict(n_timesteps=1_000_000, policy="MlpPolicy", noise_type="normal", noise_std=0.1, **ds_td3),
    # Any other env: static sparse training (a fixed random mask) at 80% sparsity, tanh networks.
    "default": dict(
        n_timesteps=1_000_000,
        policy="MlpPolicy",
        policy_kwargs=dict(net_arch=[256, 256], activation_fn=nn.Tanh),
        sparsity=0.8,
        regime="static",
    ),
}
