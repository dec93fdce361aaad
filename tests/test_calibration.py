"""Per-machine crossover points: ``sb3-sparse calibrate`` writes them, ``backend="auto"`` reads them."""

import json
import warnings

import pytest
import torch as th
from torch import nn

from sb3_sparse.core import crossover_cache
from sb3_sparse.core.backends import CONDENSED_CROSSOVER, CROSSOVER, crossover_density, layer_backend, set_backend
from sb3_sparse.core.calibration import calibrate, calibration_network, crossover_range
from sb3_sparse.core.crossover_cache import (
    CACHE_VARIABLE,
    cache_file,
    calibrated_crossover,
    clear_calibration,
    default_cache_file,
    machine_key,
    save_calibration,
    use_calibration,
)
from sb3_sparse.core.masking import sparsify
from sb3_sparse.core.update import init_mask
from sb3_sparse.zoo.cli import main

#: CSR for every training product of width 16 or more up to density 0.6 (the built-in table: masked below 512)
EAGER = {"training": {1: [(0, 0.0), (16, 0.6)]}}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test calibrates into its own cache directory, with the default lookup."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    use_calibration(None)
    yield
    use_calibration(None)


def sparse_layer(width: int = 32, density: float = 0.5) -> nn.Linear:
    th.manual_seed(0)
    layer = nn.Linear(width, width)
    sparsify(layer, "weight", init_mask(layer.weight, round(density * width * width), "random"))
    return layer


def test_a_tiny_calibration_writes_the_cache_that_auto_reads(tmp_path):
    th.manual_seed(7)
    random_state = th.random.get_rng_state()
    file = calibrate(widths=[64], batches=[4], modes=["training"], densities=[0.05, 0.5], repeats=1, rounds=1)
    assert th.equal(th.random.get_rng_state(), random_state)  # the caller's seeded run goes on as it would have
    assert file == default_cache_file() == cache_file()
    assert file.parent == tmp_path / "cache" / "sb3-sparse"
    data = json.loads(file.read_text())
    assert data["key"] == machine_key()
    [row] = data["measured"]
    assert (row["mode"], row["batch"], row["width"]) == ("training", 4, 64) and row["ratios"]
    table = calibrated_crossover()
    assert table is not None and list(table) == ["training"]
    [(floor, zero), (width, highest)] = table["training"][4]
    assert (floor, zero, width) == (0, 0.0, 64) and highest in (0.0, 0.05, 0.5)
    assert crossover_density("cpu", "training", 4, 64) == highest
    assert crossover_density("cpu", "training", 4, 32) == 0.0  # narrower than every measured width: masked
    # modes it did not measure keep the built-in points
    assert crossover_density("cpu", "frozen", 256, 2048) == CROSSOVER["cpu"]["frozen"][256][-1][1]


def test_auto_follows_a_calibration_that_says_so():
    assert layer_backend(set_backend_of(sparse_layer(), "auto"), 1, "training") == "masked"  # built-in table
    save_calibration(EAGER)
    assert layer_backend(set_backend_of(sparse_layer(), "auto"), 1, "training") == "csr"
    assert layer_backend(set_backend_of(sparse_layer(density=0.7), "auto"), 1, "training") == "masked"
    use_calibration("builtin")
    assert layer_backend(set_backend_of(sparse_layer(), "auto"), 1, "training") == "masked"


def test_a_calibration_of_products_without_gradients_measures_condensed_ones_too():
    file = calibrate(widths=[64], batches=[4], modes=["training", "inference"], densities=[0.5], repeats=1, rounds=1)
    measured = {row["mode"]: row["ratios"] for row in json.loads(file.read_text())["measured"]}
    assert set(measured["training"]) == {"csr"}  # training products are never condensed
    assert set(measured["inference"]) == {"csr", "condensed"} and measured["inference"]["condensed"]
    condensed = calibrated_crossover("condensed")
    assert condensed is not None and list(condensed) == ["inference"]
    [(_, _), (width, highest)] = condensed["inference"][4]
    assert width == 64 and crossover_density("cpu", "inference", 4, 64, "condensed") == highest
    assert crossover_density("cpu", "inference", 4, 64, "condensed_lowest") == highest  # one density measured


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ({0.02: 1.2, 0.05: 0.8, 0.1: 0.85, 0.2: 1.1, 0.3: 0.5}, (0.05, 0.1)),  # the first run of wins only
        ({0.02: 0.5, 0.05: 0.95}, (0.02, 0.02)),
        ({0.02: 1.5, 0.05: 0.95}, (0.0, 0.0)),
    ],
)
def test_the_condensed_range_is_the_first_run_of_faster_densities(ratios, expected):
    assert crossover_range(ratios, margin=0.9) == expected


