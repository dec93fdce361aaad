"""Every sparse algorithm (SAC, TD3, TQC, CrossQ, DQN): short training with topology updates, exact zeros
in online and target networks, masks kept by save/load and deepcopy, unsupported spaces refused."""

import ast
import copy
import inspect
from pathlib import Path
from typing import Any

import pytest
import torch as th
from sb3_contrib.common.torch_layers import BatchRenorm1d
from sb3_contrib.crossq.policies import CrossQPolicy
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sb3_sparse import SparseCrossQ, SparseDQN, SparseSAC, SparseTD3, SparseTQC
from sb3_sparse.core.masking import get_mask, is_sparse, sparse_weights
from sb3_sparse.crossq.policies import SparseBatchRenorm1d, SparseCrossQPolicy
from sb3_sparse.dqn.policies import SparseDQNPolicy
from sb3_sparse.sac.policies import SparseSACPolicy
from sb3_sparse.td3.policies import SparseTD3Policy
from sb3_sparse.tqc.policies import SparseTQCPolicy

# name -> (algorithm class, env id)
ALGORITHMS = {
    "sac": (SparseSAC, "Pendulum-v1"),
    "td3": (SparseTD3, "Pendulum-v1"),
    "tqc": (SparseTQC, "Pendulum-v1"),
    "crossq": (SparseCrossQ, "Pendulum-v1"),
    "dqn": (SparseDQN, "CartPole-v1"),
}
UNSUPPORTED_ENV = {"Pendulum-v1": "CartPole-v1", "CartPole-v1": "Pendulum-v1"}


def tiny() -> dict[str, Any]:
    """Small networks and batches (a new dict each time: SB3 writes into ``policy_kwargs``)."""
    return {"policy_kwargs": {"net_arch": [32, 32]}, "batch_size": 32, "seed": 0}


def masks(model: Any) -> dict[str, th.Tensor]:
    return {name: get_mask(module, weight).clone() for name, module, weight in sparse_weights(model.policy)}


def check_exact_zeros(policy: nn.Module) -> None:
    """Every mask is 0/1 and every pruned weight is exactly 0 (the raw parameter, no forward pass needed)."""
    weights = list(sparse_weights(policy))
    assert weights
    for name, module, weight_name in weights:
        mask = get_mask(module, weight_name)
        assert ((mask == 0) | (mask == 1)).all(), name
        pruned = getattr(module, weight_name)[mask == 0]
        assert pruned.numel() > 0, name
        assert (pruned == 0).all(), f"{name}: {int((pruned != 0).sum())} pruned weights are not 0"


def check_targets_follow(model: Any) -> None:
    for name, binding in model.policy.sparse_bindings().items():
        if binding.target is None:
            continue
        online = {q: get_mask(m, w) for q, m, w in sparse_weights(binding.online)}
        target = {q: get_mask(m, w) for q, m, w in sparse_weights(binding.target)}
        assert online.keys() == target.keys(), name
        for qualified in online:
            assert th.equal(online[qualified], target[qualified]), f"{name}: {qualified}"


@pytest.fixture(scope="module", params=list(ALGORITHMS))
def trained(request: pytest.FixtureRequest) -> tuple[Any, dict[str, th.Tensor]]:
    """A model trained 300 steps with a topology update every 100, and its masks before training."""
    cls, env = ALGORITHMS[request.param]
    model = cls("MlpPolicy", env, learning_starts=50, topology_update_interval=100, **tiny())
    initial = masks(model)
    model.learn(300)
    return model, initial


def test_training_updates_masks_and_keeps_zeros(trained: tuple[Any, dict[str, th.Tensor]]) -> None:
    model, initial = trained
    states = model.dst_state["modules"]
    assert set(states) == set(model.policy.sparse_modules)
    for name, state in states.items():
        assert state["n_updates"] >= 2, name
        assert state["optimizer_steps"] > 0, name
    after = masks(model)
    assert after.keys() == initial.keys()
    assert any(not th.equal(after[name], initial[name]) for name in after), "no mask changed"
    for name, mask in after.items():  # SET keeps each layer's active count
        assert mask.sum() == initial[name].sum(), name
    check_exact_zeros(model.policy)
    check_targets_follow(model)


def test_save_load_keeps_masks(trained: tuple[Any, dict[str, th.Tensor]], tmp_path: Any) -> None:
    model, _ = trained
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is type(model.policy)
    before, after = masks(model), masks(loaded)
    assert before.keys() == after.keys()
    for name in before:
        assert th.equal(before[name], after[name]), name
    original = model.policy.state_dict()
    for name, value in loaded.policy.state_dict().items():
        assert th.equal(value, original[name]), name
    check_exact_zeros(loaded.policy)
    assert loaded.dst_state == model.dst_state


def test_deepcopy_keeps_masks_and_enforces_them(trained: tuple[Any, dict[str, th.Tensor]]) -> None:
    model, _ = trained
    policy = copy.deepcopy(model.policy)
    before = masks(model)
    for name, module, weight in sparse_weights(policy):
        assert th.equal(get_mask(module, weight), before[name]), name
        with th.no_grad():
            getattr(module, weight).add_(1.0)  # a write that ignores the mask
    # The copy's hooks re-apply its masks (state_dict pre-hook; a forward pass does the same).
    state = policy.state_dict()
    for name, module, weight in sparse_weights(policy):
        assert (state[name][get_mask(module, weight) == 0] == 0).all(), name
    check_exact_zeros(policy)
    check_exact_zeros(model.policy)  # the original is untouched


