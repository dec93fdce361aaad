"""SimBa / BRO residual policies (dense with SB3, sparse with the engine), the encoder module, RSNorm, and the
sparsity invariants of every module regime combination (online and target, after load)."""

import copy
import io
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import SAC, TD3
from test_invariants import InvariantChecker, active_counts, check_exact_zeros, check_targets_match, masks
from torch import nn

from sb3_sparse import SparseCrossQ, SparseSAC, SparseTD3, SparseTQC, sparse_recipe
from sb3_sparse.common.architectures import (
    BroBlock,
    ResidualEncoder,
    RunningNorm,
    SimbaBlock,
    block_width,
    residual_mlp,
)
from sb3_sparse.common.policies import ENCODER
from sb3_sparse.core.masking import get_mask, sparse_weights
from sb3_sparse.core.optim import fresh_state
from sb3_sparse.crossq.policies import BroCrossQPolicy, SimbaCrossQPolicy
from sb3_sparse.registry import get_algorithm
from sb3_sparse.sac.policies import BroSACPolicy, SimbaSACPolicy, SparseSimbaSACPolicy
from sb3_sparse.td3.policies import BroTD3Policy, SimbaTD3Policy
from sb3_sparse.tqc.policies import BroTQCPolicy, SimbaTQCPolicy

SPARSE = {"sac": SparseSAC, "td3": SparseTD3, "tqc": SparseTQC, "crossq": SparseCrossQ}
DENSE = {
    "sac": (SAC, SimbaSACPolicy, BroSACPolicy),
    "td3": (TD3, SimbaTD3Policy, BroTD3Policy),
    "tqc": (TQC, SimbaTQCPolicy, BroTQCPolicy),
    "crossq": (CrossQ, SimbaCrossQPolicy, BroCrossQPolicy),
}
TINY = {"net_arch": {"pi": [8], "qf": [16, 16]}}
REGIMES = ["dense", "static", "set", "rigl", "gmp", "ne"]


def linear_roles(network: nn.Module) -> list[tuple[int, int]]:
    return [(layer.in_features, layer.out_features) for layer in network.modules() if isinstance(layer, nn.Linear)]


def test_simba_and_bro_bodies():
    simba = nn.Sequential(*residual_mlp("simba", 5, 2, [16, 16]))
    assert [type(m) for m in simba] == [nn.Linear, SimbaBlock, SimbaBlock, nn.LayerNorm, nn.Linear]
    assert linear_roles(simba) == [(5, 16), (16, 64), (64, 16), (16, 64), (64, 16), (16, 2)]
    block = simba[1].layers
    assert [type(m) for m in block] == [nn.LayerNorm, nn.Linear, nn.ReLU, nn.Linear]  # pre-LayerNorm
    bro = nn.Sequential(*residual_mlp("bro", 5, 1, [8], squash_output=True))
    assert [type(m) for m in bro] == [nn.Linear, nn.LayerNorm, nn.ReLU, BroBlock, nn.Linear, nn.Tanh]
    assert [type(m) for m in bro[3].layers] == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm]  # post-LN
    x = th.randn(4, 8)
    with th.no_grad():  # the skip: a block whose branch outputs 0 is the identity
        for layer in (bro[3].layers[3], bro[3].layers[4]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        assert th.equal(bro[3](x), x)


@pytest.mark.parametrize("net_arch", [[], [64, 32], [0], [16.0]])
def test_residual_net_arch_is_checked(net_arch):
    with pytest.raises(ValueError, match="one width per residual block, all equal"):
        block_width("simba", net_arch)


def test_bad_net_arch_and_architecture_fail_at_construction():
    with pytest.raises(ValueError, match=r"net_arch\['qf'\]=\[64, 32\] is not valid for architecture 'simba'"):
        SparseSAC("SimbaPolicy", "Pendulum-v1", policy_kwargs={"net_arch": {"pi": [8], "qf": [64, 32]}})
    with pytest.raises(ValueError, match=r"architecture='simbaa' is not valid .*did you mean 'simba'"):
        residual_mlp("simbaa", 3, 1, [8])


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=5), seed=st.integers(0, 100))
def test_running_norm_matches_the_statistics_of_all_batches(sizes, seed):
    generator = np.random.default_rng(seed)
    batches = [generator.normal(3.0, 2.0, size=(n, 3)).astype(np.float32) for n in sizes]
    norm = RunningNorm(3)
    for batch in batches:
        norm(th.as_tensor(batch))
    data = np.concatenate(batches)
    assert norm.running_count.item() == len(data)
    np.testing.assert_allclose(norm.running_mean.numpy(), data.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.running_var.numpy(), data.var(0), rtol=1e-3, atol=1e-4)
    norm.eval()  # evaluation and acting do not move the statistics
    before = norm.running_mean.clone()
    out = norm(th.ones(2, 3) * 100)
    assert th.equal(norm.running_mean, before)
    assert th.allclose(out, (100 - before) / th.sqrt(norm.running_var + norm.eps))


