"""Layer-wise sparsity distributions: uniform, Erdos-Renyi (solved and per-layer lambdas) and ERK."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sb3_sparse.core.distributions import active_count, erdos_renyi_scale, erk_densities, layer_densities

# Weight shapes (n_out, n_in) as they appear in small and medium MLPs.
shapes_strategy = st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1, max_size=6)
sparsity_strategy = st.floats(0.0, 0.99, allow_nan=False)
hypothesis_settings = settings(max_examples=100, deadline=None)


def sizes(shapes):
    return [n_out * n_in for n_out, n_in in shapes]


def realised_total(shapes, densities):
    return sum(active_count(shape, density) for shape, density in zip(shapes, densities, strict=True))


def assert_proportional_to_er(shapes, densities):
    """density_i / ER scale_i is the same for every layer."""
    ratios = [density / erdos_renyi_scale(shape) for shape, density in zip(shapes, densities, strict=True)]
    for ratio in ratios:
        assert ratio == pytest.approx(ratios[0], rel=1e-9)


def test_erdos_renyi_scale():
    # (n_in + n_out) / (n_in * n_out) for a weight of shape (n_out, n_in)
    assert erdos_renyi_scale((256, 17)) == pytest.approx((17 + 256) / (17 * 256))
    assert erdos_renyi_scale((4, 2)) == pytest.approx(6 / 8)


def test_active_count_rounds_to_nearest_weight():
    assert active_count((10, 10), 0.5) == 50
    assert active_count((3, 3), 0.5) == 4  # 4.5 rounds half to even
    assert active_count((7, 3), 0.1) == 2  # 2.1
    assert active_count((7, 3), 0.13) == 3  # 2.73
    assert active_count((7, 3), 1.0) == 21
    assert active_count((8, 4), 0.01) == 1  # 0.32 weights: a layer keeps at least one


def test_empty_and_unknown():
    assert layer_densities([], 0.5, "erk") == []
    with pytest.raises(ValueError, match=r"sparsity_distribution='gaussian'.*'uniform', 'erdos_renyi', 'erk'"):
        layer_densities([(4, 4)], 0.5, "gaussian")


@hypothesis_settings
@given(shapes=shapes_strategy, sparsity=sparsity_strategy)
def test_uniform(shapes, sparsity):
    densities = layer_densities(shapes, sparsity, "uniform")
    assert densities == [pytest.approx(1.0 - sparsity)] * len(shapes)
    # Realised global active count within one weight per layer of the target.
    assert abs(realised_total(shapes, densities) - (1.0 - sparsity) * sum(sizes(shapes))) <= len(shapes)


@hypothesis_settings
@given(shapes=shapes_strategy, sparsity=sparsity_strategy)
def test_erk(shapes, sparsity):
    densities = layer_densities(shapes, sparsity, "erk")
    assert densities == erk_densities(shapes, 1.0 - sparsity)
    assert len(densities) == len(shapes)
    assert all(0.0 < density <= 1.0 for density in densities)
    # The total budget is preserved (dense layers included).
    budget = (1.0 - sparsity) * sum(sizes(shapes))
    assert sum(d * n for d, n in zip(densities, sizes(shapes), strict=True)) == pytest.approx(budget, rel=1e-9)
    assert abs(realised_total(shapes, densities) - budget) <= len(shapes)
    dense = [i for i, density in enumerate(densities) if density >= 1.0]
    sparse = [i for i in range(len(shapes)) if i not in dense]
    # Dense-overflow layers are exactly 1 ...
    assert all(densities[i] == 1.0 for i in dense)
    # ... and they are the ones with the largest ER scale (densest under ER).
    if dense and sparse:
        assert min(erdos_renyi_scale(shapes[i]) for i in dense) >= max(erdos_renyi_scale(shapes[i]) for i in sparse)
    # The remaining layers keep the ER proportions.
    if sparse:
        assert_proportional_to_er([shapes[i] for i in sparse], [densities[i] for i in sparse])


def test_erk_overflow_example():
    # A tiny input layer next to a large hidden layer: the input layer becomes dense and the
    # hidden layer takes the rest of the budget.
    shapes = [(256, 3), (256, 256)]
    densities = layer_densities(shapes, 0.5, "erk")
    assert densities[0] == 1.0
    assert densities[1] == pytest.approx((0.5 * (768 + 65536) - 768) / 65536)


def test_erk_without_overflow_equals_solved_erdos_renyi():
    shapes = [(256, 256), (256, 256), (128, 256)]
    assert layer_densities(shapes, 0.9, "erk") == pytest.approx(layer_densities(shapes, 0.9, "erdos_renyi"))


@hypothesis_settings
@given(shapes=shapes_strategy, sparsity=sparsity_strategy)
def test_erdos_renyi_solved(shapes, sparsity):
    budget = (1.0 - sparsity) * sum(sizes(shapes))
    scale = budget / sum(erdos_renyi_scale(shape) * n for shape, n in zip(shapes, sizes(shapes), strict=True))
    if max(scale * erdos_renyi_scale(shape) for shape in shapes) > 1.0 + 1e-9:
        with pytest.raises(ValueError, match=r"sparsity_distribution='erdos_renyi'.*density .* > 1.*'erk'"):
            layer_densities(shapes, sparsity, "erdos_renyi")
        return
    densities = layer_densities(shapes, sparsity, "erdos_renyi")
    assert all(0.0 < density <= 1.0 for density in densities)
    assert_proportional_to_er(shapes, densities)
    assert sum(d * n for d, n in zip(densities, sizes(shapes), strict=True)) == pytest.approx(budget, rel=1e-9)
    assert abs(realised_total(shapes, densities) - budget) <= len(shapes)


def test_erdos_renyi_solved_overflow_example():
    # Pendulum-sized input layer at 50%: ER would need density > 1 there.
    with pytest.raises(ValueError, match=r"shape \(64, 3\)"):
        layer_densities([(64, 3), (64, 64)], 0.5, "erdos_renyi")


@hypothesis_settings
@given(
    shapes=shapes_strategy,
    data=st.data(),
    sparsity=sparsity_strategy,
)
def test_erdos_renyi_lambdas(shapes, data, sparsity):
    lambdas = data.draw(st.lists(st.floats(0.01, 100.0), min_size=len(shapes), max_size=len(shapes)))
    expected = [lam * (n_in + n_out) / (n_in * n_out) for lam, (n_out, n_in) in zip(lambdas, shapes, strict=True)]
    if max(expected) > 1.0 + 1e-9:
        with pytest.raises(ValueError, match="erdos_renyi_lambdas"):
            layer_densities(shapes, sparsity, "erdos_renyi", lambdas)
        return
    densities = layer_densities(shapes, sparsity, "erdos_renyi", lambdas)
    # The sparsity argument is ignored: densities follow from the lambdas alone.
    assert densities == pytest.approx(expected, rel=1e-12)
    assert all(0.0 < density <= 1.0 for density in densities)


def test_erdos_renyi_lambdas_ds_td3_halfcheetah():
    # DS-TD3 HalfCheetah actor (17 -> 256 -> 256): lambdas 7 and 64.
    densities = layer_densities([(256, 17), (256, 256)], 0.5, "erdos_renyi", [7, 64])
    assert densities[0] == pytest.approx(7 * 273 / (17 * 256))
    assert densities[1] == pytest.approx(0.5)


def test_erdos_renyi_lambdas_too_large():
    # lambda 200 on a 64x64 layer: 200 * 128 / 4096 = 6.25 > 1
    with pytest.raises(ValueError, match=r"erdos_renyi_lambdas: a layer of shape \(64, 64\) would need density 6\.250 > 1"):
        layer_densities([(64, 3), (64, 64)], 0.5, "erdos_renyi", [1.0, 200.0])


def test_erdos_renyi_lambdas_wrong_length():
    with pytest.raises(ValueError, match="erdos_renyi_lambdas has 1 values for 2 layers"):
        layer_densities([(64, 3), (64, 64)], 0.5, "erdos_renyi", [1.0])


@pytest.mark.parametrize("distribution", ["uniform", "erk"])
def test_dense_network(distribution):
    shapes = [(64, 3), (64, 64), (1, 64)]
    assert layer_densities(shapes, 0.0, distribution) == pytest.approx([1.0, 1.0, 1.0])
    assert realised_total(shapes, layer_densities(shapes, 0.0, distribution)) == sum(sizes(shapes))


@settings(max_examples=100, deadline=None)
@given(shapes=shapes_strategy, sparsity=sparsity_strategy, distribution=st.sampled_from(["uniform", "erk"]))
def test_sparsity_is_monotonic(shapes, sparsity, distribution):
    # A higher sparsity never makes a layer denser.
    higher = min(0.99, sparsity + 0.05)
    assume(higher > sparsity)
    low = layer_densities(shapes, sparsity, distribution)
    high = layer_densities(shapes, higher, distribution)
    assert all(h <= lo + 1e-12 for h, lo in zip(high, low, strict=True))
    weights = sizes(shapes)
    assert sum(d * n for d, n in zip(high, weights, strict=True)) < sum(d * n for d, n in zip(low, weights, strict=True))
