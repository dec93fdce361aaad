"""Run a benchmark profile: ``python -m benchmarks.run smoke --jobs 2 [--max-minutes 60] [--summary]``.

Runs go to parallel worker processes (spawned, one torch thread each). A finished run is skipped,
an interrupted one resumes from its last checkpoint, so a profile can be spread over sittings and
machines (``--shard 0/2`` on one, ``--shard 1/2`` on another, then merge the result directories).
``--max-minutes`` stops cleanly: no new run starts after it, and running ones checkpoint and exit.
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
    for name, key in (("algos", "algo"), ("envs", "env_id"), ("methods", "label"), ("seeds", "seed")):
        wanted = getattr(args, name)
        if wanted:
            specs = [spec for spec in specs if str(getattr(spec, key)) in wanted]
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


def run_profile(specs: list[RunSpec], results_dir: Path, jobs: int, max_minutes: float | None) -> dict[str, str]:
    """Run ``specs`` on ``jobs`` worker processes; return each run's status by run id."""
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    statuses: dict[str, str] = {}
    start = time.time()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, spec, results_dir, deadline): spec for spec in specs}
        for future in as_completed(futures):
            spec = futures[future]
            statuses[spec.run_id] = future.result()
            elapsed = (time.time() - start) / 60
            print(f"[{time.strftime('%H:%M:%S')} +{elapsed:.1f} min] {spec.run_id}: {statuses[spec.run_id]}", flush=True)
    return statuses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="profile name (benchmarks/profiles/<name>.yaml) or path to a YAML file")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes (one torch thread each)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this many minutes")
    parser.add_argument("--results", type=Path, default=None, help="results directory (default benchmarks/results/<profile>)")
    parser.add_argument("--algos", nargs="*", help="only these algorithms (sac, td3)")
    parser.add_argument("--envs", nargs="*", help="only these env ids")
    parser.add_argument("--methods", nargs="*", help="only these method labels (e.g. dense set-0.5)")
    parser.add_argument("--seeds", nargs="*", help="only these seeds")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at i (spread over machines)")
    parser.add_argument("--status", action="store_true", help="print each run's status and exit")
    parser.add_argument("--summary", action="store_true", help="write docs/benchmarks/<profile>/ from the results afterwards")
    args = parser.parse_args(argv)

    data, all_specs = load_profile(args.profile)
    name = all_specs[0].profile
    results_dir = args.results or RESULTS_DIR / name
    specs = select(all_specs, args)
    if args.status:
        for spec in specs:
            print(f"{spec.run_id}: {run_status(spec, results_dir)}")
        return
    todo = [spec for spec in specs if not is_done(spec, results_dir)]
    print(f"profile {name}: {len(specs)} runs selected, {len(specs) - len(todo)} already done, {args.jobs} jobs", flush=True)
    statuses = run_profile(todo, results_dir, args.jobs, args.max_minutes)
    counts = {status: list(statuses.values()).count(status) for status in sorted(set(statuses.values()))}
    print(f"finished: {counts}", flush=True)
    if args.summary:
        from benchmarks.summary import write_summary

        write_summary(results_dir, DOCS_DIR / name, data, all_specs)


if __name__ == "__main__":
    main()