@pytest.mark.parametrize("algo", DENSE)
@pytest.mark.parametrize("kind", ["simba", "bro"])
def test_dense_policies_train_with_plain_sb3(algo, kind, tmp_path):
    algorithm, simba, bro = DENSE[algo]
    policy = simba if kind == "simba" else bro
    model = algorithm(policy, "Pendulum-v1", learning_starts=20, batch_size=16, policy_kwargs=dict(TINY), seed=0)
    model.learn(60)
    assert type(model.policy) is policy
    assert not masks_of(model.policy)
    assert isinstance(model.policy.actor.optimizer, th.optim.AdamW)
    assert model.policy.actor.optimizer.defaults["weight_decay"] == 1e-2
    assert get_algorithm(f"sparse_{algo}").dense_policy("SimbaPolicy" if kind == "simba" else "BroPolicy") is policy
    norms = [m for m in model.policy.modules() if isinstance(m, RunningNorm)]
    assert bool(norms) == (kind == "simba")  # SimBa normalises observations (RSNorm), BRO does not
    model.save(tmp_path / "model")
    loaded = algorithm.load(tmp_path / "model")
    obs = np.zeros((4, 3), dtype=np.float32)
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for name, value in model.policy.state_dict().items():
        assert th.equal(value, loaded.policy.state_dict()[name]), name


def masks_of(policy: nn.Module) -> list[str]:
    return [name for name, _, _ in sparse_weights(policy)]


def test_simba_defaults_are_the_published_ones():
    model = SparseSAC("SimbaPolicy", "Pendulum-v1")
    actor, critic = model.policy.actor, model.policy.critic
    assert linear_roles(actor.latent_pi) == [(3, 128), (128, 512), (512, 128)]  # 128 x 1 block
    assert linear_roles(critic.qf0)[:1] == [(4, 512)] and len(linear_roles(critic.qf0)) == 6  # 512 x 2 blocks + head
    assert isinstance(actor.features_extractor, ResidualEncoder)
    assert isinstance(actor.features_extractor.norm, RunningNorm)
    assert set(model.policy.module_configs) == {"actor", "critic", "encoder"}
    assert model.policy.module_configs["encoder"].regime == "dense"  # the flat settings do not reach it


@pytest.mark.parametrize("algo", SPARSE)
@pytest.mark.parametrize("policy", ["SimbaPolicy", "BroPolicy"])
def test_sparse_residual_roles_and_counts(algo, policy):
    """Projection ``input``, block layers ``hidden``, heads ``output``: each masked layer has its uniform count."""
    model = SPARSE[algo](policy, "Pendulum-v1", sparsity=0.75, sparse_layers=["input", "hidden"], policy_kwargs=dict(TINY))
    for module in ("actor", "critic"):
        online = model.policy.sparse_bindings()[module].online
        sparse = {name for name, _, _ in sparse_weights(online)}
        linears = [name for name, m in online.named_modules() if isinstance(m, nn.Linear) and "features_extractor" not in name]
        heads = {name for name in linears if name in ("mu", "log_std")}  # Gaussian actors' heads
        for chain in ("qf0", "qf1", "mu"):  # the last layer of each Q-network and of TD3's actor
            heads |= {[name for name in linears if name.startswith(f"{chain}.")][-1]} if f"{chain}.0" in linears else set()
        assert sparse == {f"{name}.weight" for name in linears if name not in heads}, module
        for _, owner, weight in sparse_weights(online):
            assert int(get_mask(owner, weight).sum()) == round(0.25 * getattr(owner, weight).numel())


