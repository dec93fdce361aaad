"""FLOPs of sparse modules, counted as in RigL (Evci et al., 2020).

Convention: a FLOP is a multiply-add of a weight with an input, per sample; biases, activations and
normalisation layers are left out. A weight matrix costs its number of active weights (all of them
when dense); for a convolution that is its cost per output position (the spatial size of the
output, which depends on the input, is not multiplied in). Inference is one forward pass of
the module that acts; a training step of a module costs 3x its forward pass (forward, backward to
the activations, backward to the weights) plus one forward pass of its target network, if any. A
module of which several copies run per sample (a network shared by the agents of a team runs once per
agent) costs that many times as much; its weights count once.

:func:`count_module` counts one module and :func:`flops_summary` totals a model's modules: every FLOPs
number of the package (reports, the training FLOPs integrated over a run, the benchmarks) comes from them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CountedModule:
    """A module as FLOPs count it: its weight matrices, whether its training step runs a target network, and how
    many copies of it run per sample."""

    name: str
    rows: list[dict[str, Any]]
    has_target: bool = False
    copies: int = 1

    @property
    def forward(self) -> tuple[int, int]:
        """(sparse, dense) FLOPs of one forward pass of every copy."""
        sparse, dense = forward_flops(self.rows)
        return self.copies * sparse, self.copies * dense

    @property
    def training(self) -> tuple[int, int]:
        """(sparse, dense) FLOPs of one training step of every copy."""
        sparse, dense = training_step_flops(self.rows, self.has_target)
        return self.copies * sparse, self.copies * dense


def count_module(
    name: str, network: nn.Module, exclude: tuple[str, ...] = (), has_target: bool = False, copies: int = 1
) -> CountedModule:
    """Count the weights of ``network`` (leaving out its sub-modules named in ``exclude``) as the module ``name``."""
    return CountedModule(name, weight_rows(name, network, exclude), has_target, copies)


def flops_summary(
    modules: Sequence[CountedModule], acting: Sequence[CountedModule], integrated_ratio: float | None = None
) -> dict[str, Any]:
    """A FLOPs report of a model made of ``modules``, whose inference runs ``acting`` (keys: see
    :func:`sb3_sparse.flops_report`); ``integrated_ratio``: the training FLOPs of the run so far over dense."""
    rows = [row for module in modules for row in module.rows]
    active, total = count_active(rows)
    inference = [sum(pair) for pair in zip(*(module.forward for module in acting), strict=True)]
    training = [sum(pair) for pair in zip(*(module.training for module in modules), strict=True)]
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
        "integrated_training_flops_ratio": integrated_ratio,
    }
    report["table"] = render_table(report)
    return report


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


__all__ = [
    "CountedModule",
    "count_active",
    "count_module",
    "flops_summary",
    "forward_flops",
    "render_table",
    "training_step_flops",
    "weight_rows",
]
