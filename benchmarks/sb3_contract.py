"""Run Stable-Baselines3's own tests (and sb3-contrib's) with the sparse algorithms in place of the dense ones.

The sparse algorithms claim to be drop-in replacements: every test that SB3 runs on ``SAC``, ``TD3``, ``DQN``,
``PPO`` and ``A2C`` (and sb3-contrib on ``TQC`` and ``CrossQ``) should pass on ``SparseSAC``, ``SparseTD3``,
``SparseDQN``, ``SparsePPO``, ``SparseA2C``, ``SparseTQC`` and ``SparseCrossQ`` with their default DST settings.
This script checks that claim. It is slow (minutes to tens of minutes), so it is not part of ``tests/``.

Nothing of SB3 is copied into this repository: the test files are read at run time from a checkout of
SB3 (and of sb3-contrib), ideally at the installed versions::

    python -c "import stable_baselines3, sb3_contrib; print(stable_baselines3.__version__, sb3_contrib.__version__)"
    git clone --depth 1 --branch v2.9.2 https://github.com/DLR-RM/stable-baselines3 /tmp/sb3
    git clone --depth 1 --branch v2.9.2 https://github.com/Stable-Baselines-Team/stable-baselines3-contrib /tmp/sb3-contrib
    python -m benchmarks.sb3_contract --sb3-tests /tmp/sb3/tests --contrib-tests /tmp/sb3-contrib/tests

(drop ``--branch`` to use the development version, if the tag does not exist). Options::

    --files test_save_load.py test_run.py     only these files (of either suite)
    -x                                        stop each file at its first failure
    -k EXPR                                   pytest's -k, for every file
    --all-algorithms                          also run the tests parametrised only by algorithms that are not
                                              replaced (DDPG, QRDQN, MaskablePPO, ...), on the originals
    --expensive                               also run the tests SB3 marks ``expensive`` (skipped by SB3's CI)
    --workdir DIR                             where the rewritten files go (default: a new temporary folder)
    --backend csr                             build every sparse model with this compute backend (unless a test
                                              chooses one)

What it does, for each test file, in a temporary folder: copies it and rewrites its imports, so that
``from stable_baselines3 import DDPG, SAC`` becomes ``from stable_baselines3 import DDPG`` plus
``from sb3_sparse import SparseSAC as SAC`` (the same for ``TD3``, ``DQN``, ``PPO``, ``A2C``, and sb3-contrib's
``TQC`` and ``CrossQ``); adds a ``conftest.py`` that deselects the test cases parametrised only by algorithms that are
not replaced, and records, per test, its outcome and whether it built a sparse model; runs pytest on the
file in its own process (one thread for torch); prints, per file, the counts: ``passed`` (of which
``sparse``: the tests that built at least one sparse model; the others test SB3 utilities on the original
classes), ``failed``, ``errors``, ``skipped``, ``xfailed``, ``deselected``. Exit status 1 if any test failed.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sb3_sparse.core.backends import BACKENDS

#: module imported from -> {name: the sparse class that replaces it (in sb3_sparse)}
REPLACEMENTS = {
    "stable_baselines3": {
        "SAC": "SparseSAC",
        "TD3": "SparseTD3",
        "DQN": "SparseDQN",
        "PPO": "SparsePPO",
        "A2C": "SparseA2C",
    },
    "sb3_contrib": {"TQC": "SparseTQC", "CrossQ": "SparseCrossQ"},
}

#: SB3 test files that exercise SAC, TD3, DQN, PPO or A2C
SB3_FILES = (
    "test_save_load.py",
    "test_run.py",
    "test_predict.py",
    "test_callbacks.py",
    "test_deterministic.py",
    "test_train_eval_mode.py",
    "test_dict_env.py",
    "test_custom_policy.py",
    "test_sde.py",
    "test_her.py",
    "test_identity.py",
    "test_cnn.py",
    "test_n_step_replay.py",
    "test_tensorboard.py",
    "test_spaces.py",
    "test_vec_normalize.py",
    "test_logger.py",
    "test_gae.py",
    "test_buffers.py",
    "test_distributions.py",
    "test_utils.py",
    "test_vec_envs.py",
    "test_vec_extract_dict_obs.py",
    "test_vec_monitor.py",
)
#: sb3-contrib test files that exercise TQC or CrossQ
CONTRIB_FILES = (
    "test_run.py",
    "test_save_load.py",
    "test_cnn.py",
    "test_deterministic.py",
    "test_dict_env.py",
    "test_train_eval_mode.py",
)

# pytest settings of SB3's pyproject.toml (markers, warnings that SB3 ignores)
PYTEST_INI = """[pytest]
markers =
    expensive: marks tests as expensive
