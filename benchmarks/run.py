"""Run a benchmark profile: ``python -m benchmarks.run smoke --jobs 2 [--max-minutes 60] [--device cuda] [--summary]``.

Runs go to parallel worker processes (spawned, one torch thread each). A finished run is skipped,
an interrupted one resumes from its last checkpoint, so a profile can be spread over sittings and
machines (``--shard 0/2`` on one, ``--shard 1/2`` on another, then merge the result directories).
``--max-minutes`` stops cleanly: no new run starts after it, and running ones checkpoint and exit.

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

from benchmarks.profile import RunSpec, load_profile
from benchmarks.runner import find_checkpoint, is_done, run_one

RESULTS_DIR = Path(__file__).parent / "results"
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

    def where(spec: RunSpec) -> Path:
        return results_dir[spec.profile] if isinstance(results_dir, dict) else results_dir

    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, spec, where(spec), deadline, None, device): spec for spec in specs}
        for future in as_completed(futures):
            spec = futures[future]
            key = f"{spec.profile}/{spec.run_id}" if isinstance(results_dir, dict) else spec.run_id
            statuses[key] = future.result()
            elapsed = (time.time() - start) / 60
            print(f"[{time.strftime('%H:%M:%S')} +{elapsed:.1f} min] {key}: {statuses[key]}", flush=True)
    return statuses


def interleave(groups: list[list[RunSpec]]) -> list[RunSpec]:
    """The runs of several profiles, seed by seed: the first seed of every profile, then the second, ..."""
    ranked: list[tuple[int, int, int, RunSpec]] = []
    for g, group in enumerate(groups):
        seeds = list(dict.fromkeys(spec.seed for spec in group))
        ranked += [(seeds.index(spec.seed), g, i, spec) for i, spec in enumerate(group)]
    return [spec for *_, spec in sorted(ranked, key=lambda item: item[:3])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "profile", nargs="+", help="profile name(s) (benchmarks/profiles/<name>.yaml) or path(s) to a YAML file"
    )
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes (one torch thread each)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this many minutes")
    parser.add_argument("--results", type=Path, default=None, help="results directory (default benchmarks/results/<profile>)")
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
        results_dir = args.results or RESULTS_DIR / name
        profiles.append((name, data, all_specs, results_dir, select(all_specs, args)))
    if args.status:
        for name, _, _, results_dir, specs in profiles:
            for spec in specs:
                print(f"{name + '/' if len(profiles) > 1 else ''}{spec.run_id}: {run_status(spec, results_dir)}")
        return
    todos = []
    for name, _, _, results_dir, specs in profiles:
        todos.append([spec for spec in specs if not is_done(spec, results_dir)])
        done = len(specs) - len(todos[-1])
        print(f"profile {name}: {len(specs)} runs selected, {done} already done, {args.jobs} jobs", flush=True)
    if len(profiles) == 1:
        statuses = run_profile(todos[0], profiles[0][3], args.jobs, args.max_minutes, args.device)
    else:
        dirs = {name: results_dir for name, _, _, results_dir, _ in profiles}
        statuses = run_profile(interleave(todos), dirs, args.jobs, args.max_minutes, args.device)
    counts = {status: list(statuses.values()).count(status) for status in sorted(set(statuses.values()))}
    print(f"finished: {counts}", flush=True)
    if args.summary:
        from benchmarks.summary import write_summary

        for name, data, all_specs, results_dir, _ in profiles:
            write_summary(results_dir, DOCS_DIR / name, data, all_specs)


if __name__ == "__main__":
    main()
