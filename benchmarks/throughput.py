"""Wall-clock of sparse vs dense training and inference (a benchmark script, not a timed test).

Sparse models with each compute backend (``--backends``: ``masked``, ``csr``, ``auto``) against dense
SB3, dense SB3 with PyTorch's fused Adam (the optimizer kernel the sparse policies use by default, see
``sb3_sparse.core.optim.prefer_fused``: the fair baseline for the cost of DST itself) and, for SAC when
``sbx`` (SB3 in JAX, ``pip install sbx-rl``) is installed, SBX's dense SAC, the fast peer a user would
pick instead::

    python -m benchmarks.throughput                   # width 256, sparsity 0.9, backends masked and auto
    python -m benchmarks.throughput --widths 1024 --sparsities 0.8 0.9 0.95 0.98 --backends masked csr auto \\
        --steps 150 --warmup-steps 100 --out docs/benchmarks/throughput/w1024-t1

Training: each model is built and warmed up once (``learning_starts`` random steps and a few training
steps, not timed; SBX compiles its update there); then every repeat times ``model.learn(steps)`` of each
model, in an order rotated from repeat to repeat (interleaved, so drift hits every model alike). A ratio
is the median over repeats of a model's time / a baseline's time in the same repeat, with its [min, max].
Topology updates inside the timed steps are included, as in real training; the cost of one update is
also timed on its own.

Inference (torch models): the actor's deterministic forward under ``torch.no_grad()`` (what ``predict``
runs, without its numpy conversions) at batch 1 and 256, the median of ``--latency-calls`` calls per
repeat, interleaved as above. Files: ``model.save`` of each model, and the compact export of each sparse
actor (``sb3_sparse.common.deploy.export_policy``, active weights only) against ``torch.save`` of the
dense actor's ``state_dict``.

Clock: ``--clock wall`` (the default) times wall-clock seconds; ``--clock cpu`` times the CPU seconds of this
process instead (all its threads), which other work on a shared machine does not inflate as it does wall
time: use it with ``--threads 1`` on a busy CPU (not for GPUs, whose work is not CPU time).

Threads: ``--threads N`` sets torch's intra-op threads (``all``: every core). XLA reads its thread settings
once, when JAX starts, so with N = 1 the script sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``
before importing SBX (one compute thread: CPU time = wall time on a matmul loop, measured with JAX 0.10)
and leaves XLA's default (every core) otherwise. Compare with SBX at ``--threads 1`` or ``--threads all``,
one run (process) per thread count.
"""

import argparse
import importlib
import importlib.util
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch as th

from benchmarks.methods import build_model
from benchmarks.runner import plain_args, write_results
from sb3_sparse.common.deploy import export_policy, load_policy
from sb3_sparse.core.backends import BACKENDS
from sb3_sparse.core.engine import SparseEngine

DENSE = "dense SB3"
#: The dense variant with PyTorch's fused Adam, the optimizer kernel the sparse policies use by default.
FUSED_DENSE = "dense, fused Adam"
SBX_DENSE = "dense SBX"
SPARSE = "sparse"
#: A sparse model's acting network exported and loaded for inference (``export_policy`` / ``load_policy``).
EXPORTED = "sparse, exported"
#: The baselines every training time is divided by (SBX's when it runs).
BASELINES = (DENSE, FUSED_DENSE, SBX_DENSE)
LATENCY_BATCHES = (1, 256)
#: XLA's switch to one CPU compute thread (its intra-op Eigen pool off).
ONE_XLA_THREAD = "--xla_cpu_multi_thread_eigen=false"


class Variant(NamedTuple):
    """One model of the comparison: a baseline's name as ``kind``, or ``SPARSE`` with its sparsity and backend."""

    width: int
    kind: str
    sparsity: float | None = None
    backend: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.sparsity is None else f"{self.kind} {self.sparsity} {self.backend}"


Times = dict[Variant, list[float]]


def thread_count(text: str) -> int:
    """A ``--threads`` value: a count, or ``all`` (every core)."""
    return (os.cpu_count() or 1) if text == "all" else int(text)


def load_sbx(threads: int) -> ModuleType | None:
    """The ``sbx`` module (None when it is not installed), with XLA on one thread when ``threads`` is 1."""
    if importlib.util.find_spec("sbx") is None:
        return None
    if threads == 1:
        if "jax" in sys.modules:
            warnings.warn("JAX was imported before the benchmark set its thread flag: SBX may use every core")
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ONE_XLA_THREAD}".strip()
    return importlib.import_module("sbx")


