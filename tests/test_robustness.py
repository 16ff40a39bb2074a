"""Trustworthy runs: kills, preemption, corrupted checkpoints, NaN guard, full disk, determinism."""

import dataclasses
import errno
import json
import logging
import os
import signal
import subprocess
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import CheckpointError, train
from gan_jax.actions import StopOnSignal
from gan_jax.api import run_info
from gan_jax.checkpoint import CheckpointStore, params_fingerprint
from gan_jax.cli import main
from gan_jax.errors import Diverged
from gan_jax.workdir import read_rows
from scripts.kill_resume_check import TINY, latest_step, train_command
from scripts.kill_storm import storm


@pytest.mark.slow
def test_sigkill_storm_inside_async_saves_resumes_from_intact_checkpoints_bit_exactly(
    mnist_train, tmp_path
):
    # One run killed 3 times (scripts/kill_storm.py): at least one kill inside an Orbax save.
    result = storm(kills=3, steps=8, seed=1, root=tmp_path)
    assert result["ok"], result
    assert result["kills_by_mode"]["in_save"] >= 1 and result["kills_leaving_a_tmp_folder"] >= 1, (
        result
    )


def test_sigterm_finishes_the_step_saves_and_says_how_to_resume(mnist_train, tmp_path):
    cmd = train_command(tmp_path, "--steps", 100000)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("training "):
            break
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM at step" in err and "run the same command to resume" in err
    stopped_at = latest_step(tmp_path)
    assert stopped_at and stopped_at > 0
    assert f"step {stopped_at};" in err
    resumed = subprocess.run(
        train_command(tmp_path, "--steps", stopped_at + 2), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path} from step {stopped_at}" in resumed.stderr
    assert latest_step(tmp_path) == stopped_at + 2


def test_second_signal_exits_at_once():
    # default_int_handler, or SIG_IGN under nohup/background jobs
    before = signal.getsignal(signal.SIGINT)
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_repeated_sigterm_changes_nothing():
    # A scheduler may signal a supervisor and its worker both; the worker's stop stays a clean one.
    with StopOnSignal() as stop:
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert stop.signum == signal.SIGTERM


def _damage_state_files(step_dir):
    files = sorted(
        p for p in (step_dir / "state").rglob("*") if p.is_file() and p.stat().st_size > 64
    )
    assert files
    for path in files:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw[: max(64, len(raw) - 16)]))


def test_corrupted_latest_checkpoint_is_reported_skipped_and_redone(
    tiny_config, tiny_data, tmp_path, caplog
):
    config = dataclasses.replace(tiny_config, epochs=2, checkpoint_every=3)
    expected = params_fingerprint(train(config, tmp_path / "clean", data=tiny_data, progress=False))

    workdir = tmp_path / "run"
    train(config, workdir, data=tiny_data, progress=False)
    assert CheckpointStore(workdir).latest_step() == 10
    _damage_state_files(workdir / "checkpoints" / "10")

    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        info_after = run_info(workdir)  # read-only: skips it, moves nothing
    assert info_after["step"] == 9 and (workdir / "checkpoints" / "10").exists()
    assert any("checkpoint 10" in r.getMessage() for r in caplog.records)

    state = train(config, workdir, data=tiny_data, progress=False)
    assert (workdir / "corrupt_checkpoints" / "10").is_dir()
    assert int(state.step) == 10 and params_fingerprint(state) == expected


def test_all_checkpoints_damaged_is_an_error_not_a_fresh_start(tiny_config, tiny_data, tmp_path):
    train(tiny_config, tmp_path, data=tiny_data, progress=False)
    _damage_state_files(tmp_path / "checkpoints" / "5")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        train(tiny_config, tmp_path, data=tiny_data, progress=False)