def test_auto_follows_a_calibration_of_condensed_products():
    layer = sparse_layer(density=0.1)
    assert layer_backend(set_backend_of(layer, "auto"), 1, "inference") == "masked"  # built-in: batch 256 only
    # condensed from density 0.05 to 0.2, CSR below (the lowest densities are CSR's)
    highest, lowest = {"inference": {1: [(0, 0.0), (16, 0.2)]}}, {"inference": {1: [(0, 0.0), (16, 0.05)]}}
    save_calibration({"inference": {1: [(0, 0.0), (16, 0.6)]}}, condensed=(highest, lowest))
    backends = {
        density: layer_backend(set_backend_of(sparse_layer(density=density), "auto"), 1, "inference")
        for density in (0.02, 0.05, 0.1, 0.15, 0.3)
    }
    assert backends == {0.02: "csr", 0.05: "condensed", 0.1: "condensed", 0.15: "condensed", 0.3: "csr"}
    assert layer_backend(set_backend_of(sparse_layer(density=0.1), "auto"), 1, "training") == "masked"


def test_a_calibration_without_condensed_points_keeps_the_built_in_ones():
    save_calibration(EAGER)
    assert calibrated_crossover() == EAGER and calibrated_crossover("condensed") is None
    [(_, _), (width, highest)] = CONDENSED_CROSSOVER["cpu"]["inference"][256]
    assert crossover_density("cpu", "inference", 256, width, "condensed") == highest


def test_the_calibration_network_is_an_mlp_with_sparse_hidden_layers():
    network = calibration_network(64, 0.25)
    masks = [layer.weight_mask for layer in network if hasattr(layer, "weight_mask")]
    assert [int(mask.sum()) for mask in masks] == [round(0.25 * 32 * 64), round(0.25 * 64 * 64)]
    assert network(th.randn(3, 32)).shape == (3, 1)


def set_backend_of(layer: nn.Linear, backend: str) -> nn.Linear:
    set_backend(layer, backend)
    return layer


def test_every_backend_gives_the_same_results_whatever_the_calibration():
    save_calibration(EAGER)
    x = th.randn(1, 32)
    results = []
    for backend in ("auto", "masked", "csr"):
        layer = set_backend_of(sparse_layer(), backend)
        out = layer(x)
        out.square().sum().backward()
        results.append((out.detach(), layer.weight.grad, layer.bias.grad))
    assert layer_backend(set_backend_of(sparse_layer(), "auto"), 1, "training") == "csr"
    for result in results[1:]:
        for expected, actual in zip(results[0], result, strict=True):
            th.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"format": 99}), "[]", json.dumps({"format": 1, "key": None, "crossover": {}})],
    ids=["not-json", "other-format", "not-a-dict", "no-key"],
)
def test_a_corrupt_cache_is_ignored_with_one_warning(content):
    file = default_cache_file()
    file.parent.mkdir(parents=True)
    file.write_text(content)
    with pytest.warns(UserWarning, match="built-in crossover table"):
        assert calibrated_crossover() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per file version
        assert crossover_density("cpu", "training", 256, 1024) == CROSSOVER["cpu"]["training"][256][-1][1]


@pytest.mark.parametrize(
    "crossover",
    [{"training": {"1": [[512, 0.1], [256, 0.2]]}}, {"training": {"1": [[512, 1.5]]}}, {"training": [1, 2]}],
    ids=["widths-not-increasing", "density-above-1", "no-batches"],
)
def test_a_malformed_table_is_ignored_with_a_warning(crossover):
    file = save_calibration(EAGER)
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, "crossover": crossover}))
    with pytest.warns(UserWarning, match="is ignored"):
        assert calibrated_crossover() is None