def test_encoder_module_sparse_shared_or_one_each():
    for share in (False, True):
        model = SparseTD3(
            "SimbaPolicy",
            "Pendulum-v1",
            learning_starts=20,
            batch_size=16,
            topology_update_interval=30,
            regime="rigl",
            modules={"encoder": {"sparsity": 0.7}},
            policy_kwargs={**TINY, "share_features_extractor": share, "features_extractor_kwargs": {"net_arch": [8]}},
            seed=0,
        )
        binding = model.policy.sparse_bindings()["encoder"]
        encoders = {id(model.policy.actor.features_extractor), id(model.policy.critic.features_extractor)}
        assert len(encoders) == (1 if share else 2)
        assert len(list(sparse_weights(binding.online))) == 3 * len(encoders)  # projection + a block's 2 layers
        assert binding.optimizer is model.policy.critic.optimizer
        assert binding.other_optimizers == (model.policy.actor.optimizer,)
        model.learn(100)
        assert model.dst_state["modules"]["encoder"]["n_updates"] >= 2
        check_exact_zeros(model.policy)
        check_targets_match(model.policy)


def test_encoder_update_resets_the_state_of_both_optimizers():
    """A copy of the encoder in the actor is stepped by the actor's optimizer: its grown weights start fresh too."""
    model = SparseSAC(
        "SimbaPolicy",
        "Pendulum-v1",
        learning_starts=20,
        batch_size=16,
        topology_update_interval=1000,
        regime="set",
        drop_fraction=0.5,
        modules={"encoder": {"sparsity": 0.5}},
        policy_kwargs={**TINY, "features_extractor_kwargs": {"net_arch": [8]}},
        seed=0,
    )
    model.learn(60)
    engine_binding = model.policy.sparse_bindings()["encoder"]
    layer = model.policy.actor.features_extractor.encoder[0]
    before = get_mask(layer, "weight").clone()
    from sb3_sparse.core.engine import SparseEngine

    engine = SparseEngine(model.policy.module_configs, copy.deepcopy(model.dst_state))
    assert engine.update("encoder", engine_binding, progress=0.0, step=60)
    grown = get_mask(layer, "weight").bool() & ~before.bool()
    assert grown.any()
    state = model.policy.actor.optimizer.state[layer.weight]
    for name, fresh in fresh_state(model.policy.actor.optimizer, layer.weight).items():
        if name in state and fresh.shape == layer.weight.shape:
            assert th.equal(state[name][grown], fresh[grown]), name
    assert (layer.weight[grown] == 0).all()


@pytest.mark.parametrize("algo", SPARSE)
def test_running_statistics_follow_into_the_targets(algo):
    model = SPARSE[algo]("SimbaPolicy", "Pendulum-v1", learning_starts=20, batch_size=16, policy_kwargs=dict(TINY), seed=0)
    model.learn(60)
    norm = model.policy.critic.features_extractor.norm
    assert norm.running_count > 0
    target = getattr(model.policy, "critic_target", None)
    if target is not None:  # SB3 copies every running_* buffer into the target with the BatchNorm statistics
        assert th.equal(target.features_extractor.norm.running_mean, norm.running_mean)


def combinations() -> list[tuple[str, str, str, str]]:
    """(algorithm, encoder, actor, critic regimes): a Latin square over the six regimes (the three transitions
    among them), so every pair of regimes meets in any two modules; the algorithm rotates over the four."""
    rows = []
    for i, actor in enumerate(REGIMES):
        for j, critic in enumerate(REGIMES):
            index = i * len(REGIMES) + j
            rows.append((list(SPARSE)[index % len(SPARSE)], REGIMES[(i + j) % len(REGIMES)], actor, critic))
    return rows