def make_model(variant: Variant, args: argparse.Namespace, sbx: ModuleType | None) -> Any:
    """The model of ``variant``, warmed up: buffer filled, a few training steps done (SBX's JIT compiled)."""
    kwargs: dict[str, Any] = {
        "learning_starts": args.learning_starts,
        "buffer_size": args.learning_starts + args.warmup_steps + args.steps * args.repeats + 1000,
        "policy_kwargs": {"net_arch": [variant.width, variant.width]},
    }
    if variant.kind == SBX_DENSE:
        assert sbx is not None
        model = sbx.SAC("MlpPolicy", args.env, seed=args.seed, **kwargs)
    elif variant.kind == SPARSE:
        extra = {"topology_update_interval": args.interval, "backend": variant.backend}
        model = build_model(
            args.algo, args.method, args.env, args.env, args.seed, variant.sparsity, kwargs, extra, device=args.device
        )
    else:
        if variant.kind == FUSED_DENSE:
            kwargs["policy_kwargs"]["optimizer_kwargs"] = {"fused": True}
        model = build_model(args.algo, "dense", args.env, args.env, args.seed, algo_kwargs=kwargs, device=args.device)
    model.learn(args.learning_starts + args.warmup_steps)
    return model


def synchronize(device: th.device) -> None:
    """Wait for queued GPU work, so that a timer stops when the work is done."""
    if device.type == "cuda":
        th.cuda.synchronize(device)


#: ``--clock`` choices: wall-clock seconds, or CPU seconds of this process (all threads).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_learn(model: Any, steps: int, device: th.device, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per env step of ``model.learn(steps)`` (continuing the model's run)."""
    synchronize(device)
    start = clock()
    model.learn(steps, reset_num_timesteps=False)
    synchronize(device)
    return (clock() - start) / steps


