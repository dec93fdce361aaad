"""Layer-wise sparsity distributions: how a network's sparsity is spread over its layers.

A layer is given by its weight shape ``(n_out, n_in)``. Every function returns one density
(fraction of active weights, ``1 - sparsity``) per layer. Erdos-Renyi (ER) makes the density
of a layer proportional to ``(n_in + n_out) / (n_in * n_out)``; for linear layers that is also the
ERK rule of RigL, which additionally makes a layer dense when its share would exceed 1 and gives
the overflow to the other layers.

:data:`DISTRIBUTIONS` is a registry of functions ``f(shapes, density) -> densities``: register one to use
it by name as ``sparsity_distribution``.
"""

from collections.abc import Callable, Sequence

from sb3_sparse.core.registry import Registry

Shape = tuple[int, int]
Distribution = Callable[[Sequence[Shape], float], list[float]]


def erdos_renyi_scale(shape: Shape) -> float:
    """ER density per unit of lambda: ``(n_in + n_out) / (n_in * n_out)``."""
    n_out, n_in = shape
    return (n_in + n_out) / (n_in * n_out)


def active_count(shape: Shape, density: float) -> int:
    """Number of active weights of a layer: the density rounded to the nearest weight, at least one
    (a layer without weights would cut the network)."""
    return max(1, round(density * shape[0] * shape[1]))


def _check_densities(densities: list[float], shapes: Sequence[Shape], argument: str, hint: str) -> list[float]:
    for shape, density in zip(shapes, densities, strict=True):
        if density > 1.0 + 1e-9:
            raise ValueError(f"{argument}: a layer of shape {shape} would need density {density:.3f} > 1; {hint}")
    return [min(density, 1.0) for density in densities]


def uniform_densities(shapes: Sequence[Shape], density: float) -> list[float]:
    """Uniform: every layer at the same density."""
    return [density] * len(shapes)


def erdos_renyi_densities(shapes: Sequence[Shape], density: float) -> list[float]:
    """Erdos-Renyi (SET, DS-TD3): density proportional to ``(n_in + n_out) / (n_in * n_out)``."""
    sizes = [n_out * n_in for n_out, n_in in shapes]
    scale = density * sum(sizes) / sum(erdos_renyi_scale(s) * n for s, n in zip(shapes, sizes, strict=True))
    densities = [scale * erdos_renyi_scale(shape) for shape in shapes]
    return _check_densities(
        densities, shapes, "sparsity_distribution='erdos_renyi'", "use sparsity_distribution='erk' or a higher sparsity"
    )


def erk_densities(shapes: Sequence[Shape], density: float) -> list[float]:
    """ERK (RigL): Erdos-Renyi solved for the global density, a layer that would exceed 1 made dense."""
    sizes = [n_out * n_in for n_out, n_in in shapes]
    budget = density * sum(sizes)
    dense: set[int] = set()
    while True:
        sparse = [i for i in range(len(shapes)) if i not in dense]
        remaining = budget - sum(sizes[i] for i in dense)
        scale = remaining / sum(erdos_renyi_scale(shapes[i]) * sizes[i] for i in sparse)
        overflow = [i for i in sparse if scale * erdos_renyi_scale(shapes[i]) > 1.0]
        if not overflow:
            break
        # Densify the layer that overflows most, then solve again for the rest.
        dense.add(max(overflow, key=lambda i: erdos_renyi_scale(shapes[i])))
        if len(dense) == len(shapes):
            break
    return [1.0 if i in dense else scale * erdos_renyi_scale(shapes[i]) for i in range(len(shapes))]


#: The distribution registry: name -> f(weight shapes, network density) -> one density per layer.
DISTRIBUTIONS: Registry[Distribution] = Registry(
    "sparsity_distribution", {"uniform": uniform_densities, "erdos_renyi": erdos_renyi_densities, "erk": erk_densities}
)


def layer_densities(
    shapes: Sequence[Shape],
    sparsity: float,
    distribution: str = "uniform",
    erdos_renyi_lambdas: Sequence[float] | None = None,
) -> list[float]:
    """Density of each layer for a network-wide ``sparsity``.

    :param shapes: weight shapes ``(n_out, n_in)`` of the sparse layers
    :param sparsity: target fraction of pruned weights over all these layers
    :param distribution: a name in :data:`DISTRIBUTIONS` (``"uniform"``, ``"erdos_renyi"``, ``"erk"``, ...)
    :param erdos_renyi_lambdas: with ``"erdos_renyi"``, one lambda per layer (DS-TD3); the densities
        then follow from the lambdas and ``sparsity`` is ignored
    :return: one density in (0, 1] per layer
    """
    function = DISTRIBUTIONS.lookup(distribution)
    if not shapes:
        return []
    if erdos_renyi_lambdas is not None:
        if distribution != "erdos_renyi":
            raise ValueError(f"erdos_renyi_lambdas need sparsity_distribution='erdos_renyi', not {distribution!r}")
        if len(erdos_renyi_lambdas) != len(shapes):
            raise ValueError(f"erdos_renyi_lambdas has {len(erdos_renyi_lambdas)} values for {len(shapes)} layers")
        densities = [lam * erdos_renyi_scale(shape) for lam, shape in zip(erdos_renyi_lambdas, shapes, strict=True)]
        return _check_densities(densities, shapes, "erdos_renyi_lambdas", "choose a smaller lambda for it")
    densities = list(function(shapes, 1.0 - sparsity))
    if len(densities) != len(shapes) or not all(0.0 < d <= 1.0 + 1e-9 for d in densities):
        raise ValueError(
            f"sparsity_distribution={distribution!r} gave densities {densities} for {len(shapes)} layers; "
            "it must give one density in (0, 1] per layer"
        )
    return [min(density, 1.0) for density in densities]
