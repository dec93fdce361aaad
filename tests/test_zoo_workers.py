"""Several ``sb3-sparse tune`` workers share one Optuna study: through a journal file, and through PostgreSQL.

Two worker processes start together against one storage, each asked for 2 trials; the study must
then hold exactly 4 finished trials numbered 0..3, each run by exactly one worker (none lost or
duplicated). The PostgreSQL test starts a throw-away server on a loopback port (the Debian package
``postgresql``, installed by ``.ci/run``) and is skipped, saying why, where none can be started.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

from sb3_sparse.zoo.study import load_study  # noqa: E402

TRIAL_LINE = re.compile(r"Trial (\d+) (finished|pruned)")


def start_workers(algo: str, storage: str, study: str, cwd, n_workers: int = 2, n_trials: int = 2) -> list[str]:
    """Start ``n_workers`` tune processes at once and return each one's output (asserting they succeeded)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = ["--algo", algo, "--env", "Pendulum-v1", "-n", "150", "--n-trials", str(n_trials), "--eval-episodes", "1"]
    args += ["--sampler", "random", "--pruner", "median", "--no-optim-plots", "--num-threads", "1"]
    args += ["--storage", storage, "--study-name", study, "-params", "learning_starts:100"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sb3_sparse", "tune", *args, "--seed", str(index), "-f", f"logs_{index}"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(n_workers)
    ]
    outputs = []
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-4000:]
        outputs.append(output)
    return outputs


def check_trials_add_up(storage: str, study_name: str, outputs: list[str], expected: int) -> None:
    study = load_study(storage, study_name)
    numbers = sorted(trial.number for trial in study.trials)
    assert numbers == list(range(expected)), numbers
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(trial.state in finished for trial in study.trials), [trial.state for trial in study.trials]
    per_worker = [{int(match.group(1)) for match in TRIAL_LINE.finditer(output)} for output in outputs]
    assert all(len(trials) == expected // len(outputs) for trials in per_worker), per_worker
    assert set.union(*per_worker) == set(numbers) and sum(map(len, per_worker)) == expected  # no trial run twice
    assert {"sparsity", "learning_rate"} <= set(study.trials[0].params)


def test_two_workers_share_a_journal_file(tmp_path):
    outputs = start_workers("sparse_sac", "studies/shared.log", "journal-study", tmp_path)
    check_trials_add_up(str(tmp_path / "studies" / "shared.log"), "journal-study", outputs, expected=4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (trust authentication, loopback only), stopped afterwards."""
    pytest.importorskip("psycopg2", reason="psycopg2 (the zoo extra's psycopg2-binary) is needed for PostgreSQL storage")
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql (.ci/run does)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="sb3-sparse-pg-")
    if as_user:
        shutil.chown(root, user="postgres")
    data, port = os.path.join(root, "data"), _free_port()

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)

    try:
        init = run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        if init.returncode != 0:
            pytest.skip(f"initdb failed, cannot start a PostgreSQL server here: {init.stderr.strip()[-300:]}")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = run(pg_ctl, "-D", data, "-l", os.path.join(root, "server.log"), "-o", options, "-w", "-t", "60", "start")
        if start.returncode != 0:
            pytest.skip(f"pg_ctl start failed, cannot start a PostgreSQL server here: {start.stderr.strip()[-300:]}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if os.path.isdir(data):
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
            time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    outputs = start_workers("sparse_td3", postgres_url, "pg-study", tmp_path)
    check_trials_add_up(postgres_url, "pg-study", outputs, expected=4)
