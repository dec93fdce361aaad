"""Deployment: a sparse policy exported with only its acting network (masked weights as CSR), rebuilt for
``predict`` with the same actions, weights and masks; its size; bad files; ONNX export."""

import io
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from torch import nn

from sb3_sparse import SparseCrossQ, SparseDQN, SparseSAC, SparseTD3, SparseTQC
from sb3_sparse.common.deploy import FORMAT, VERSION, export_policy, load_policy
from sb3_sparse.core.masking import get_mask, sparse_weights

ALGOS = {
    "sac": (SparseSAC, "Pendulum-v1"),
    "td3": (SparseTD3, "Pendulum-v1"),
    "tqc": (SparseTQC, "Pendulum-v1"),
    "crossq": (SparseCrossQ, "Pendulum-v1"),
    "dqn": (SparseDQN, "CartPole-v1"),
}


def make(algo: str, net_arch: list[int] | None = None, **kwargs: Any) -> Any:
    cls, env = ALGOS[algo]
    policy_kwargs = {"net_arch": net_arch or [32, 32]}
    return cls(
        "MlpPolicy", env, sparsity=0.9, learning_starts=50, batch_size=16, policy_kwargs=policy_kwargs, seed=0, **kwargs
    )


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    """One briefly trained model per algorithm (weights and CrossQ's batch-norm statistics moved off their init)."""
    return {algo: make(algo).learn(100) for algo in ALGOS}


def acting_module(policy: Any) -> str:
    """Attribute path of the network that ``predict`` runs."""
    return policy.sparse_modules[policy.inference_module].online


def observations(space: gym.Space, n: int = 64) -> np.ndarray:
    space.seed(0)
    return np.stack([space.sample() for _ in range(n)])


@pytest.mark.parametrize("algo", ALGOS)
def test_round_trip(algo, trained, tmp_path):
    model = trained[algo]
    policy = load_policy(export_policy(model, tmp_path / "policy.pt"), device="cpu")
    assert type(policy) is type(model.policy)
    assert not policy.training
    assert all(p.device.type == "cpu" for p in policy.parameters())
    # The acting network's weights, masks and buffers are exactly the original's.
    network = policy.get_submodule(acting_module(policy))
    original = model.policy.get_submodule(acting_module(policy)).state_dict()
    restored = network.state_dict()
    assert restored.keys() == original.keys()
    for key, tensor in original.items():
        assert th.equal(restored[key], tensor), key
    for _, owner, name in sparse_weights(network):
        assert (getattr(owner, name)[get_mask(owner, name) == 0] == 0).all()
    obs = observations(model.observation_space)
    expected, _ = model.predict(obs, deterministic=True)
    actions, _ = policy.predict(obs, deterministic=True)
    if algo == "dqn":
        np.testing.assert_array_equal(actions, expected)
    else:  # a CSR product (backend "auto") may round differently from the dense one
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algo", ALGOS)
def test_file_holds_the_acting_network_only(algo, trained, tmp_path):
    model = trained[algo]
    module = acting_module(model.policy)
    network = model.policy.get_submodule(module)
    saved = th.load(export_policy(model.policy, tmp_path / "policy.pt"), weights_only=False)
    assert (saved["format"], saved["version"], saved["module"]) == (FORMAT, VERSION, module)
    assert saved["policy_class"] == f"{type(model.policy).__module__}:{type(model.policy).__qualname__}"
    keys = [*saved["state_dict"], *saved["csr"]]
    assert all(key.startswith(f"{module}.") for key in keys)
    assert not any(key.endswith("_mask") or "critic" in key or "target" in key for key in keys)
    # Every masked weight is stored as CSR, every other tensor of the network as it is.
    masked = {key: (owner, name) for key, owner, name in sparse_weights(network, prefix=module)}
    assert masked and saved["csr"].keys() == masked.keys()
    assert len(keys) == len(network.state_dict()) - len(masked)
    for key, csr in saved["csr"].items():
        owner, name = masked[key]
        mask = get_mask(owner, name)
        assert csr["shape"] == tuple(mask.shape)
        assert csr["crow_indices"].dtype == csr["col_indices"].dtype == th.int16  # small layers
        assert th.equal(csr["values"], getattr(owner, name)[mask != 0])
        assert csr["crow_indices"][-1] == csr["values"].numel() == mask.sum()


