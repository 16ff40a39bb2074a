"""gan_jax.workdir: the one-writer lock, asking who holds it, and what readers say meanwhile."""

import os

import pytest

from gan_jax import load_run
from gan_jax.cli import main
from gan_jax.errors import CheckpointError
from gan_jax.workdir import append_row, exclusive_workdir, keep_rows, read_rows, training_owner


def test_training_owner_names_the_process_only_while_it_holds_the_lock(tmp_path):
    assert training_owner(tmp_path) is None  # no lock file
    with exclusive_workdir(tmp_path):
        assert training_owner(tmp_path) == f"process {os.getpid()}"
        with pytest.raises(CheckpointError, match=f"is being trained by process {os.getpid()}"):
            with exclusive_workdir(tmp_path):
                pass
    assert (tmp_path / ".lock").exists() and training_owner(tmp_path) is None


def test_info_during_a_fresh_training_says_it_is_running(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()  # what a training creates before its first save
    with exclusive_workdir(tmp_path):
        with pytest.raises(
            CheckpointError, match="is being trained by process .* has no checkpoint yet"
        ):
            load_run(tmp_path)
        assert main(["info", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0
        and "has no checkpoint yet; the first is saved at an epoch's end" in err
    )
    assert main(["info", "--workdir", str(tmp_path)]) == 2  # no training: the usual message
    assert "no complete checkpoint in" in capsys.readouterr().err


def test_rows_append_and_keep(tmp_path):
    for step in (1, 2, 3):
        append_row(tmp_path, "m.jsonl", {"step": step})
    keep_rows(tmp_path, "m.jsonl", lambda row: row["step"] != 2)
    assert read_rows(tmp_path, "m.jsonl") == [{"step": 1}, {"step": 3}]
    assert read_rows(tmp_path, "absent.jsonl") == []


def test_a_row_cut_by_a_kill_is_dropped_when_the_run_resumes(tmp_path):
    for step in (1, 2):
        append_row(tmp_path, "m.jsonl", {"step": step})
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write('{"step": 3, "d_lo')  # SIGKILL between two writes of one append
    assert read_rows(tmp_path, "m.jsonl") == [{"step": 1}, {"step": 2}]
    keep_rows(tmp_path, "m.jsonl", lambda row: True)  # what a resume does first
    append_row(tmp_path, "m.jsonl", {"step": 3})
    assert read_rows(tmp_path, "m.jsonl") == [{"step": 1}, {"step": 2}, {"step": 3}]
    (tmp_path / "bad.jsonl").write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError):  # damage anywhere else is not hidden
        read_rows(tmp_path, "bad.jsonl")
