"""Run a benchmark profile: ``python -m benchmarks.run smoke --jobs 2 [--max-minutes 60] [--device cuda] [--summary]``
or ``python -m benchmarks.run smoke --ray [ADDRESS]``.

Runs go to parallel worker processes (spawned, one torch thread each). A finished run is skipped,
an interrupted one resumes from its last checkpoint, so a profile can be spread over sittings and
machines (``--shard 0/2`` on one, ``--shard 1/2`` on another, then merge the result directories).
``--max-minutes`` stops cleanly: no new run starts after it, and running ones checkpoint and exit.

``--ray [ADDRESS]`` runs every run as a task on a Ray cluster instead (:mod:`benchmarks.ray_runner`; without
ADDRESS: the cluster in ``RAY_ADDRESS``, else one started on this machine by ``ray start``, else a new local one);
results, resuming and the summary are the same.

Several profiles share one pool of workers (``python -m benchmarks.run scaling regimes --jobs 2``): their runs
are interleaved seed by seed (every profile's first seed, then every profile's second seed, ...), so
a sitting cut short leaves every profile with its first seeds done.
"""

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from benchmarks.profile import RunSpec, load_profile, profile_results_dir
from benchmarks.runner import find_checkpoint, is_done, run_one

DOCS_DIR = Path(__file__).parent.parent / "docs" / "benchmarks"


def select(specs: list[RunSpec], args: argparse.Namespace) -> list[RunSpec]:
    """The runs kept by the ``--algos/--envs/--methods/--seeds/--shard`` filters."""
    for name, key in (("algos", "algo"), ("envs", "env_id"), ("methods", "label"), ("seeds", "seed"), ("widths", "width")):
        wanted = getattr(args, name, None)
        if wanted:
            specs = [
                spec for spec in specs if str(getattr(spec, key)) in wanted or (key == "label" and spec.run_label in wanted)
            ]
    index, count = (int(part) for part in args.shard.split("/"))
    return specs[index::count]


def run_status(spec: RunSpec, results_dir: Path) -> str:
    """``done``, ``failed``, ``checkpoint at step N/T`` or ``pending`` (``(running)`` if locked)."""
    run_dir = results_dir / spec.run_id
    if is_done(spec, results_dir):
        return "done"
    if (run_dir / "error.txt").exists():
        return "failed"
    running = " (running)" if (run_dir / "lock").exists() else ""
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:
        with open(checkpoint / "state.json") as file:
            return f"checkpoint at step {json.load(file)['num_timesteps']}/{spec.total_timesteps}{running}"
    return f"pending{running}"


def run_profile(
    specs: list[RunSpec],
    results_dir: Path | dict[str, Path],
    jobs: int,
    max_minutes: float | None,
    device: str = "cpu",
) -> dict[str, str]:
    """Run ``specs`` on ``jobs`` worker processes (models on ``device``); return each run's status by run id.

    ``results_dir``: one directory, or one per profile name (several profiles in one pool; the statuses are then
    keyed ``<profile>/<run id>``).
    """
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    statuses: dict[str, str] = {}
    start = time.time()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, spec, where(spec, results_dir), deadline, None, device): spec for spec in specs}
        for future in as_completed(futures):
            key = status_key(futures[future], results_dir)
            statuses[key] = future.result()
            report(key, statuses[key], start)
    return statuses


def where(spec: RunSpec, results_dir: Path | dict[str, Path]) -> Path:
    """The results directory of ``spec``: ``results_dir``, or its profile's entry when there is one per profile."""
    return results_dir[spec.profile] if isinstance(results_dir, dict) else results_dir


def status_key(spec: RunSpec, results_dir: Path | dict[str, Path]) -> str:
    """The key of ``spec``'s status: its run id, ``<profile>/<run id>`` when there is one directory per profile."""
    return f"{spec.profile}/{spec.run_id}" if isinstance(results_dir, dict) else spec.run_id


def report(key: str, status: str, start: float) -> None:
    """Print a run's status with the time and the minutes since ``start``."""
    elapsed = (time.time() - start) / 60
    print(f"[{time.strftime('%H:%M:%S')} +{elapsed:.1f} min] {key}: {status}", flush=True)


def interleave(groups: list[list[RunSpec]]) -> list[RunSpec]:
    """The runs of several profiles, seed by seed: the first seed of every profile, then the second, ..."""
    ranked: list[tuple[int, int, int, RunSpec]] = []
    for g, group in enumerate(groups):
        seeds = list(dict.fromkeys(spec.seed for spec in group))
        ranked += [(seeds.index(spec.seed), g, i, spec) for i, spec in enumerate(group)]
    return [spec for *_, spec in sorted(ranked, key=lambda item: item[:3])]


