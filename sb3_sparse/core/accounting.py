"""FLOPs of sparse modules, counted as in RigL (Evci et al., 2020).

Convention: a FLOP is a multiply-add of a weight with an input, per sample; biases, activations and
normalisation layers are left out. A weight matrix costs its number of active weights (all of them
when dense); for a convolution that is its cost per output position (the spatial size of the
output, which depends on the input, is not multiplied in). Inference is one forward pass of
the module that acts; a training step of a module costs 3x its forward pass (forward, backward to
the activations, backward to the weights) plus one forward pass of its target network, if any.
"""

from typing import Any

from torch import nn

from sb3_sparse.core.masking import get_mask, is_sparse


def weight_rows(module_name: str, network: nn.Module, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per weight matrix of ``network`` (``Linear`` / ``Conv`` / recurrent), sparse or not."""
    rows = []
    for layer_name, layer in network.named_modules():
        if any(layer_name == prefix or layer_name.startswith(f"{prefix}.") for prefix in exclude):
            continue
        for name, param in layer.named_parameters(recurse=False):
            if param.dim() < 2 or not name.startswith("weight"):
                continue
            sparse = is_sparse(layer, name)
            active = int(get_mask(layer, name).sum().item()) if sparse else param.numel()
            rows.append(
                {
                    "module": module_name,
                    "layer": f"{layer_name}.{name}" if layer_name else name,
                    "shape": tuple(param.shape),
                    "sparse": sparse,
                    "weights": param.numel(),
                    "active_weights": active,
                    "density": active / param.numel(),
                }
            )
    return rows


def forward_flops(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(sparse, dense) forward FLOPs of a module's rows."""
    return sum(row["active_weights"] for row in rows), sum(row["weights"] for row in rows)


def training_step_flops(rows: list[dict[str, Any]], has_target: bool) -> tuple[int, int]:
    """(sparse, dense) FLOPs of one training step of a module: 3 x forward, plus the target's forward."""
    sparse, dense = forward_flops(rows)
    factor = 4 if has_target else 3
    return factor * sparse, factor * dense


def render_table(report: dict[str, Any]) -> str:
    """A fixed-width text table of a FLOPs report (one line per weight matrix, then the totals)."""
    lines = [f"{'module':<10} {'layer':<34} {'shape':<14} {'active':>9} {'weights':>9} {'density':>8}"]
    for row in report["layers"]:
        shape = "x".join(map(str, row["shape"]))
        lines.append(
            f"{row['module']:<10} {row['layer']:<34} {shape:<14} {row['active_weights']:>9} {row['weights']:>9} "
            f"{row['density']:>8.3f}"
        )
    lines.append(f"weights: {report['active_weights']} of {report['weights']} active (sparsity {report['sparsity']:.3f})")
    lines.append(f"inference FLOPs: {report['inference_flops_ratio']:.3f}x dense")
    lines.append(f"training FLOPs per step (now): {report['training_flops_ratio']:.3f}x dense")
    if report.get("integrated_training_flops_ratio") is not None:
        lines.append(f"training FLOPs over the run so far: {report['integrated_training_flops_ratio']:.3f}x dense")
    return "\n".join(lines)


def count_active(rows: list[dict[str, Any]]) -> tuple[int, int]:
    sparse_rows = [row for row in rows if row["sparse"]]
    return sum(row["active_weights"] for row in sparse_rows), sum(row["weights"] for row in sparse_rows)


__all__ = ["count_active", "forward_flops", "render_table", "training_step_flops", "weight_rows"]