def module_settings(regime: str) -> dict[str, object]:
    sparsity, initial = {"gmp": (0.8, 0.0), "ne": (0.3, 0.8)}.get(regime, (0.6, 0.6))
    return {"regime": regime, "sparsity": sparsity, "initial_sparsity": initial if regime in ("gmp", "ne") else None}


@pytest.mark.parametrize("algo,encoder,actor,critic", combinations())
def test_every_module_regime_combination_keeps_the_invariants(algo, encoder, actor, critic, tmp_path):
    """Exact zeros in online and target networks after every step, target masks equal to the online ones, active
    counts constant (gmp only down, ne only up); the same after save and load, and while training continues."""
    regimes = {"encoder": encoder, "actor": actor, "critic": critic}
    kwargs = dict(
        learning_starts=20,
        batch_size=16,
        topology_update_interval=20,
        drop_fraction=0.3,
        topology_update_end=60,
        sparse_layers="all",
        modules={name: {k: v for k, v in module_settings(r).items() if v is not None} for name, r in regimes.items()},
        policy_kwargs={**TINY, "features_extractor_kwargs": {"net_arch": [8]}},
        seed=0,
    )
    model = SPARSE[algo]("SimbaPolicy", "Pendulum-v1", **kwargs)
    initial = {name: module_settings(r)["initial_sparsity"] for name, r in regimes.items()}
    density = {
        name: 1.0 if r == "dense" else 1 - (0.6 if initial[name] is None else initial[name]) for name, r in regimes.items()
    }
    trend = {name: {"gmp": "down", "ne": "up"}.get(r, "constant") for name, r in regimes.items()}
    checker = InvariantChecker(density, trend)
    model.learn(80, callback=checker)
    for name, regime in regimes.items():
        assert model.dst_state["modules"][name]["n_updates"] == (0 if regime in ("dense", "static") else 2), name  # 40, 60
    model.save(tmp_path / "model")
    loaded = SPARSE[algo].load(tmp_path / "model", env=gym.make("Pendulum-v1"))
    assert {k: v.tolist() for k, v in masks(loaded.policy).items()} == {k: v.tolist() for k, v in masks(model.policy).items()}
    assert loaded.dst_state == model.dst_state
    check_exact_zeros(loaded.policy)
    check_targets_match(loaded.policy)
    counts = active_counts(loaded.policy)
    final = {name: 1.0 if r == "dense" else 1 - float(module_settings(r)["sparsity"]) for name, r in regimes.items()}
    loaded.learn(20, reset_num_timesteps=False, callback=InvariantChecker(final, {n: "constant" for n in regimes}))
    assert active_counts(loaded.policy) == counts  # the windows ended at step 60: nothing changes any more
    buffer = io.BytesIO()
    pickle.dump(loaded.policy, buffer)
    check_exact_zeros(copy.deepcopy(loaded.policy))


def test_mst_recipe_on_simba():
    kwargs = sparse_recipe("mst", algorithm="sparse_sac")
    model = SparseSAC("SimbaPolicy", "Pendulum-v1", learning_starts=20, batch_size=16, policy_kwargs=dict(TINY), **kwargs)
    configs = model.policy.module_configs
    assert (configs["encoder"].regime, configs["actor"].regime, configs["critic"].regime) == ("dense", "static", "rigl")
    assert configs["actor"].sparsity == configs["critic"].sparsity == 0.6
    assert configs["critic"].sparsity_distribution == "erk"
    model.learn(50)
    check_exact_zeros(model.policy)


def test_image_encoder_is_a_module_of_its_own():
    """With images, any SB3 extractor is the encoder: NatureCNN's convolutions and linear layer, sparse on request."""
    from stable_baselines3.common.torch_layers import NatureCNN
    from test_save_load import TinyImageEnv

    model = SparseSAC(
        "SimbaPolicy",
        TinyImageEnv(),
        learning_starts=5,
        batch_size=4,
        buffer_size=50,
        regime="static",
        modules={"encoder": {"sparsity": 0.5}},
        policy_kwargs={**TINY, "features_extractor_class": NatureCNN, "share_features_extractor": True},
    )
    encoder = {name for name, _, _ in sparse_weights(model.policy.sparse_bindings()["encoder"].online)}
    assert encoder == {"critic.cnn.0.weight", "critic.cnn.2.weight", "critic.cnn.4.weight", "critic.linear.0.weight"}
    model.learn(20)
    check_exact_zeros(model.policy)
    check_targets_match(model.policy)


