"""The ``sb3-sparse`` command: rl-zoo3's train / enjoy / record-video / plots and Optuna tuning for sparse agents.

Each command registers the sparse algorithms into rl-zoo3 and hands over to rl-zoo3's own entry point
with the same flags, so ``--algo sac`` / ``td3`` keep working through the same command. Mistakes in a
hyperparameter file end with one ``sb3-sparse <command>: error: ...`` line and exit status 2 (set
``SB3_SPARSE_TRACEBACK=1`` to see the traceback).
"""

import argparse
import os
import runpy
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sb3_sparse.zoo import ALGORITHMS, ZooError, algorithm_class, register

USAGE = """usage: sb3-sparse <command> [options]

commands (rl-zoo3's flags, plus our algorithms sparse_sac and sparse_td3):
  train          train an agent from a hyperparameter file       (rl_zoo3.train)
  tune           Optuna search: train with --optimize-hyperparameters; writes best_<env>.yml
  enjoy          run a trained agent                              (rl_zoo3.enjoy)
  record-video   record a video of a trained agent                (rl_zoo3.record_video)
  plot           figures: run | compare (ours), train | all | from-file (rl-zoo3's)
  best           export the best trial of a study as a hyperparameter-file entry

'sb3-sparse <command> -h' lists a command's options."""


def _install_experiment_manager() -> None:
    """Make rl-zoo3's ``train()`` build our :class:`SparseExperimentManager` (a subclass; dense algos unchanged)."""
    import rl_zoo3.train

    from sb3_sparse.zoo.exp_manager import SparseExperimentManager

    rl_zoo3.train.ExperimentManager = SparseExperimentManager  # type: ignore[misc]


def _run_zoo(prog: str, argv: Sequence[str], entry: Callable[[], Any]) -> int:
    """Call an rl-zoo3 entry point that reads ``sys.argv``, as ``prog``."""
    saved = sys.argv
    sys.argv = [prog, *argv]
    try:
        entry()
    finally:
        sys.argv = saved
    return 0


def train(argv: Sequence[str]) -> int:
    """``sb3-sparse train``: rl-zoo3's train, with our algorithms and experiment manager."""
    register()
    _install_experiment_manager()
    import rl_zoo3.train

    return _run_zoo("sb3-sparse train", argv, rl_zoo3.train.train)


def tune(argv: Sequence[str]) -> int:
    """``sb3-sparse tune``: ``train --optimize-hyperparameters`` (all of rl-zoo3's Optuna flags apply)."""
    argv = list(argv)
    if not {"-optimize", "--optimize-hyperparameters"} & set(argv):
        argv.append("--optimize-hyperparameters")
    register()
    _install_experiment_manager()
    import rl_zoo3.train

    return _run_zoo("sb3-sparse tune", argv, rl_zoo3.train.train)


class InferenceLoader:
    """Stands in for a sparse algorithm in ``rl_zoo3.utils.ALGOS`` while enjoying / recording.

    rl-zoo3 passes ``buffer_size=1`` only to the off-policy algorithms it knows by name, so a new one
    would allocate its full replay buffer (1M transitions: gigabytes for Humanoid) just to act.

    :param algo_class: the sparse algorithm class
    """

    def __init__(self, algo_class: type[Any]):
        self.algo_class = algo_class
        self.__name__ = algo_class.__name__

    def load(self, path: str, **kwargs: Any) -> Any:
        """``algo_class.load`` with a one-transition replay buffer (what rl-zoo3 does for SAC / TD3)."""
        kwargs.setdefault("buffer_size", 1)
        kwargs.setdefault("optimize_memory_usage", False)
        return self.algo_class.load(path, **kwargs)