def run_on_ray(
    parser: argparse.ArgumentParser, args: argparse.Namespace, runs: list[RunSpec], dirs: Path | dict[str, Path]
) -> dict[str, str]:
    """``runs`` on the Ray cluster of ``--ray`` (:func:`benchmarks.ray_runner.run_profile_on_ray`)."""
    try:
        from benchmarks.ray_runner import run_profile_on_ray, task_resources
    except ImportError as error:
        parser.error(f"--ray needs Ray ({error}): pip install 'sb3-sparse[ray]' (a checkout: pip install -e '.[ray]')")
    try:
        cpus, gpus = task_resources(args.device, args.cpus_per_run, args.gpus_per_run)
    except ValueError as error:
        parser.error(str(error))
    return run_profile_on_ray(runs, dirs, args.ray or None, args.max_minutes, args.device, cpus, gpus, args.jobs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "profile", nargs="+", help="profile name(s) (benchmarks/profiles/<name>.yaml) or path(s) to a YAML file"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="parallel worker processes (one torch thread each; default 1); "
        "with --ray: at most this many runs at once (default: as many as the cluster holds)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run every run as a task on a Ray cluster: "
        "ADDRESS (host:port), else RAY_ADDRESS, else one started here by `ray start`, else a new local one",
    )
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="with --ray: CPUs each run asks for (default 1)")
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        default=None,
        help="with --ray: GPUs each run asks for, a fraction to share one (default 1 with --device cuda, 0 on cpu)",
    )
    parser.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this many minutes")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results directory (default: the profile's `results`, else benchmarks/results/<name>)",
    )
    parser.add_argument("--algos", nargs="*", help="only these algorithms (sac, td3, qmix, ...)")
    parser.add_argument("--envs", nargs="*", help="only these env ids")
    parser.add_argument("--methods", nargs="*", help="only these method labels (e.g. dense set-0.5, or dense-w64)")
    parser.add_argument("--widths", nargs="*", help="only these widths (profiles with widths)")
    parser.add_argument("--seeds", nargs="*", help="only these seeds")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at i (spread over machines)")
    parser.add_argument("--device", default="cpu", help="where the networks live: cpu (default), cuda, cuda:1, auto")
    parser.add_argument("--status", action="store_true", help="print each run's status and exit")
    parser.add_argument("--summary", action="store_true", help="write docs/benchmarks/<profile>/ from the results afterwards")
    args = parser.parse_args(argv)

    if len(args.profile) > 1 and args.results is not None:
        parser.error("--results takes one profile")
    profiles = []  # (name, data, all specs, results dir, selected specs)
    for profile in args.profile:
        data, all_specs = load_profile(profile)
        name = all_specs[0].profile
        results_dir = args.results or profile_results_dir(data, name)
        profiles.append((name, data, all_specs, results_dir, select(all_specs, args)))
    if args.status:
        for name, _, _, results_dir, specs in profiles:
            for spec in specs:
                print(f"{name + '/' if len(profiles) > 1 else ''}{spec.run_id}: {run_status(spec, results_dir)}")
        return
    todos = []
    where_runs = f"{args.jobs or 1} jobs" if args.ray is None else f"on Ray ({args.ray or 'RAY_ADDRESS or local'})"
    for name, _, _, results_dir, specs in profiles:
        todos.append([spec for spec in specs if not is_done(spec, results_dir)])
        done = len(specs) - len(todos[-1])
        print(f"profile {name}: {len(specs)} runs selected, {done} already done, {where_runs}", flush=True)
    if len(profiles) == 1:
        runs, dirs = todos[0], profiles[0][3]
    else:
        runs, dirs = interleave(todos), {name: results_dir for name, _, _, results_dir, _ in profiles}
    if args.ray is None:
        statuses = run_profile(runs, dirs, args.jobs or 1, args.max_minutes, args.device)
    else:
        statuses = run_on_ray(parser, args, runs, dirs)
    counts = {status: list(statuses.values()).count(status) for status in sorted(set(statuses.values()))}
    print(f"finished: {counts}", flush=True)
    if args.summary:
        from benchmarks.summary import write_summary

        for name, data, all_specs, results_dir, _ in profiles:
            write_summary(results_dir, DOCS_DIR / name, data, all_specs)


if __name__ == "__main__":
    main()
