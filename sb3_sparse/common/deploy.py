"""Deploying a sparse policy: a compact file with only what inference needs, and the policy rebuilt from it.

:func:`export_policy` writes, with ``torch.save``, a plain dict (the file format, version 1):

- ``"format"``: ``"sb3_sparse.policy"``; ``"version"``: ``1``;
- ``"policy_class"``: import path of the policy class, ``"package.module:ClassName"``;
- ``"data"``: the policy's constructor parameters, as SB3's ``BasePolicy.save`` stores them;
- ``"module"``: attribute path of the network that acts (``"actor"``, ``"q_net"`` for DQN, ``"agent"`` for
  QMIX / VDN);
- ``"state_dict"``: that network's dense tensors (biases, dense layers, features extractor, batch-norm
  statistics), keyed as in the policy's ``state_dict`` (``"actor.mu.weight"``);
- ``"csr"``: each masked weight, same keys, in compressed sparse row form: ``"shape"`` (the weight's
  shape; the CSR matrix has ``shape[0]`` rows), ``"crow_indices"`` and ``"col_indices"`` (the smallest of
  ``int16``, ``int32``, ``int64`` that holds them) and ``"values"`` (the active weights, in the weight's
  dtype). The masks are not stored: the active positions are the CSR structure.

Everything else (critics, target networks, optimizers, replay buffer) is left out. Files hold pickled
objects (spaces, classes): load only files you trust, as with SB3's own ``load``.
"""

import importlib
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.utils import get_device
from torch import nn

from sb3_sparse.common.policies import SparsePolicyMixin, sparse_policy_of
from sb3_sparse.core.backends import CsrLayout
from sb3_sparse.core.masking import mask_name, sparse_weights

FORMAT = "sb3_sparse.policy"
VERSION = 1


def _index_dtype(largest: int) -> th.dtype:
    """The smallest signed integer dtype that holds ``largest`` (indices stay signed, as torch's CSR ones are)."""
    return next(dtype for dtype in (th.int16, th.int32, th.int64) if largest <= th.iinfo(dtype).max)


def _to_csr(weight: th.Tensor, mask: th.Tensor) -> dict[str, Any]:
    """The weight's entries at the mask's active positions, row by row (a weight of any rank as ``shape[0]`` rows)."""
    matrix = mask.reshape(len(mask), -1)
    layout = CsrLayout.of(matrix)
    # copy=True: a compact tensor of its own (torch.save writes a view's whole storage)
    return {
        "shape": tuple(weight.shape),
        "crow_indices": layout.crow.to("cpu", _index_dtype(len(layout.flat)), copy=True),
        "col_indices": layout.col.to("cpu", _index_dtype(matrix.shape[1] - 1), copy=True),
        "values": weight.reshape(-1)[layout.flat].cpu(),
    }


def _from_csr(csr: dict[str, Any]) -> tuple[th.Tensor, th.Tensor]:
    """(dense weight, 0/1 mask) of a stored CSR weight; the mask comes from the index structure, so an
    active weight whose value is 0.0 stays active."""
    values: th.Tensor = csr["values"]
    shape = tuple(csr["shape"])
    rows = th.repeat_interleave(th.arange(shape[0]), csr["crow_indices"].long().diff())
    cols = csr["col_indices"].long()
    weight = values.new_zeros(shape[0], math.prod(shape[1:]))
    mask = th.zeros_like(weight)
    weight[rows, cols] = values
    mask[rows, cols] = 1.0
    return weight.reshape(shape), mask.reshape(shape)


def export_policy(model_or_policy: BaseAlgorithm | BasePolicy, path: str | os.PathLike[str]) -> Path:
    """Write the acting network of a sparse model (or policy) to ``path``, its masked weights as CSR.

    The file (format in the module docstring) holds only what :func:`load_policy` needs to rebuild
    ``predict``; its size is ``export_policy(...).stat().st_size``. The path is used as given (no suffix
    is added; ``.pt`` is customary) and its parent folders are created. Nothing is written if it fails.

    :param model_or_policy: a sparse model (``SparseSAC``, ``SparseTD3``, ``SparseTQC``, ``SparseCrossQ``,
        ``SparseDQN``, ``QMIX``, ``VDN``, or an SB3 model with a sparse policy) or its policy
    :param path: the file to write (replaced if it exists)
    :return: the path written
    """
    policy = sparse_policy_of(model_or_policy, "export_policy")
    # the online network that predict() runs
    module = policy.sparse_modules[policy.inference_module].online
    network = policy.get_submodule(module)
    # state_dict() zeroes the pruned weights first (a pre-hook of the masked modules)
    state = network.state_dict(prefix=f"{module}.")
    csr = {}
    for key, _, name in sparse_weights(network, prefix=module):
        csr[key] = _to_csr(state.pop(key), state.pop(key.removesuffix(name) + mask_name(name)))
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "policy_class": f"{type(policy).__module__}:{type(policy).__qualname__}",
        "data": policy._get_constructor_parameters(),
        "module": module,
        # clone: a compact tensor of its own (torch.save writes a view's whole storage)
        "state_dict": {key: tensor.detach().cpu().clone() for key, tensor in state.items()},
        "csr": csr,
    }
    # Serialize in memory first, so that an object that cannot be pickled leaves no file behind.
    buffer = io.BytesIO()
    th.save(payload, buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getbuffer())
    return path


