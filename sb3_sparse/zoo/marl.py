"""The multi-agent verbs of ``sb3-sparse``: train, enjoy and tune QMIX / VDN from hyperparameter files.

rl-zoo3 cannot run them (every step moves several agents), so these verbs do what rl-zoo3's train / enjoy and
Optuna search do, with the same flags, file format and run layout, on the helpers the single-agent verbs use
(:mod:`sb3_sparse.zoo`, :mod:`sb3_sparse.zoo.samplers`, :mod:`sb3_sparse.zoo.study`). ``sb3-sparse train --algo
qmix`` is the same as ``sb3-sparse marl train --algo qmix`` (and so for ``enjoy`` and ``tune``)::

    sb3-sparse marl train --algo qmix --env Foraging-8x8-2p-2f-coop-v3 [--recipe mast] [-params key:value ...]
    sb3-sparse marl enjoy --algo qmix --env Foraging-8x8-2p-2f-coop-v3 [--exp-id N] [--load-best]
    sb3-sparse marl tune --algo qmix --env simple_spread_v3 --storage logs/study.log --study-name qmix-mpe

Hyperparameters, from the lowest priority to the highest: the learner's defaults (EPyMARL's), ``--recipe NAME``
(:func:`sb3_sparse.sparse_recipe` ``(NAME, algorithm=algo)``), the hyperparameter file's entry for the env
(``-conf``, default ``sb3_sparse/hyperparams/<algo>.yml``; its ``default`` entry for other ids), then ``-params``.
A key that both the recipe and the file's entry set must have the same value in both: the command stops otherwise,
since a file that silently undid part of a recipe would train something else than its name says. ``-params``
overrides anything (a whole value: ``-params policy_kwargs:...`` replaces the entry's ``policy_kwargs``).

Every mistake (unknown algorithm, env, recipe or hyperparameter, a bad value) is found before anything is written:
the model is built first and the run folder created only then. The command ends with one line
``sb3-sparse marl <sub-command>: error: ...`` and exit status 2 (``SB3_SPARSE_TRACEBACK=1`` shows the traceback).
"""

import argparse
import ast
import importlib.util
import inspect
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from pprint import pformat
from typing import Any

import numpy as np
import yaml

from sb3_sparse import registry
from sb3_sparse.core.config import MODULE_SETTINGS
from sb3_sparse.core.names import check_choice, did_you_mean
from sb3_sparse.core.regimes import Dense, get_regime
from sb3_sparse.zoo import CommandParser, ZooError, read_entry, run_ids
from sb3_sparse.zoo.validation import coerce_steps

USAGE = """usage: sb3-sparse marl {{train,enjoy,tune}} [options]

sub-commands:
  train   train a multi-agent learner from a hyperparameter file (--recipe for a sparse one); writes
          <folder>/<algo>/<env>_<N>/: config.yml, args.yml, progress.csv, <env>.zip, best_model.zip, evaluations.npz
  enjoy   evaluate a trained run: mean and std of the team return and of the episode length
  tune    Optuna search over the learner's knobs (and the DST knobs of a sparse configuration), on a storage that
          several workers can share; writes <folder>/<algo>/best_<env>.yml

algorithms (--algo): {algorithms}
recipes (--recipe): {recipes}
envs (--env): any id of sb3_sparse.marl.envs.make_marl_env, e.g. Foraging-8x8-2p-2f-coop-v3, rware-tiny-2ag-v2,
  simple_spread_v3

'sb3-sparse marl <sub-command> -h' lists its options."""

#: Keys of an entry that are not constructor arguments.
ENTRY_KEYS = ("n_timesteps", "env_kwargs")
#: Constructor arguments that come from the command line, and the flag that sets them.
COMMAND_LINE = {"env": "--env", "seed": "--seed", "verbose": "--verbose", "device": "--device", "tensorboard_log": "-tb"}
#: Entry values that may be Python source (``"dict(hidden_dim=64)"``), evaluated as rl-zoo3 does for its files.
PYTHON_KEYS = ("policy_kwargs", "replay_buffer_kwargs", "env_kwargs", "modules")
#: Arguments counted in env steps, episodes or samples: YAML floats such as ``!!float 2e6`` become integers.
INTEGER_KEYS = (
    "n_timesteps",
    "buffer_size",
    "batch_size",
    "learning_starts",
    "target_update_interval",
    "exploration_steps",
    "n_steps",
    "stats_window_size",
    "topology_update_interval",
)
#: Arguments that are an env step (integer) or a fraction of the run (float in [0, 1]).
WINDOW_KEYS = ("td_lambda_end", "topology_update_start", "topology_update_end")
#: Policy constructor parameters that the learner fills in itself.
POLICY_SET = frozenset({"self", "observation_space", "action_space", "lr_schedule", "n_agents", "state_dim", "dst_config"})
#: EPyMARL logs every 2000 env steps (``log_interval``); the learners count their log interval in episodes.
LOG_EVERY_STEPS = 2000