def test_nan_guard_cli_exits_3_with_the_step(mnist_train, tmp_path, capsys):
    code = main(
        [
            "train",
            "gan",
            "--workdir",
            str(tmp_path),
            *TINY,
            "--steps",
            "50",
            "--learning-rate",
            "1e30",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3, err
    assert "became NaN/Inf by step 1;" in err and "no checkpoint was saved yet" in err
    assert "lower --learning-rate" in err.strip().splitlines()[-1]
    assert CheckpointStore(tmp_path).latest_step() is None


def test_nan_guard_keeps_the_last_good_checkpoint(tiny_config, tiny_data, tmp_path, monkeypatch):
    from gan_jax import loop

    real_runner = loop.make_runner

    def poisoned_runner(*args, **kwargs):
        run = real_runner(*args, **kwargs)

        def wrapped(state, batches):
            state, metrics, finite = run(state, batches)
            if int(state.step) > 3:
                metrics = {**metrics, "g_loss": metrics["g_loss"] * np.nan}
            return state, metrics, finite

        return wrapped

    monkeypatch.setattr(loop, "make_runner", poisoned_runner)
    config = dataclasses.replace(tiny_config, epochs=2, checkpoint_every=1)
    with pytest.raises(Diverged) as err:
        train(config, tmp_path, data=tiny_data, progress=False)
    assert err.value.exit_code == 3
    assert "g_loss became NaN/Inf by step 4" in str(
        err.value
    ) and "last good checkpoint is step 3" in str(err.value)
    assert CheckpointStore(tmp_path).latest_step() == 3
    assert read_rows(tmp_path) == [] and not (tmp_path / "samples").exists()


def test_full_disk_while_saving_keeps_older_checkpoints(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    config = dataclasses.replace(tiny_config, checkpoint_every=2)
    real_save = ocp.CheckpointManager.save

    def save(self, step, *args, **kwargs):
        if step >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    with pytest.raises(CheckpointError) as err:
        train(config, tmp_path, data=tiny_data, progress=False)
    message = str(err.value)
    assert (
        "step 4" in message
        and "No space left on device" in message
        and "resume from step 2" in message
    )
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    assert CheckpointStore(tmp_path).latest_step() == 2
    assert run_info(tmp_path)["step"] == 2


def test_same_seed_same_machine_gives_identical_metrics_and_parameters(
    tiny_config, tiny_data, tmp_path
):
    config = dataclasses.replace(tiny_config, epochs=2)
    a = train(config, tmp_path / "a", data=tiny_data, progress=False)
    b = train(config, tmp_path / "b", data=tiny_data, progress=False)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (
        tmp_path / "b" / "metrics.jsonl"
    ).read_text()
    assert params_fingerprint(a) == params_fingerprint(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_info_prints_one_json_line(tiny_config, tiny_data, tmp_path, capsys):
    state = train(tiny_config, tmp_path, data=tiny_data, progress=False)
    assert main(["info", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    got = json.loads(out)
    assert got["task"] == "gan" and got["step"] == 5
    assert got["config"] == tiny_config.to_dict()
    assert got["params_sha256"] == params_fingerprint(state) and len(got["params_sha256"]) == 64


def test_readers_leave_a_save_in_progress_alone_training_cleans_it(
    tiny_config, tiny_data, tmp_path
):
    train(tiny_config, tmp_path, data=tiny_data, progress=False)
    in_progress = tmp_path / "checkpoints" / "7.orbax-checkpoint-tmp-1234567890"
    in_progress.mkdir()
    (in_progress / "partial").write_text("x")
    assert run_info(tmp_path)["step"] == 5  # a reader: `gan-jax info` beside a running training
    assert in_progress.exists()
    train(dataclasses.replace(tiny_config, epochs=2), tmp_path, data=tiny_data, progress=False)
    assert not in_progress.exists()  # a training store removes interrupted saves


def test_a_workdir_in_training_is_refused_to_a_second_training(tiny_config, tiny_data, tmp_path):
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("process 4242")
        held.flush()
        with pytest.raises(CheckpointError, match="is being trained by process 4242"):
            train(tiny_config, tmp_path, data=tiny_data, progress=False)
        assert not (tmp_path / "checkpoints").exists()
    assert int(train(tiny_config, tmp_path, data=tiny_data, progress=False).step) == 5


def test_a_lost_peer_is_named_from_slurms_task_count(monkeypatch):
    # Under srun with GAN_JAX_DISTRIBUTED=auto no JAX_NUM_PROCESSES is set: SLURM says there are 2.
    from gan_jax import multihost

    for name in ("JAX_NUM_PROCESSES", "SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    closed = "RuntimeError: Gloo: Connection closed by peer [127.0.0.1]:1234\n"
    assert multihost.lost_peer(closed, "0") == "process 1 (its connection closed)"
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert multihost.lost_peer(closed, "0") == "a peer process (its connection closed)"