def _read(path: Path) -> dict[str, Any]:
    """The dict stored in an exported file, or a ValueError naming the file (a missing file: FileNotFoundError).

    The file's zip entries are checked against their checksums first: ``torch.load`` does not check them, so
    it would load a corrupted file's weights as they are, and it fails with an ``OSError`` on some truncations.
    """
    data = path.read_bytes()
    try:
        damaged = zipfile.ZipFile(io.BytesIO(data)).testzip()
        if damaged is not None:
            raise ValueError(f"its entry {damaged} does not match its checksum")
        saved = th.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged file fails in many ways; none of them is the caller's error
        message = f"{path} is not a policy file written by export_policy, or it is truncated or corrupted: {error}"
        raise ValueError(message) from error
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a policy file written by export_policy (format {FORMAT!r}); "
            "for a model saved with model.save(), use its algorithm's load()"
        )
    if saved.get("version") != VERSION:
        raise ValueError(
            f"{path} has version {saved.get('version')!r} of the {FORMAT!r} format; this sb3_sparse reads {VERSION}"
        )
    return saved


def _policy_class(path: Path, name: str) -> type[BaseModel]:
    module, _, qualname = name.partition(":")
    try:
        policy_class: Any = importlib.import_module(module)
        for attribute in qualname.split("."):
            policy_class = getattr(policy_class, attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{path} names the policy class {name}, which cannot be imported: {error}") from error
    if not (
        isinstance(policy_class, type) and issubclass(policy_class, SparsePolicyMixin) and issubclass(policy_class, BaseModel)
    ):
        raise ValueError(f"{path} names {name}, which is not a sparse policy class")
    return policy_class


def load_policy(path: str | os.PathLike[str], device: th.device | str = "auto") -> BasePolicy:
    """Rebuild a policy written by :func:`export_policy`, ready for ``predict``.

    The policy is built from its class and constructor parameters (as SB3's ``BasePolicy.load`` does), then
    its acting network gets the saved weights and masks. Its other networks (critics, target networks)
    keep the fresh initialisation of the constructor: ``predict`` does not use them, so do not train the
    loaded policy. It is returned in evaluation mode, with the ``"auto"`` compute backend and its layers frozen for
    inference (their CSR weights gathered once; ``policy.set_backend`` picks another backend).

    :param path: a file written by :func:`export_policy` from a single-agent model (a multi-agent learner's:
        :func:`rebuild_policy`)
    :param device: where to put the policy (``"auto"``: the GPU if there is one)
    :return: the policy; ``policy.predict(obs, deterministic=True)`` gives the exported model's actions
    """
    policy = rebuild_policy(path, device)
    if not isinstance(policy, BasePolicy):
        raise ValueError(
            f"{path} holds a {type(policy).__name__}, which has no predict (a multi-agent learner's agent network): "
            "load it with rebuild_policy"
        )
    return policy


def rebuild_policy(path: str | os.PathLike[str], device: th.device | str = "auto") -> BaseModel:
    """:func:`load_policy` for any sparse policy class, a multi-agent learner's (``QMIXPolicy``, whose agents act
    through :func:`sb3_sparse.marl.runner.recurrent_actions`) included.

    :param path: a file written by :func:`export_policy`
    :param device: where to put the policy (``"auto"``: the GPU if there is one)
    :return: the policy, in evaluation mode, its acting network frozen for inference
    """
    path = Path(path)
    saved = _read(path)
    policy: Any = _policy_class(path, saved["policy_class"])(**saved["data"])
    module: str = saved["module"]
    state = dict(saved["state_dict"])
    for key, csr in saved["csr"].items():
        name = key.rpartition(".")[2]
        state[key], state[key.removesuffix(name) + mask_name(name)] = _from_csr(csr)
    network: nn.Module = policy.get_submodule(module)
    network.load_state_dict({key.removeprefix(f"{module}."): tensor for key, tensor in state.items()})
    policy.to(get_device(device))
    policy.set_training_mode(False)
    policy.set_backend("auto", frozen=True)
    return policy
