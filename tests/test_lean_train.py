"""The lean training steps: the same mathematics as SB3's and sb3-contrib's ``train``, less work."""

import types
from typing import Any

import gymnasium as gym
import pytest
import torch as th
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import set_random_seed
from torch import nn

from sb3_sparse import SparseCrossQ, SparseSAC, SparseTD3, SparseTQC
from sb3_sparse.common.training import no_gradient_for, parameters_not_in, polyak_update
from sb3_sparse.core.masking import sparse_weights, weight_state

ALGORITHMS = {
    "sac": (SparseSAC, SAC),
    "td3": (SparseTD3, TD3),
    "tqc": (SparseTQC, TQC),
    "crossq": (SparseCrossQ, CrossQ),
}

SETTINGS = {
    "dense": {"regime": "dense"},
    # grows by the critic's dense gradients at step 64 (the models below train from step 60 to 66)
    "rigl-0.9": {"regime": "rigl", "sparsity": 0.9, "topology_update_interval": 64},
    "set-0.9-csr": {"regime": "set", "sparsity": 0.9, "backend": "csr"},  # the CSR product's own backward
}


def build(algo: str, **kwargs: Any) -> Any:
    sparse_class, _ = ALGORITHMS[algo]
    model = sparse_class(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=50,
        batch_size=32,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
        **kwargs,
    )
    set_random_seed(1)
    model.learn(60)
    return model


def record_optimizer_gradients(model: Any) -> dict[str, list[th.Tensor]]:
    """The gradients each optimizer steps on, recorded at its steps."""
    seen: dict[str, list[th.Tensor]] = {}
    for name in ("actor", "critic"):
        optimizer = getattr(model, name).optimizer

        def record(optimizer: th.optim.Optimizer, *args: Any, name: str = name) -> None:
            seen.setdefault(name, []).extend(p.grad.clone() for g in optimizer.param_groups for p in g["params"])

        optimizer.register_step_pre_hook(record)
    return seen


def logged(model: Any) -> dict[str, float]:
    return {key: value for key, value in model.logger.name_to_value.items() if key.startswith("train/")}


def state(model: Any) -> dict[str, th.Tensor]:
    tensors = {f"policy.{key}": value for key, value in model.policy.state_dict().items()}
    if getattr(model, "log_ent_coef", None) is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach()
    for name, module, weight in sparse_weights(model.critic):
        dense_grad = weight_state(module, weight).dense_grad
        if dense_grad is not None:
            tensors[f"dense_grad.{name}"] = dense_grad
    return tensors


