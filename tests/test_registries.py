"""Registries own their names: what a user registers works from the constructor by name, and the docs list it."""

import importlib.util
from pathlib import Path

import pytest
import torch as th

from sb3_sparse import SparseSAC
from sb3_sparse.core.backends import BACKENDS
from sb3_sparse.core.config import ModuleConfig
from sb3_sparse.core.distributions import DISTRIBUTIONS, layer_densities
from sb3_sparse.core.masking import get_mask, sparse_weights
from sb3_sparse.core.regimes import REGIMES, Regime, register_regime
from sb3_sparse.core.registry import Registry
from sb3_sparse.core.schedules import DROP_FRACTION_SCHEDULES, SPARSITY_SCHEDULES
from sb3_sparse.core.scores import SCORES, reads_dense_grad

REGISTRIES = (REGIMES, SPARSITY_SCHEDULES, DROP_FRACTION_SCHEDULES, DISTRIBUTIONS, SCORES, BACKENDS)
DOCS_EXTENSION = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "registry_table.py"


@pytest.fixture(autouse=True)
def restore_registries():
    """What a test registers is gone afterwards (in place: modules hold the registry objects themselves)."""
    saved = [dict(registry) for registry in REGISTRIES]
    yield
    for registry, entries in zip(REGISTRIES, saved, strict=True):
        registry.clear()
        registry.update(entries)


def tiny_sac(**dst):
    """A SAC with one tiny update window: 40 steps, an update every 8."""
    return SparseSAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=16,
        batch_size=8,
        topology_update_interval=8,
        topology_update_end=1.0,
        policy_kwargs={"net_arch": [16, 16]},
        seed=0,
        **dst,
    )


def actor_densities(model):
    return [float(get_mask(module, name).mean()) for _, module, name in sparse_weights(model.actor.latent_pi)]


def test_registry_register_lookup_and_table():
    registry: Registry[object] = Registry("widget", {"round": round})

    @registry.register("square")
    def square(x):
        """Square a number."""
        return x * x

    assert registry.lookup("square") is square
    assert tuple(registry) == ("round", "square")
    assert ("square", "Square a number.") in registry.table()
    with pytest.raises(
        ValueError, match=r"widget='squar' is not valid \(did you mean 'square'\?\); choose one of 'round', 'square'"
    ):
        registry.lookup("squar")
    with pytest.raises(ValueError, match=r"shape='cube' is not valid; choose one of"):
        registry.check("cube", argument="shape")
    with pytest.raises(ValueError, match="needs a non-empty string name"):
        registry.register("", square)
    copy = registry.copy()
    copy.register("cube", square)
    assert isinstance(copy, Registry) and copy.argument == "widget" and "cube" not in registry


def test_user_regime_from_the_constructor():
    with pytest.raises(ValueError, match=r"regime='shuffle' is not valid; choose one of 'dense', "):
        tiny_sac(regime="shuffle")

    @register_regime
    class Shuffle(Regime):
        """Drop and grow at random."""

        name = "shuffle"
        drop_score = "random"
        grow_score = "random"
        dynamic = True

    with pytest.raises(ValueError, match=r"regime='shufle' is not valid \(did you mean 'shuffle'\?\)"):
        tiny_sac(regime="shufle")
    model = tiny_sac(regime="shuffle", drop_fraction=0.5).learn(40)
    assert model.dst_state["modules"]["actor"]["n_updates"] > 0


def test_regime_names_only_registered_scores_and_schedules():
    class Bad(Regime):
        name = "bad"
        grow_score = "gradiant"

    with pytest.raises(ValueError, match=r"grow_score='gradiant' is not valid \(did you mean 'gradient'\?\)"):
        register_regime(Bad)
    Bad.grow_score, Bad.sparsity_schedule = "random", "cubik"
    with pytest.raises(ValueError, match=r"sparsity_schedule='cubik' is not valid \(did you mean 'cubic'\?\)"):
        register_regime(Bad)
    assert "bad" not in REGIMES


def test_user_sparsity_schedule_through_a_regime():
    """A regime that names a user's sparsity schedule: the schedule decides the target counts."""

    class Linear(Regime):
        name = "linear_pruning"
        dynamic = True
        sparsity_schedule = "linear"

        @classmethod
        def initial_sparsity(cls, config):
            return 0.0

    with pytest.raises(ValueError, match="sparsity_schedule='linear' is not valid; choose one of 'constant', 'cubic'"):
        register_regime(Linear)
    calls = []

    @SPARSITY_SCHEDULES.register("linear")
    def linear(initial, final, progress):
        """From the initial to the final sparsity at a constant rate."""
        calls.append(progress)
        return initial + (final - initial) * progress

    register_regime(Linear)
    model = tiny_sac(regime="linear_pruning", sparsity=0.75).learn(40)
    assert calls and max(calls) > 0
    assert all(density < 1.0 for density in actor_densities(model))