def _checked_model_path(get_model_path: Callable[..., Any]) -> Callable[..., Any]:
    """rl-zoo3's ``get_model_path``, raising a one-line :class:`ZooError` when the run or model is missing."""

    def wrapper(exp_id: int, folder: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return get_model_path(exp_id, folder, *args, **kwargs)
        except (AssertionError, ValueError) as error:
            if "rl-trained-agents" in folder:  # rl-zoo3's enjoy then tries the Hugging Face hub
                raise
            raise ZooError(f"{error} (train one first, or pass -f / --exp-id)") from error

    return wrapper


def _register_for_inference() -> None:
    register()
    import rl_zoo3.enjoy
    from rl_zoo3 import utils

    for algo in ALGORITHMS:
        utils.ALGOS[algo] = InferenceLoader(algorithm_class(algo))  # type: ignore[assignment]
    if not hasattr(utils.get_model_path, "__wrapped__"):
        checked = _checked_model_path(utils.get_model_path)
        checked.__wrapped__ = utils.get_model_path  # type: ignore[attr-defined]
        utils.get_model_path = checked
        rl_zoo3.enjoy.get_model_path = checked


def enjoy(argv: Sequence[str]) -> int:
    """``sb3-sparse enjoy``: rl-zoo3's enjoy, loading sparse agents without a full replay buffer."""
    _register_for_inference()
    import rl_zoo3.enjoy

    return _run_zoo("sb3-sparse enjoy", argv, rl_zoo3.enjoy.enjoy)


def record_video(argv: Sequence[str]) -> int:
    """``sb3-sparse record-video``: rl-zoo3's record_video script (it only runs as ``__main__``)."""
    _register_for_inference()
    return _run_zoo("sb3-sparse record-video", argv, lambda: runpy.run_module("rl_zoo3.record_video", run_name="__main__"))


def _zoo_plot(name: str) -> Callable[[], Any]:
    def run() -> Any:
        from rl_zoo3 import plots

        return getattr(plots, name)()

    return run


def plot(argv: Sequence[str]) -> int:
    """``sb3-sparse plot``: our figures (``run``, ``compare``) or rl-zoo3's (``train``, ``all``, ``from-file``).

    rl-zoo3's plot scripts only ``plt.show()``; ``--save-fig FILE.png`` saves their figures instead.
    """
    from sb3_sparse.zoo import plots

    zoo_plots = {"train": "plot_train", "all": "all_plots", "from-file": "plot_from_file"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in {"run", "compare", *zoo_plots}:
        print(
            "usage: sb3-sparse plot {run,compare,train,all,from-file} ...\n\n"
            "  run        return, sparsity and fraction of connections changed over training, for one run\n"
            "  compare    dense vs sparse learning curves side by side (one panel per env)\n"
            "  train      rl-zoo3's plot_train   (add --save-fig FILE.png to save instead of show)\n"
            "  all        rl-zoo3's all_plots    (add --save-fig FILE.png)\n"
            "  from-file  rl-zoo3's plot_from_file (add --save-fig FILE.png)"
        )
        if argv and argv[0] not in ("-h", "--help"):
            raise ZooError(f"unknown plot {argv[0]!r}; choose run, compare, train, all or from-file")
        return 0
    name, rest = argv[0], list(argv[1:])
    if name == "run":
        return plots.run_main(rest)
    if name == "compare":
        return plots.compare_main(rest)
    register()
    save_parser = argparse.ArgumentParser(add_help=False)
    save_parser.add_argument("--save-fig", default=None)
    known, rest = save_parser.parse_known_args(rest)
    with plots.saving_figures(known.save_fig):
        return _run_zoo(f"sb3-sparse plot {name}", rest, _zoo_plot(zoo_plots[name]))


def best(argv: Sequence[str]) -> int:
    """``sb3-sparse best``: the best trial of a (shared) study as a hyperparameter-file entry."""
    parser = argparse.ArgumentParser(prog="sb3-sparse best", description=best.__doc__)
    parser.add_argument("--algo", required=True, help="rl-zoo3 algorithm name, e.g. sparse_sac")
    parser.add_argument("--env", required=True, help="environment ID (the entry's key)")
    parser.add_argument("--storage", required=True, help="journal file (.log) or database URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("-conf", "--conf-file", default=None, help="hyperparameter file the study started from")
    parser.add_argument("-o", "--output", default=None, help="YAML file to write (default: print only)")
    args = parser.parse_args(argv)
    register()
    from sb3_sparse.zoo.study import export_best, load_study

    base = _yaml_entry(args.conf_file, args.algo, args.env)
    text = export_best(load_study(args.storage, args.study_name), args.algo, args.env, base, args.output)
    print(text, end="")
    return 0


def _yaml_entry(conf_file: str | None, algo: str, env_id: str) -> dict[str, Any]:
    """The entry for ``env_id`` (or ``default``) of a YAML hyperparameter file; ``{}`` when there is none."""
    import yaml

    from sb3_sparse.zoo import hyperparams_path, is_sparse_algo

    path = conf_file or (str(hyperparams_path(algo)) if is_sparse_algo(algo) else None)
    if path is None or not path.endswith((".yml", ".yaml")):
        return {}
    if not os.path.isfile(path):
        raise ZooError(f"hyperparameter file {path!r} not found")
    with open(path) as file:
        entries = yaml.safe_load(file) or {}
    return dict(entries.get(env_id, entries.get("default", {})))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": train,
    "tune": tune,
    "enjoy": enjoy,
    "record-video": record_video,
    "record_video": record_video,
    "plot": plot,
    "best": best,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sb3-sparse`` and ``python -m sb3_sparse``.

    :param argv: ``[command, *options]`` (default: ``sys.argv[1:]``)
    :return: the exit status
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(USAGE, file=sys.stderr)
        print(f"sb3-sparse: error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](rest)
    except ZooError as error:
        if os.environ.get("SB3_SPARSE_TRACEBACK"):
            raise
        print(f"sb3-sparse {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