filterwarnings =
    ignore::DeprecationWarning:multiprocessing.popen_fork
    ignore:You are trying to run (PPO|A2C) on the GPU
    ignore::DeprecationWarning:tensorboard
    ignore::UserWarning:gymnasium
    ignore::DeprecationWarning:gymnasium.envs.registration
    ignore:rich is experimental
"""

# Plugin put next to the rewritten test files: deselection and per-test records.
CONFTEST = '''"""Written by benchmarks/sb3_contract.py."""

import json
import os

import pytest
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_sparse.common.algorithm import SparseAlgorithmMixin

th.set_num_threads(1)
RESULTS = os.environ["SB3_CONTRACT_RESULTS"]
_state = {"sparse": False, "reports": []}
_init_dst = SparseAlgorithmMixin._init_dst


def _recording_init_dst(self, arguments):
    _state["sparse"] = True  # a sparse model is being built (constructor or load)
    backend = os.environ.get("SB3_CONTRACT_BACKEND")
    if backend and arguments.get("backend") == "auto":  # the default: the run's --backend instead
        arguments = {**arguments, "backend": backend}
    return _init_dst(self, arguments)


SparseAlgorithmMixin._init_dst = _recording_init_dst


def _record(nodeid, outcome, sparse=False):
    with open(RESULTS, "a") as file:
        file.write(json.dumps({"nodeid": nodeid, "outcome": outcome, "sparse": sparse}) + "\\n")


def _algorithms(value):
    if isinstance(value, type) and issubclass(value, BaseAlgorithm):
        yield value
    elif isinstance(value, (tuple, list, set)):
        for item in value:
            yield from _algorithms(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _algorithms(item)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SB3_CONTRACT_ALL_ALGORITHMS"):
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        algorithms = [algorithm for value in params.values() for algorithm in _algorithms(value)]
        replaced = any(issubclass(algorithm, SparseAlgorithmMixin) for algorithm in algorithms)
        (drop if algorithms and not replaced else keep).append(item)
    for item in drop:
        _record(item.nodeid, "deselected")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _state["sparse"] = False
    _state["reports"] = []
    yield
    reports = _state["reports"]
    if any(report.failed for report in reports):
        outcome = "failed" if any(r.failed and r.when == "call" for r in reports) else "error"
    elif any(hasattr(report, "wasxfail") for report in reports):
        outcome = "xfailed" if any(r.skipped for r in reports) else "xpassed"
    elif any(report.skipped for report in reports):
        outcome = "skipped"
    else:
        outcome = "passed"
    _record(item.nodeid, outcome, _state["sparse"])


def pytest_runtest_logreport(report):
    _state["reports"].append(report)
'''

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")
#: columns of the summary: (title, count)
COLUMNS = (
    ("passed", "passed"),
    ("sparse", "sparse"),
    ("failed", "failed"),
    ("errors", "error"),
    ("skipped", "skipped"),
    ("xfailed", "xfailed"),
    ("desel.", "deselected"),
)


def table_row(label: str, counts: dict[str, int]) -> str:
    return f"{label:<36} " + " ".join(f"{counts[key]:>7}" for _, key in COLUMNS)


def rewrite_imports(source: str) -> tuple[str, list[str]]:
    """Replace the imports of the dense algorithms by the sparse ones; return the new source and the names replaced."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    replaced: list[str] = []
    for node in tree.body:  # module-level imports only (a test may import SB3 itself on purpose)
        if not (isinstance(node, ast.ImportFrom) and node.module in REPLACEMENTS and node.level == 0):
            continue
        mapping = REPLACEMENTS[node.module]
        kept = [alias for alias in node.names if alias.name not in mapping]
        swapped = [alias for alias in node.names if alias.name in mapping]
        if not swapped:
            continue
        indent = " " * node.col_offset
        statements = []
        if kept:
            statements.append(ast.unparse(ast.ImportFrom(module=node.module, names=kept, level=0)))
        sparse = [ast.alias(name=mapping[alias.name], asname=alias.asname or alias.name) for alias in swapped]
        statements.append(ast.unparse(ast.ImportFrom(module="sb3_sparse", names=sparse, level=0)))
        assert node.end_lineno is not None
        edits.append((node.lineno, node.end_lineno, "".join(f"{indent}{statement}\n" for statement in statements)))
        replaced += [alias.name for alias in swapped]
    for start, end, text in sorted(edits, reverse=True):
        lines[start - 1 : end] = [text]
    return "".join(lines), replaced


