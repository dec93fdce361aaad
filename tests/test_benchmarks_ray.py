"""The run matrix on a real local Ray cluster: ``python -m benchmarks.run PROFILE --ray ADDRESS``.

The cluster is a head started by ``ray start`` on the loopback only (127.0.0.1, 2 CPUs), stopped at the end.
Its workers find this module on their ``PYTHONPATH``: the envs below fail on purpose (once, or always), so the
tests see a run retried and a run reported failed.
"""

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (the ray extra: pip install -e '.[ray]')")

import gymnasium as gym  # noqa: E402
from gymnasium.envs.classic_control.pendulum import PendulumEnv  # noqa: E402

from benchmarks.profile import load_profile  # noqa: E402
from benchmarks.ray_runner import pack, slots, task_resources, unpack  # noqa: E402
from benchmarks.run import main  # noqa: E402
from benchmarks.runner import find_checkpoint, run_one  # noqa: E402

#: Where the envs below keep their "failed once already" markers (set for the cluster's workers).
MARKERS = "SB3_SPARSE_TEST_RAY_MARKERS"


class RaisesOnce(PendulumEnv):
    """Pendulum whose first construction raises (an error in training: ``run_one`` reports ``failed``)."""

    def __init__(self, **kwargs):
        marker = Path(os.environ[MARKERS]) / type(self).__name__
        if not marker.exists():
            marker.touch()
            raise RuntimeError("injected failure: the first try of this run fails")
        super().__init__(**kwargs)


class CrashesOnce(PendulumEnv):
    """Pendulum whose first construction kills its process (a worker lost: Ray raises on the driver)."""

    def __init__(self, **kwargs):
        marker = Path(os.environ[MARKERS]) / type(self).__name__
        if not marker.exists():
            marker.touch()
            os._exit(1)
        super().__init__(**kwargs)


class AlwaysRaises(PendulumEnv):
    def __init__(self, **kwargs):
        raise RuntimeError("injected failure: every try of this run fails")


for _env in (RaisesOnce, CrashesOnce, AlwaysRaises):
    gym.register(f"{_env.__name__}-v0", entry_point=_env, max_episode_steps=200)

