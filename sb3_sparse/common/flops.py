"""Theoretical FLOPs of sparse agents, counted as in RigL (Evci et al., 2020).

Convention:

- a FLOP is a multiply-add of a weight with an input, counted per sample (batch size 1);
  biases, activations and the (dense) features extractor are left out;
- a linear layer with ``n_in x n_out`` weights costs ``n_in * n_out`` when dense and
  ``density * n_in * n_out`` (its active weights) when sparse;
- inference is one forward pass of the actor;
- a training step costs 3x the forward pass of each trained network (forward, backward to the
  activations, backward to the weights) plus one forward pass of each target network.
"""

from typing import Any

from torch import nn

from sb3_sparse.common.layers import MaskedLinear


def _policy(model_or_policy: Any) -> Any:
    policy = getattr(model_or_policy, "policy", model_or_policy)
    if not hasattr(policy, "masked_networks"):
        raise TypeError(f"flops_report needs a sparse model or policy, got {type(model_or_policy).__name__}")
    return policy


def flops_report(model_or_policy: Any) -> dict[str, Any]:
    """Per-layer weights, active weights and FLOPs of a sparse model (or policy).

    :param model_or_policy: a :class:`~sb3_sparse.SparseSAC` / :class:`~sb3_sparse.SparseTD3` model, an
        SB3 model with a sparse policy, or the sparse policy itself
    :return: a dict with ``"layers"`` (one dict per linear layer: ``network``, ``layer``, ``shape``,
        ``weights``, ``active_weights``, ``density``, ``flops``, ``dense_flops``) and the totals
        ``weights``, ``active_weights``, ``sparsity`` (over the sparse layers), ``inference_flops``,
        ``dense_inference_flops``, ``inference_flops_ratio``, ``training_flops``,
        ``dense_training_flops``, ``training_flops_ratio``
    """
    policy = _policy(model_or_policy)
    layers = []
    forward: dict[str, tuple[int, int]] = {}  # network -> (sparse, dense) forward FLOPs
    targets: list[str] = []
    for network, (online, target) in policy.masked_networks().items():
        if target is not None:
            targets.append(network)
        sparse_total = dense_total = 0
        for name, module in online.named_modules():
            if not isinstance(module, nn.Linear) or name.startswith("features_extractor"):
                continue
            weights = module.weight.numel()
            active = module.n_active if isinstance(module, MaskedLinear) else weights
            layers.append(
                {
                    "network": network,
                    "layer": name,
                    "shape": tuple(module.weight.shape),
                    "sparse": isinstance(module, MaskedLinear),
                    "weights": weights,
                    "active_weights": active,
                    "density": active / weights,
                    "flops": active,
                    "dense_flops": weights,
                }
            )
            sparse_total += active
            dense_total += weights
        forward[network] = (sparse_total, dense_total)

    def training(index: int) -> int:
        return 3 * sum(f[index] for f in forward.values()) + sum(forward[n][index] for n in targets)

    report: dict[str, Any] = {
        "layers": layers,
        "weights": sum(layer["weights"] for layer in layers),
        "active_weights": sum(layer["active_weights"] for layer in layers),
        "sparsity": network_sparsity(policy)["global"],
        "inference_flops": forward["actor"][0],
        "dense_inference_flops": forward["actor"][1],
        "training_flops": training(0),
        "dense_training_flops": training(1),
    }
    report["inference_flops_ratio"] = report["inference_flops"] / report["dense_inference_flops"]
    report["training_flops_ratio"] = report["training_flops"] / report["dense_training_flops"]
    return report


def network_sparsity(model_or_policy: Any) -> dict[str, float]:
    """Realised sparsity over the sparse layers of each online network, and over all of them (``"global"``)."""
    policy = _policy(model_or_policy)
    counts: dict[str, tuple[int, int]] = {}
    for network in policy.masked_networks():
        layers = [layer for _, layer in policy.masked_layers(network)]
        counts[network] = (sum(layer.n_active for layer in layers), sum(layer.mask.numel() for layer in layers))
    counts["global"] = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
    return {name: 1.0 - active / total if total else 0.0 for name, (active, total) in counts.items()}
