"""The ``sb3-sparse`` command: rl-zoo3's train / enjoy / record-video / plots and Optuna tuning for sparse agents,
and the multi-agent learners' train / enjoy / tune.

Each single-agent command registers the sparse algorithms (``sparse_sac``, ``sparse_td3``, ``sparse_tqc``,
``sparse_crossq``, ``sparse_dqn``: :data:`sb3_sparse.registry.ALGORITHMS`) into rl-zoo3 and hands over
to rl-zoo3's own entry point with the same flags, so ``--algo sac`` / ``td3`` / ``dqn`` keep working
through the same command. ``train``, ``enjoy`` and ``tune`` with a multi-agent learner (``--algo qmix`` / ``vdn``:
:data:`sb3_sparse.registry.MULTI_AGENT_ALGORITHMS`) run :mod:`sb3_sparse.zoo.marl`, as ``sb3-sparse marl <verb>``
does. ``agents`` lists the trained agents shipped with the package and ``enjoy --pretrained`` (``record-video
--pretrained``) runs one (:mod:`sb3_sparse.zoo.agents`). Mistakes (an unknown command, algorithm or env id, a bad
flag, hyperparameter file or value) end with one ``sb3-sparse <command>: error: ...`` line and exit status 2, before
anything is written (set ``SB3_SPARSE_TRACEBACK=1`` to see the traceback); ``SB3_SPARSE_TRACEBACK=0`` also turns any
other exception into one ``error: <type>: <message>`` line and exit status 1.
"""

import argparse
import contextlib
import importlib
import os
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from sb3_sparse.core.names import check_choice, did_you_mean
from sb3_sparse.core.regimes import REGIMES
from sb3_sparse.registry import ALGORITHMS, MULTI_AGENT_ALGORITHMS
from sb3_sparse.zoo import CommandParser, ZooError, algorithm_class, check_display, read_entries, register

TRACEBACK_VARIABLE = "SB3_SPARSE_TRACEBACK"

USAGE = """usage: sb3-sparse [--version] <command> [options]

commands (with rl-zoo3's flags):
  train          train an agent from a hyperparameter file       (rl_zoo3.train)
  tune           Optuna search: train with --optimize-hyperparameters; writes best_<env>.yml
  enjoy          run a trained agent                              (rl_zoo3.enjoy); with --pretrained, a shipped one
  record-video   record a video of a trained agent                (rl_zoo3.record_video); --pretrained too
  agents         list the trained sparse agents shipped with the package (run one: enjoy --pretrained)
  plot           figures: run | compare (ours), train | all | from-file (rl-zoo3's)
  best           export the best trial of a study as a hyperparameter-file entry:
                 {best_usage}
  marl           multi-agent learners: marl train | enjoy | tune ('sb3-sparse marl -h'); 'sb3-sparse train
                 --algo qmix' (and enjoy, tune) is the same as 'sb3-sparse marl train --algo qmix'
  calibrate      measure where sparse products pay off on this machine, for backend 'auto' (--show, --reset)

algorithms (--algo): rl-zoo3's (sac, td3, dqn, ...) and the sparse ones:
  {algorithms}
multi-agent algorithms (--algo): {multi_agent}
DST regimes (regime: in a hyperparameter file or -params, registered ones included):
  {regimes}

'sb3-sparse <command> -h' lists a command's options; 'sb3-sparse --version' prints the version.

environment:
  SB3_SPARSE_TRACEBACK   unset: mistakes (bad hyperparameter file, missing run, ...) end in one line and exit
                         status 2, other errors show a traceback; 1: tracebacks for everything;
                         0: no tracebacks at all, any other error ends in one line
                         'error: <type>: <message>' and exit status 1"""


def usage() -> str:
    """The top-level help, naming the algorithms of :mod:`sb3_sparse.registry` and the regimes of
    :data:`sb3_sparse.core.regimes.REGIMES` (registered ones included)."""
    return USAGE.format(
        algorithms=", ".join(ALGORITHMS),
        multi_agent=", ".join(MULTI_AGENT_ALGORITHMS),
        regimes=", ".join(REGIMES),
        best_usage=" ".join(best_parser().format_usage().removeprefix("usage: ").replace("[-h] ", "").split()),
    )


def _install_experiment_manager() -> None:
    """Make rl-zoo3's ``train()`` build our :class:`SparseExperimentManager` (a subclass; dense algos unchanged)."""
    import rl_zoo3.train

    from sb3_sparse.zoo.exp_manager import SparseExperimentManager

    rl_zoo3.train.ExperimentManager = SparseExperimentManager  # type: ignore[misc]


@contextlib.contextmanager
def one_line_parse_errors() -> Iterator[None]:
    """While active, every argument parser's mistake is a :class:`ZooError` (rl-zoo3's parsers print a usage block)."""
    original = argparse.ArgumentParser.error

    def error(self: argparse.ArgumentParser, message: str) -> NoReturn:
        CommandParser.error(self, message)  # type: ignore[arg-type]

    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


