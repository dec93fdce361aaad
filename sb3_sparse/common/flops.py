"""FLOPs and sparsity reports of sparse SB3 models (the counting convention is in :mod:`sb3_sparse.core.accounting`)."""

from typing import Any

from sb3_sparse.common.policies import sparse_policy_of
from sb3_sparse.core.accounting import count_active, forward_flops, render_table, training_step_flops, weight_rows


def flops_report(model_or_policy: Any) -> dict[str, Any]:
    """Per-layer weights, active weights and FLOPs of a sparse model (or policy).

    :param model_or_policy: a sparse model (``SparseSAC``, ...), an SB3 model with a sparse policy, or the policy
    :return: a dict with ``"layers"`` (one dict per weight matrix: ``module``, ``layer``, ``shape``, ``sparse``,
        ``weights``, ``active_weights``, ``density``), the totals ``weights``, ``active_weights``,
        ``sparsity`` (over the sparse layers), ``inference_flops`` / ``dense_inference_flops`` /
        ``inference_flops_ratio`` (one forward pass of the acting module, with its encoder if the policy has
        one), ``training_flops`` / ``dense_training_flops`` / ``training_flops_ratio`` (one training step of
        every module at the current masks), ``integrated_training_flops_ratio`` (the training FLOPs of the run
        so far over dense, charging every phase at the density it had; ``None`` before training) and
        ``table`` (readable text)
    """
    policy = sparse_policy_of(model_or_policy, "flops_report")
    rows: list[dict[str, Any]] = []
    training = [0, 0]
    forward: dict[str, tuple[int, int]] = {}
    for name, binding in policy.sparse_bindings().items():
        module_rows = weight_rows(name, binding.online, binding.exclude)
        rows += module_rows
        forward[name] = forward_flops(module_rows)
        sparse, dense = training_step_flops(module_rows, binding.target is not None)
        training[0] += sparse
        training[1] += dense
    active, total = count_active(rows)
    inference = forward[policy.inference_module]
    if "encoder" in forward:  # the acting network reads observations through its copy of the encoder
        extractor = getattr(policy, policy.inference_module).features_extractor
        encoder = forward_flops(weight_rows("encoder", extractor))
        inference = (inference[0] + encoder[0], inference[1] + encoder[1])
    report: dict[str, Any] = {
        "layers": rows,
        "weights": sum(row["weights"] for row in rows),
        "active_weights": sum(row["active_weights"] for row in rows),
        "sparsity": 1.0 - active / total if total else 0.0,
        "inference_flops": inference[0],
        "dense_inference_flops": inference[1],
        "inference_flops_ratio": inference[0] / inference[1],
        "training_flops": training[0],
        "dense_training_flops": training[1],
        "training_flops_ratio": training[0] / training[1],
        "integrated_training_flops_ratio": None,
    }
    modules = getattr(model_or_policy, "dst_state", {}).get("modules", {})
    dense_run = sum(state["dense_train_flops"] for state in modules.values())
    if dense_run > 0:
        report["integrated_training_flops_ratio"] = sum(state["train_flops"] for state in modules.values()) / dense_run
    report["table"] = render_table(report)
    return report


def module_sparsity(model_or_policy: Any) -> dict[str, float]:
    """Realised sparsity over the sparse weights of each module's online network, and over all (``"global"``)."""
    policy = sparse_policy_of(model_or_policy, "module_sparsity")
    counts = {
        name: count_active(weight_rows(name, binding.online, binding.exclude))
        for name, binding in policy.sparse_bindings().items()
    }
    counts["global"] = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
    return {name: 1.0 - active / total if total else 0.0 for name, (active, total) in counts.items()}
