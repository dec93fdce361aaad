"""The run matrix on a Ray cluster: ``python -m benchmarks.run PROFILE --ray [ADDRESS]``.

Every run is one Ray task that needs ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (a fraction: runs share a GPU).
The run's directory travels with its task and back: the driver sends the directory's files (a checkpoint
included), the task runs :func:`benchmarks.runner.run_one` on a copy of them in a scratch directory of its node
and returns the files the run left, and the driver writes those into the results folder. So the nodes need no
shared file system, every result lands where the driver runs, and a run stopped by ``--max-minutes`` resumes
from its checkpoint, on any node, in the next sitting. The code of ``sb3_sparse`` and ``benchmarks`` travels too
(Ray's ``py_modules``): the nodes need the same Ray version and the dependencies, not the repository.

A run that fails (an exception in training, or its worker or node lost) is run once more, from where it stopped;
a second failure is reported (``failed``, the reason in the run's ``error.txt``) and the other runs go on.
The driver holds each run's ``lock`` while its task is out, so a local runner on the same results skips it.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

import sb3_sparse
from benchmarks.profile import RunSpec
from benchmarks.run import report, status_key, where
from benchmarks.runner import acquire_lock, run_one

#: Tries of a run before it is reported failed: the first and one retry.
ATTEMPTS = 2
#: The packages the tasks import, shipped to the cluster as they are on the driver.
PY_MODULES = [str(Path(sb3_sparse.__file__).parent), str(Path(__file__).parent)]


#: The files whose presence says a checkpoint (``state.json``, written last) or a run (``result.json``) is complete.
COMPLETE = ("state.json", "result.json")


def file_names(run_dir: Path) -> list[str]:
    """The files of ``run_dir``, as paths relative to it, its ``lock`` left out."""
    if not run_dir.is_dir():
        return []
    return [
        str(path.relative_to(run_dir)) for path in sorted(run_dir.rglob("*")) if path.is_file() and path != run_dir / "lock"
    ]


def pack(run_dir: Path) -> dict[str, bytes]:
    """The files of ``run_dir`` (path relative to it -> content), its ``lock`` left out."""
    return {name: (run_dir / name).read_bytes() for name in file_names(run_dir)}


def unpack(files: dict[str, bytes], run_dir: Path) -> None:
    """Make ``run_dir`` hold exactly ``files`` (and its ``lock``, if any).

    The files it holds that are not in ``files`` go, and so does every ``state.json`` about to be replaced, before
    anything is written; each file is written to a temporary name, then renamed, ``state.json`` and ``result.json``
    last. So a directory left half written (the process stopped) never holds a complete-looking checkpoint or
    result that mixes two sittings.
    """
    for name in file_names(run_dir):
        if name not in files or Path(name).name == "state.json":
            (run_dir / name).unlink()
    for folder in sorted((path for path in run_dir.rglob("*") if path.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    for name in sorted(files, key=lambda name: Path(name).name in COMPLETE):
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(files[name])
        os.replace(tmp, path)


def run_in_scratch(
    spec: RunSpec, files: dict[str, bytes], deadline: float | None, device: str
) -> tuple[str, dict[str, bytes]]:
    """The task: :func:`run_one` on a scratch copy of the run directory (``files``); its status and the files it left."""
    with tempfile.TemporaryDirectory(prefix="sb3-sparse-run-") as scratch:
        run_dir = Path(scratch) / spec.run_id
        unpack(files, run_dir)
        status = run_one(spec, scratch, deadline, None, device)
        return status, pack(run_dir)


def task_resources(device: str, cpus_per_run: float = 1.0, gpus_per_run: float | None = None) -> tuple[float, float]:
    """The CPUs and GPUs a run's task asks for: ``cpus_per_run``, and ``gpus_per_run``, else 1 GPU on ``cuda`` and
    none on ``cpu``.

    :raise ValueError: no CPUs, negative GPUs, GPUs with ``device="cpu"``, or a device other than ``cpu`` and
        ``cuda`` (Ray chooses each task's GPU, and a task sees a GPU only if it asks for one)
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda on Ray (Ray assigns each run its GPU), got {device!r}")
    if cpus_per_run <= 0:
        raise ValueError(f"cpus_per_run must be > 0, got {cpus_per_run}")
    if gpus_per_run is None:
        return cpus_per_run, 0.0 if device == "cpu" else 1.0
    if gpus_per_run < 0 or (device == "cpu" and gpus_per_run > 0):
        raise ValueError(f"gpus_per_run must be >= 0, and 0 with device 'cpu'; got {gpus_per_run} with {device!r}")
    return cpus_per_run, gpus_per_run


def slots(resources: dict[str, float], cpus: float, gpus: float) -> int:
    """How many runs of ``cpus`` CPUs and ``gpus`` GPUs the cluster's ``resources`` hold at once (at least 1)."""
    fits = [resources.get("CPU", 0.0) / cpus] if cpus > 0 else []
    fits += [resources.get("GPU", 0.0) / gpus] if gpus > 0 else []
    return max(1, int(min(fits, default=1)))


def run_profile_on_ray(
    specs: list[RunSpec],
    results_dir: Path | dict[str, Path],
    address: str | None,
    max_minutes: float | None,
    device: str = "cpu",
    cpus_per_run: float = 1.0,
    gpus_per_run: float | None = None,
    jobs: int | None = None,
) -> dict[str, str]:
    """Run ``specs`` as Ray tasks on the cluster at ``address``; return each run's status as
    :func:`benchmarks.run.run_profile` does.

    :param address: the cluster (``host:port``, ``ray://host:port``); ``None``: ``RAY_ADDRESS``, else a cluster
        started on this machine by ``ray start``, else a new local one
    :param cpus_per_run: CPUs each task asks for (a run trains with one torch thread)
    :param gpus_per_run: GPUs each task asks for (see :func:`task_resources`)
    :param jobs: at most this many runs out at once (default: as many as the cluster holds at the start); the
        others wait on the driver, so runs start in the order of ``specs``
    """
    cpus, gpus = task_resources(device, cpus_per_run, gpus_per_run)
    if not specs:
        return {}
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    statuses: dict[str, str] = {}
    start = time.time()
    locked: list[Path] = []
    ray.init(address=address, runtime_env={"py_modules": PY_MODULES})
    try:
        task = ray.remote(run_in_scratch).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        width = jobs or slots(ray.cluster_resources(), cpus, gpus)
        waiting = list(specs)
        out: dict[Any, tuple[RunSpec, int]] = {}  # task -> (spec, attempt)

        def directory(spec: RunSpec) -> Path:
            return where(spec, results_dir) / spec.run_id

        def submit(spec: RunSpec, attempt: int) -> None:
            out[task.remote(spec, pack(directory(spec)), deadline, device)] = (spec, attempt)

        while waiting or out:
            while waiting and len(out) < width:
                spec = waiting.pop(0)
                run_dir = directory(spec)
                run_dir.mkdir(parents=True, exist_ok=True)
                if not acquire_lock(run_dir):
                    statuses[status_key(spec, results_dir)] = "locked"
                    report(status_key(spec, results_dir), "locked", start)
                    continue
                locked.append(run_dir)
                submit(spec, 1)
            if not out:  # the last runs were locked
                break
            [ref], _ = ray.wait(list(out), num_returns=1)
            spec, attempt = out.pop(ref)
            run_dir, key = directory(spec), status_key(spec, results_dir)
            try:
                status, files = ray.get(ref)
                unpack(files, run_dir)
            except ray.exceptions.RayError as error:
                status = "failed"
                (run_dir / "error.txt").write_text(f"{type(error).__name__} on the Ray cluster:\n{error}\n")
            if status == "failed" and attempt < ATTEMPTS:
                report(key, f"failed (attempt {attempt} of {ATTEMPTS}), retrying", start)
                submit(spec, attempt + 1)
                continue
            statuses[key] = status
            report(key, status, start)
            (run_dir / "lock").unlink(missing_ok=True)
            locked.remove(run_dir)
    finally:
        for run_dir in locked:
            (run_dir / "lock").unlink(missing_ok=True)
        ray.shutdown()
    return statuses