def _run_zoo(prog: str, argv: Sequence[str], entry: Callable[[], Any]) -> int:
    """Call an rl-zoo3 entry point that reads ``sys.argv``, as ``prog`` (its argument mistakes in one line)."""
    saved = sys.argv
    sys.argv = [prog, *argv]
    try:
        with one_line_parse_errors():
            entry()
    finally:
        sys.argv = saved
    return 0


def zoo_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The ``--algo``, ``--env`` and ``--gym-packages`` of an rl-zoo3 command line (``None`` / ``[]`` when absent)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--algo")
    parser.add_argument("--env")
    parser.add_argument("--gym-packages", nargs="+", default=[])
    return parser.parse_known_args(argv)[0]


def check_zoo_arguments(args: argparse.Namespace) -> None:
    """Check ``--algo`` and ``--env`` before rl-zoo3 runs: a did-you-mean :class:`ZooError` instead of its traceback.

    The ``--gym-packages`` are imported first (as rl-zoo3 does), so the envs and regimes they register count, and
    so are the envs rl-zoo3 registers itself (``PendulumNoVel-v1``, ...).
    """
    import rl_zoo3.import_envs  # noqa: F401
    from rl_zoo3.utils import ALGOS

    if args.algo in MULTI_AGENT_ALGORITHMS:
        raise ZooError(f"--algo {args.algo!r} is a multi-agent learner: it has the verbs 'sb3-sparse marl train|enjoy|tune'")
    if args.algo is not None and args.algo not in ALGOS:
        names = [*ALGOS, *MULTI_AGENT_ALGORITHMS]
        raise ZooError(f"unknown algorithm --algo {args.algo!r}{did_you_mean(args.algo, names)} (see 'sb3-sparse -h')")
    for package in args.gym_packages:
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise ZooError(f"--gym-packages {package!r} cannot be imported: {error}") from None
    if args.env is not None:
        import gymnasium as gym

        if args.env not in gym.envs.registry:
            hint = did_you_mean(args.env, gym.envs.registry)
            raise ZooError(f"unknown env id --env {args.env!r}{hint} (gymnasium's registry; --gym-packages adds to it)")


def multi_agent(argv: Sequence[str]) -> bool:
    """Whether the command line's ``--algo`` is a multi-agent learner (then :mod:`sb3_sparse.zoo.marl` runs it)."""
    return zoo_arguments(argv).algo in MULTI_AGENT_ALGORITHMS


def train(argv: Sequence[str]) -> int:
    """``sb3-sparse train``: rl-zoo3's train, with our algorithms and experiment manager."""
    if multi_agent(argv):
        return marl(["train", *argv])
    return _train("sb3-sparse train", argv)


def _train(prog: str, argv: Sequence[str]) -> int:
    """rl-zoo3's train, with a progress line per finished trial when it tunes (``--optimize-hyperparameters``)."""
    register()
    check_zoo_arguments(zoo_arguments(argv))
    _install_experiment_manager()
    import rl_zoo3.train

    from sb3_sparse.zoo.study import reporting_trials

    with reporting_trials():
        return _run_zoo(prog, argv, rl_zoo3.train.train)


def tune(argv: Sequence[str]) -> int:
    """``sb3-sparse tune``: ``train --optimize-hyperparameters`` (all of rl-zoo3's Optuna flags apply)."""
    if multi_agent(argv):
        return marl(["tune", *argv])
    argv = list(argv)
    if not {"-optimize", "--optimize-hyperparameters"} & set(argv):
        argv.append("--optimize-hyperparameters")
    return _train("sb3-sparse tune", argv)


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


def _register_for_inference(argv: Sequence[str]) -> None:
    register()
    check_zoo_arguments(zoo_arguments(argv))
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
    if "--pretrained" in argv:
        from sb3_sparse.zoo.agents import enjoy_pretrained

        return enjoy_pretrained(argv)
    if multi_agent(argv):
        return marl(["enjoy", *argv])
    _register_for_inference(argv)
    if "--no-render" not in argv and not {"-h", "--help"} & set(argv):
        check_display()
    import rl_zoo3.enjoy

    return _run_zoo("sb3-sparse enjoy", argv, rl_zoo3.enjoy.enjoy)


def record_video(argv: Sequence[str]) -> int:
    """``sb3-sparse record-video``: rl-zoo3's record_video script (it only runs as ``__main__``)."""
    if "--pretrained" in argv:
        from sb3_sparse.zoo.agents import enjoy_pretrained

        return enjoy_pretrained(argv, "sb3-sparse record-video", record="videos")
    _register_for_inference(argv)
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


