"""Figures rl-zoo3 lacks, saved to PNG: one run's return with its sparsity and topology changes, and dense vs sparse curves.

Both read rl-zoo3's run folders (``<log folder>/<algo>/<env>_<n>/``): ``0.monitor.csv`` (training
episodes), ``evaluations.npz`` (``--eval-freq``) and our ``sparsity.csv`` and ``plasticity.csv``
(:class:`~sb3_sparse.zoo.callbacks.SparsityLogCallback`). Matplotlib draws off-screen (no display needed).
"""

import argparse
import contextlib
import csv
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sb3_sparse.core.plasticity import NEAR_ZERO_THRESHOLD
from sb3_sparse.zoo import ZooError, is_sparse_algo, run_ids
from sb3_sparse.zoo.callbacks import PLASTICITY_FILE, SPARSITY_FILE

Curve = tuple[np.ndarray, np.ndarray]


def find_run(folder: str, algo: str, env_id: str, exp_id: int = 0) -> str:
    """The run folder ``<folder>/<algo>/<env>_<exp_id>`` (``exp_id=0``: the latest run), as rl-zoo3's enjoy finds it.

    :raises ZooError: if there is no such run
    """
    runs = run_folders(folder, algo, env_id)
    if not runs:
        raise ZooError(f"no run of {algo} on {env_id} in {os.path.join(folder, algo)}")
    if exp_id == 0:
        return runs[-1]
    wanted = os.path.join(folder, algo, f"{env_id}_{exp_id}")
    if wanted not in runs:
        raise ZooError(f"run {wanted} not found")
    return wanted


def run_folders(folder: str, algo: str, env_id: str) -> list[str]:
    """All run folders of ``algo`` on ``env_id`` under ``folder``, by run number."""
    return [os.path.join(folder, algo, f"{env_id}_{run_id}") for run_id in run_ids(os.path.join(folder, algo), env_id)]


def training_episodes(run_dir: str) -> Curve | None:
    """Each training episode's return against the env step at which it ended (rl-zoo3's monitor files)."""
    from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results

    try:
        frame = load_results(run_dir)
    except LoadMonitorResultsError:
        return None
    if len(frame) == 0:
        return None
    return np.cumsum(frame["l"].to_numpy()), frame["r"].to_numpy(dtype=float)