def test_simba_and_mst_from_the_zoo_cli(tmp_path):
    from test_zoo_cli import cli

    (tmp_path / "mst.yml").write_text(
        """Pendulum-v1:
  policy: 'SimbaPolicy'
  n_timesteps: 200
  learning_starts: 50
  policy_kwargs: "dict(net_arch=dict(pi=[8], qf=[16, 16]))"
  sparsity: 0.6
  sparsity_distribution: erk
  topology_update_interval: 50
  modules: {actor: {regime: static}, critic: {regime: rigl}}
"""
    )
    result = cli("train", "--algo", "sparse_sac", "--env", "Pendulum-v1", "-conf", "mst.yml", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0
    model = SparseSAC.load(tmp_path / "logs" / "sparse_sac" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert type(model.policy).__name__ == "SparseSimbaSACPolicy"
    configs = model.policy.module_configs
    assert (configs["encoder"].regime, configs["actor"].regime, configs["critic"].regime) == ("dense", "static", "rigl")
    assert model.dst_state["modules"]["critic"]["n_updates"] >= 2
    # the dense SAC of the same command, with the dense counterpart of the alias
    dense = cli(
        "train",
        "--algo",
        "sac",
        "--env",
        "Pendulum-v1",
        "-n",
        "100",
        "-params",
        "learning_starts:50",
        "policy:'SimbaPolicy'",
        cwd=tmp_path,
    )
    assert dense.returncode == 0
    assert type(SAC.load(tmp_path / "logs" / "sac" / "Pendulum-v1_1" / "Pendulum-v1.zip").policy) is SimbaSACPolicy


def test_inference_flops_include_the_actors_encoder():
    from sb3_sparse import flops_report

    model = SparseSAC(
        "SimbaPolicy",
        "Pendulum-v1",
        modules={"encoder": {"regime": "static", "sparsity": 0.5}},
        policy_kwargs={**TINY, "features_extractor_kwargs": {"net_arch": [8]}},
    )
    report = flops_report(model)
    encoder = 3 * 8 + 8 * 32 + 32 * 8  # projection, then one SimBa block (8 -> 32 -> 8)
    actor = 8 * 8 + 8 * 32 + 32 * 8 + 2 * 8  # the same on the encoder's 8 features, then mu and log_std
    assert report["dense_inference_flops"] == encoder + actor
    assert report["inference_flops"] < report["dense_inference_flops"]


BLOCKS = {"simba": SimbaBlock, "bro": BroBlock}


def blocks(network: nn.Module) -> set[type]:
    return {type(m) for m in network.modules() if isinstance(m, (SimbaBlock, BroBlock))}


@pytest.mark.parametrize("algo", SPARSE)
@pytest.mark.parametrize("architecture", ["simba", "bro"])
@pytest.mark.parametrize("sparse", [True, False])
def test_architecture_setting_on_every_algorithm(algo, architecture, sparse, tmp_path):
    """``policy_kwargs=dict(architecture=...)``: residual actor and critics for the sparse algorithm's ``MlpPolicy``
    and for the dense algorithm with the package's policy class; SB3's optimizer and features extractor stay."""
    dense_algorithm = DENSE[algo][0]
    policy_kwargs = {**TINY, "architecture": architecture}
    if sparse:
        algorithm, policy = SPARSE[algo], "MlpPolicy"
        kwargs = {"regime": "static", "sparsity": 0.5}
    else:  # plain SB3: the policy class of the sparse algorithm, trained dense
        algorithm, policy = dense_algorithm, SPARSE[algo].policy_aliases["MlpPolicy"]
        policy_kwargs["dst_config"] = {"regime": "dense"}
        kwargs = {}
    model = algorithm(policy, "Pendulum-v1", learning_starts=20, batch_size=16, policy_kwargs=policy_kwargs, seed=0, **kwargs)
    for network in (model.policy.actor, model.policy.critic):
        assert blocks(network) == {BLOCKS[architecture]}, network
    assert set(model.policy.module_configs) == {"actor", "critic"}  # the features extractor is not a module
    assert type(model.policy.actor.optimizer) is th.optim.Adam  # SB3's default (the presets choose AdamW)
    assert bool(masks_of(model.policy)) == sparse
    model.learn(40)
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model")
    assert loaded.policy.architecture == architecture and blocks(loaded.policy.critic) == {BLOCKS[architecture]}
    for name, value in model.policy.state_dict().items():
        assert th.equal(value, loaded.policy.state_dict()[name]), name


def test_architecture_defaults_its_widths_and_checks_net_arch():
    model = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"architecture": "simba"})
    assert linear_roles(model.policy.actor.latent_pi)[0] == (3, 128)  # SimBa's actor: 128 x 1 block
    assert linear_roles(model.policy.critic.qf0)[0] == (4, 512)
    assert not isinstance(model.policy.actor.features_extractor, ResidualEncoder)
    with pytest.raises(ValueError, match=r"net_arch=\[64, 32\] is not valid for architecture 'bro'"):
        SparseTD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"architecture": "bro", "net_arch": [64, 32]})
    with pytest.raises(ValueError, match=r"architecture='simbaa' is not valid .*did you mean 'simba'"):
        SparseTQC("MlpPolicy", "Pendulum-v1", policy_kwargs={"architecture": "simbaa"})


