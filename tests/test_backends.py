"""The compute backends give the masked backend's outputs and gradients and keep every invariant."""

import copy
import pickle
import subprocess
import sys

import pytest
import torch as th
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sb3_sparse import SparseDQN, SparseSAC, SparseTD3
from sb3_sparse.core import backends, masking
from sb3_sparse.core.backends import (
    BAG_MIN_BATCH,
    CROSSOVER,
    SparseLinear,
    crossover_density,
    get_backend,
    layer_backend,
    narrowest_sparse_width,
    set_backend,
)
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.crossover_cache import use_calibration
from sb3_sparse.core.masking import (
    DenseLinear,
    MaskedLinear,
    get_mask,
    linear,
    sparse_weights,
    sparsify,
    track_dense_gradients,
    weight_state,
    zero_pruned,
)
from sb3_sparse.core.update import init_mask

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(autouse=True)
def builtin_crossover():
    """``"auto"`` follows the built-in table here, whatever this machine has calibrated."""
    use_calibration("builtin")
    yield
    use_calibration(None)


def masked_layer(n_in: int, n_out: int, density: float, bias: bool = True, seed: int = 0, per_unit: bool = False) -> nn.Linear:
    """A masked layer; ``per_unit``: with constant fan-in (one more in the first rows for a remainder)."""
    th.manual_seed(seed)
    layer = nn.Linear(n_in, n_out, bias=bias)
    sparsify(layer, "weight", init_mask(layer.weight, max(1, round(density * n_in * n_out)), "random", per_unit))
    return layer


