"""Summary of a profile's results: a markdown table and PNG plots.

``python -m benchmarks.summary reduced`` reads ``benchmarks/results/reduced/**/result.json`` and
writes ``docs/benchmarks/reduced/summary.md`` with ``curves.png``, ``normalized.png`` and
``aggregate.png``.

Scores are normalised per task (algorithm x env) against dense: ``(x - R0) / (dense - R0)``, where
``R0`` is the mean return of the initial policies (step-0 evaluation, all runs of the task), so
dense scores 1 and the untrained agent 0 (this also works for negative returns, e.g. Pendulum).
``final`` is the mean of a run's last ``final_evals`` evaluations; ``AUC`` is its mean return
over training (trapezoid over the evaluation steps). The aggregate is the interquartile mean (IQM)
over runs and tasks with a 95% stratified bootstrap confidence interval (as ``rliable``).

Runs with a width (profiles with ``widths``, e.g. ``scaling`` and ``regimes``) are labelled
``<label>-w<width>``; a profile's ``reference: <run label>`` names the runs scores are normalised to
(default ``dense``). Their summary adds a table of size and cost per method and width: final return
(IQM over seeds, 95% bootstrap CI), parameters and active parameters, FLOPs (absolute and relative to the
dense model of the same architecture and width) and wall-clock seconds per run, and, with several
widths, ``scaling.png``: those against width, one line per method.
"""

import argparse
import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks.profile import REPO_ROOT, RunSpec, load_profile, profile_results_dir, run_label

Task = tuple[str, str]  # (algo, env_id)


def run_training_flops(result: dict[str, Any]) -> float:
    """Training FLOPs of the whole run over dense (each phase at its density: gmp and ne change it), else per step."""
    flops = result["flops"]
    integrated = flops.get("integrated_training_flops_ratio")
    return float(integrated if integrated is not None else flops["training_flops_ratio"])


def result_label(spec: dict[str, Any]) -> str:
    """The run label of a stored spec: ``<label>-w<width>`` for runs with a width, else ``label``."""
    return run_label(spec["label"], spec.get("width"))


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    """Every finished run's result under ``results_dir``."""
    results = []
    for path in sorted(Path(results_dir).rglob("result.json")):
        with open(path) as file:
            results.append(json.load(file))
    return results


def load_progress(results_dir: Path) -> list[dict[str, Any]]:
    """Unfinished runs: the spec (from the directory layout) and the eval curve of their last checkpoint."""
    progress = []
    for path in sorted(Path(results_dir).rglob("checkpoint*/state.json")):
        run_dir = path.parent.parent
        if (run_dir / "result.json").exists() or path.parent.name == "checkpoint.tmp":
            continue
        with open(path) as file:
            state = json.load(file)
        algo, env_id, label, seed = run_dir.relative_to(results_dir).parts
        progress.append({"algo": algo, "env_id": env_id, "label": label, "seed": seed, **state})
    return progress


