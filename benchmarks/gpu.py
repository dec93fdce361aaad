"""The GPU measurement in one command: environment, backend tests on the GPU, throughput grid (under 10 minutes).

On a machine with a CUDA device and internet (PyPI's Linux ``torch`` wheel is the CUDA build)::

    pip install -e ".[tests,bench]" && python -m benchmarks.gpu

On a machine without internet whose Python already has CUDA torch, pytest, pytest-xdist and hypothesis (such as
a lent H100 / H200 with Python 3.12), carry the missing packages as wheels: download them where pip works, from
the repository root, then run the second line on the GPU machine (``$OUT``: the folder that comes back)::

    pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \\
        --platform manylinux_2_28_x86_64 -d .whl stable-baselines3==2.9.2 sb3-contrib==2.9.2 gymnasium==1.4.0 \\
        farama-notifications==0.0.6 mujoco==3.17.0 glfw==2.11.0 pyopengl==3.1.10 websockets importlib-resources
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
        PYTHONPATH=/tmp/site:. python3 -m benchmarks.gpu --out $OUT

(30 MB of wheels; ``.whl/`` stays out of git, e.g. listed in ``.git/info/exclude``.)

Steps, all within ``--budget`` seconds (default 540):

1. the environment: torch, its CUDA version, the device's name, memory and compute capability;
2. ``tests/test_backends.py``, ``tests/test_invariants.py`` and ``tests/test_calibration.py`` with
   ``SB3_SPARSE_TEST_DEVICE=cuda`` (``tests/conftest.py`` makes it torch's default device), stopped after
   ``--test-timeout`` seconds; the log is ``pytest.log``;
3. ``benchmarks/throughput.py`` on the device, one width at a time, widest first (where sparse products could pay
   off): all sparsities and backends of a width in one interleaved run, against dense SB3 SAC. Before each width
   the script estimates its time from the seconds per training step measured so far and skips a width that would
   overrun the budget.

The crossover calibration (``sb3_sparse.core.calibration``) times CPU layers only, so it is not run here: on a GPU
``backend="auto"`` stays masked until GPU crossover points are measured and added.

``--out`` (default ``docs/benchmarks/throughput/gpu-<date>/``) gets ``results.md`` (command, device, date, versions,
test summary, throughput tables), ``results.json`` (the same, raw) and ``pytest.log``. ``--dry-run`` runs the same
steps on the CPU in seconds (a tiny grid, the tests collected, not run), to try the script without a GPU.
"""

import argparse
import importlib.util
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch as th

from benchmarks import throughput
from benchmarks.runner import write_results

TEST_FILES = ("tests/test_backends.py", "tests/test_invariants.py", "tests/test_calibration.py")
#: The variable ``tests/conftest.py`` reads: torch's default device for the tests
TEST_DEVICE_VARIABLE = "SB3_SPARSE_TEST_DEVICE"
#: pytest-xdist workers for the tests (when installed): about 65 s of tests on one CPU core
TEST_WORKERS = 4
#: Seconds of a width per gradient step of its models, assumed until one width is measured (SB3 SAC on a GPU: a few
#: ms per step, CSR slower; plus building each model, its inference latency, files and mask update timing)
FIRST_GUESS_STEP_S = 0.012
#: The throughput arguments of one width: a grid sized for about 130 s per width on an H100 (not yet measured there)
GRID = {
    "sparsities": ["0.8", "0.9", "0.95", "0.98"],
    "backends": ["masked", "csr", "condensed", "auto"],
    "steps": 200,
    "repeats": 3,
    "learning_starts": 256,
    "warmup_steps": 50,
    "latency_calls": 50,
    "interval": 250,
}
#: The same code paths in seconds on a CPU
DRY_GRID = {
    **GRID,
    "sparsities": ["0.9"],
    **{"steps": 3, "repeats": 1, "learning_starts": 20, "warmup_steps": 2, "latency_calls": 2, "interval": 2},
}


def environment(device: th.device) -> dict[str, Any]:
    """What the numbers depend on: versions, the device and the CPU."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": th.__version__,
        "cuda": th.version.cuda,
        "device": str(device),
        "machine": throughput.machine(device),
    }
    if device.type == "cuda":
        properties = th.cuda.get_device_properties(device)
        info.update(
            gpu=properties.name,
            gpu_memory_gib=round(properties.total_memory / 2**30, 1),
            compute_capability=f"{properties.major}.{properties.minor}",
        )
    return info


def run_tests(device: th.device, timeout: float, log: Path, collect_only: bool) -> dict[str, Any]:
    """The backend tests with ``device`` as torch's default device, stopped after ``timeout`` seconds."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *TEST_FILES]
    if collect_only:
        command.append("--collect-only")
    elif importlib.util.find_spec("xdist") is not None:
        command += ["-n", str(TEST_WORKERS)]
    environ = {**os.environ, TEST_DEVICE_VARIABLE: str(device), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log, "w") as file:
        # a session of its own, so that a timeout stops pytest-xdist's workers with it
        process = subprocess.Popen(command, stdout=file, stderr=subprocess.STDOUT, env=environ, start_new_session=True)
        try:
            code: int | str = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = f"stopped after {timeout:.0f} s"
    lines = log.read_text().strip().splitlines()
    return {
        "command": f"{TEST_DEVICE_VARIABLE}={device} " + shlex.join(["python", *command[1:]]),
        "returncode": code,
        "seconds": round(time.perf_counter() - start, 1),
        "summary": lines[-1] if lines else "",
    }