@pytest.mark.parametrize("algo", SPARSE)
def test_old_class_names_still_work(algo):
    """The preset names of 0.1.0: the policy aliases of the sparse algorithms, and the dense classes for the dense
    algorithms (dense unless ``dst_config`` says otherwise), all presets of the algorithm's one policy class."""
    import importlib

    policies = importlib.import_module(f"sb3_sparse.{algo}.policies")
    suffix = {"sac": "SAC", "td3": "TD3", "tqc": "TQC", "crossq": "CrossQ"}[algo]
    base = getattr(policies, f"Sparse{suffix}Policy")
    aliases = SPARSE[algo].policy_aliases
    for name in ("Simba", "Bro"):
        sparse, dense = getattr(policies, f"Sparse{name}{suffix}Policy"), getattr(policies, f"{name}{suffix}Policy")
        assert aliases[f"{name}Policy"] is sparse and getattr(policies, f"{name}Policy") is sparse
        assert issubclass(sparse, base) and issubclass(dense, base)
        assert sparse.architecture == dense.architecture == name.lower()  # read by the benchmarks from the class
        assert get_algorithm(f"sparse_{algo}").dense_policy(f"{name}Policy") is dense
        assert sparse.sparse_modules == dense.sparse_modules == {**base.sparse_modules, "encoder": ENCODER}
    env = gym.make("Pendulum-v1")
    dense = DENSE[algo][1](env.observation_space, env.action_space, lambda _: 1e-3, **TINY)
    assert {config.regime for config in dense.module_configs.values()} == {"dense"} and not masks_of(dense)
    sparse = DENSE[algo][1](env.observation_space, env.action_space, lambda _: 1e-3, dst_config={"sparsity": 0.5}, **TINY)
    assert sparse.module_configs["critic"].regime == "set" and masks_of(sparse)


def test_policy_hierarchy_is_shallow():
    """A sparse SimBa SAC policy: the preset, its architecture mixin, the one SAC policy class and the DST mixin
    above SB3's classes (13 classes in its MRO in 0.1.0, 10 now)."""
    mro = SparseSimbaSACPolicy.__mro__
    assert len(mro) == 10
    assert [cls.__name__ for cls in mro if cls.__module__.startswith("sb3_sparse")] == [
        "SparseSimbaSACPolicy",
        "ArchitecturePreset",
        "SparseSACPolicy",
        "SparsePolicyMixin",
    ]