def _python_namespace() -> dict[str, Any]:
    """What Python values in files and ``-params`` may use: ``dict(...)``, ``nn.ReLU``, ``th.optim.Adam``."""
    import torch as th

    builtins = {"dict": dict, "list": list, "tuple": tuple, "float": float, "int": int}
    return {"__builtins__": {}, **builtins, "nn": th.nn, "th": th, "torch": th}


def parse_value(text: str) -> Any:
    """A ``-params`` value: a Python literal, else Python source (``dict(hidden_dim=32)``, ``nn.ReLU``), else the string.

    rl-zoo3 evaluates every value; a bare word such as ``soft_mellowmax`` is kept as a string here, so it needs no
    quotes on the command line.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return eval(text, _python_namespace())  # the user's own command line, as rl-zoo3 does
    except Exception:
        return text


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["key:value", ...]`` -> ``{key: value}`` (values as :func:`parse_value` reads them)."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition(":")
        if not sep or not key.strip():
            raise ZooError(f"-params expects key:value pairs, got {item!r}")
        params[key.strip()] = parse_value(text)
    return params


def _evaluate_python_keys(values: dict[str, Any], where: str) -> None:
    """Evaluate the :data:`PYTHON_KEYS` given as Python source, in place; each must give a dict (or ``None``)."""
    for key in PYTHON_KEYS:
        value = values.get(key)
        if isinstance(value, str):
            try:
                value = eval(value, _python_namespace())  # the user's own file, as rl-zoo3 does
            except Exception as error:
                raise ZooError(
                    f"{where}: {key} {values[key]!r} is not valid Python ({type(error).__name__}: {error})"
                ) from None
            values[key] = value
        if value is not None and not isinstance(value, dict):
            raise ZooError(f"{where}: {key} must be a mapping (e.g. dict(...)), got {value!r}")


def env_name(env_id: str) -> str:
    """``env_id`` as a file or folder name (``family:id`` and namespaced ids hold ``:`` or ``/``)."""
    return env_id.replace(":", "-").replace("/", "-")


def _algorithm(algo: str) -> registry.AlgorithmEntry:
    try:
        return registry.get_multi_agent_algorithm(algo)
    except ValueError as error:
        raise ZooError(f"--algo: {error}") from None


# --------------------------------------------------------------------------------------------------------------------
# Hyperparameters


@dataclass
class RunConfig:
    """The hyperparameters of one run, merged from recipe, file and ``-params``, and where each came from.

    :param algo: the learner's name (``"qmix"``)
    :param algo_class: its class
    :param env_id: the env id
    :param conf_file: the hyperparameter file read
    :param entry_key: the file's entry used (the env id or ``"default"``)
    :param recipe: the ``--recipe`` name
    :param hyperparams: constructor arguments (``policy`` included)
    :param n_timesteps: the entry's budget (``None`` when it has none)
    :param env_kwargs: keyword arguments of :func:`~sb3_sparse.marl.envs.make_marl_env`
    :param sources: key -> what set it (``"-params"``, ``"--recipe mast"``, the file's entry)
    """

    algo: str
    algo_class: type[Any]
    env_id: str
    conf_file: str
    entry_key: str
    recipe: str | None
    hyperparams: dict[str, Any]
    n_timesteps: int | None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def policy_class(self) -> type[Any]:
        return self.algo_class.policy_aliases[self.hyperparams["policy"]]

    def entry(self, n_timesteps: int | None = None, hyperparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """A hyperparameter-file entry (YAML-safe) that trains this configuration again with ``-conf``."""
        values = dict(self.hyperparams if hyperparams is None else hyperparams)
        head: dict[str, Any] = {"n_timesteps": n_timesteps if n_timesteps is not None else self.n_timesteps}
        head["policy"] = values.pop("policy")
        if self.env_kwargs:
            head["env_kwargs"] = self.env_kwargs
        entry = {**head, **{key: values[key] for key in sorted(values)}}
        return {key: _yaml_value(key, value) for key, value in entry.items() if value is not None}

    def source(self, key: str) -> str:
        return self.sources.get(key, "the defaults")


def _yaml_value(key: str, value: Any) -> Any:
    """``value`` as YAML can hold it: tuples as lists, NumPy scalars as Python ones; Python source for classes."""
    if key in PYTHON_KEYS and _holds_class(value):
        from sb3_sparse.zoo.study import python_literal

        return python_literal(value)
    if isinstance(value, dict):
        return {str(name): _yaml_value("", item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_value("", item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _holds_class(value: Any) -> bool:
    if isinstance(value, type):
        return True
    if isinstance(value, dict):
        return any(_holds_class(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_class(item) for item in value)
    return False


def load_config(algo: str, env_id: str, conf_file: str | None, recipe: str | None, params: dict[str, Any] | None) -> RunConfig:
    """Merge recipe, file entry and ``-params`` (in that order) and check every key against the learner.

    :param algo: ``"qmix"`` or ``"vdn"``
    :param env_id: the env id (selects the file's entry)
    :param conf_file: the hyperparameter file (``None``: the shipped one)
    :param recipe: a recipe name of :func:`sb3_sparse.sparse_recipe` (``None``: none)
    :param params: ``-params`` values
    :raises ZooError: on an unknown name or a clash between the recipe and the entry
    """
    entry_point = _algorithm(algo)
    algo_class = entry_point.sparse_class
    path = conf_file or str(entry_point.hyperparams)
    key, entry = read_entry(path, env_id)
    where = f"entry {key!r} of {path}"
    _evaluate_python_keys(entry, where)
    coerce_steps(entry, INTEGER_KEYS, WINDOW_KEYS)
    params = dict(params or {})
    _evaluate_python_keys(params, "-params")
    coerce_steps(params, INTEGER_KEYS, WINDOW_KEYS)
    recipe_kwargs: dict[str, Any] = {}
    if recipe is not None:
        from sb3_sparse.common.recipes import sparse_recipe

        try:
            recipe_kwargs = sparse_recipe(recipe, algorithm=algo)
        except ValueError as error:
            raise ZooError(f"--recipe: {error}") from None
        clashes = sorted(name for name in set(recipe_kwargs) & set(entry) - set(params) if recipe_kwargs[name] != entry[name])
        if clashes:
            details = ", ".join(f"{name}: {entry[name]!r} (recipe: {recipe_kwargs[name]!r})" for name in clashes)
            raise ZooError(
                f"--recipe {recipe} sets {clashes}, which {where} sets otherwise: {details}; remove them from the file, "
                "or override them with -params"
            )
    merged = {**recipe_kwargs, **entry, **params}
    sources = {
        **dict.fromkeys(recipe_kwargs, f"--recipe {recipe}"),
        **dict.fromkeys(entry, where),
        **dict.fromkeys(params, "-params"),
    }
    merged.setdefault("policy", "RnnPolicy")
    _check_keys(algo_class, merged, sources)
    n_timesteps = merged.pop("n_timesteps", None)
    env_kwargs = merged.pop("env_kwargs", None) or {}
    if n_timesteps is not None:
        n_timesteps = _check_timesteps(n_timesteps, sources["n_timesteps"])
    return RunConfig(algo, algo_class, env_id, path, key, recipe, merged, n_timesteps, env_kwargs, sources)


def _check_timesteps(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ZooError(f"n_timesteps={value!r} is not valid ({source}); it must be a positive integer")
    return int(value)


def _check_keys(algo_class: type[Any], values: dict[str, Any], sources: dict[str, str]) -> None:
    """Every key an argument of ``algo_class`` (or an entry key), every ``policy_kwargs`` key one of its policy."""
    parameters = set(inspect.signature(algo_class).parameters) - {"self", "_init_setup_model"}
    allowed = sorted((parameters - set(COMMAND_LINE)) | set(ENTRY_KEYS))
    for key in values:
        if key in COMMAND_LINE:
            raise ZooError(f"{sources.get(key, '-params')}: {key!r} is set on the command line ({COMMAND_LINE[key]})")
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            raise ZooError(f"{sources.get(key, '-params')}: {key!r} is not an argument of {algo_class.__name__}{hint}")
    policy = values["policy"]
    if not isinstance(policy, str) or policy not in algo_class.policy_aliases:
        choices = tuple(algo_class.policy_aliases)
        try:
            check_choice("policy", policy, choices)
        except ValueError as error:
            raise ZooError(f"{error} ({sources.get('policy', '-params')})") from None
    policy_kwargs = values.get("policy_kwargs") or {}
    policy_class = algo_class.policy_aliases[policy]
    hidden = sorted(set(policy_kwargs) & {*MODULE_SETTINGS, "modules"})
    if hidden:
        raise ZooError(f"{sources['policy_kwargs']}: policy_kwargs sets {hidden}; make them top-level keys instead")
    policy_parameters = sorted(set(inspect.signature(policy_class.__init__).parameters) - POLICY_SET)
    for key in policy_kwargs:
        if key not in policy_parameters:
            hint = did_you_mean(key, policy_parameters)
            raise ZooError(
                f"{sources['policy_kwargs']}: policy_kwargs {key!r} is not an argument of {policy_class.__name__}{hint}"
            )


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """:func:`~sb3_sparse.marl.envs.make_marl_env`, with its mistakes as :class:`ZooError`."""
    from sb3_sparse.marl.envs import make_marl_env

    try:
        return make_marl_env(env_id, **(env_kwargs or {}))
    except (ValueError, TypeError, ImportError, KeyError) as error:
        where = f" with env_kwargs {env_kwargs}" if env_kwargs else ""
        raise ZooError(f"--env {env_id!r}{where}: {' '.join(str(error).split())}") from None


def build_model(config: RunConfig, env: Any, hyperparams: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """The learner of ``config`` on ``env`` (the model is the last check of the values, before anything is written).

    :param hyperparams: constructor arguments instead of ``config.hyperparams`` (a tuning trial's)
    :param kwargs: the command line's arguments (``seed``, ``verbose``, ``device``)
    """
    values = dict(config.hyperparams if hyperparams is None else hyperparams)
    policy = values.pop("policy")
    try:
        return config.algo_class(policy, env, **values, **kwargs)
    except (ValueError, TypeError) as error:
        message = " ".join(str(error).split())
        match = re.match(r"(\w+)=", message)
        name = match.group(1) if match else None
        if name is not None and name not in config.sources and name in (values.get("policy_kwargs") or {}):
            name = "policy_kwargs"
        where = f" (from {config.source(name)})" if name is not None and name in config.sources else ""
        raise ZooError(f"{message}{where}") from None


def _seed(seed: int) -> int:
    """``seed``, or a random one for ``-1`` (rl-zoo3's convention; the one drawn is written to ``args.yml``)."""
    return int(np.random.randint(2**31 - 1)) if seed < 0 else seed


def _check_optional(flag: str, modules: Sequence[str], extra: str) -> None:
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ZooError(f"{flag} needs {', '.join(missing)}: pip install {extra}")


# --------------------------------------------------------------------------------------------------------------------
# Runs on disk


def _new_run(log_path: Path, name: str) -> Path:
    """Create ``<log_path>/<name>_<N>`` for the next free ``N`` (rl-zoo3's numbering; safe between concurrent runs)."""
    log_path.mkdir(parents=True, exist_ok=True)
    run_id = max(run_ids(log_path, name), default=0) + 1
    while True:
        run = log_path / f"{name}_{run_id}"
        try:
            run.mkdir()
            return run
        except FileExistsError:
            run_id += 1


def find_run(folder: str, algo: str, env_id: str, exp_id: int) -> Path:
    """The run folder ``<folder>/<algo>/<env>_<exp_id>`` (``exp_id`` 0: the latest)."""
    log_path = Path(folder) / algo
    name = env_name(env_id)
    ids = run_ids(log_path, name)
    if exp_id == 0:
        if not ids:
            raise ZooError(f"no {algo} run on {env_id} in {log_path} (train one first, or pass -f / --exp-id)")
        exp_id = ids[-1]
    run = log_path / f"{name}_{exp_id}"
    if not run.is_dir():
        found = f"; runs there: {', '.join(map(str, ids))}" if ids else ""
        raise ZooError(f"no run {run} (train one first, or pass -f / --exp-id){found}")
    return run


def _write_yaml(path: Path, data: dict[str, Any], header: str = "") -> None:
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


# --------------------------------------------------------------------------------------------------------------------
# Sub-commands


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algo", required=True, help=f"the learner: {', '.join(registry.MULTI_AGENT_ALGORITHMS)}")
    parser.add_argument("--env", required=True, help="env id of make_marl_env, e.g. simple_spread_v3")
    parser.add_argument("-f", "--log-folder", default="logs", help="log folder (default: logs)")


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-conf", "--conf-file", default=None, help="hyperparameter file (default: the shipped <algo>.yml)")
    parser.add_argument("--recipe", default=None, help="sparse recipe merged under the file's entry (mast, rigl, set, ...)")
    parser.add_argument(
        "-params",
        "--hyperparams",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY:VALUE",
        help="override hyperparameters (Python values: learning_rate:1e-3 'policy_kwargs:dict(hidden_dim=32)')",
    )


def train(argv: Sequence[str]) -> int:
    """``sb3-sparse marl train``: train a learner and write a run folder."""
    parser = CommandParser(prog="sb3-sparse marl train", description="Train QMIX / VDN from a hyperparameter file.")
    _common_arguments(parser)
    _config_arguments(parser)
    parser.add_argument("-n", "--n-timesteps", type=int, default=-1, help="env steps (default: the entry's n_timesteps)")
    parser.add_argument("--seed", type=int, default=-1, help="random seed (default -1: a random one)")
    parser.add_argument("--eval-freq", type=int, default=25000, help="env steps between evaluations (<= 0: none)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
    parser.add_argument("--save-freq", type=int, default=-1, help="env steps between checkpoints (<= 0: none)")
    parser.add_argument(
        "--log-interval",
        type=int,
        default=-1,
        help=f"episodes between log dumps (-1: about every {LOG_EVERY_STEPS} env steps)",
    )
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("-tb", "--tensorboard-log", default="", help="tensorboard log folder")
    parser.add_argument("--num-threads", type=int, default=-1, help="torch threads (default: torch's)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar (tqdm and rich)")
    parser.add_argument("--verbose", type=int, default=1, help="0: quiet, 1: log table and evaluations, 2: debug")
    args = parser.parse_args(argv)

    # --- every check first: nothing is written before the model is built ---
    config = load_config(args.algo, args.env, args.conf_file, args.recipe, parse_params(args.hyperparams))
    if args.n_timesteps > 0:
        n_timesteps = args.n_timesteps
    elif config.n_timesteps is not None:
        n_timesteps = config.n_timesteps
    else:
        raise ZooError(f"entry {config.entry_key!r} of {config.conf_file} has no n_timesteps; pass -n")
    if args.eval_freq > 0 and args.eval_episodes <= 0:
        raise ZooError(f"--eval-episodes {args.eval_episodes} is not valid; it must be a positive integer")
    if args.tensorboard_log:
        _check_optional("-tb", ("tensorboard",), "tensorboard")
    if args.progress:
        _check_optional("--progress", ("tqdm", "rich"), "tqdm rich")
    if args.num_threads > 0:
        import torch as th

        th.set_num_threads(args.num_threads)
    seed = _seed(args.seed)
    env = make_env(args.env, config.env_kwargs)
    eval_env = make_env(args.env, config.env_kwargs) if args.eval_freq > 0 else None
    model = build_model(config, env, seed=seed, verbose=args.verbose, device=args.device)

    # --- the run ---
    name = env_name(args.env)
    run = _new_run(Path(args.log_folder) / args.algo, name)
    if args.verbose >= 1:
        print(f"Seed: {seed}")
        print(f"Hyperparameters ({config.conf_file}, entry {config.entry_key!r}):")
        print(pformat(config.entry(n_timesteps)))
        print(f"Saving to {run}")
    header = f"# Hyperparameters of this run ({args.algo} on {args.env}): train it again with -conf <this file>.\n"
    _write_yaml(run / "config.yml", {args.env: config.entry(n_timesteps)}, header)
    _write_yaml(run / "args.yml", {**dict(sorted(vars(args).items())), "seed": seed})
    logger = _run_logger(run, args, model, name, int(run.name.rsplit("_", 1)[1]))
    model.set_logger(logger)
    callbacks = _train_callbacks(args, run, eval_env, seed)
    log_interval = args.log_interval if args.log_interval > 0 else max(1, LOG_EVERY_STEPS // model.episode_limit)
    try:
        model.learn(n_timesteps, callback=callbacks, log_interval=log_interval, progress_bar=args.progress)
    except KeyboardInterrupt:  # as rl-zoo3: keep what was learnt
        print("Interrupted: saving the model")
    finally:
        logger.close()
    model.save(run / f"{name}.zip")
    if args.verbose >= 1:
        print(f"Saved the model to {run / f'{name}.zip'}")
    return 0


def _run_logger(run: Path, args: argparse.Namespace, model: Any, name: str, run_id: int) -> Any:
    """SB3's logger of the run: ``progress.csv`` in the run folder, stdout (verbose), tensorboard (``-tb``)."""
    from stable_baselines3.common.logger import Logger, make_output_format

    formats = [make_output_format("stdout", str(run))] if args.verbose >= 1 else []
    formats.append(make_output_format("csv", str(run)))
    if args.tensorboard_log:
        tb_run = Path(args.tensorboard_log) / name / f"{type(model).__name__}_{run_id}"
        formats.append(make_output_format("tensorboard", str(tb_run)))
    return Logger(str(run), formats)


def _train_callbacks(args: argparse.Namespace, run: Path, eval_env: Any, seed: int) -> list[Any]:
    from stable_baselines3.common.callbacks import CheckpointCallback

    from sb3_sparse.marl.evaluation import MultiAgentEvalCallback

    callbacks: list[Any] = []
    if eval_env is not None:
        eval_env.reset(seed=seed + 1)  # seeded once: its episodes are the same from run to run
        callbacks.append(
            MultiAgentEvalCallback(
                eval_env,
                n_eval_episodes=args.eval_episodes,
                eval_freq=args.eval_freq,
                log_path=str(run),
                best_model_save_path=str(run),
                verbose=args.verbose,
            )
        )
    if args.save_freq > 0:
        callbacks.append(CheckpointCallback(args.save_freq, str(run), name_prefix="rl_model", verbose=args.verbose))
    return callbacks


def enjoy(argv: Sequence[str]) -> int:
    """``sb3-sparse marl enjoy``: evaluate a trained run and print its mean return and episode length."""
    parser = CommandParser(prog="sb3-sparse marl enjoy", description="Evaluate a run of 'sb3-sparse marl train'.")
    _common_arguments(parser)
    parser.add_argument("--exp-id", type=int, default=0, help="the run's id N (default 0: the latest)")
    parser.add_argument("-n", "--n-episodes", type=int, default=10, help="episodes (default: 10)")
    parser.add_argument("--load-best", action="store_true", help="load best_model.zip (from the evaluations)")
    parser.add_argument("--load-checkpoint", type=int, default=None, metavar="STEPS", help="load rl_model_<STEPS>_steps.zip")
    parser.add_argument("--stochastic", action="store_true", help="epsilon-greedy actions (default: greedy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env (default: 0)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    args = parser.parse_args(argv)

    entry = _algorithm(args.algo)
    if args.n_episodes <= 0:
        raise ZooError(f"-n {args.n_episodes} is not valid; it must be a positive number of episodes")
    if args.load_best and args.load_checkpoint is not None:
        raise ZooError("--load-best and --load-checkpoint are exclusive; pass one")
    run = find_run(args.log_folder, args.algo, args.env, args.exp_id)
    if args.load_best:
        path = run / "best_model.zip"
    elif args.load_checkpoint is not None:
        path = run / f"rl_model_{args.load_checkpoint}_steps.zip"
    else:
        path = run / f"{env_name(args.env)}.zip"
    if not path.is_file():
        hint = ""
        if args.load_best or args.load_checkpoint is not None:
            hint = f" (trained with {'--eval-freq' if args.load_best else '--save-freq'}?)"
        raise ZooError(f"no model {path}{hint}")
    env = make_env(args.env, _run_env_kwargs(run, args.env))
    try:
        # inference only: a one-episode buffer instead of the run's (5000 episodes)
        model = entry.sparse_class.load(str(path), env=env, device=args.device, buffer_size=1, batch_size=1)
    except (ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ZooError(f"cannot load {path}: {' '.join(str(error).split())}") from None
    from sb3_sparse.marl.evaluation import evaluate_marl_policy

    env.reset(seed=args.seed)
    returns, lengths = evaluate_marl_policy(
        model, env, args.n_episodes, deterministic=not args.stochastic, return_episode_rewards=True
    )
    print(f"Loaded {path} ({model.num_timesteps} env steps of training)")
    print(f"Mean return: {np.mean(returns):.2f} +/- {np.std(returns):.2f} over {len(returns)} episodes")
    print(f"Mean episode length: {np.mean(lengths):.2f} +/- {np.std(lengths):.2f}")
    return 0


def _run_env_kwargs(run: Path, env_id: str) -> dict[str, Any]:
    """The ``env_kwargs`` a run was trained with (its ``config.yml``; none for a run without one)."""
    path = run / "config.yml"
    if not path.is_file():
        return {}
    entries = yaml.safe_load(path.read_text()) or {}
    entry = dict(entries.get(env_id) or {})
    _evaluate_python_keys(entry, str(path))
    return dict(entry.get("env_kwargs") or {})


# --------------------------------------------------------------------------------------------------------------------
# Tuning


def is_sparse(hyperparams: dict[str, Any]) -> bool:
    """Whether a configuration trains a sparse module (then tuning also samples the DST knobs)."""
    modules = hyperparams.get("modules") or {}
    regimes = [hyperparams.get("regime")]
    regimes += [settings.get("regime") for settings in modules.values() if isinstance(settings, dict)]
    return any(regime is not None and not issubclass(get_regime(regime), Dense) for regime in regimes)


def trial_hyperparams(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """``base`` with a trial's values, merged as the zoo merges them (``policy_kwargs`` key by key, stale DST keys cleared)."""
    from sb3_sparse.zoo.samplers import merge_trial_hyperparams

    merged = {**base, **merge_trial_hyperparams(base, sampled)}
    cleared = [name for name in ("modules", "erdos_renyi_lambdas") if name in merged and merged[name] is None]
    return {name: value for name, value in merged.items() if name not in cleared}


def best_marl_entry(study: Any, config: RunConfig) -> dict[str, Any]:
    """The best trial of ``study`` as an entry of a hyperparameter file (``config``'s, updated with the trial's values).

    :raises ZooError: if no trial completed
    """
    try:
        trial = study.best_trial
    except ValueError:
        raise ZooError(f"study {study.study_name!r} has no completed trial yet") from None
    from sb3_sparse.zoo.samplers import multi_agent_kwargs

    return config.entry(hyperparams=trial_hyperparams(config.hyperparams, multi_agent_kwargs(dict(trial.params))))


def tune(argv: Sequence[str]) -> int:
    """``sb3-sparse marl tune``: an Optuna search (one worker of a study several can share); writes ``best_<env>.yml``."""
    parser = CommandParser(
        prog="sb3-sparse marl tune",
        description="Optuna search over QMIX / VDN hyperparameters. Start the same command in several processes or on "
        "several machines with one --storage to share the study.",
    )
    _common_arguments(parser)
    _config_arguments(parser)
    parser.add_argument("--storage", required=True, help="journal file (.log) or database URL of the study")
    parser.add_argument("--study-name", required=True, help="the study's name")
    parser.add_argument("--n-trials", type=int, default=10, help="trials run by this worker (default: 10)")
    parser.add_argument("--max-total-trials", type=int, default=None, help="stop once the study holds this many trials")
    parser.add_argument("-n", "--n-timesteps", type=int, default=-1, help="env steps per trial (default: the entry's)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes of the final evaluation (default: 10)")
    parser.add_argument("--sampler", default="tpe", help="tpe or random (default: tpe)")
    parser.add_argument("--n-startup-trials", type=int, default=5, help="random trials before TPE (default: 5)")
    parser.add_argument("--seed", type=int, default=-1, help="seed of the sampler and the trials (-1: a random one)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--verbose", type=int, default=1, help="0: quiet, 1: a line per trial, 2: Optuna's logs too")
    args = parser.parse_args(argv)

    config = load_config(args.algo, args.env, args.conf_file, args.recipe, parse_params(args.hyperparams))
    n_timesteps = args.n_timesteps if args.n_timesteps > 0 else config.n_timesteps
    if n_timesteps is None:
        raise ZooError(f"entry {config.entry_key!r} of {config.conf_file} has no n_timesteps; pass -n")
    for flag, value in (("--n-trials", args.n_trials), ("--eval-episodes", args.eval_episodes)):
        if value <= 0:
            raise ZooError(f"{flag} {value} is not valid; it must be a positive integer")
    try:
        check_choice("--sampler", args.sampler, ("tpe", "random"))
    except ValueError as error:
        raise ZooError(str(error)) from None
    try:
        import optuna

        from sb3_sparse.zoo.study import TrialProgress, best_header, check_storage, open_storage, prepare_study
    except ImportError as error:
        raise ZooError(f'tuning needs Optuna: pip install "sb3-sparse[zoo]" ({error})') from None
    check_storage(args.storage)
    seed = _seed(args.seed)
    build_model(config, make_env(args.env, config.env_kwargs), seed=seed, verbose=0, device=args.device)

    if args.verbose < 2:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: Any = (
        optuna.samplers.TPESampler(n_startup_trials=args.n_startup_trials, seed=seed)
        if args.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    prepare_study(args.storage, args.study_name)
    study = optuna.load_study(study_name=args.study_name, storage=open_storage(args.storage), sampler=sampler)
    objective = _objective(config, args, n_timesteps, seed)
    callbacks: list[Callable[..., None]] = [TrialProgress()] if args.verbose >= 1 else []
    if args.max_total_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(args.max_total_trials, states=None))
        if len(study.trials) >= args.max_total_trials:
            print(f"Study {args.study_name!r} already holds {len(study.trials)} trials (--max-total-trials)")
            args.n_trials = 0
    if args.n_trials:
        study.optimize(objective, n_trials=args.n_trials, callbacks=callbacks, catch=(ValueError,))

    entry = best_marl_entry(study, config)
    best = study.best_trial
    output = Path(args.log_folder) / args.algo / f"best_{env_name(args.env)}.yml"
    output.parent.mkdir(parents=True, exist_ok=True)
    header = best_header(study, args.algo, args.env)
    header += f"# Train it with: sb3-sparse marl train --algo {args.algo} --env {args.env} -conf {output}\n"
    _write_yaml(output, {args.env: entry}, header)
    print(f"Best trial: {best.number}, value {best.value:.6g} (mean return of its final evaluation)")
    for name, value in best.params.items():
        print(f"    {name}: {value}")
    print(f"Wrote {output}")
    return 0


def _objective(config: RunConfig, args: argparse.Namespace, n_timesteps: int, seed: int) -> Callable[[Any], float]:
    """The trial function: train ``n_timesteps`` with the sampled values, return the mean return of the evaluation."""
    from stable_baselines3.common.logger import Logger

    from sb3_sparse.marl.evaluation import evaluate_marl_policy
    from sb3_sparse.zoo.samplers import sample_multi_agent_params
    from sb3_sparse.zoo.study import record_budget

    modules = tuple(config.policy_class.sparse_modules) if is_sparse(config.hyperparams) else ()
    buffer_size = config.hyperparams.get("buffer_size", inspect.signature(config.algo_class).parameters["buffer_size"].default)

    def objective(trial: Any) -> float:
        sampled = sample_multi_agent_params(trial, buffer_size, modules)
        hyperparams = trial_hyperparams(config.hyperparams, sampled)
        trial.set_user_attr("seed", seed + trial.number)
        record_budget(trial, n_timesteps=n_timesteps, eval_episodes=args.eval_episodes, sampler=args.sampler, pruner="none")
        env = make_env(config.env_id, config.env_kwargs)
        eval_env = make_env(config.env_id, config.env_kwargs)
        eval_env.reset(seed=seed + 1)  # every trial of this worker is evaluated on the same episodes
        try:
            model = build_model(config, env, hyperparams, seed=seed + trial.number, verbose=0, device=args.device)
        except ZooError as error:  # a combination the learner rejects: the trial fails, the study goes on
            raise ValueError(str(error)) from None
        model.set_logger(Logger(None, []))
        model.learn(n_timesteps)
        mean_return, _ = evaluate_marl_policy(model, eval_env, args.eval_episodes)
        return float(mean_return)

    return objective


# --------------------------------------------------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"train": train, "enjoy": enjoy, "tune": tune}


def usage() -> str:
    from sb3_sparse.common.recipes import MULTI_AGENT_RECIPES

    return USAGE.format(algorithms=", ".join(registry.MULTI_AGENT_ALGORITHMS), recipes=", ".join(MULTI_AGENT_RECIPES))


def main(argv: Sequence[str]) -> int:
    """``sb3-sparse marl <sub-command> [options]`` (the ``sb3-sparse`` command reports a :class:`ZooError` in one line).

    :param argv: ``[sub-command, *options]``
    :return: the exit status
    """
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            raise ZooError(f"give a sub-command: {', '.join(COMMANDS)} (see 'sb3-sparse marl -h')")
        print(usage())
        return 0
    try:
        check_choice("sub-command", argv[0], tuple(COMMANDS))
    except ValueError as error:
        raise ZooError(str(error)) from None
    return COMMANDS[argv[0]](argv[1:])