def training_curve(run_dir: str, window: int = 10) -> Curve | None:
    """Rolling mean of the training episodes' return against env steps (the window shrinks for short runs)."""
    episodes = training_episodes(run_dir)
    if episodes is None:
        return None
    steps, returns = episodes
    window = max(1, min(window, len(returns) // 2))
    smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
    return steps[window - 1 :], smooth


def eval_curve(run_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Evaluation steps, mean and std of the return (``evaluations.npz`` written by ``--eval-freq``)."""
    path = os.path.join(run_dir, "evaluations.npz")
    if not os.path.isfile(path):
        return None
    data = np.load(path)
    if len(data["timesteps"]) == 0:
        return None
    results = np.asarray(data["results"], dtype=float)
    return data["timesteps"], results.mean(axis=1), results.std(axis=1)


def sparsity_history(run_dir: str) -> dict[str, np.ndarray] | None:
    """Columns of the run's ``sparsity.csv`` as float arrays (empty cells -> NaN)."""
    path = os.path.join(run_dir, SPARSITY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return None
    return {key: np.array([float(row[key]) if row[key] not in ("", None) else math.nan for row in rows]) for key in rows[0]}


def plasticity_history(run_dir: str) -> dict[str, dict[str, np.ndarray]] | None:
    """The run's ``plasticity.csv`` per module: ``{module: {column: float array}}`` (empty cells -> NaN)."""
    path = os.path.join(run_dir, PLASTICITY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return None
    history: dict[str, dict[str, np.ndarray]] = {}
    for module in dict.fromkeys(row["module"] for row in rows):
        own = [row for row in rows if row["module"] == module]
        history[module] = {
            key: np.array([float(row[key]) if row[key] not in ("", None) else math.nan for row in own])
            for key in own[0]
            if key != "module"
        }
    return history


#: The plasticity panels of ``plot run``: column of ``plasticity.csv``, title, y label.
PLASTICITY_PANELS = (
    ("dormant_ratio", "dormant units (ReDo score <= tau)", "dormant-unit ratio"),
    ("feature_rank", "feature rank of the last hidden layer (srank)", "srank"),
    ("near_zero_fraction", f"active weights with |w| < {NEAR_ZERO_THRESHOLD:g}", "near-zero fraction"),
)


def _plasticity_panels(axes: Sequence[Any], run_dir: str, missing: str | None, notes: list[str]) -> None:
    """Draw one line per module in each plasticity panel, or say in the panel why it is empty.

    :param missing: why the run has no sparsity log at all (its panels say it already), or ``None``
    """
    history = plasticity_history(run_dir)
    for ax, (column, title, label) in zip(axes, PLASTICITY_PANELS, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(label)
        if history is None:
            continue
        for index, (module, values) in enumerate(history.items()):
            metric = values.get(column)
            if metric is not None and not np.all(np.isnan(metric)):
                measured = ~np.isnan(metric)
                style = ("-", "--", "-.", ":")[index % 4]
                ax.plot(values["timesteps"][measured], metric[measured], style, marker=".", label=module)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
        else:
            notes.append(f"{PLASTICITY_FILE} has no {column} measurement (no hidden layer was recorded)")
            _empty_panel(ax, notes[-1])
    if history is None:
        if missing is None:
            notes.append(
                f"no {PLASTICITY_FILE} in {run_dir}: the plasticity metrics were switched off "
                "(plasticity_metrics=False) or none was measured (one per topology_update_interval once training starts)"
            )
            missing = notes[-1]
        for ax in axes:
            _empty_panel(ax, missing)
    axes[0].set_ylim(0, 1)
    axes[2].set_ylim(bottom=0.0, top=max(0.05, axes[2].get_ylim()[1]))


def _empty_panel(ax: Any, text: str) -> None:
    """Say in the panel itself why it has nothing to show (a blank panel reads as a bug)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True, fontsize=9, color="0.35")


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def no_sparsity_reason(run_dir: str) -> str:
    """Why a run has no ``sparsity.csv``: a dense algorithm (from the run folder's ``<algo>`` parent), or no log."""
    algo = os.path.basename(os.path.dirname(os.path.abspath(run_dir)))
    try:
        from rl_zoo3.utils import ALGOS as known  # rl-zoo3's algorithm names: a run of one of them is dense
    except ImportError:
        known = {}
    if algo in known and not is_sparse_algo(algo):
        return f"{algo} is a dense algorithm: its runs have no {SPARSITY_FILE}, so there is no sparsity to plot"
    writer = f"a {algo} training run" if is_sparse_algo(algo) else "a training run of a sparse algorithm"
    return f"no {SPARSITY_FILE} in {run_dir} ({writer} writes it; tuning trials do not)"


def run_figure(run_dir: str, window: int = 10) -> tuple[Figure, list[str]]:
    """The figure of :func:`plot_run` and notes on what is missing from it (each also written in its panel).

    :param run_dir: an rl-zoo3 run folder
    :param window: episodes in the rolling mean of the training return
    :return: the figure and the notes
    :raises ZooError: if the run has nothing to plot
    """
    history = sparsity_history(run_dir)
    train, evaluation = training_curve(run_dir, window), eval_curve(run_dir)
    if history is None and train is None and evaluation is None:
        raise ZooError(f"{run_dir} has no monitor file, evaluations.npz or {SPARSITY_FILE} to plot")
    notes: list[str] = []
    fig = Figure(figsize=(8, 15), layout="constrained")
    axes = fig.subplots(3 + len(PLASTICITY_PANELS), 1, sharex=True)
    fig.suptitle(os.path.relpath(run_dir))
    episodes = training_episodes(run_dir)
    if episodes is not None:
        axes[0].plot(*episodes, ".", color="0.6", label="training episodes")
    if train is not None and len(train[0]) > 1:
        axes[0].plot(*train, label=f"training (rolling mean, up to {window} episodes)")
    if evaluation is not None:
        steps, mean, std = evaluation
        axes[0].errorbar(steps, mean, yerr=std, marker="o", capsize=3, label="evaluation (mean +- std)")
    if episodes is None and evaluation is None:
        notes.append(f"no returns in {run_dir}: no monitor file and no evaluations.npz")
        _empty_panel(axes[0], notes[-1])
    axes[0].set_ylabel("return")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="best", fontsize=8)
    missing = None
    if history is None:
        notes.append(no_sparsity_reason(run_dir))
        missing = notes[-1]
        for ax in axes[1:3]:
            _empty_panel(ax, notes[-1])
    else:
        steps = history["timesteps"]
        # one column per DST module (actor, critic, ... as the algorithm names them), global last
        modules = [key[: -len("_sparsity")] for key in history if key.endswith("_sparsity") and key != "global_sparsity"]
        for index, name in enumerate([*modules, "global"]):
            values = history.get(f"{name}_sparsity")
            style = ":" if name == "global" else ("-", "--", "-.")[index % 3]
            if values is not None and not np.all(np.isnan(values)):
                axes[1].step(steps, values, style, where="post", label=name)
        for index, name in enumerate(key[: -len("_changed_fraction")] for key in history if key.endswith("_changed_fraction")):
            values = history[f"{name}_changed_fraction"]
            rewired = ~np.isnan(values)
            if rewired.any():
                marker = "osD^"[index % 4]
                axes[2].plot(steps[rewired], values[rewired], marker=marker, fillstyle="none", markersize=7, label=name)
        if "n_topology_updates" in history and "training_flops_ratio" in history:
            updates = int(np.nanmax(history["n_topology_updates"]))
            flops = history["training_flops_ratio"][-1]
            plural = "" if updates == 1 else "s"
            axes[2].set_title(f"{updates} mask update{plural} of the agent; training FLOPs {flops:.2f}x dense", fontsize=10)
        if not axes[2].lines:
            notes.append("no topology update in this run (too short, or updates switched off): no connection changed")
            _empty_panel(axes[2], notes[-1])
    axes[1].set_ylabel("sparsity")
    axes[1].set_ylim(0, 1)
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(loc="best", fontsize=8)
    axes[2].set_ylabel("fraction of active\nconnections changed")
    axes[2].set_ylim(bottom=0.0, top=max(0.05, axes[2].get_ylim()[1] * 1.1))
    axes[2].ticklabel_format(axis="y", useOffset=False)
    if axes[2].get_legend_handles_labels()[0]:
        axes[2].legend(loc="best", fontsize=8)
    _plasticity_panels(axes[3:], run_dir, missing, notes)
    axes[-1].set_xlabel("env steps")
    return fig, notes


def plot_run(run_dir: str, output: str, window: int = 10) -> str:
    """Return (training and evaluation), sparsity, fraction of connections changed per topology update, and the
    plasticity diagnostics (dormant-unit ratio, feature rank, near-zero weights) of each module, over training.

    What the run lacks (e.g. ``sparsity.csv`` of a dense run) is said in the empty panel and on stderr.

    :param run_dir: an rl-zoo3 run folder (of a sparse algorithm, for the sparsity panels)
    :param output: PNG file to write
    :param window: episodes in the rolling mean of the training return
    :return: ``output``
    """
    fig, notes = run_figure(run_dir, window)
    for note in notes:
        _note(note)
    _save(fig, output)
    return output


def _save(fig: Figure, output: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=110)


def _mean_curve(curves: list[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of several runs' curves on a common grid of env steps (up to the shortest run)."""
    end = min(curve[0][-1] for curve in curves)
    start = max(curve[0][0] for curve in curves)
    grid = np.linspace(start, end, 100) if end > start else np.array([end])
    values = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, values.mean(axis=0), values.std(axis=0)


def compare_figure(
    folders: Sequence[str], env_ids: Sequence[str], algos: Sequence[str], window: int = 10, source: str = "auto"
) -> tuple[Figure, list[str]]:
    """The figure of :func:`plot_compare` and notes on what is missing from it (runs, evaluations).

    Each panel draws one kind of return for all its algorithms, named in its title, axis and legend:
    evaluation returns are never mixed with, or replaced by, training returns under an "eval" label.
    As in rl-zoo3's ``all_plots``, ``source="eval"`` skips (and names) runs without ``evaluations.npz``.

    :return: the figure and the notes
    :raises ZooError: if nothing at all can be plotted
    """
    if source not in ("auto", "eval", "train"):
        raise ZooError(f"unknown source {source!r}; choose auto, eval or train")
    notes: list[str] = []
    fig = Figure(figsize=(5.5 * len(env_ids), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(env_ids), squeeze=False)[0])
    where = ", ".join(folders)
    plotted = 0
    for ax, env_id in zip(axes, env_ids, strict=True):
        ax.set_title(env_id)
        ax.set_xlabel("env steps")
        runs = {algo: [run for folder in folders for run in run_folders(folder, algo, env_id)] for algo in algos}
        if not any(runs.values()):
            notes.append(f"{env_id}: no runs at all of {', '.join(algos)} in {where}")
            _empty_panel(ax, f"no runs of {', '.join(algos)}\nin {where}")
            continue
        evals = {run: eval_curve(run) for algo_runs in runs.values() for run in algo_runs}
        without_eval = [run for run, evaluation in evals.items() if evaluation is None]
        kind = source
        if source == "auto":
            kind = "train" if without_eval else "eval"
            if without_eval:
                notes.append(
                    f"{env_id}: {len(without_eval)} of {len(evals)} runs have no evaluations.npz (trained without "
                    f"--eval-freq): plotting training returns instead ({', '.join(without_eval)})"
                )
        elif source == "eval":
            hint = "train with --eval-freq, or use --source train"
            notes.extend(f"{run}: no evaluations.npz ({hint}); skipped" for run in without_eval)
        for algo in algos:
            if not runs[algo]:
                notes.append(f"{env_id}: no runs of {algo} in {where}")
                continue
            curves: list[Curve] = []
            for run in runs[algo]:
                evaluation = evals[run]
                if kind == "eval":
                    curve = None if evaluation is None else (evaluation[0], evaluation[1])
                else:
                    curve = training_curve(run, window)
                    if curve is None:
                        notes.append(f"{run}: no monitor file with finished episodes; skipped")
                if curve is not None and len(curve[0]) > 0:
                    curves.append(curve)
            if not curves:
                continue
            grid, mean, std = _mean_curve(curves)
            style = "-" if is_sparse_algo(algo) else "--"
            marker = "o" if len(grid) == 1 else None
            (line,) = ax.plot(
                grid, mean, style, marker=marker, label=f"{algo} ({len(curves)} run{'s' if len(curves) > 1 else ''}, {kind})"
            )
            ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            plotted += 1
        if kind == "eval":
            ax.set_title(f"{env_id}: evaluation return")
            ax.set_ylabel("evaluation return (mean over episodes)")
        else:
            ax.set_title(f"{env_id}: training return")
            ax.set_ylabel(f"training return (rolling mean, up to {window} episodes)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right")
        else:
            _empty_panel(ax, "no evaluation results (evaluations.npz)" if kind == "eval" else "no training episodes")
    if plotted == 0:
        found = any(run_folders(folder, algo, env_id) for folder in folders for algo in algos for env_id in env_ids)
        if found and source == "eval":
            raise ZooError(
                f"no evaluation results (evaluations.npz) in the runs of {', '.join(algos)} on {', '.join(env_ids)} "
                f"in {where}: train with --eval-freq, or plot training returns with --source train"
            )
        if found:
            raise ZooError(f"the runs of {', '.join(algos)} on {', '.join(env_ids)} in {where} have no returns to plot")
        raise ZooError(f"no runs of {', '.join(algos)} on {', '.join(env_ids)} in {where}")
    fig.suptitle("dense vs sparse")
    return fig, notes


def plot_compare(
    folders: Sequence[str], env_ids: Sequence[str], algos: Sequence[str], output: str, window: int = 10, source: str = "auto"
) -> str:
    """Learning curves of dense and sparse algorithms, one panel per env side by side (mean +- std over runs).

    What is missing (an env without runs, runs without evaluations) is said on stderr and in the figure.

    :param folders: rl-zoo3 log folders to search
    :param env_ids: environments, one panel each
    :param algos: algorithms to compare (e.g. ``sac sparse_sac``); sparse ones are drawn solid, dense ones dashed
    :param output: PNG file to write
    :param window: episodes in the rolling mean of training returns
    :param source: ``"eval"`` (evaluations.npz; runs without it are skipped), ``"train"`` (monitor files) or
        ``"auto"`` (per env: evaluations where every run has them, else training returns, with a note)
    :return: ``output``
    """
    fig, notes = compare_figure(folders, env_ids, algos, window, source)
    for note in notes:
        _note(note)
    _save(fig, output)
    return output


def run_main(argv: Sequence[str]) -> int:
    """``sb3-sparse plot run``."""
    parser = argparse.ArgumentParser(
        prog="sb3-sparse plot run",
        description="For one run: training and evaluation return, sparsity of each sparse module (actor and "
        "critic; sparse_dqn: q_net), the fraction of connections changed by each topology update, and each "
        "module's dormant-unit ratio, feature rank and fraction of near-zero weights, against env steps (PNG). "
        "A dense run (e.g. --algo sac) has only the return panel filled; the others say why.",
    )
    parser.add_argument("-f", "--folder", default="logs", help="rl-zoo3 log folder")
    parser.add_argument("--algo", default="sparse_sac", help="algorithm (a sparse one, for the sparsity panels)")
    parser.add_argument("--env", default="Pendulum-v1", help="environment ID")
    parser.add_argument("--exp-id", type=int, default=0, help="run number (0: latest)")
    parser.add_argument("--run-dir", default=None, help="plot this run folder instead of -f/--algo/--env/--exp-id")
    parser.add_argument("-w", "--window", type=int, default=10, help="rolling window (episodes)")
    parser.add_argument("-o", "--output", default=None, help="PNG file (default: <run folder>/sparsity.png)")
    args = parser.parse_args(argv)
    run_dir = args.run_dir or find_run(args.folder, args.algo, args.env, args.exp_id)
    output = plot_run(run_dir, args.output or os.path.join(run_dir, "sparsity.png"), args.window)
    print(f"Saved {output}")
    return 0


def compare_main(argv: Sequence[str]) -> int:
    """``sb3-sparse plot compare``."""
    parser = argparse.ArgumentParser(
        prog="sb3-sparse plot compare",
        description="Dense vs sparse learning curves, one panel per env side by side, mean +- std over the runs "
        "of each algorithm (PNG). Sparse algorithms are drawn solid, dense ones dashed. Missing runs or "
        "evaluation results are reported, never filled in silently.",
    )
    parser.add_argument("-f", "--folders", nargs="+", default=["logs"], help="rl-zoo3 log folders")
    parser.add_argument("--env", nargs="+", required=True, help="environment IDs (one panel each)")
    parser.add_argument("--algos", nargs="+", default=["sac", "sparse_sac"], help="algorithms to compare")
    parser.add_argument(
        "--source",
        choices=["auto", "eval", "train"],
        default="auto",
        help="eval: evaluation returns (evaluations.npz, written with --eval-freq; runs without it are skipped); "
        "train: training episodes (monitor files); auto (default): per env, eval when every run has it, else train",
    )
    parser.add_argument("-w", "--window", type=int, default=10, help="rolling window (episodes) for training returns")
    parser.add_argument("-o", "--output", default="dense_vs_sparse.png", help="PNG file")
    args = parser.parse_args(argv)
    print(f"Saved {plot_compare(args.folders, args.env, args.algos, args.output, args.window, args.source)}")
    return 0


@contextlib.contextmanager
def saving_figures(path: str | None) -> Iterator[None]:
    """While active, ``plt.show()`` saves every open figure to ``path`` (``name_1.png``, ... when several).

    rl-zoo3's plot scripts only show their figures; this makes them usable without a display.

    :param path: PNG file, or ``None`` to leave ``plt.show`` alone
    """
    if path is None:
        yield
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    original = plt.show
    saved: list[str] = []

    def show(*args: Any, **kwargs: Any) -> None:
        numbers = plt.get_fignums()
        root, ext = os.path.splitext(path)
        for index, number in enumerate(numbers):
            target = path if len(numbers) == 1 else f"{root}_{index + 1}{ext or '.png'}"
            plt.figure(number).savefig(target, dpi=110)
            saved.append(target)
        plt.close("all")

    plt.show = show  # type: ignore[assignment]
    try:
        yield
    finally:
        plt.show = original  # type: ignore[assignment]
        for target in saved:
            print(f"Saved {target}")