@pytest.mark.parametrize("field", ["cpu", "torch", "threads"])
def test_a_cache_from_another_machine_is_ignored_with_a_warning(tmp_path, monkeypatch, field):
    foreign = tmp_path / "elsewhere.json"
    save_calibration(EAGER, foreign)
    data = json.loads(foreign.read_text())
    data["key"][field] = 3 if field == "threads" and machine_key()["threads"] != 3 else "other"
    foreign.write_text(json.dumps(data))
    monkeypatch.setenv(CACHE_VARIABLE, str(foreign))
    assert cache_file() == foreign
    with pytest.warns(UserWarning, match="calibrated on another machine"):
        assert calibrated_crossover() is None
    assert layer_backend(set_backend_of(sparse_layer(), "auto"), 1, "training") == "masked"


def test_the_cache_is_per_thread_count(monkeypatch):
    save_calibration(EAGER)
    threads = th.get_num_threads()
    monkeypatch.setattr(crossover_cache, "machine_key", lambda: {**machine_key(), "threads": threads + 1})
    assert cache_file() != default_cache_file(machine_key())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing calibrated for this thread count: quietly the built-in table
        assert calibrated_crossover() is None


def test_the_variable_and_the_function_choose_the_file(tmp_path, monkeypatch):
    elsewhere = tmp_path / "shared" / "crossover.json"
    monkeypatch.setenv(CACHE_VARIABLE, str(elsewhere))
    assert save_calibration(EAGER) == elsewhere == cache_file()
    assert calibrated_crossover() == EAGER
    monkeypatch.setenv(CACHE_VARIABLE, "builtin")
    assert cache_file() is None and calibrated_crossover() is None
    use_calibration(elsewhere)  # the function wins over the variable
    assert calibrated_crossover() == EAGER
    use_calibration(None)
    assert cache_file() is None


def test_the_command_shows_and_resets_the_calibration(capsys):
    assert main(["calibrate", "--show"]) == 0
    assert "not calibrated" in capsys.readouterr().out
    file = save_calibration(EAGER)
    assert main(["calibrate", "--show"]) == 0
    out = capsys.readouterr().out
    assert str(file) in out and "training, batch >= 1: CSR at width >= 16: density <= 0.6" in out
    assert main(["calibrate", "--reset"]) == 0
    assert not file.exists() and calibrated_crossover() is None
    assert clear_calibration() is None


def test_the_command_calibrates_a_small_grid(capsys):
    argv = ["--widths", "32", "--batches", "2", "--modes", "frozen", "--densities", "0.5", "--repeats", "1"]
    assert main(["calibrate", *argv, "--rounds", "1"]) == 0
    assert "calibrated in" in capsys.readouterr().out
    table = calibrated_crossover()
    assert table is not None and list(table) == ["frozen"] and table["frozen"][2][1][0] == 32


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("modes", ["trainig"], "did you mean 'training'"),
        ("widths", [0], "widths must be whole numbers"),
        ("batches", [], "batches must be whole numbers"),
        ("densities", [0.1, 1.5], r"densities must lie in \(0, 1\]"),
        ("margin", 0.0, "margin must be positive"),
        ("repeats", 0, "repeats must be whole numbers"),
    ],
)
def test_a_bad_grid_is_refused_before_measuring(argument, value, message):
    with pytest.raises(ValueError, match=message):
        calibrate(**{argument: value})
    assert not default_cache_file().exists()


def test_the_command_reports_a_bad_grid_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--densities", "2"])
    assert exit_info.value.code == 2
    assert "sb3-sparse calibrate: error: densities must lie in (0, 1]" in capsys.readouterr().err


def test_the_command_is_listed_and_its_help_is_plain_text(capsys):
    assert main(["-h"]) == 0
    assert "calibrate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["calibrate", "-h"])
    out = capsys.readouterr().out
    assert "SB3_SPARSE_CROSSOVER" in out and "``" not in out and ":mod:" not in out