# Every run 100 steps; the envs of this module are made by "<module>:<env id>" (gymnasium imports the module).
PROFILE = f"""
name: ray-test
total_timesteps: 100
eval_freq: 50
n_eval_episodes: 1
checkpoint_freq: 50
final_evals: 1
algo_kwargs: {{learning_starts: 50, batch_size: 16}}
algorithms: [sac]
envs: [Pendulum-v1, {__name__}:RaisesOnce-v0, {__name__}:CrashesOnce-v0, {__name__}:AlwaysRaises-v0]
seeds: [0]
methods: [{{method: set, sparsity: 0.5}}]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: Ray's settings for the head and the driver (read when Ray is imported). Ray on Linux replaces 127.0.0.1 by the
#: machine's outward address; with clusters switched off (the setting Ray uses on macOS and Windows) every address
#: it gives and dials stays on the loopback. No token authentication: a throw-away head that only the loopback
#: reaches (and no token file written into the home directory).
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
REPOSITORY = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a Ray head on 127.0.0.1 with 2 CPUs; its processes (one process group) killed at the end."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    env = {
        **os.environ,
        **LOOPBACK,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        MARKERS: str(tmp_path_factory.mktemp("markers")),
    }
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1"]
    command += ["--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false"]
    command += ["--disable-usage-stats", "--temp-dir", temp_dir]
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode()
        yield f"127.0.0.1:{port}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)  # ray start's session: the head's daemons
            except ProcessLookupError:
                break
            time.sleep(2)
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_cli(*args: str) -> str:
    """``python -m benchmarks.run ARGS`` in a new process (Ray's settings are its own); its output."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args], cwd=REPOSITORY, env={**os.environ, **LOOPBACK},
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def shape(value):
    """The keys of ``value``'s nested dicts (what a result has, not what it measured)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__ if value is None or isinstance(value, str | bool) else "number"


def test_profile_on_ray_retries_reports_and_resumes(cluster, tmp_path):
    profile = tmp_path / "ray-test.yaml"
    profile.write_text(PROFILE)
    results, local = tmp_path / "results", tmp_path / "local"
    _, specs = load_profile(str(profile))
    pendulum = specs[0]
    assert pendulum.env_id == "Pendulum-v1" and len(specs) == 4
    assert run_one(pendulum, local) == "done"  # the local runner's result, to compare with
    assert run_one(pendulum, results, stop_at_step=50) == "interrupted"  # a checkpoint for the Ray task to resume

    output = run_cli(str(profile), "--results", str(results), "--ray", cluster)
    assert "4 runs selected, 0 already done, on Ray (127.0.0.1:" in output
    assert "finished: {'done': 3, 'failed': 1}" in output
    for env in ("RaisesOnce", "CrashesOnce", "AlwaysRaises"):  # each failed once and was tried again
        assert f"{__name__}:{env}-v0/set-0.5/seed0: failed (attempt 1 of 2), retrying" in output

    def run_dir(spec):
        return results / spec.run_id

    result = json.loads((run_dir(pendulum) / "result.json").read_text())
    expected = json.loads((local / pendulum.run_id / "result.json").read_text())
    assert shape(result) == shape(expected) and result["spec"] == expected["spec"]
    assert result["curve"]["steps"] == expected["curve"]["steps"] == [0, 50, 100]
    assert result["resumes"] == 1 and expected["resumes"] == 0  # the checkpoint travelled to the task
    leaves = sorted(p.name for p in (local / pendulum.run_id).iterdir())
    assert sorted(p.name for p in run_dir(pendulum).iterdir()) == leaves == ["policy.pt", "result.json"]  # as locally
    for spec in specs[1:3]:  # failed once, then done
        assert shape(json.loads((run_dir(spec) / "result.json").read_text())) == shape(expected)
        assert not (run_dir(spec) / "error.txt").exists()
    always = run_dir(specs[3])
    assert not (always / "result.json").exists() and find_checkpoint(always) is None
    assert "every try of this run fails" in (always / "error.txt").read_text()
    assert not list(results.rglob("lock"))
    finished = {spec.run_id: (run_dir(spec) / "result.json").stat().st_mtime_ns for spec in specs[:3]}

    (always / "lock").write_text(f"{platform.node()} {os.getpid()}")  # another runner (this process) has it
    output = run_cli(str(profile), "--results", str(results), "--ray", cluster)  # resume: only the failed run is left
    assert "4 runs selected, 3 already done" in output and "finished: {'locked': 1}" in output
    assert (always / "lock").read_text() == f"{platform.node()} {os.getpid()}"  # not the driver's to remove
    assert finished == {spec.run_id: (run_dir(spec) / "result.json").stat().st_mtime_ns for spec in specs[:3]}


def test_pack_and_unpack_carry_a_run_directory(tmp_path):
    source, copy = tmp_path / "source", tmp_path / "copy"
    (source / "checkpoint").mkdir(parents=True)
    (source / "checkpoint" / "state.json").write_text("{}")
    (source / "error.txt").write_text("trace")
    (source / "lock").write_text("host 1")
    files = pack(source)
    assert files == {"checkpoint/state.json": b"{}", "error.txt": b"trace"}  # the lock stays behind
    (copy / "checkpoint.old").mkdir(parents=True)
    (copy / "checkpoint.old" / "model.zip").write_bytes(b"old")
    (copy / "lock").write_text("driver 2")
    unpack(files, copy)
    assert pack(copy) == files and (copy / "lock").read_text() == "driver 2"
    assert not (copy / "checkpoint.old").exists()  # what the task removed is removed here too
    unpack({"result.json": b"[]"}, copy)
    assert sorted(p.name for p in copy.iterdir()) == ["lock", "result.json"]
    assert pack(tmp_path / "missing") == {}


def test_unpack_stopped_midway_leaves_no_mixed_checkpoint(tmp_path, monkeypatch):
    old = {"checkpoint/model.zip": b"old model", "checkpoint/state.json": b"old state"}
    unpack(old, tmp_path)
    written = []

    def replace_then_stop(source, target):
        written.append(Path(target).name)
        if len(written) == 2:
            raise KeyboardInterrupt  # stopped after the new model, before the new state
        os.rename(source, target)

    monkeypatch.setattr(os, "replace", replace_then_stop)
    new = {"checkpoint/state.json": b"new state", "checkpoint/model.zip": b"new model", "checkpoint/buffer.pkl": b"new"}
    with pytest.raises(KeyboardInterrupt):
        unpack(new, tmp_path)
    assert sorted(written) == ["buffer.pkl", "model.zip"]  # state.json (the checkpoint is complete) comes last
    assert find_checkpoint(tmp_path) is None  # the old state went first: no old state beside a new model


def test_task_resources_and_slots():
    assert task_resources("cpu") == (1.0, 0.0)
    assert task_resources("cuda") == (1.0, 1.0)
    assert task_resources("cuda", 2, 0.25) == (2, 0.25)
    bad = (
        ("cuda:1", 1, None, "device"),
        ("auto", 1, None, "device"),
        ("cpu", 1, 0.5, "gpus_per_run"),
        ("cuda", 0, None, "cpus_per_run"),
    )
    for device, cpus, gpus, argument in (*bad, ("cuda", 1, -1, "gpus_per_run")):
        with pytest.raises(ValueError, match=argument):
            task_resources(device, cpus, gpus)
    assert slots({"CPU": 16.0, "GPU": 1.0}, 1.0, 0.25) == 4  # four runs share the GPU
    assert slots({"CPU": 16.0}, 2.0, 0.0) == 8
    assert slots({"CPU": 1.0}, 2.0, 0.0) == 1


def test_ray_options_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["smoke", "--results", str(tmp_path), "--ray", "--device", "cuda:1"])
    assert "Ray assigns each run its GPU" in capsys.readouterr().err