def progress_section(progress: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Markdown (and ``progress.png``) for unfinished runs: their curves so far, not final results."""
    if not progress:
        return []
    lines = [
        "## Runs in progress (unfinished: curves up to their last checkpoint, not final results)",
        "",
        "| run | steps done | eval return at the last 3 evaluations (step: return) |",
        "|---|---|---|",
    ]
    for run in progress:
        curve = run["curve"]
        last = ", ".join(f"{s:,}: {m:.1f}" for s, m in zip(curve["steps"][-3:], curve["mean"][-3:], strict=True))
        name = f"{run['algo'].upper()} {run['env_id']} {run['label']} {run['seed']}"
        lines.append(f"| {name} | {run['num_timesteps']:,} | {last} |")
    tasks = sorted({(r["algo"], r["env_id"]) for r in progress})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, (algo, env_id) in zip(axes[0], tasks, strict=True):
        for run in (r for r in progress if (r["algo"], r["env_id"]) == (algo, env_id)):
            ax.plot(run["curve"]["steps"], run["curve"]["mean"], marker=".", label=f"{run['label']} {run['seed']}")
        ax.set_title(f"{algo.upper()} {env_id} (in progress)")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "progress.png", dpi=110)
    plt.close(fig)
    return [*lines, "", "![runs in progress](progress.png)", ""]


def auc(curve: dict[str, list[float]]) -> float:
    """Mean return over training: trapezoid area under the eval curve divided by its length in steps."""
    steps, mean = np.asarray(curve["steps"], dtype=float), np.asarray(curve["mean"], dtype=float)
    if len(steps) < 2:
        return float(mean[-1])
    return float(np.trapezoid(mean, steps) / (steps[-1] - steps[0]))


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the values."""
    values = np.sort(np.asarray(values, dtype=float).ravel())
    n = len(values)
    cut = int(np.floor(0.25 * n))
    middle = values[cut : n - cut] if n - 2 * cut > 0 else values
    return float(middle.mean())


def iqm_interval(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``scores`` (runs x tasks) and its 95% stratified percentile-bootstrap CI.

    The same estimate as rliable's ``get_interval_estimates`` with ``metrics.aggregate_iqm``: each
    bootstrap sample redraws the runs of every task (column) with replacement. Implemented here with
    numpy because rliable 1.2.0 fails with arch >= 8 (and arch 7 with pandas 3).
    """
    scores = np.asarray(scores, dtype=float)
    n_runs, n_tasks = scores.shape
    if n_runs < 2:
        point = iqm(scores)
        return point, point, point
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_runs, (reps, n_runs, n_tasks))
    samples = np.take_along_axis(np.broadcast_to(scores, (reps, n_runs, n_tasks)), rows, axis=1)
    boots = [iqm(sample) for sample in samples]
    return iqm(scores), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def mean_curve(runs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation steps shared by ``runs`` and the returns there (seeds x steps)."""
    steps = sorted(set.intersection(*(set(run["curve"]["steps"]) for run in runs)))
    returns = [[dict(zip(r["curve"]["steps"], r["curve"]["mean"], strict=True))[s] for s in steps] for r in runs]
    return np.asarray(steps), np.asarray(returns, dtype=float)


def bootstrap_band(values: np.ndarray, reps: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap interval of the mean over seeds (axis 0), per column."""
    if values.shape[0] < 2:
        return values[0], values[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.shape[0], (reps, values.shape[0]))
    means = values[idx].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def analyse(results: list[dict[str, Any]], order: list[str] | None = None, reference: str = "dense") -> dict[str, Any]:
    """Per-task, per-method statistics and per-run normalised scores (``reference``: the runs scoring 1)."""
    by_task: dict[Task, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        spec = result["spec"]
        by_task[(spec["algo"], spec["env_id"])][result_label(spec)].append(result)
    labels = {label for methods in by_task.values() for label in methods}
    order = [m for m in (order or []) if m in labels] + sorted(labels - set(order or []), key=lambda m: (m != reference, m))
    tasks: dict[Task, dict[str, Any]] = {}
    for task in sorted(by_task):
        methods = by_task[task]
        r0 = float(np.mean([run["curve"]["mean"][0] for runs in methods.values() for run in runs]))
        dense = methods.get(reference, [])
        dense_final = float(np.mean([r["final_return"] for r in dense])) if dense else None
        dense_auc = float(np.mean([auc(r["curve"]) for r in dense])) if dense else None
        rows = {}
        for label in order:
            runs = sorted(methods.get(label, []), key=lambda r: r["spec"]["seed"])
            if not runs:
                continue
            finals = np.array([r["final_return"] for r in runs])
            aucs = np.array([auc(r["curve"]) for r in runs])
            steps, returns = mean_curve(runs)
            row: dict[str, Any] = {
                "runs": runs,
                "seeds": [r["spec"]["seed"] for r in runs],
                "budget": runs[0]["spec"]["total_timesteps"],
                "final": finals,
                "auc": aucs,
                "steps": steps,
                "returns": returns,
                "sparsity": float(np.mean([r["sparsity"]["global"] for r in runs])),
                "train_flops": float(np.mean([run_training_flops(r) for r in runs])),
                "inference_flops": float(np.mean([r["flops"]["inference_flops_ratio"] for r in runs])),
                "seconds_per_step": float(np.median([r["seconds_per_step"] for r in runs])),
            }
            if dense_final is not None and dense_auc is not None:
                row["time_ratio"], row["time_clock"] = time_ratio(runs, dense)
                if dense_final > r0 and dense_auc > r0:  # else dense did not learn: nothing to normalise to
                    row["norm_final"] = (finals - r0) / (dense_final - r0)
                    row["norm_auc"] = (aucs - r0) / (dense_auc - r0)
                    reached = np.nonzero(returns.mean(axis=0) >= dense_final)[0]
                    row["steps_to_dense"] = int(steps[reached[0]]) if len(reached) else None
            rows[label] = row
        tasks[task] = {"r0": r0, "dense_final": dense_final, "methods": rows}
    aggregate: dict[str, dict[str, tuple[float, float, float, int, int]]] = {}
    for label in order:
        for metric in ("norm_final", "norm_auc"):
            columns = [t["methods"][label][metric] for t in tasks.values() if metric in t["methods"].get(label, {})]
            if not columns:
                continue
            if len({len(c) for c in columns}) == 1:
                scores = np.stack(columns, axis=1)  # seeds x tasks
            else:
                scores = np.concatenate(columns)[:, None]  # unequal seeds: pool the runs
            aggregate.setdefault(label, {})[metric] = (*iqm_interval(scores), int(scores.size), len(columns))
    return {"order": order, "tasks": tasks, "aggregate": aggregate, "reference": reference}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _mean_std(values: np.ndarray, digits: int = 2) -> str:
    if len(values) == 1:
        return _fmt(float(values[0]), digits)
    return f"{_fmt(float(np.mean(values)), digits)} ± {_fmt(float(np.std(values)), digits)}"


def time_ratio(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> tuple[float, str]:
    """Median training seconds per step of ``runs`` over that of ``reference``, and the clock: ``"CPU"`` where every
    run recorded its CPU time (pauses and waiting for a shared core left out), else ``"wall"``."""
    clock, key = ("CPU", "cpu_seconds_per_step")
    if any(run.get(key) is None for run in [*runs, *reference]):
        clock, key = ("wall", "seconds_per_step")
    return float(np.median([r[key] for r in runs]) / np.median([r[key] for r in reference])), clock


def markdown_table(analysis: dict[str, Any]) -> str:
    """The per-task table and the aggregate table, in markdown."""
    lines = [
        "| task | method | seeds | final return | final / dense | AUC / dense | steps to dense final"
        " | sparsity | train FLOPs | inference FLOPs | time / step vs dense (clock) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (algo, env_id), task in analysis["tasks"].items():
        for label, row in task["methods"].items():
            to_dense = row.get("steps_to_dense")
            reach = "not reached" if to_dense is None else f"{to_dense:,} ({to_dense / row['budget']:.0%})"
            if "steps_to_dense" not in row:
                reach = "n/a"  # no dense runs, or dense did not improve on the initial policy
            lines.append(
                f"| {algo.upper()} {env_id} | {label} | {len(row['seeds'])} | {_mean_std(row['final'], 1)} "
                f"| {_mean_std(row['norm_final']) if 'norm_final' in row else 'n/a'} "
                f"| {_mean_std(row['norm_auc']) if 'norm_auc' in row else 'n/a'} | {reach} "
                f"| {row['sparsity']:.2f} | {row['train_flops']:.3f}x | {row['inference_flops']:.3f}x "
                f"| {_fmt(row['time_ratio']) + 'x ' + row['time_clock'] if 'time_ratio' in row else 'n/a'} |"
            )
    lines += [
        "",
        "Aggregate over tasks (IQM of the normalised scores, 95% bootstrap CI):",
        "",
        "| method | runs | tasks | IQM final / dense | IQM AUC / dense |",
        "|---|---|---|---|---|",
    ]
    for label, metrics in analysis["aggregate"].items():
        cells = []
        for metric in ("norm_final", "norm_auc"):
            point, low, high, n_runs, n_tasks = metrics[metric]
            cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
        lines.append(f"| {label} | {n_runs} | {n_tasks} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _colors(order: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(order)}


def plot_curves(analysis: dict[str, Any], path: Path) -> None:
    """Learning curves per task: mean over seeds, shaded 95% bootstrap CI of the mean."""
    tasks = analysis["tasks"]
    n = len(tasks)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = _colors(analysis["order"])
    for ax, ((algo, env_id), task) in zip(axes.flat, tasks.items(), strict=False):
        for label, row in task["methods"].items():
            low, high = bootstrap_band(row["returns"])
            ax.plot(row["steps"], row["returns"].mean(axis=0), color=colors[label], label=f"{label} (n={len(row['seeds'])})")
            ax.fill_between(row["steps"], low, high, color=colors[label], alpha=0.2)
        ax.set_title(f"{algo.upper()} {env_id}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_normalized(analysis: dict[str, Any], path: Path) -> None:
    """Final return and AUC per task, normalised to dense (bars: mean over seeds, dots: seeds)."""
    reference = analysis.get("reference", "dense")
    tasks = [t for t in analysis["tasks"].items() if "norm_final" in t[1]["methods"].get(reference, {})]
    order = analysis["order"]
    colors = _colors(order)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(tasks) * 2), 3.8), squeeze=False)
    width = 0.8 / max(1, len(order))
    for ax, metric, title in zip(axes[0], ("norm_final", "norm_auc"), ("final return / dense", "AUC / dense"), strict=True):
        for t, (_, task) in enumerate(tasks):
            for m, label in enumerate(order):
                row = task["methods"].get(label)
                if row is None:
                    continue
                x = t + (m - (len(order) - 1) / 2) * width
                ax.bar(x, np.mean(row[metric]), width, color=colors[label], label=label if t == 0 else None)
                ax.scatter(np.full(len(row[metric]), x), row[metric], color="black", s=8, zorder=3)
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(tasks)), [f"{a.upper()}\n{e}" for (a, e), _ in tasks], fontsize=8)
        ax.set_title(title)
        if tasks:
            ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_aggregate(analysis: dict[str, Any], path: Path) -> None:
    """IQM over runs and tasks of the normalised final return and AUC, with 95% bootstrap CIs."""
    aggregate = analysis["aggregate"]
    labels = list(aggregate)
    colors = _colors(analysis["order"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.5 * len(labels) + 1.5), squeeze=False)
    for ax, metric, title in zip(axes[0], ("norm_final", "norm_auc"), ("IQM final / dense", "IQM AUC / dense"), strict=True):
        for i, label in enumerate(labels):
            point, low, high, *_ = aggregate[label][metric]
            ax.errorbar(point, i, xerr=[[point - low], [high - point]], fmt="o", color=colors[label], capsize=4)
        ax.axvline(1.0, color="gray", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _human(value: float) -> str:
    """``1234567`` -> ``1.23M`` (counts and FLOPs in the size tables)."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def size_rows(results: list[dict[str, Any]], order: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per task, method label and width: final return (IQM over seeds, 95% bootstrap CI), sizes,
    FLOPs and wall-clock (results without the size fields of the newer harness are skipped)."""
    groups: dict[tuple[str, str, str, int | None], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        if "size" not in result:
            continue
        spec = result["spec"]
        groups[(spec["algo"], spec["env_id"], spec["label"], spec.get("width"))].append(result)
    labels = list(dict.fromkeys([*(order or []), *sorted({key[2] for key in groups})]))
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], labels.index(k[2]), k[3] or 0)):
        runs = sorted(groups[key], key=lambda r: r["spec"]["seed"])
        finals = np.array([r["final_return"] for r in runs], dtype=float)
        point, low, high = iqm_interval(finals[:, None])
        walls = [r["wall_seconds"] for r in runs if r.get("wall_seconds") is not None]
        rows.append(
            {
                "algo": key[0], "env_id": key[1], "label": key[2], "width": key[3], "seeds": len(runs),
                "policy": runs[0].get("policy", "MlpPolicy"), "net_arch": runs[0].get("net_arch"),
                "iqm": point, "low": low, "high": high,
                "parameters": _mean(runs, "size.parameters"), "active_parameters": _mean(runs, "size.active_parameters"),
                "weights": _mean(runs, "size.weights"), "active_weights": _mean(runs, "size.active_weights"),
                "train_flops": _mean(runs, "flops.training_flops"),
                "train_ratio": float(np.mean([run_training_flops(r) for r in runs])),
                "inference_flops": _mean(runs, "flops.inference_flops"),
                "inference_ratio": _mean(runs, "flops.inference_flops_ratio"),
                "run_flops": _mean(runs, "flops.run_training_flops"),
                "wall": float(np.median(walls)) if walls else float("nan"),
                "wall_range": (min(walls), max(walls)) if walls else None,
            }
        )  # fmt: skip
    return rows


def _mean(runs: list[dict[str, Any]], path: str) -> float:
    """The mean over ``runs`` of the value at the dotted ``path`` (``"size.parameters"``)."""
    values = []
    for value in runs:
        for part in path.split("."):
            value = value[part]
        values.append(float(value))  # type: ignore[arg-type]
    return float(np.mean(values))


def size_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`size_rows`."""
    lines = [
        "| task | method | width | policy (net_arch) | seeds | final return IQM [95% CI] | parameters (active / all)"
        " | train FLOPs / step (vs dense) | inference FLOPs (vs dense) | train FLOPs / run"
        " | wall-clock s / run (median, range) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        arch = row["net_arch"]
        arch_text = "" if arch is None else " " + json.dumps(arch).replace('"', "").replace(" ", "")
        low, high = row["wall_range"] or (0.0, 0.0)
        wall = "n/a" if row["wall_range"] is None else f"{row['wall']:.0f} ({low:.0f}-{high:.0f})"
        lines.append(
            f"| {row['algo'].upper()} {row['env_id']} | {row['label']} | {row['width'] if row['width'] is not None else '-'} "
            f"| {row['policy']}{arch_text} | {row['seeds']} | {row['iqm']:.1f} [{row['low']:.1f}, {row['high']:.1f}] "
            f"| {_human(row['active_parameters'])} / {_human(row['parameters'])} "
            f"| {_human(row['train_flops'])} ({row['train_ratio']:.2f}x) "
            f"| {_human(row['inference_flops'])} ({row['inference_ratio']:.2f}x) "
            f"| {_human(row['run_flops'])} | {wall} |"
        )
    return "\n".join(lines)


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    """Final return (IQM, 95% CI), active parameters, training FLOPs per run and wall-clock per run against
    width, and the final return against active parameters: one line per method, one row of panels per task."""
    tasks = sorted({(r["algo"], r["env_id"]) for r in rows})
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colors = _colors(labels)
    panels = (
        ("final return (IQM, 95% CI)", None),
        ("final return against active parameters", "by_parameters"),
        ("active parameters", "active_parameters"),
        ("training FLOPs per run", "run_flops"),
        ("wall-clock s per run (median)", "wall"),
    )
    fig, axes = plt.subplots(len(tasks), len(panels), figsize=(4.2 * len(panels), 3.4 * len(tasks)), squeeze=False)
    for ax_row, task in zip(axes, tasks, strict=True):
        for ax, (title, key) in zip(ax_row, panels, strict=True):
            for label in labels:
                points = sorted((r for r in rows if (r["algo"], r["env_id"]) == task and r["label"] == label and r["width"]),
                                key=lambda r: r["width"])  # fmt: skip
                if not points:
                    continue
                x = [r["active_parameters"] if key == "by_parameters" else r["width"] for r in points]
                if key in (None, "by_parameters"):
                    y = np.array([r["iqm"] for r in points])
                    err = [y - [r["low"] for r in points], [r["high"] for r in points] - y]
                    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colors[label], label=label)
                else:
                    ax.plot(x, [r[key] for r in points], marker="o", color=colors[label], label=label)
            ax.set_xscale("log", base=10 if key == "by_parameters" else 2)
            if key in ("active_parameters", "run_flops"):
                ax.set_yscale("log")
            ax.set_xlabel("active parameters" if key == "by_parameters" else "width")
            ax.set_title(f"{task[0].upper()} {task[1]}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
        ax_row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def size_section(results: list[dict[str, Any]], out_dir: Path, order: list[str] | None = None) -> list[str]:
    """Markdown (and ``scaling.png`` with several widths) of the size and cost per method and width."""
    rows = size_rows(results, order)
    if not rows:
        return []
    lines = [
        "## Size and cost per method and width",
        "",
        "*Final return*: interquartile mean over seeds of each run's final return, 95% percentile-bootstrap CI "
        "(with fewer than 4 seeds the IQM is the mean of the seeds, and with 2 seeds the CI spans the two "
        "returns). *Parameters*: every trainable parameter of the actor "
        "and critic (target networks left out), active = without the masked-out weights. *FLOPs* as in RigL "
        "(`sb3_sparse.flops_report`: multiply-adds of the weight matrices per sample; a training step is 3x the "
        "forward pass of every trained network plus the target's forward pass; inference is one forward pass of "
        "the actor), relative to the dense model of the same architecture and width (*train FLOPs / step*: the "
        "final network; the ratio is over the whole run, so `gmp` and `ne` pay for their denser phases). *Train "
        "FLOPs / run*: per-sample training FLOPs x batch size x gradient steps. *Wall-clock s / run*: training and "
        "evaluation seconds of the run (model building excluded), median over seeds (with runs in parallel "
        "or on a machine shared with other work, it also measures the load: see the notes above).",
        "",
        size_table(rows),
        "",
    ]
    if len({r["width"] for r in rows if r["width"] is not None}) > 1:
        plot_scaling(rows, out_dir / "scaling.png")
        lines += ["![size and cost against width](scaling.png)", ""]
    return lines


def multi_agent_note(results: list[dict[str, Any]]) -> list[str]:
    """What the numbers of multi-agent runs (QMIX, VDN) mean, when there are any."""
    from sb3_sparse.registry import MULTI_AGENT_ALGORITHMS

    if not any(result["spec"]["algo"] in MULTI_AGENT_ALGORITHMS for result in results):
        return []
    return [
        "",
        "Multi-agent runs (QMIX / VDN): returns are team returns (the sum of the agents' rewards) of greedy "
        "episodes; parameters and FLOPs are those of the shared agent network and the mixer (inference: one "
        "agent's forward pass; train FLOPs / run: per team step, the agent network once per agent, x batch of "
        "episodes x episode limit x gradient steps). `tiny` (MAST's *Tiny* baseline: a dense policy with the "
        "active weight count of the sparse ones) is measured against the full-size dense policy, so its FLOPs "
        "ratios are below 1 at sparsity 0.",
    ]


def runs_left_section(results: list[dict[str, Any]], progress: list[dict[str, Any]], specs: list[RunSpec]) -> list[str]:
    """The profile's runs neither finished nor started, per task and method (a profile grown over sittings)."""
    if not specs:
        return []
    specs_done = [r["spec"] for r in results]
    started = {f"{s['algo']}/{s['env_id']}/{run_label(s['label'], s.get('width'))}/seed{s['seed']}" for s in specs_done}
    started |= {f"{p['algo']}/{p['env_id']}/{p['label']}/{p['seed']}" for p in progress}
    left: dict[tuple[str, str, str], list[int]] = {}
    for spec in specs:
        if spec.run_id not in started:
            left.setdefault((spec.algo, spec.env_id, spec.run_label), []).append(spec.seed)
    if not left:
        return []
    lines = ["", f"## Runs not started ({sum(map(len, left.values()))})", "", "| task | method | seeds |", "|---|---|---|"]
    lines += [
        f"| {algo.upper()} {env} | {label} | {', '.join(map(str, seeds))} |" for (algo, env, label), seeds in left.items()
    ]
    return lines


def write_summary(
    results_dir: Path,
    out_dir: Path,
    profile: dict[str, Any] | None = None,
    specs: list[RunSpec] | None = None,
    note: str = "",
) -> Path:
    """Write ``summary.md`` and the plots of the results under ``results_dir`` into ``out_dir``."""
    results = load_results(results_dir)
    progress = load_progress(results_dir)
    if not results and not progress:
        raise FileNotFoundError(f"no result.json or checkpoint under {results_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = specs[0].profile if specs else results[0]["spec"]["profile"]
    expected = len(specs) if specs else len(results)
    partial = len(results) < expected
    lines = [
        f"# Benchmark summary: profile `{name}`{' (PARTIAL)' if partial else ''}",
        "",
        f"- Finished runs: {len(results)} of {expected} in the profile" + (" — partial results" if partial else ""),
        f"- Unfinished runs with a checkpoint: {len(progress)}",
    ]
    if results:
        machines = sorted({f"{r['machine']['node']} ({r['machine']['cpus']} CPUs)" for r in results})
        budgets = sorted({(r["spec"]["env_id"], r["spec"]["total_timesteps"]) for r in results})
        finished = sorted(r["finished"] for r in results)
        spec0 = results[0]["spec"]
        lines += [
            "- Budget (env steps per run): " + ", ".join(f"{env} {steps:,}" for env, steps in budgets),
            f"- Evaluation: every {spec0['eval_freq']:,} steps, {spec0['n_eval_episodes']} deterministic episodes; "
            f"final return = mean of the last {spec0['final_evals']} evaluation(s)",
            f"- Runs finished between {finished[0]} and {finished[-1]} on {', '.join(machines)}",
        ]
    lines.append(f"- Summary generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    if note:
        lines += ["", note]
    lines += multi_agent_note(results)
    lines.append("")
    if not results:
        path = out_dir / "summary.md"
        path.write_text("\n".join([*lines, *progress_section(progress, out_dir)]))
        return path
    order = list(dict.fromkeys(spec.run_label for spec in specs)) if specs else None
    reference = str((profile or {}).get("reference", "dense"))
    analysis = analyse(results, order, reference)
    plot_curves(analysis, out_dir / "curves.png")
    plot_normalized(analysis, out_dir / "normalized.png")
    plot_aggregate(analysis, out_dir / "aggregate.png")
    lines += [
        "",
        "Normalised scores: `(x - R0) / (dense - R0)` per task, `R0` = mean step-0 return of the task's runs "
        "(dense = 1, untrained = 0); `n/a` where dense did not improve on `R0` (nothing to normalise to; such "
        "tasks are left out of the aggregate). *Steps to dense final*: first evaluation at which the seed-mean curve "
        "reaches dense's mean final return (fraction of the run's budget). FLOPs as in RigL "
        "(`sb3_sparse.flops_report`; dense = 1): *train FLOPs* over the whole run, each phase at the density it "
        "had (dense-to-sparse `gmp` pays for its dense start), *inference FLOPs* of the final network. "
        "Time per step: median training seconds per env step (evaluation excluded) relative to dense, on the "
        "process's CPU clock where every run of the row and of dense recorded it (`CPU`: pauses and waiting for a "
        "shared core left out), else on the wall clock (`wall`: runs shared the CPUs with other work, so it is "
        "indicative only); see `benchmarks/throughput.py` for an interleaved measurement."
        + (f" Here *dense* in the normalised columns is `{reference}`." if reference != "dense" else ""),
        "",
        markdown_table(analysis),
        "",
        "![learning curves](curves.png)",
        "",
        "![normalised scores](normalized.png)",
        "",
        "![aggregate](aggregate.png)",
        "",
        *size_section(results, out_dir, list(dict.fromkeys(spec.label for spec in specs)) if specs else None),
        *progress_section(progress, out_dir),
        *runs_left_section(results, progress, specs or []),
    ]
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="profile name or YAML path")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="results directory (default: the profile's `results`, else benchmarks/results/<name>)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory (default docs/benchmarks/<profile>)")
    parser.add_argument("--note", default="", help="a paragraph added to the summary (e.g. budget, machine)")
    args = parser.parse_args(argv)
    data, specs = load_profile(args.profile)
    name = specs[0].profile
    results = args.results or profile_results_dir(data, name)
    out = args.out or REPO_ROOT / "docs" / "benchmarks" / name
    print(write_summary(results, out, data, specs, args.note))


if __name__ == "__main__":
    main()