def best_parser() -> argparse.ArgumentParser:
    """The arguments of ``sb3-sparse best`` (its usage line is also in the top-level help)."""
    parser = CommandParser(
        prog="sb3-sparse best",
        description="Export the best trial of an Optuna study (e.g. one shared by several 'sb3-sparse tune' workers) "
        "as a hyperparameter-file entry: the file's entry for the env, updated with the tuned values.",
    )
    parser.add_argument("--algo", required=True, help="rl-zoo3 algorithm name, e.g. sparse_sac")
    parser.add_argument("--env", required=True, help="environment ID (the entry's key)")
    parser.add_argument("--storage", required=True, metavar="FILE_OR_URL", help="existing journal file (.log) or database URL")
    parser.add_argument("--study-name", required=True, metavar="NAME", help="the study's name")
    parser.add_argument(
        "-conf", "--conf-file", default=None, metavar="FILE", help="hyperparameter file the study started from"
    )
    parser.add_argument("-o", "--output", default=None, metavar="FILE", help="YAML file to write (default: print only)")
    return parser


def best(argv: Sequence[str]) -> int:
    """``sb3-sparse best``: the best trial of a (shared) study as a hyperparameter-file entry."""
    args = best_parser().parse_args(argv)
    register()
    check_zoo_arguments(argparse.Namespace(algo=args.algo, env=None, gym_packages=[]))
    from sb3_sparse.zoo.study import export_best, load_study

    base = _yaml_entry(args.conf_file, args.algo, args.env)
    text = export_best(load_study(args.storage, args.study_name), args.algo, args.env, base, args.output)
    print(text, end="")
    return 0


def _yaml_entry(conf_file: str | None, algo: str, env_id: str) -> dict[str, Any]:
    """The entry for ``env_id`` (or ``default``) of a YAML hyperparameter file; ``{}`` when there is none."""
    from sb3_sparse.zoo import hyperparams_path, is_sparse_algo

    path = conf_file or (str(hyperparams_path(algo)) if is_sparse_algo(algo) else None)
    if path is None or not path.endswith((".yml", ".yaml")):
        return {}
    entries = read_entries(path)
    return dict(entries.get(env_id, entries.get("default")) or {})


def agents(argv: Sequence[str]) -> int:
    """``sb3-sparse agents``: the trained sparse agents shipped with the package (:mod:`sb3_sparse.zoo.agents`)."""
    from sb3_sparse.zoo.agents import agents_command

    return agents_command(argv)


def calibrate(argv: Sequence[str]) -> int:
    """``sb3-sparse calibrate``: where ``backend="auto"`` uses CSR on this machine (:mod:`sb3_sparse.core.calibration`)."""
    from sb3_sparse.core.calibration import main as calibration_main

    return calibration_main(argv)


def marl(argv: Sequence[str]) -> int:
    """``sb3-sparse marl``: train, enjoy and tune QMIX / VDN (:mod:`sb3_sparse.zoo.marl`, imported when used)."""
    from sb3_sparse.zoo.marl import main as marl_main

    return marl_main(argv)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": train,
    "tune": tune,
    "enjoy": enjoy,
    "record-video": record_video,
    "record_video": record_video,
    "plot": plot,
    "best": best,
    "marl": marl,
    "calibrate": calibrate,
    "agents": agents,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sb3-sparse`` and ``python -m sb3_sparse``.

    :param argv: ``[command, *options]`` (default: ``sys.argv[1:]``)
    :return: the exit status
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from sb3_sparse import __version__

        print(f"sb3-sparse {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    tracebacks = traceback_setting()
    try:
        if command not in COMMANDS:
            check_command(command)
        return COMMANDS[command](rest)
    except ZooError as error:
        if tracebacks == "all":
            raise
        print(f"{prog(command, rest)}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if tracebacks != "none":
            raise
        message = one_line(error)
        print(f"error: {type(error).__name__}{': ' + message if message else ''}", file=sys.stderr)
        return 1


def check_command(command: str) -> None:
    """Raise a :class:`ZooError` with a did-you-mean unless ``command`` is one of :data:`COMMANDS`."""
    try:
        check_choice("command", command, tuple(COMMANDS))
    except ValueError as error:
        raise ZooError(f"{error} (see 'sb3-sparse -h')") from None


def prog(command: str, argv: Sequence[str]) -> str:
    """The command's name in messages: ``sb3-sparse train``, ``sb3-sparse marl tune``, or ``sb3-sparse`` if unknown."""
    if command not in COMMANDS:
        return "sb3-sparse"
    if command == "marl" and argv:
        from sb3_sparse.zoo.marl import COMMANDS as MARL_COMMANDS

        if argv[0] in MARL_COMMANDS:
            return f"sb3-sparse marl {argv[0]}"
    return f"sb3-sparse {command}"


def traceback_setting() -> str:
    """``SB3_SPARSE_TRACEBACK``: ``"none"`` (``0``), ``"all"`` (any other value) or ``"default"`` (unset or empty).

    By default user mistakes (:class:`ZooError`) end in one line and anything else shows its traceback,
    which is what a bug report needs; ``0`` is for scripts and logs that want one line whatever happens.
    """
    value = os.environ.get(TRACEBACK_VARIABLE, "").strip().lower()
    if not value:
        return "default"
    return "none" if value in ("0", "false", "no", "off") else "all"


def one_line(error: BaseException) -> str:
    """The exception's message on one line (rl-zoo3 and SB3 messages sometimes span several)."""
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