def assert_same_step(algo: str, steps: int = 6, **kwargs: Any) -> None:
    """Train two identical models on; one runs SB3's ``train``: same losses, optimizer gradients, parameters."""
    ours, sb3 = build(algo, **kwargs), build(algo, **kwargs)
    sb3.train = types.MethodType(ALGORITHMS[algo][1].train, sb3)
    grads = {}
    for model, label in ((ours, "ours"), (sb3, "sb3")):
        grads[label] = record_optimizer_gradients(model)
        set_random_seed(2)
        model.learn(steps, reset_num_timesteps=False)
    assert logged(ours).keys() == logged(sb3).keys()
    for key, value in logged(sb3).items():
        assert logged(ours)[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    assert grads["ours"].keys() == grads["sb3"].keys() == {"actor", "critic"}
    for name in grads["sb3"]:
        th.testing.assert_close(grads["ours"][name], grads["sb3"][name])
    ours_state, sb3_state = state(ours), state(sb3)
    assert ours_state.keys() == sb3_state.keys()
    th.testing.assert_close(ours_state, sb3_state)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_step_equals_sb3(algo: str, setting: str) -> None:
    assert_same_step(algo, **SETTINGS[setting])


@pytest.mark.parametrize("algo", ["td3", "crossq"])
def test_step_equals_sb3_policy_delay_and_gradient_steps(algo: str) -> None:
    assert_same_step(algo, policy_delay=3, gradient_steps=2, regime="set", sparsity=0.8)


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_step_equals_sb3_fixed_ent_coef_and_target_interval(algo: str) -> None:
    assert_same_step(algo, ent_coef=0.1, target_update_interval=2, gradient_steps=2, regime="set", sparsity=0.8)


def test_crossq_step_equals_contrib_fixed_ent_coef() -> None:
    assert_same_step("crossq", ent_coef=0.1, policy_delay=1, regime="rigl", sparsity=0.8, topology_update_interval=64)


@pytest.mark.parametrize("algo", ["sac", "tqc", "crossq"])
def test_step_equals_sb3_with_sde(algo: str) -> None:
    assert_same_step(algo, use_sde=True, regime="static", sparsity=0.5)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_rigl_grows_by_the_critic_loss_alone(algo: str) -> None:
    """The dense gradients that gradient growth reads are the critic loss's: the actor loss leaves them alone."""
    # CrossQ trains its actor at the last of these steps only with policy_delay=1
    delay = {"policy_delay": 1} if algo == "crossq" else {}
    model = build(algo, regime="rigl", sparsity=0.9, topology_update_interval=67, **delay)
    model.learn(6, reset_num_timesteps=False)  # dense gradients kept at the last step before the update at 67
    # the last dense gradient seen is the one committed at the critic's optimizer step
    states = {name: weight_state(module, weight) for name, module, weight in sparse_weights(model.critic)}
    assert states
    for name, tracked in states.items():
        assert tracked.dense_grad is not None and tracked.last_dense_grad is tracked.dense_grad, name


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_actor_loss_leaves_critic_gradients_and_flags(algo: str) -> None:
    """After the steps the critic's gradients are the ones its optimizer last stepped on (SB3's ``train`` leaves
    the actor loss's there), and every critic parameter takes gradients again."""
    model = build(algo, regime="set", sparsity=0.5)
    model.train(2, 32)
    recorded = record_optimizer_gradients(model)
    model.train(3, 32)  # TD3 updates its actor at every second step, CrossQ at every third
    assert len(recorded["actor"]) > 0
    assert all(param.requires_grad for param in model.critic.parameters())
    critic_params = [param for group in model.critic.optimizer.param_groups for param in group["params"]]
    last_step = recorded["critic"][-len(critic_params) :]
    assert all(th.equal(param.grad, grad) for param, grad in zip(critic_params, last_step, strict=True))


class LinearExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: gym.spaces.Box):
        super().__init__(observation_space, features_dim=8)
        self.linear = nn.Linear(observation_space.shape[0], 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.relu(self.linear(observations))


def test_shared_features_extractor_still_learns_from_the_actor_loss() -> None:
    """A features extractor that the actor shares with the critic belongs to the actor: it is not frozen."""
    policy_kwargs = {"net_arch": [16], "features_extractor_class": LinearExtractor, "share_features_extractor": True}
    model = SparseSAC("MlpPolicy", "Pendulum-v1", learning_starts=0, batch_size=8, policy_kwargs=policy_kwargs, seed=0)
    shared = list(model.actor.features_extractor.parameters())
    critic_only = parameters_not_in(model.critic, model.actor)
    assert shared and not {id(param) for param in shared} & {id(param) for param in critic_only}
    assert len(critic_only) == len(list(model.critic.parameters())) - len(shared)
    before = [param.detach().clone() for param in shared]
    model.learn(4)
    assert all(not th.equal(old, param) for old, param in zip(before, shared, strict=True))


def test_no_gradient_for_restores_the_flags_after_an_error() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(RuntimeError), no_gradient_for(list(layer.parameters())):
        assert not layer.weight.requires_grad
        raise RuntimeError
    assert layer.weight.requires_grad and layer.bias.requires_grad


def test_polyak_update_equals_sb3() -> None:
    from stable_baselines3.common.utils import polyak_update as sb3_polyak_update

    th.manual_seed(0)
    params = [th.randn(5, 3), th.randn(3)]
    ours = [th.randn(5, 3), th.randn(3)]
    sb3 = [tensor.clone() for tensor in ours]
    polyak_update(params, ours, 0.005)
    sb3_polyak_update(params, sb3, 0.005)
    assert all(th.equal(a, b) for a, b in zip(ours, sb3, strict=True))
    with pytest.raises(ValueError, match="2 parameters for 1 target"):
        polyak_update(params, ours[:1], 0.005)


def test_parameters_a_user_froze_stay_frozen() -> None:
    """Only trainable parameters are switched off and on again: one the user froze is left alone."""
    model = SparseSAC("MlpPolicy", "Pendulum-v1", learning_starts=0, batch_size=8, policy_kwargs={"net_arch": [8]})
    frozen = model.critic.q_networks[0][-1].bias
    frozen.requires_grad_(False)
    assert all(param is not frozen for param in parameters_not_in(model.critic, model.actor))
    model.learn(2)
    assert not frozen.requires_grad