def prepare(source_dir: Path, names: list[str], target: Path) -> list[tuple[Path, list[str]]]:
    """Copy and rewrite the test files that exist; return (path, replaced names) for each."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "conftest.py").write_text(CONFTEST)
    prepared = []
    for name in names:
        path = source_dir / name
        if not path.is_file():
            print(f"  (no {path}: skipped)")
            continue
        text, replaced = rewrite_imports(path.read_text())
        (target / name).write_text(text)
        prepared.append((target / name, replaced))
    return prepared


def run_file(path: Path, workdir: Path, args: argparse.Namespace) -> tuple[dict[str, int], list[str], float, int]:
    results = path.with_suffix(".results.jsonl")
    results.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(workdir / "pytest.ini")]
    command += ["--rootdir", str(path.parent), str(path)]
    if not args.expensive:
        command += ["-m", "not expensive"]
    if args.exitfirst:
        command.append("-x")
    if args.k:
        command += ["-k", args.k]
    env = {**os.environ, "SB3_CONTRACT_RESULTS": str(results), "PYTHONHASHSEED": "0"}
    if args.all_algorithms:
        env["SB3_CONTRACT_ALL_ALGORITHMS"] = "1"
    if args.backend:
        env["SB3_CONTRACT_BACKEND"] = args.backend
    start = time.perf_counter()
    process = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    (path.with_suffix(".log")).write_text(process.stdout + process.stderr)
    counts = dict.fromkeys(OUTCOMES, 0)
    counts["sparse"] = 0
    failures = []
    if results.exists():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            counts[record["outcome"]] += 1
            counts["sparse"] += record["outcome"] == "passed" and record["sparse"]
            if record["outcome"] in ("failed", "error"):
                failures.append(record["nodeid"])
    return counts, failures, elapsed, process.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sb3-tests", type=Path, help="the tests/ folder of a stable-baselines3 checkout")
    parser.add_argument("--contrib-tests", type=Path, help="the tests/ folder of a stable-baselines3-contrib checkout")
    parser.add_argument("--files", nargs="+", help="only these test files (names, of either suite)")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop each file at its first failure")
    parser.add_argument("-k", help="pytest -k expression, for every file")
    parser.add_argument("--all-algorithms", action="store_true", help="keep the cases of algorithms not replaced")
    parser.add_argument("--expensive", action="store_true", help="also run the tests SB3 marks expensive")
    parser.add_argument("--workdir", type=Path, help="folder for the rewritten files (default: a temporary one)")
    parser.add_argument("--backend", choices=BACKENDS, help="compute backend of the sparse models (default: their default)")
    args = parser.parse_args(argv)
    if args.sb3_tests is None and args.contrib_tests is None:
        parser.error("give --sb3-tests DIR and/or --contrib-tests DIR (see the docstring for how to get them)")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sb3_contract_"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "pytest.ini").write_text(PYTEST_INI)
    suites = [("sb3", args.sb3_tests, SB3_FILES), ("contrib", args.contrib_tests, CONTRIB_FILES)]
    prepared: list[tuple[str, Path, list[str]]] = []
    for suite, folder, defaults in suites:
        if folder is None:
            continue
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder")
        names = [name for name in (args.files or defaults) if name in defaults or args.files]
        prepared += [(suite, path, replaced) for path, replaced in prepare(folder, names, workdir / suite)]
    print(f"rewritten test files in {workdir} (logs: <file>.log)")

    print(f"{'file':<36} " + " ".join(f"{title:>7}" for title, _ in COLUMNS) + f" {'time':>7}")
    totals = dict.fromkeys((*OUTCOMES, "sparse"), 0)
    all_failures = []
    for suite, path, replaced in prepared:
        counts, failures, elapsed, returncode = run_file(path, workdir, args)
        for key in totals:
            totals[key] += counts[key]
        label = f"{suite}/{path.name}"
        if not replaced:
            label += " (nothing replaced)"
        print(table_row(label, counts) + f" {elapsed:>6.0f}s", flush=True)
        if returncode not in (0, 1, 5) and not failures:  # 5: nothing collected
            failures.append(f"{label}: pytest exited with {returncode}, see {path.with_suffix('.log')}")
        all_failures += [f"{suite}/{nodeid}" if "::" in nodeid else nodeid for nodeid in failures]
    print(table_row("total", totals))
    for failure in all_failures:
        print(f"FAILED {failure}")
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