def outputs_and_gradients(layer: nn.Linear, backend: str, x: th.Tensor, grad_output: th.Tensor) -> list[th.Tensor]:
    set_backend(layer, backend)
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = layer(x)
    out.backward(grad_output)
    grads = [out.detach(), x.grad, layer.weight.grad]
    return grads + ([layer.bias.grad] if layer.bias is not None else [])


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 24),
    n_out=st.integers(1, 24),
    batch=st.sampled_from([(1,), (5,), (3, 4), (BAG_MIN_BATCH,), (4, BAG_MIN_BATCH // 4)]),  # the CSR kernel, then bags
    density=st.floats(0.02, 1.0),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
    backend=st.sampled_from(["csr", "condensed"]),
    per_unit=st.booleans(),
)
def test_sparse_backends_match_masked_outputs_and_gradients(n_in, n_out, batch, density, bias, seed, backend, per_unit):
    layer = masked_layer(n_in, n_out, density, bias, seed, per_unit)
    x, grad_output = th.randn(*batch, n_in), th.randn(*batch, n_out)
    expected = outputs_and_gradients(layer, "masked", x, grad_output)
    actual = outputs_and_gradients(layer, backend, x, grad_output)
    # the weight and bias gradients sum over the rows in another order: float error grows with their number
    rows = x.numel() // n_in
    tolerance = {**TOLERANCE, "atol": TOLERANCE["atol"] * max(1.0, rows / 8)}
    for want, got in zip(expected, actual, strict=True):
        assert got.shape == want.shape
        th.testing.assert_close(got, want, **tolerance)
    pruned = get_mask(layer) == 0
    assert (actual[2][pruned] == 0).all()  # exactly 0, not only close
    with th.no_grad():
        th.testing.assert_close(layer(x), expected[0], **TOLERANCE)


def test_dense_gradient_for_growth_is_the_masked_backends():
    layer = masked_layer(16, 12, 0.2)
    x, grad_output = th.randn(8, 16), th.randn(8, 12)
    track_dense_gradients(layer, True)
    dense = {}
    for backend in ("masked", "csr", "condensed"):
        grads = outputs_and_gradients(layer, backend, x, grad_output)
        dense[backend] = weight_state(layer).last_dense_grad.clone()
        assert (grads[2][get_mask(layer) == 0] == 0).all()
    assert (dense["csr"][get_mask(layer) == 0] != 0).any()
    th.testing.assert_close(dense["csr"], dense["masked"], **TOLERANCE)
    th.testing.assert_close(dense["condensed"], dense["masked"], **TOLERANCE)


def test_a_weight_used_by_both_backends_in_one_graph_gets_the_summed_masked_gradient():
    layer = masked_layer(10, 10, 0.3)
    x = th.randn(4, 10)
    set_backend(layer, "csr")
    csr_out = layer(x)
    set_backend(layer, "masked")
    loss = (csr_out.sum() + layer(x).sum()) * 1.5
    loss.backward()
    grad = layer.weight.grad
    assert (grad[get_mask(layer) == 0] == 0).all()
    layer.weight.grad = None
    (layer(x).sum() * 3.0).backward()
    th.testing.assert_close(grad, layer.weight.grad, **TOLERANCE)


def test_mask_changes_rebuild_the_csr_structure():
    layer = masked_layer(8, 6, 0.5)
    set_backend(layer, "csr")
    x = th.randn(3, 8)
    layer(x)
    mask = get_mask(layer)
    mask.zero_()
    mask[0, 0] = 1.0
    with th.no_grad():
        layer.weight.mul_(mask)
    expected = th.zeros(3, 6)
    expected[:, 0] = x[:, 0] * layer.weight[0, 0]
    th.testing.assert_close(layer(x) - layer.bias, expected, **TOLERANCE)


def test_a_new_backend_forgets_the_previous_ones_choices():
    layer = masked_layer(16, 16, 0.2)
    for backend in ("csr", "condensed", "masked", "csr"):
        set_backend(layer, backend)
        layer(th.randn(4, 16))
        assert layer_backend(layer, 4, "inference") == backend


def test_condensed_inference_of_either_input_layout():
    layer = masked_layer(16, 8, 0.25, per_unit=True)
    set_backend(layer, "condensed")
    x = th.randn(5, 16)
    with th.no_grad():
        expected = F.linear(x, layer.weight * get_mask(layer), layer.bias)
        for given in (x, x.t().contiguous().t()):  # row-major (copied), column-major (read as it is)
            th.testing.assert_close(layer(given), expected, **TOLERANCE)


def test_set_backend_swaps_the_class_in_place_and_back():
    layer = masked_layer(4, 4, 0.5)
    weight = layer.weight
    set_backend(layer, "csr")
    assert type(layer) is SparseLinear and get_backend(layer) == "csr" and layer.weight is weight
    copied = copy.deepcopy(layer)
    pickled = pickle.loads(pickle.dumps(layer))
    for other in (copied, pickled):
        assert type(other) is SparseLinear and get_backend(other) == "csr"
        th.testing.assert_close(other(th.ones(2, 4)), layer(th.ones(2, 4)))
    set_backend(layer, "masked")
    assert type(layer) is MaskedLinear and get_backend(layer) == "masked"
    assert get_backend(nn.Linear(2, 2)) == "masked"
    with pytest.raises(ValueError, match=r"backend='sparse' is not valid.*'auto', 'masked', 'csr', 'condensed'"):
        set_backend(layer, "sparse")


def test_layers_other_than_float32_linear_stay_masked():
    conv = nn.Conv2d(2, 2, 3)
    sparsify(conv, "weight")
    set_backend(conv, "csr")
    assert type(conv) is nn.Conv2d
    layer = masked_layer(4, 4, 0.5).double()
    set_backend(layer, "csr")
    assert layer_backend(layer, 256, "training") == "masked"
    th.testing.assert_close(layer(th.ones(2, 4, dtype=th.float64)), layer.double()(th.ones(2, 4, dtype=th.float64)))


def test_auto_follows_the_crossover_tables():
    assert crossover_density("cpu", "training", 0, 10**6) == 0.0
    assert crossover_density("cuda", "training", 256, 10**7) == 0.0  # no GPU measurements: masked
    for mode, batches in CROSSOVER["cpu"].items():
        for batch, sizes in batches.items():
            for width, density in sizes:
                assert crossover_density("cpu", mode, batch, width) == density
                assert crossover_density("cpu", mode, batch + 1, width + 1) == density
    big = masked_layer(1024, 1024, 0.1)  # 90% sparse: its density rounds to a hair above 0.1
    small = masked_layer(32, 32, 0.05)
    narrow_input = masked_layer(17, 1024, 0.1)  # counts as wide: it feeds the wide CSR layers
    for layer in (big, small, narrow_input):
        set_backend(layer, "auto")
    assert layer_backend(big, 256, "training") == "csr"
    assert layer_backend(big, 256, "inference") == layer_backend(big, 512, "inference") == "condensed"
    assert layer_backend(big, 256, "frozen") == "csr"  # not measured: CSR's table
    assert layer_backend(big, 64, "inference") == "csr"  # condensed measured at batch 256 only
    assert layer_backend(narrow_input, 256, "training") == "csr"
    assert layer_backend(big, 1, "training") == "masked"
    assert layer_backend(big, 1, "inference") == "masked"  # acting at batch 1: CSR from density 0.05 at width 1024
    sparser = masked_layer(1024, 1024, 0.05)
    set_backend(sparser, "auto")
    assert layer_backend(sparser, 1, "inference") == "csr"
    assert layer_backend(small, 256, "training") == "masked"
    # a layer narrower than every table's widths is a plain masked layer (no per-call choice), its setting kept
    assert narrowest_sparse_width() == 128
    assert type(small) is MaskedLinear and get_backend(small) == "auto"
    wide_enough = masked_layer(128, 16, 0.05)
    set_backend(wide_enough, "auto")
    assert type(wide_enough) is SparseLinear and type(big) is SparseLinear
    dense_enough = masked_layer(1024, 1024, 0.5)
    set_backend(dense_enough, "auto")
    assert layer_backend(dense_enough, 256, "inference") == "masked"


def test_a_frozen_layer_gathers_its_weights_once():
    layer = masked_layer(16, 8, 0.3)
    x = th.randn(5, 16)
    set_backend(layer, "csr", frozen=True)
    with th.no_grad():
        first = layer(x)
        assert weight_state(layer).csr_values is not None
        cached = weight_state(layer).csr_values[1]
        th.testing.assert_close(layer(x), first)
        assert weight_state(layer).csr_values[1] is cached
        layer.weight.mul_(2.0)  # a write that bumps the version (load_state_dict, an unfused optimizer) is seen
        th.testing.assert_close(layer(x) - layer.bias, 2 * (first - layer.bias), **TOLERANCE)
    set_backend(layer, "masked")
    assert type(layer) is MaskedLinear


@pytest.mark.parametrize("backend", ["masked", "auto"])
def test_a_frozen_masked_product_zeroes_the_pruned_weights_once(backend, monkeypatch):
    """A frozen layer's masked product (at batch 1, what a deployed policy runs) multiplies the weight by its mask at
    its first call and again only after the weight or mask changes in a way that bumps their version."""
    layer = masked_layer(16, 8, 0.3)
    set_backend(layer, backend, frozen=True)
    assert type(layer) is SparseLinear  # narrow layers too: a MaskedLinear would zero them at every call
    state = {**layer.state_dict(), "weight": th.ones(8, 16)}  # pruned entries non-zero
    zeroings = []

    def counted(module: nn.Module, name: str) -> None:
        zeroings.append(name)
        zero_pruned(module, name)

    monkeypatch.setattr(backends, "zero_pruned", counted)
    monkeypatch.setattr(masking, "zero_pruned", counted)
    layer.weight.data.normal_()  # before the first product: seen
    x = th.randn(1, 16)
    with th.no_grad():
        assert layer_backend(layer, 1, "frozen") == "masked"
        for _ in range(3):
            th.testing.assert_close(layer(x), F.linear(x, layer.weight * get_mask(layer), layer.bias))
        assert zeroings == ["weight"]
        layer.load_state_dict(state)
        th.testing.assert_close(layer(x), F.linear(x, get_mask(layer), layer.bias))
        assert zeroings == ["weight", "weight"]
    set_backend(layer, backend)  # unfrozen: zeroed before every product again
    with th.no_grad():
        layer(x), layer(x)
    assert len(zeroings) == 4


def test_backend_is_a_validated_dst_argument():
    assert ModuleConfig().backend == "auto"
    with pytest.raises(ValueError, match=r"backend='cs' is not valid \(did you mean 'csr'\?\)"):
        SparseSAC("MlpPolicy", "Pendulum-v1", backend="cs")


def sparse_classes(policy) -> set[type]:
    return {type(module) for _, module, _ in sparse_weights(policy)}


@pytest.mark.parametrize("algo", [SparseSAC, SparseTD3])
@pytest.mark.parametrize("sparse_backend", ["csr", "condensed"])
def test_training_with_a_sparse_backend_follows_masked_training(algo, sparse_backend):
    """A few gradient steps from the same seed give the same networks (to float rounding) on both backends,
    with exact zeros and clean optimizer state at pruned positions."""
    models = {}
    for backend in ("masked", sparse_backend):
        model = algo(
            "MlpPolicy", "Pendulum-v1", backend=backend, sparsity=0.8, learning_starts=40, batch_size=16,
            policy_kwargs={"net_arch": [32, 32]}, seed=3,
        )  # fmt: skip
        model.learn(60)
        models[backend] = model
    assert sparse_classes(models["masked"].policy) == {MaskedLinear}
    assert sparse_classes(models[sparse_backend].policy) == {SparseLinear}
    masked, sparse = (dict(models[b].policy.state_dict()) for b in ("masked", sparse_backend))
    for key, value in masked.items():
        th.testing.assert_close(sparse[key], value, rtol=1e-4, atol=1e-5, msg=key)
    policy = models[sparse_backend].policy
    for binding in policy.sparse_bindings().values():
        for _, module, name in sparse_weights(binding.online):
            pruned = get_mask(module, name) == 0
            weight = getattr(module, name)
            assert (weight[pruned] == 0).all()
            state = binding.optimizer.state[weight]
            assert (state["exp_avg"][pruned] == 0).all() and (state["exp_avg_sq"][pruned] == 0).all()


def test_a_model_trained_with_one_backend_loads_and_continues_with_the_other(tmp_path):
    model = SparseSAC(
        "MlpPolicy", "Pendulum-v1", backend="csr", regime="rigl", sparsity=0.9, topology_update_interval=50,
        learning_starts=30, batch_size=16, policy_kwargs={"net_arch": [32, 32]}, seed=0,
    )  # fmt: skip
    model.learn(60)
    model.save(tmp_path / "model")
    loaded = SparseSAC.load(tmp_path / "model", backend="masked")
    assert loaded.dst_config["backend"] == "masked"
    assert sparse_classes(loaded.policy) == {MaskedLinear}
    for key, value in model.policy.state_dict().items():
        assert th.equal(loaded.policy.state_dict()[key], value), key
    obs = th.as_tensor(model.env.observation_space.sample()).unsqueeze(0)
    with th.no_grad():
        th.testing.assert_close(loaded.policy.actor(obs, deterministic=True), model.policy.actor(obs, deterministic=True))
    loaded.set_env(model.env)
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded.dst_state["modules"]["critic"]["n_updates"] == 2
    again = SparseSAC.load(tmp_path / "model")
    assert sparse_classes(again.policy) == {SparseLinear}
    with pytest.raises(ValueError, match=r"backend='dense' is not valid"):
        SparseSAC.load(tmp_path / "model", backend="dense")
    again.policy.set_backend("masked")
    assert sparse_classes(again.policy) == {MaskedLinear}


def test_sparse_dqn_runs_on_csr():
    model = SparseDQN(
        "MlpPolicy", "CartPole-v1", backend="csr", sparsity=0.9, learning_starts=20, batch_size=16,
        policy_kwargs={"net_arch": [32, 32]}, seed=0,
    )  # fmt: skip
    model.learn(50)
    assert sparse_classes(model.policy) == {SparseLinear}
    for _, module, name in sparse_weights(model.policy):
        assert (getattr(module, name)[get_mask(module, name) == 0] == 0).all()


def test_column_major_inputs_and_gradients_give_the_same_results():
    """CSR products run on column-major operands; row-major, column-major and strided inputs all give the same."""
    layer = masked_layer(12, 9, 0.3)
    base = th.randn(6, 12)
    grad_output = th.randn(6, 9)
    expected = outputs_and_gradients(layer, "masked", base, grad_output)
    for x, grad in ((base, grad_output), (base.t().contiguous().t(), grad_output.t().contiguous().t())):
        for got, want in zip(outputs_and_gradients(layer, "csr", x, grad), expected, strict=True):
            th.testing.assert_close(got, want, **TOLERANCE)
    strided = th.randn(6, 24)[:, ::2]
    set_backend(layer, "csr")
    th.testing.assert_close(layer(strided), strided @ layer.weight.t() + layer.bias, **TOLERANCE)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["row-major", "column-major", "strided", "3-d"])
def test_linear_of_any_input_layout_is_f_linear(bias, layout):
    """The package's product (column-major inputs as ``W @ x.T``) gives ``F.linear``'s outputs and gradients."""
    weight, bias_tensor = th.randn(6, 10, requires_grad=True), th.randn(6, requires_grad=True) if bias else None
    base = th.randn(3, 7, 10) if layout == "3-d" else th.randn(7, 20)[:, ::2] if layout == "strided" else th.randn(7, 10)
    x = (base.t().contiguous().t() if layout == "column-major" else base).requires_grad_()
    got = linear(x, weight, bias_tensor)
    assert got.shape == (*base.shape[:-1], 6)
    grad_output = th.randn_like(got)
    got_grads = th.autograd.grad(got, [x, weight, *([bias_tensor] if bias else [])], grad_output)
    want = F.linear(x, weight, bias_tensor)
    want_grads = th.autograd.grad(want, [x, weight, *([bias_tensor] if bias else [])], grad_output)
    th.testing.assert_close(got, want, **TOLERANCE)
    for got_grad, want_grad in zip(got_grads, want_grads, strict=True):
        th.testing.assert_close(got_grad, want_grad, **TOLERANCE)


def test_dense_layers_below_sparse_ones_read_column_major_outputs():
    """With a sparse backend the dense layers of the network become ``DenseLinear`` (same object, parameters and
    ``state_dict``), back to ``nn.Linear`` with ``"masked"``; the network computes the same either way."""
    network = nn.Sequential(masked_layer(8, 16, 0.2), nn.ReLU(), nn.Linear(16, 6))
    head, keys = network[2], list(network.state_dict())
    x = th.randn(5, 8)
    expected = network(x)
    set_backend(network, "csr")
    assert type(head) is DenseLinear and network[2] is head and list(network.state_dict()) == keys
    assert not network[1](network[0](x)).is_contiguous()  # what the CSR product returns: column-major
    th.testing.assert_close(network(x), expected, **TOLERANCE)
    for other in (copy.deepcopy(network), pickle.loads(pickle.dumps(network))):
        assert type(other[2]) is DenseLinear
        th.testing.assert_close(other(x), expected, **TOLERANCE)
    set_backend(network, "masked")
    assert type(head) is nn.Linear and type(network[0]) is MaskedLinear
    sparsify(head, "weight")  # a dense layer made sparse later is masked like any other
    assert type(head) is MaskedLinear


def test_layers_feeding_sparse_products_return_column_major_outputs_with_the_same_values():
    """A linear layer whose output reaches a sparse product through elementwise activations returns it column-major
    (the layout the product reads); outputs and gradients are those of the unmarked network; ``"masked"`` unmarks."""
    th.manual_seed(0)
    network = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), masked_layer(16, 16, 0.2), nn.Tanh(), nn.Linear(16, 3))
    extra = nn.Sequential(nn.Linear(5, 16), nn.LayerNorm(16), masked_layer(16, 4, 0.2))  # LayerNorm mixes features
    x, grad_output = th.randn(7, 5), th.randn(7, 3)

    def run() -> list[th.Tensor]:
        network.zero_grad(set_to_none=True)
        out = network(x)
        out.backward(grad_output)
        return [out.detach()] + [parameter.grad for parameter in network.parameters()]

    set_backend(network, "csr")
    set_backend(extra, "csr")
    marked = [index for index, layer in enumerate(network) if masking.COLUMN_MAJOR_ATTRIBUTE in layer.__dict__]
    assert marked == [0] and masking.COLUMN_MAJOR_ATTRIBUTE not in extra[0].__dict__
    assert not network[0](x).is_contiguous() and network[0](x).stride(0) == 1
    expected = run()
    network[0].__dict__.pop(masking.COLUMN_MAJOR_ATTRIBUTE)
    assert network[0](x).is_contiguous()
    for got, want in zip(run(), expected, strict=True):
        th.testing.assert_close(got, want, **TOLERANCE)
    set_backend(network, "csr")
    assert masking.COLUMN_MAJOR_ATTRIBUTE in copy.deepcopy(network)[0].__dict__
    set_backend(network, "masked")
    assert all(masking.COLUMN_MAJOR_ATTRIBUTE not in layer.__dict__ for layer in network)