def actor_latency(
    policy: Any, batch: int, calls: int, device: th.device, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median seconds of the actor's deterministic forward on ``batch`` observations, without autograd as in ``predict``."""
    obs = th.as_tensor(np.stack([policy.observation_space.sample() for _ in range(batch)]), dtype=th.float32, device=device)
    policy.set_training_mode(False)
    durations = []
    with th.no_grad():
        for _ in range(calls):
            synchronize(device)
            start = clock()
            policy.actor(obs, deterministic=True)
            synchronize(device)
            durations.append(clock() - start)
    return statistics.median(durations)


def topology_update_cost(model: Any, repeats: int = 20, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of one mask update of every module (the engine's update, target sync included)."""
    policy: Any = model.policy
    engine = SparseEngine(policy.module_configs, {})
    bindings = policy.sparse_bindings()
    durations = []
    for _ in range(repeats):
        start = clock()
        for name, binding in bindings.items():
            engine.update(name, binding, progress=0.0, step=model.num_timesteps)
        durations.append(clock() - start)
    return statistics.median(durations)


def file_bytes(save: Callable[[Path], object]) -> int:
    """Bytes on disk of what ``save(path)`` writes (whatever suffix it adds)."""
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp) / "model")
        return sum(path.stat().st_size for path in Path(tmp).rglob("*") if path.is_file())


def interleaved(variants: list[Variant], repeats: int, measure: Callable[[Variant], float], what: str) -> Times:
    """``measure`` of every variant ``repeats`` times, in an order rotated each repeat."""
    times: Times = {variant: [] for variant in variants}
    for repeat in range(repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            times[variant].append(measure(variant))
        print(
            f"{what}, repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{v.width} {v.label}: {t[-1] * 1e3:.3f} ms" for v, t in times.items())
        )
    return times


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(times: Times, variant: Variant, base: Variant) -> dict[str, float] | None:
    """Median [min, max] over repeats of ``variant``'s time / ``base``'s in the same repeat (None without ``base``)."""
    if base not in times:
        return None
    return spread([t / b for t, b in zip(times[variant], times[base], strict=True)])


def report_cpu_rows(stem: str, args: argparse.Namespace, rows: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """Print a CPU measurement's table ``text`` and write it with its ``rows``, arguments and machine to
    ``args.out`` (``<stem>.md`` / ``<stem>.json``); returns the result written."""
    print(text)
    result = {"args": plain_args(args), "machine": machine(th.device("cpu")), "rows": rows}
    write_results(args.out, stem, result, text)
    return result


def machine(device: th.device) -> str:
    """The CPU model and core count (and the GPU when used): what the timings depend on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    text = f"{models[0] if models else platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{text}, {th.cuda.get_device_name(device)}" if device.type == "cuda" else text


def cell(value: object) -> str:
    return "-" if value is None else str(value)


def fmt_ratio(stats: dict[str, float] | None) -> str:
    return "-" if stats is None else f"{stats['median']:.3f}x [{stats['min']:.3f}, {stats['max']:.3f}]"


def training_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| width | model | sparsity | backend | ms / step (median) | vs dense SB3 | vs dense, fused Adam | vs dense SBX "
        "| one mask update (all modules) | update amortised per step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        update = "- | -"
        if "update_ms" in row:
            update = f"{row['update_ms']:.2f} ms | {row['update_per_step_ms']:.4f} ms"
        vs = " | ".join(fmt_ratio(row["vs"][base]) for base in BASELINES)
        lines.append(
            f"| {row['width']} | {row['kind']} | {cell(row['sparsity'])} | {cell(row['backend'])} "
            f"| {row['ms_per_step']:.2f} | {vs} | {update} |"
        )
    return lines


def inference_table(rows: list[dict[str, Any]]) -> list[str]:
    latency = " | ".join(f"batch {batch}: us (median) | vs dense" for batch in LATENCY_BATCHES)
    lines = [
        f"| width | model | sparsity | backend | {latency} | model.save | vs dense | actor file | vs dense actor |",
        "|---|---|---|---|" + "---|---|" * len(LATENCY_BATCHES) + "---|---|---|---|",
    ]
    for row in rows:
        latency = " | ".join(
            f"{row['latency_us'][str(batch)]:.1f} | {fmt_ratio(row['latency_vs_dense'][str(batch)])}"
            for batch in LATENCY_BATCHES
        )
        saved = "- | -"
        if row["saved_bytes"] is not None:
            saved = f"{row['saved_bytes'] / 1e6:.2f} MB | {row['saved_vs_dense']:.3f}x"
        lines.append(
            f"| {row['width']} | {row['kind']} | {cell(row['sparsity'])} | {cell(row['backend'])} | {latency} "
            f"| {saved} | {row['actor_bytes'] / 1e3:.1f} kB "
            f"| {row['actor_vs_dense']:.3f}x |"
        )
    return lines


def training_rows(
    variants: list[Variant], models: dict[Variant, Any], times: Times, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Time per step and ratios to each baseline of the same width; the mask update's cost of sparse models."""
    rows = []
    for variant in variants:
        row: dict[str, Any] = {
            **variant._asdict(),
            "ms_per_step": 1e3 * statistics.median(times[variant]),
            "vs": {base: ratio(times, variant, Variant(variant.width, base)) for base in BASELINES},
        }
        if variant.kind == SPARSE:
            row["update_ms"] = 1e3 * topology_update_cost(models[variant], clock=CLOCKS[args.clock])
            row["update_per_step_ms"] = row["update_ms"] / args.interval
        rows.append(row)
    return rows


def inference_rows(
    variants: list[Variant], models: dict[Variant, Any], args: argparse.Namespace, device: th.device
) -> list[dict[str, Any]]:
    """Actor latency (interleaved) and file sizes of the torch models, and of each sparse actor exported and loaded
    for inference (frozen: its CSR weights gathered once), each against the dense model of its width."""
    policies = {variant: models[variant].policy for variant in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in [v for v in variants if v.kind == SPARSE and v.backend == "auto"]:
            path = export_policy(models[variant], Path(tmp) / f"{variant.width}-{variant.sparsity}.pt")
            policies[variant._replace(kind=EXPORTED)] = load_policy(path, device=device)
    measured = list(policies)

    def latency(batch: int) -> Callable[[Variant], float]:
        return lambda variant: actor_latency(policies[variant], batch, args.latency_calls, device, CLOCKS[args.clock])

    latencies = {
        batch: interleaved(measured, args.repeats, latency(batch), f"latency at batch {batch}") for batch in LATENCY_BATCHES
    }
    saved = {variant: file_bytes(models[variant].save) for variant in variants}
    dense_actor = {
        width: file_bytes(partial(th.save, models[Variant(width, DENSE)].policy.actor.state_dict()))
        for width in {variant.width for variant in variants}
    }
    rows = []
    for variant in measured:
        dense = Variant(variant.width, DENSE)
        actor_bytes = dense_actor[variant.width]
        if variant.kind != DENSE:
            actor_bytes = file_bytes(partial(export_policy, models[variant._replace(kind=SPARSE)]))
        rows.append(
            {
                **variant._asdict(),
                "latency_us": {str(batch): 1e6 * statistics.median(latencies[batch][variant]) for batch in LATENCY_BATCHES},
                "latency_vs_dense": {str(batch): ratio(latencies[batch], variant, dense) for batch in LATENCY_BATCHES},
                "saved_bytes": saved.get(variant),
                "saved_vs_dense": saved[variant] / saved[dense] if variant in saved else None,
                "actor_bytes": actor_bytes,
                "actor_vs_dense": actor_bytes / dense_actor[variant.width],
            }
        )
    return rows


def describe(args: argparse.Namespace, argv: list[str] | None, device: th.device, sbx: ModuleType | None) -> dict[str, Any]:
    """What the numbers depend on: the command, machine, versions, date, threads and device."""
    sbx_version = xla_flags = None
    if sbx is not None:
        jax = importlib.import_module("jax")
        sbx_version = f"sbx {sbx.__version__}, jax {jax.__version__} on {jax.default_backend()}"
        xla_flags = os.environ.get("XLA_FLAGS")
    return {
        "command": shlex.join(["python", "-m", "benchmarks.throughput", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(device),
        "torch": th.__version__,
        "sbx": sbx_version,
        "xla_flags": xla_flags,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "threads": args.threads,
        "clock": args.clock,
        "device": str(device),
    }


def report(
    args: argparse.Namespace, context: dict[str, Any], training: list[dict[str, Any]], inference: list[dict[str, Any]]
) -> str:
    sbx = f"{context['sbx']} (XLA_FLAGS={context['xla_flags']!r})" if context["sbx"] else "SBX not run"
    return "\n".join(
        [
            f"`{context['command']}`",
            "",
            f"{args.algo.upper()} on {args.env}, {args.steps} timed steps x {args.repeats} interleaved repeats, "
            f"method {args.method!r}, mask updates every {args.interval} steps; {args.clock} clock; "
            f"{args.threads} torch thread(s) on "
            f"{context['device']}; {context['machine']}; torch {context['torch']}; {sbx}; {context['date']}",
            "",
            "Time per training step (env step and gradient step); ratios: median over repeats [min, max].",
            "",
            *training_table(training),
            "",
            f"Inference: the actor's deterministic forward (median of {args.latency_calls} calls per repeat; "
            f"'{EXPORTED}': the actor after `export_policy` / `load_policy`, frozen for inference); files: "
            "`model.save`, and the actor file (`export_policy` of a sparse model, `torch.save` of the dense actor's "
            "`state_dict`).",
            "",
            *inference_table(inference),
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="sac", choices=["sac", "td3", "tqc", "crossq"])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.9])
    parser.add_argument("--widths", type=int, nargs="+", default=[256])
    parser.add_argument("--backends", nargs="+", default=["masked", "auto"], choices=BACKENDS, help="of the sparse models")
    parser.add_argument("--method", default="set", help="a recipe name: set (random growth), rigl (gradient growth), ...")
    parser.add_argument("--interval", type=int, default=1000, help="topology update interval (env steps)")
    parser.add_argument("--steps", type=int, default=1000, help="timed training steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--warmup-steps", type=int, default=200, help="untimed training steps after learning_starts")
    parser.add_argument("--latency-calls", type=int, default=100, help="actor forward calls per latency measurement")
    parser.add_argument("--threads", type=thread_count, default=1, help="torch (and XLA) threads: a count, or 'all'")
    parser.add_argument("--clock", default="wall", choices=CLOCKS, help="wall-clock or CPU seconds (see above)")
    parser.add_argument("--device", default="cpu", help="torch device of the SB3 models: cpu, cuda, ...")
    parser.add_argument("--sbx", action=argparse.BooleanOptionalAction, default=True, help="time SBX's SAC if installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write results.json and results.md into this directory")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    device = th.device(args.device)
    sbx = load_sbx(args.threads) if args.sbx and args.algo == "sac" else None

    dense_kinds = [DENSE, FUSED_DENSE] + ([SBX_DENSE] if sbx is not None else [])
    variants = [Variant(width, kind) for width in args.widths for kind in dense_kinds]
    variants += [
        Variant(width, SPARSE, sparsity, backend)
        for width in args.widths
        for sparsity in args.sparsities
        for backend in args.backends
    ]
    models = {variant: make_model(variant, args, sbx) for variant in variants}
    clock = CLOCKS[args.clock]
    times = interleaved(
        variants, args.repeats, lambda variant: time_learn(models[variant], args.steps, device, clock), "training"
    )
    training = training_rows(variants, models, times, args)
    inference = inference_rows([v for v in variants if v.kind in (DENSE, SPARSE)], models, args, device)

    context = describe(args, argv, device, sbx)
    text = report(args, context, training, inference)
    print(text)
    result = {"context": context, "args": plain_args(args), "training": training, "inference": inference}
    write_results(args.out, "results", result, text)
    return result


if __name__ == "__main__":
    main()
