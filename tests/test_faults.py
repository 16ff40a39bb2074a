"""Faults while a run writes: a failing disk inside asynchronous saves, a workdir deleted under a
training, readers beside a training (the table: benchmarks/results/faults_cpu.md)."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from orbax.checkpoint._src.handlers.json_checkpoint_handler import JsonCheckpointHandler

from gan_jax.api import run_info
from gan_jax.checkpoint import CheckpointStore
from gan_jax.cli import main
from gan_jax.errors import CheckpointError
from scripts.kill_resume_check import TINY

BASE = ["train", "gan", *TINY, "--no-tensorboard"]
TRAIN = [*BASE, "--steps", "6", "--checkpoint-every", "1"]


def _failing_writer(monkeypatch, code, from_step):
    """Makes Orbax's background writer of each checkpoint's `loop` item fail with `code` from step
    `from_step` on, as a full or failing disk would (the save started; the error comes later)."""
    real = JsonCheckpointHandler._save_fn

    async def save_fn(self, x, directory):
        step = int(re.search(r"checkpoints/(\d+)", str(directory)).group(1))
        if step >= from_step:
            raise OSError(code, os.strerror(code), str(directory))
        return await real(self, x, directory)

    monkeypatch.setattr(JsonCheckpointHandler, "_save_fn", save_fn)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_a_save_failing_in_the_background_stops_with_one_line_and_a_rerun_resumes_exactly(
    mnist_train, tmp_path, monkeypatch, capsys, code
):
    reference, workdir = tmp_path / "reference", tmp_path / "run"
    assert main([*TRAIN, "--workdir", str(reference)]) == 0
    with monkeypatch.context() as patch:
        _failing_writer(patch, code, from_step=4)
        capsys.readouterr()
        assert main([*TRAIN, "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[-1].startswith("gan-jax: error: could not save"), err
    assert f"in {workdir} ({os.strerror(code)}" in lines[-1] and "resume from step 3" in lines[-1]
    if code == errno.ENOSPC:  # the space needed: one checkpoint's size on disk
        assert (
            re.search(r"about [\d.]+ [kM]B more is needed", lines[-1]) and "free space" in lines[-1]
        )
    else:
        assert "check the disk" in lines[-1]
    assert CheckpointStore(workdir, create=False).latest_step() == 3
    assert main([*TRAIN, "--workdir", str(workdir)]) == 0
    assert f"resuming {workdir} from step 3" in capsys.readouterr().err
    assert run_info(workdir)["params_sha256"] == run_info(reference)["params_sha256"]
    for name in ("metrics.jsonl", "losses.jsonl"):
        assert (workdir / name).read_text() == (reference / name).read_text()


def test_a_tensorstore_disk_error_is_recognised():
    from gan_jax.checkpoint import os_error

    failure = ValueError("RESOURCE_EXHAUSTED: ... No space left on device [os_error_code='28']")
    assert os_error(failure).errno == errno.ENOSPC
    assert os_error(ValueError("a bug")) is None


def _train_in_background(workdir, *extra):
    cmd = [sys.executable, "-m", "gan_jax.cli", *BASE, "--workdir", str(workdir), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_step(proc, workdir, step, timeout=120):
    deadline = time.time() + timeout
    while (CheckpointStore.latest_in(workdir) or 0) < step:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.02)


def test_a_workdir_deleted_during_training_stops_it_with_one_line(mnist_train, tmp_path):
    workdir = tmp_path / "run"
    proc = _train_in_background(workdir, "--steps", "100000", "--checkpoint-every", "1")
    try:
        _wait_for_step(proc, workdir, 2)
        shutil.rmtree(workdir, ignore_errors=True)  # a save in progress may recreate a folder
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "was deleted during training" in lines[-1], err


def test_readers_beside_a_training_get_intact_checkpoints_or_one_line(mnist_train, tmp_path):
    workdir = tmp_path / "run"
    # One checkpoint kept: each save deletes the previous one, perhaps while a reader reads it.
    proc = _train_in_background(
        workdir, "--steps", "100000", "--checkpoint-every", "1", "--keep-checkpoints", "1"
    )
    read, refused = [], []
    try:
        _wait_for_step(proc, workdir, 1)
        deadline = time.time() + 6
        while time.time() < deadline:
            try:
                read.append(run_info(workdir)["step"])  # restore verifies the state's checksum
            except CheckpointError as err:
                assert "\n" not in str(err) and str(workdir) in str(err)
                refused.append(str(err))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(read) >= 3 and read == sorted(read), (read, refused)