def test_active_weight_at_zero_stays_active(tmp_path):
    model = make("sac")
    layer = model.policy.actor.latent_pi[0]
    mask = get_mask(layer).clone()
    row, col = mask.nonzero()[0].tolist()
    with th.no_grad():
        layer.weight[row, col] = 0.0
    policy = load_policy(export_policy(model, tmp_path / "policy.pt"), device="cpu")
    assert th.equal(get_mask(policy.actor.latent_pi[0]), mask)
    assert policy.actor.latent_pi[0].weight[row, col] == 0.0


def test_size_of_a_90_percent_sparse_actor(tmp_path):
    """The 90%-sparse actor's file against the same architecture in the dense regime, exported the same way;
    the loaded actor acts as the original with sparse (CSR) products too."""
    models = {regime: make("sac", net_arch=[256, 256], regime=regime) for regime in ("set", "dense")}
    paths = {regime: export_policy(model, tmp_path / f"{regime}.pt") for regime, model in models.items()}
    assert paths["set"].stat().st_size <= 0.25 * paths["dense"].stat().st_size
    model = models["set"]
    policy = load_policy(paths["set"], device="cpu")
    obs = observations(model.observation_space, 256)
    expected, _ = model.predict(obs, deterministic=True)
    for backend in ("auto", "csr"):
        policy.set_backend(backend)
        np.testing.assert_allclose(policy.predict(obs, deterministic=True)[0], expected, rtol=1e-5, atol=1e-6)


def test_export_keeps_the_path_and_creates_folders(trained, tmp_path):
    path = tmp_path / "deploy" / "actor"
    assert export_policy(trained["sac"], str(path)) == path
    assert path.is_file()


def test_rejects_what_is_not_a_sparse_model(tmp_path):
    path = tmp_path / "policy.pt"
    plain = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]})
    for value in (plain, plain.policy, "model"):
        with pytest.raises(TypeError, match="sparse model"):
            export_policy(value, path)
    assert not path.exists()


def test_nothing_written_when_the_policy_cannot_be_pickled(tmp_path):
    class LocalActivation(nn.ReLU):  # pickle cannot import a local class
        pass

    model = SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8], "activation_fn": LocalActivation})
    path = tmp_path / "folder" / "policy.pt"
    with pytest.raises((pickle.PicklingError, AttributeError)):
        export_policy(model, path)
    assert not path.parent.exists()


def write_bad_file(kind: str, path: Path) -> None:
    if kind == "text":
        path.write_text("not a policy")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "sb3 model":
        SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}).save(path)
    elif kind == "sb3 policy":
        SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}).policy.save(str(path))
    else:  # a newer version of the format
        th.save({"format": FORMAT, "version": VERSION + 1}, path)


@pytest.mark.parametrize("kind", ["text", "empty", "sb3 model", "sb3 policy", "version"])
def test_bad_files_name_the_file(kind, tmp_path):
    path = tmp_path / "bad.zip"
    write_bad_file(kind, path)
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        load_policy(path)
    assert (FORMAT if kind in ("version", "sb3 policy") else "export_policy") in str(error.value)


def middle_of_largest_entry(data: bytes) -> int:
    """The middle of the stored bytes of the file's largest zip entry (the middle of the file may be alignment
    padding, which no checksum covers and no reader uses)."""
    entry = max(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda info: info.compress_size)
    name_length, extra_length = struct.unpack("<HH", data[entry.header_offset + 26 : entry.header_offset + 30])
    return entry.header_offset + 30 + name_length + extra_length + entry.compress_size // 2