def width_argv(width: int, grid: dict[str, Any], env: str, device: th.device) -> list[str]:
    """``benchmarks.throughput`` arguments of one width of the grid."""
    argv = ["--env", env, "--widths", str(width), "--device", str(device), "--no-sbx"]
    for name, value in grid.items():
        argv += [f"--{name.replace('_', '-')}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return argv


def gradient_steps(grid: dict[str, Any]) -> int:
    """Gradient steps of one width: every model (two dense, the sparse ones) warmed up and timed."""
    models = 2 + len(grid["sparsities"]) * len(grid["backends"])
    return models * (grid["warmup_steps"] + grid["steps"] * grid["repeats"])


def measure_widths(
    widths: list[int], grid: dict[str, Any], env: str, device: th.device, deadline: float
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Throughput of each width that fits before ``deadline`` (a ``time.perf_counter`` value), one width at a time:
    its result and its report (None for a width skipped or failed: its result says why, and the next width runs).

    A width's time is estimated from the seconds per gradient step of the last width measured.
    """
    step_s = FIRST_GUESS_STEP_S
    for width in widths:
        needed, left = gradient_steps(grid) * step_s, deadline - time.perf_counter()
        if needed > left:
            print(f"width {width}: skipped, about {needed:.0f} s needed and {left:.0f} s left", flush=True)
            yield {"width": width, "skipped": f"about {needed:.0f} s needed, {left:.0f} s left"}, None
            continue
        print(f"width {width}: about {needed:.0f} s of the {left:.0f} s left", flush=True)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                result = throughput.main([*width_argv(width, grid, env, device), "--out", tmp])
            except Exception as error:  # a failing backend must not cost the other widths their numbers
                traceback.print_exc()
                yield {"width": width, "error": f"{type(error).__name__}: {error}"}, None
                continue
            text = (Path(tmp) / "results.md").read_text().replace(f" --out {tmp}", "")
        seconds = time.perf_counter() - start
        step_s = seconds / gradient_steps(grid)  # widest first (the default): an upper bound for the next
        yield {"width": width, "seconds": round(seconds, 1), **result}, text


def report(command: str, info: dict[str, Any], tests: dict[str, Any], grid: list[dict[str, Any]], texts: list[str]) -> str:
    lines = [
        f"# Sparse vs dense on {info.get('gpu', info['device'])}",
        "",
        f"`{command}`",
        "",
        *(f"- {key}: {value}" for key, value in info.items()),
        "",
        "## Backend tests on the device",
        "",
        f"`{tests['command']}`: {tests['summary']} (exit {tests['returncode']}, {tests['seconds']} s; log: pytest.log)",
        "",
        "## Throughput",
        "",
        "The crossover calibration (`sb3_sparse.core.calibration`) measures CPU layers only: not run; `auto` stays "
        "masked on a GPU until GPU crossover points are measured.",
    ]
    lines += [f"\nWidth {row['width']} skipped: {row['skipped']}." for row in grid if "skipped" in row]
    lines += [f"\nWidth {row['width']} failed: {row['error']}." for row in grid if "error" in row]
    for text in texts:
        lines += ["", text.strip()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="a CUDA device (cuda, cuda:1, ...)")
    parser.add_argument(
        "--widths", type=int, nargs="+", default=[2048, 1024, 256], help="measured in this order: widest first"
    )
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole script")
    parser.add_argument("--test-timeout", type=float, default=150.0, help="seconds for the tests")
    parser.add_argument(
        "--dry-run", action="store_true", help="the same steps on the CPU in seconds: tiny grid, tests collected"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: docs/benchmarks/throughput/gpu-<date>/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    device = th.device("cpu" if args.dry_run else args.device)
    if not args.dry_run and (device.type != "cuda" or not th.cuda.is_available()):
        parser.exit(
            2,
            f"benchmarks.gpu: a CUDA device is needed (torch.cuda.is_available() is {th.cuda.is_available()}, "
            f"--device {args.device}); --dry-run tries the script on the CPU\n",
        )
    date = datetime.now(timezone.utc)
    out = args.out or Path("docs/benchmarks/throughput") / f"gpu-{date:%Y-%m-%d}"
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "benchmarks.gpu", *(sys.argv[1:] if argv is None else argv)])
    info = {**environment(device), "date": f"{date:%Y-%m-%d %H:%M} UTC"}
    print(info, flush=True)

    tests = run_tests(device, args.test_timeout, out / "pytest.log", collect_only=args.dry_run)
    print(f"tests: {tests['summary']} (exit {tests['returncode']}, {tests['seconds']} s)", flush=True)
    grid: list[dict[str, Any]] = []
    texts: list[str] = []

    def save() -> None:  # after the tests and after each width: a run stopped midway keeps what it measured
        result = {"command": command, "environment": info, "tests": tests, "throughput": grid}
        write_results(out, "results", result, report(command, info, tests, grid, texts))

    save()
    widths = measure_widths(args.widths, DRY_GRID if args.dry_run else GRID, args.env, device, start + args.budget)
    for row, text in widths:
        grid.append(row)
        texts += [text] if text else []
        save()
    print(f"{out}: results.md, results.json, pytest.log ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