@pytest.mark.parametrize(("density", "batch", "column_major"), [(0.1, 256, True), (0.1, 7, False), (0.5, 256, False)])
def test_a_layer_hands_over_column_major_only_to_a_sparse_product(density, batch, column_major):
    """Under ``"auto"`` the layer before a sparse one returns column-major outputs only for the calls whose product in
    that layer is sparse (training at batch 256 and density 0.1: CSR); a dense product reads row-major inputs faster."""
    network = nn.Sequential(nn.Linear(5, 256), nn.ReLU(), masked_layer(256, 256, density))
    set_backend(network, "auto")
    consumer_is_sparse = layer_backend(network[2], batch, "training") != "masked"
    assert consumer_is_sparse == column_major
    out = network[0](th.randn(batch, 5))
    assert out.is_contiguous() != column_major and (out.stride(0) == 1) == column_major


def test_sparse_sac_layers_feeding_sparse_products_are_marked():
    """Built under ``"auto"`` at width 256 and 90% sparsity (CSR training products at batch 256), each layer before a
    hidden sparse layer returns column-major outputs, in the online and the target networks."""
    model = SparseSAC("MlpPolicy", "Pendulum-v1", regime="rigl", sparsity=0.9, sparsity_distribution="erk")
    marked = {name for name, module in model.policy.named_modules() if masking.COLUMN_MAJOR_ATTRIBUTE in module.__dict__}
    assert {"actor.latent_pi.0", "critic.qf0.0", "critic_target.qf1.0"} <= marked
    assert "actor.latent_pi.2" not in marked  # feeds the heads, outside the Sequential


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    density=st.floats(0.02, 1.0),
    backend=st.sampled_from(["masked", "csr", "condensed", "auto"]),
    frozen=st.booleans(),
    grad=st.booleans(),
    seed=st.integers(0, 1000),
    batch=st.sampled_from([5, BAG_MIN_BATCH]),
)
def test_no_backend_reads_a_pruned_weight_written_through_data(shape, density, backend, frozen, grad, seed, batch):
    """After ``weight.data`` is overwritten (no version bump), every backend's product is that of the masked weight."""
    layer = masked_layer(*shape, density, seed=seed)
    set_backend(layer, backend, frozen=frozen and not grad)
    layer.weight.data.normal_()
    x = th.randn(batch, shape[0])
    expected = F.linear(x, layer.weight.detach() * get_mask(layer), layer.bias.detach())
    with th.set_grad_enabled(grad):
        th.testing.assert_close(layer(x), expected, **TOLERANCE)


def test_csr_products_raise_no_beta_warning_where_warnings_are_recorded():
    """PyTorch's once-per-process notice that CSR tensors are in beta is taken on import: a fresh process that records
    every warning (as SB3's tests do) sees none from a CSR product."""
    code = (
        "import warnings\n"
        "from torch import nn\n"
        "import torch as th\n"
        "from sb3_sparse.core.backends import set_backend\n"
        "from sb3_sparse.core.masking import sparsify\n"
        "layer = nn.Linear(8, 8)\n"
        "sparsify(layer, 'weight', (th.rand(8, 8) < 0.3).float())\n"
        "set_backend(layer, 'csr')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    layer(th.randn(2, 8)).sum().backward()\n"
        "print([str(warning.message) for warning in caught])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