def damaged_copy(kind: str, source: Path, path: Path) -> None:
    """``source`` cut short or with bytes overwritten (in the pickled header, in the middle, at the end)."""
    data = bytearray(source.read_bytes())
    cuts = {"truncated to half": len(data) // 2, "truncated by 20 bytes": len(data) - 20, "truncated to 1 byte": 1}
    if kind in cuts:
        data = data[: cuts[kind]]
    else:
        middle = middle_of_largest_entry(bytes(data))
        start = {"corrupted header": 100, "corrupted middle": middle, "corrupted end": len(data) - 200}[kind]
        data[start : start + 16] = bytes(255 - byte for byte in data[start : start + 16])
    path.write_bytes(bytes(data))


DAMAGES = [
    "truncated to half",
    "truncated by 20 bytes",
    "truncated to 1 byte",
    "corrupted header",
    "corrupted middle",
    "corrupted end",
]


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_truncated_or_corrupted_file_names_the_file(kind, trained, tmp_path):
    path = tmp_path / "damaged.pt"
    damaged_copy(kind, export_policy(trained["sac"], tmp_path / "policy.pt"), path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*truncated or corrupted"):
        load_policy(path)


def test_a_missing_file_or_policy_class(trained, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.pt")
    payload = th.load(export_policy(trained["sac"], tmp_path / "policy.pt"), weights_only=False)
    path = tmp_path / "renamed.pt"
    th.save({**payload, "policy_class": "sb3_sparse.sac.policies:RenamedPolicy"}, path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*RenamedPolicy, which cannot be imported"):
        load_policy(path)


def test_importable_from_the_package():
    import sb3_sparse

    assert sb3_sparse.export_policy is export_policy and sb3_sparse.load_policy is load_policy
    assert {"export_policy", "load_policy"} <= set(sb3_sparse.__all__)


class OnnxableActor(nn.Module):
    """What ONNX runs: the deterministic action of SB3's actor (in [-1, 1] for SAC; unscale it to act)."""

    def __init__(self, actor: nn.Module):
        super().__init__()
        self.actor = actor

    def forward(self, observation: th.Tensor) -> th.Tensor:
        return self.actor(observation, deterministic=True)


# the tracer warns about the argument checks of torch's Normal distribution in SB3's actor
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_onnx_export_of_a_sparse_actor(trained, tmp_path):
    """SB3's documented ONNX export, with the TorchScript exporter (``dynamo=False``), of the trained actor
    and of the loaded one (CSR backend); onnxruntime gives the actor's outputs."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = trained["sac"]
    loaded = load_policy(export_policy(model, tmp_path / "policy.pt"), device="cpu")
    loaded.set_backend("csr")  # exported as dense products all the same
    obs = th.as_tensor(observations(model.observation_space, 8))
    for name, actor in (("trained", model.policy.actor), ("loaded", loaded.actor)):
        path = tmp_path / f"{name}.onnx"
        th.onnx.export(
            OnnxableActor(actor).eval(),
            (obs,),
            str(path),
            dynamo=False,
            input_names=["observation"],
            dynamic_axes={"observation": {0: "batch"}},
        )
        onnx.checker.check_model(onnx.load(str(path)))
        (output,) = ort.InferenceSession(str(path)).run(None, {"observation": obs.numpy()})
        with th.no_grad():
            np.testing.assert_allclose(output, actor(obs, deterministic=True).numpy(), rtol=1e-5, atol=1e-6)


def test_multi_agent_agent_network_round_trip(tmp_path):
    """A QMIX agent network: rebuild_policy gives the model's greedy actions (load_policy refuses: no predict)."""
    pytest.importorskip("mpe2")
    from sb3_sparse.common.deploy import rebuild_policy
    from sb3_sparse.marl import QMIX
    from sb3_sparse.marl.envs import make_marl_env
    from sb3_sparse.marl.runner import recurrent_actions

    env = make_marl_env("simple_spread_v3")
    model = QMIX("RnnPolicy", env, regime="rigl", sparsity=0.8, buffer_size=8, batch_size=2, seed=0)
    path = export_policy(model, tmp_path / "qmix.pt")
    assert set(th.load(path, weights_only=False)["csr"]) == {key for key, _, _ in sparse_weights(model.policy.agent, "agent")}
    policy = rebuild_policy(path, device="cpu")
    observations, _, available = env.reset(seed=0)
    state = None
    for _ in range(5):  # the recurrent state carries over
        actions, state_model = model.predict(observations, state=state, deterministic=True, action_masks=available)
        rng = np.random.default_rng()
        rebuilt, state = recurrent_actions(policy, observations, state, None, available, 0.0, rng)
        np.testing.assert_array_equal(rebuilt, actions)
        np.testing.assert_allclose(state[0], state_model[0], atol=1e-6)
        observations, _, available, *_ = env.step(actions)
    with pytest.raises(ValueError, match=r"holds a QMIXPolicy, which has no predict .* rebuild_policy"):
        load_policy(path)