@pytest.mark.parametrize("key", list(ALGORITHMS))
def test_unsupported_action_space(key: str) -> None:
    cls, env = ALGORITHMS[key]
    with pytest.raises(ValueError, match=cls.__name__) as error:
        cls("MlpPolicy", UNSUPPORTED_ENV[env], **tiny())
    assert "\n" not in str(error.value)
    assert "action space" in str(error.value)


@pytest.mark.parametrize(
    ("sparse_cls", "base_cls"),
    [
        (SparseSACPolicy, SACPolicy),
        (SparseTD3Policy, TD3Policy),
        (SparseTQCPolicy, TQCPolicy),
        (SparseCrossQPolicy, CrossQPolicy),
        (SparseDQNPolicy, DQNPolicy),
    ],
)
def test_policy_signature_is_sb3s_plus_dst_config(sparse_cls: type, base_cls: type) -> None:
    """The sparse policies take SB3's / sb3-contrib's arguments (names, order, defaults, kinds), then (actor-critic
    policies) ``architecture``, then ``dst_config``."""
    base = inspect.signature(base_cls).parameters
    sparse = inspect.signature(sparse_cls).parameters
    extra = ["dst_config"] if sparse_cls is SparseDQNPolicy else ["architecture", "dst_config"]
    assert list(sparse) == [*base, *extra]
    for name, param in base.items():
        assert sparse[name].default == param.default, name
        assert sparse[name].kind == param.kind, name
        assert sparse[name].annotation == param.annotation, name
    assert all(sparse[name].default is None for name in extra)


def test_layer_roles() -> None:
    """Default sparse_layers: all but the output layers; BatchRenorm and features extractors stay dense."""
    tqc = SparseTQC("MlpPolicy", "Pendulum-v1", **tiny())
    for q_net in tqc.policy.critic.q_networks:
        layers = [m for m in q_net if isinstance(m, nn.Linear)]
        assert [is_sparse(layer) for layer in layers] == [True, True, False]
        assert layers[-1].out_features == tqc.policy.critic.n_quantiles
    crossq = SparseCrossQ("MlpPolicy", "Pendulum-v1", sparse_layers="all", **tiny())
    for network in (crossq.policy.actor, crossq.policy.critic):
        modules = list(network.modules())
        assert any(isinstance(m, BatchRenorm1d) for m in modules)
        assert all(is_sparse(m) for m in modules if isinstance(m, nn.Linear))
        assert not any(is_sparse(m, "weight") for m in modules if isinstance(m, BatchRenorm1d))
    assert crossq.policy.delayed_modules == ("actor",)
    assert all(binding.target is None for binding in crossq.policy.sparse_bindings().values())
    dqn = SparseDQN("MlpPolicy", "CartPole-v1", sparse_layers=["input", "output"], **tiny())
    layers = [m for m in dqn.policy.q_net.q_net if isinstance(m, nn.Linear)]
    assert [is_sparse(layer) for layer in layers] == [True, False, True]
    assert [name for name, _, _ in sparse_weights(dqn.policy.q_net_target)] == ["q_net.0.weight", "q_net.4.weight"]
    assert dqn.policy.inference_module == "q_net"


def test_crossq_batch_renorm_with_disconnected_units() -> None:
    """A unit with no active input is constant over the batch; after BatchRenorm's warm-up its zero variance
    must not turn the networks NaN (sb3-contrib's BatchRenorm has an infinite gradient there)."""
    model = SparseCrossQ(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=100,
        sparsity=0.9,
        policy_kwargs={"net_arch": [32], "renorm_warmup_steps": 1},
        batch_size=32,
        seed=0,
    )
    actor_input = model.policy.actor.latent_pi[1]
    assert (get_mask(actor_input).sum(dim=1) == 0).any(), "expected a unit with no active input"
    renorms = [m for m in model.policy.modules() if isinstance(m, BatchRenorm1d)]
    assert renorms and all(type(m) is SparseBatchRenorm1d for m in renorms)
    model.learn(150)
    assert all(th.isfinite(param).all() for param in model.policy.parameters())


@pytest.mark.parametrize("cls", [SparseSAC, SparseTD3, SparseTQC, SparseCrossQ, SparseDQN])
def test_misspelt_keyword_names_the_closest_argument(cls):
    env = "CartPole-v1" if cls is SparseDQN else "Pendulum-v1"
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'sparsty'; did you mean 'sparsity'\?"):
        cls("MlpPolicy", env, sparsty=0.5)


def test_unresettable_optimizer_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"optimizer of module 'actor' is Adafactor"):
        SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], "optimizer_class": th.optim.Adafactor})
    static = SparseSAC("MlpPolicy", "Pendulum-v1", regime="static", policy_kwargs={"optimizer_class": th.optim.Adafactor})
    assert type(static.critic.optimizer).__name__ == "Adafactor"  # a static mask never resets any state


ALGORITHM_FOLDERS = ("sac", "td3", "tqc", "crossq", "dqn")


@pytest.mark.parametrize("folder", ALGORITHM_FOLDERS)
def test_algorithm_folders_import_no_other(folder: str) -> None:
    """Each algorithm folder is self-contained: what it shares with the others comes from ``common/``."""
    package = Path(__file__).resolve().parents[1] / "sb3_sparse"
    others = {f"sb3_sparse.{name}" for name in ALGORITHM_FOLDERS if name != folder}
    imported = set()
    for path in (package / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                # a relative import ("from ..sac import x") is resolved against sb3_sparse.<folder>
                base = ["sb3_sparse", folder][: 2 - node.level + 1] if node.level else []
                imported.add(".".join([*base, node.module or ""]).rstrip("."))
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert any(name.startswith("sb3_sparse.common") for name in imported)  # the parser sees the imports
    assert not {name for name in imported for other in others if name == other or name.startswith(f"{other}.")}
