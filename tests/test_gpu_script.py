"""The GPU measurement script (benchmarks/gpu.py) on the CPU: its dry run, its refusal without CUDA, its budget."""

import json
import time
from pathlib import Path

import conftest
import pytest
import torch as th

from benchmarks import gpu
from benchmarks.gpu import DRY_GRID, main, measure_widths, run_tests


def test_the_dry_run_writes_the_tests_and_the_grid(tmp_path: Path):
    assert main(["--dry-run", "--widths", "16", "--env", "Pendulum-v1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["environment"]["device"] == "cpu" and result["environment"]["torch"] == th.__version__
    assert result["tests"]["returncode"] == 0 and "collected" in result["tests"]["summary"]
    assert "SB3_SPARSE_TEST_DEVICE=cpu" in result["tests"]["command"]
    assert "test_backends.py" in (tmp_path / "pytest.log").read_text()
    [width] = result["throughput"]
    backends = {row["backend"] for row in width["training"] if row["kind"] == "sparse"}
    assert width["width"] == 16 and backends == {"masked", "csr", "condensed", "auto"}
    text = (tmp_path / "results.md").read_text()
    assert "python -m benchmarks.gpu --dry-run" in text and text.count("--out") == 1 and "| 16 | sparse | 0.9 | csr |" in text


@pytest.mark.skipif(th.cuda.is_available(), reason="a CUDA device is here")
def test_without_cuda_it_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "a CUDA device is needed" in line and not any(tmp_path.iterdir())


def test_a_width_that_would_overrun_the_budget_is_skipped():
    [(row, text)] = measure_widths([16], DRY_GRID, "Pendulum-v1", th.device("cpu"), deadline=time.perf_counter() + 0.01)
    assert text is None and "needed" in row["skipped"] and "training" not in row


def test_a_failing_width_is_recorded_and_the_next_one_runs(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def failing(argv: list[str]) -> None:
        calls.append(argv)
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(gpu.throughput, "main", failing)
    rows = list(measure_widths([16, 32], DRY_GRID, "Pendulum-v1", th.device("cpu"), deadline=time.perf_counter() + 60))
    assert [row for row, _ in rows] == [
        {"width": width, "error": "RuntimeError: CUDA error: an illegal memory access"} for width in (16, 32)
    ]
    assert len(calls) == 2


def test_tests_that_overrun_their_time_are_stopped(tmp_path: Path):
    start = time.perf_counter()
    tests = run_tests(th.device("cpu"), timeout=1, log=tmp_path / "pytest.log", collect_only=False)
    assert tests["returncode"] == "stopped after 1 s" and time.perf_counter() - start < 10


def test_the_test_device_variable_sets_torchs_default_device(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(conftest.DEVICE_VARIABLE, "meta")
    try:
        conftest.pytest_configure(None)
        assert th.empty(1).device.type == "meta"
    finally:
        th.set_default_device(None)
    assert th.empty(1).device.type == "cpu"