def test_user_drop_fraction_schedule_from_the_constructor():
    message = (
        r"drop_fraction_schedule='cosine_half' is not valid \(did you mean 'cosine'\?\); choose one of 'constant', 'cosine'$"
    )
    with pytest.raises(ValueError, match=message):
        tiny_sac(drop_fraction_schedule="cosine_half")
    calls = []

    @DROP_FRACTION_SCHEDULES.register("cosine_half")
    def cosine_half(fraction, progress):
        """Half the cosine schedule."""
        calls.append(fraction)
        return DROP_FRACTION_SCHEDULES["cosine"](fraction, progress) / 2

    with pytest.raises(ValueError, match=r"drop_fraction_schedule='cosine_hlf' is not valid \(did you mean 'cosine_half'\?\)"):
        tiny_sac(drop_fraction_schedule="cosine_hlf")
    tiny_sac(regime="set", drop_fraction=0.4, drop_fraction_schedule="cosine_half").learn(40)
    assert calls and set(calls) == {0.4}


def test_user_distribution_from_the_constructor():
    with pytest.raises(ValueError, match=r"sparsity_distribution='uniform_first' is not valid \(did you mean 'uniform'\?\)"):
        tiny_sac(sparsity_distribution="uniform_first")

    @DISTRIBUTIONS.register("uniform_first")
    def uniform_first(shapes, density):
        """All the sparsity in the first layer (a test distribution)."""
        return [0.5] + [1.0] * (len(shapes) - 1)

    with pytest.raises(
        ValueError, match=r"sparsity_distribution='uniform_frst' is not valid \(did you mean 'uniform_first'\?\)"
    ):
        tiny_sac(sparsity_distribution="uniform_frst")
    model = tiny_sac(regime="static", sparsity_distribution="uniform_first").learn(20)
    assert actor_densities(model) == [0.5, 1.0]


def test_distribution_giving_bad_densities_is_refused():
    DISTRIBUTIONS.register("broken", lambda shapes, density: [1.5] * len(shapes))
    with pytest.raises(ValueError, match=r"sparsity_distribution='broken' gave densities \[1.5\] for 1 layers"):
        layer_densities([(4, 4)], 0.5, "broken")


def test_user_backend_from_the_constructor():
    valid = "'auto', 'masked', 'csr', 'condensed'"
    with pytest.raises(
        ValueError, match=rf"backend='auto_gpu' is not valid \(did you mean 'auto'\?\); choose one of {valid}$"
    ):
        tiny_sac(backend="auto_gpu")
    calls = []

    @BACKENDS.register("auto_gpu")
    def auto_gpu(weight, density, batch, mode):
        """CSR products for every layer and batch (a test backend)."""
        calls.append(mode)
        return "csr"

    with pytest.raises(ValueError, match=r"backend='auto_gp' is not valid \(did you mean 'auto_gpu'\?\)"):
        tiny_sac(backend="auto_gp")
    model = tiny_sac(backend="auto_gpu").learn(20)
    assert {"training", "inference"} <= set(calls)
    assert model.predict(th.zeros(3).numpy(), deterministic=True)[0].shape == (1,)


def test_user_gradient_score_makes_its_regime_capture_the_dense_gradient():
    @SCORES.register("gradient_times_weight")
    @reads_dense_grad
    def gradient_times_weight(weight, mask, dense_grad):
        """|w * dL/dw|."""
        assert dense_grad is not None
        return (weight * dense_grad).abs()

    @register_regime
    class Saliency(Regime):
        name = "saliency"
        grow_score = "gradient_times_weight"
        dynamic = True

    assert Saliency.uses_gradient()
    assert not REGIMES["set"].uses_gradient() and REGIMES["rigl"].uses_gradient()
    model = tiny_sac(regime="saliency").learn(40)
    assert model.dst_state["modules"]["critic"]["n_updates"] > 0


def test_a_regime_says_whether_it_masks():
    assert not REGIMES["dense"].masked
    assert all(REGIMES[name].masked for name in ("static", "set", "rigl", "gmp", "ne"))

    @register_regime
    class Unmasked(Regime):
        """Dense under another name."""

        name = "unmasked"
        masked = False

    model = tiny_sac(regime="unmasked")
    assert not list(sparse_weights(model.policy))
    assert ModuleConfig(regime="unmasked").regime == "unmasked"


def load_docs_extension():
    spec = importlib.util.spec_from_file_location("registry_table", DOCS_EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_table_lists_a_newly_registered_name():
    extension = load_docs_extension()
    path = "sb3_sparse.core.distributions.DISTRIBUTIONS"
    before = "\n".join(extension.table_lines(path))
    assert "``erk``" in before and "first_half" not in before

    @DISTRIBUTIONS.register("first_half")
    def first_half(shapes, density):
        """All the sparsity in the first layer."""
        return [density] * len(shapes)

    lines = extension.table_lines(path)
    assert "   * - ``first_half``" in lines
    assert "     - All the sparsity in the first layer." in lines
    with pytest.raises(ValueError, match="is not a registry"):
        extension.table_lines("sb3_sparse.core.distributions.layer_densities")
