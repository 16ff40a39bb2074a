"""The driver's plan and hooks, each on its own: no training, no compiled step."""

import copy
import signal
import time

import numpy as np
import pytest

from gan_jax import hooks
from gan_jax.errors import Diverged, Preempted
from gan_jax.hooks import (
    Background,
    Call,
    CallResult,
    Checkpoints,
    EpochOutputs,
    EpochSums,
    LossRows,
    NanGuard,
    ProgressBar,
    SaveCadence,
    StopOnSignal,
    Timing,
    fresh_counters,
    plan_calls,
)
from gan_jax.workdir import MetricWriter, read_rows


class Task:
    """What the hooks read of a task: two losses, two members."""

    loss_keys = ("d_loss", "g_loss")
    members = ({"data_seed": 0}, {"data_seed": 1})


def result(d, g, finite=True, started=0.0, seconds=0.5):
    """A call's result: per-step losses `[steps, members]`."""
    return CallResult(
        {"d_loss": np.asarray(d, float), "g_loss": np.asarray(g, float)}, finite, started, seconds
    )


def test_the_plan_never_crosses_an_epoch_end_the_run_end_or_a_checkpoint_step():
    calls = list(plan_calls(3, 11, steps_per_epoch=5, steps_per_call=4))
    assert [(c.epoch, c.step, c.steps) for c in calls] == [
        (0, 3, 2),
        (1, 5, 4),
        (1, 9, 1),
        (2, 10, 1),
    ]
    # the run ends inside epoch 3: a partial epoch
    assert [(c.starts_epoch, c.completes_epoch, c.ends_epoch, c.is_last) for c in calls] == [
        (False, True, True, False),
        (True, False, False, False),
        (False, True, True, False),
        (True, False, True, True),
    ]
    with_saves = list(plan_calls(0, 10, steps_per_epoch=10, steps_per_call=10, checkpoint_every=4))
    assert [c.steps for c in with_saves] == [4, 4, 2]
    assert list(plan_calls(7, 7, 5, 4)) == []


def test_epoch_sums_give_per_member_means_and_start_again_after_a_complete_epoch():
    sums = EpochSums(Task(), fresh_counters(Task()))
    first, second = Call(0, 0, 2, 4, 8), Call(0, 2, 2, 4, 8)
    sums.after(first, None, result([[1, 2], [3, 4]], [[0, 0], [2, 2]], started=10.0))
    assert sums.ended is None and sums.running_means() == {"d_loss": 2.0, "g_loss": 1.0}
    sums.after(second, None, result([[5, 6], [7, 8]], [[0, 0], [0, 0]], started=11.0))
    # the window ended with the epoch
    assert sums.ended == {
        "loss_sums": {"d_loss": [16.0, 20.0], "g_loss": [2.0, 2.0]},
        "steps_in_epoch": 4,
        "window_sums": {"d_loss": [0.0, 0.0], "g_loss": [0.0, 0.0]},
        "steps_in_window": 0,
    }
    assert sums.counters == fresh_counters(Task())  # saved with the epoch-end checkpoint
    assert (sums.started, sums.started_step, sums.device_seconds) == (10.0, 0, 1.0)
    sums.after(Call(1, 4, 2, 4, 8), None, result([[0, 0]] * 2, [[0, 0]] * 2, started=20.0))
    assert (sums.started, sums.started_step, sums.device_seconds) == (20.0, 4, 0.5)


def test_epoch_sums_continue_from_restored_counters_inside_an_epoch():
    restored = {"loss_sums": {"d_loss": [4.0, 0.0], "g_loss": [2.0, 0.0]}, "steps_in_epoch": 2}
    sums = EpochSums(Task(), restored)
    sums.after(Call(0, 2, 2, 4, 8), None, result([[1, 1], [1, 1]], [[0, 0], [0, 0]]))
    assert sums.ended["steps_in_epoch"] == 4 and sums.ended["loss_sums"]["d_loss"] == [6.0, 2.0]
    assert sums.started_step == 2  # the timing row counts this process's steps only


class Store:
    """A checkpoint store that records saves."""

    def __init__(self):
        self.saved, self.waits = [], 0

    def save(self, step, state, config, counters):
        self.saved.append((step, dict(counters)))

    def wait(self):
        self.waits += 1

    def latest_step(self):
        return self.saved[-1][0] if self.saved else None


def test_nan_guard_names_what_diverged_and_the_last_good_checkpoint():
    store = Store()
    guard = NanGuard(Task(), store, Background())
    guard.after(Call(0, 0, 2, 4, 8), None, result([[1, 1], [1, 1]], [[1, 1], [1, 1]]))
    with pytest.raises(Diverged, match="no checkpoint was saved yet"):
        guard.after(Call(0, 0, 2, 4, 8), None, result([[1, np.nan]], [[1, 1]]))
    store.saved.append((2, {}))
    with pytest.raises(Diverged) as err:
        guard.after(Call(0, 2, 2, 4, 8), None, result([[1, 1]], [[np.inf, 1]], finite=False))
    assert str(err.value).startswith("g_loss and a parameter became NaN/Inf by step 4;")
    assert "the last good checkpoint is step 2" in str(err.value) and store.waits == 2


def _checkpoints(store, stop=None, every=None, seconds=3600.0):
    sums = EpochSums(Task(), fresh_counters(Task()))
    cadence = SaveCadence(seconds, clock=lambda: 0.0)
    return Checkpoints(
        store, {"task": "gan"}, sums, Background(), cadence, stop or StopOnSignal(), every
    )


def test_checkpoints_at_the_run_end_every_n_steps_on_a_stop_and_when_the_cadence_is_due():
    store = Store()
    hook = _checkpoints(store, every=3)
    for call in plan_calls(0, 8, steps_per_epoch=4, steps_per_call=4, checkpoint_every=3):
        hook.after(call, {"w": np.zeros(1)}, result([[0, 0]], [[0, 0]]))
    assert [step for step, _ in store.saved] == [3, 6, 8]  # the cadence (an hour) saw no epoch end

    due = _checkpoints(Store(), seconds=0.0)
    assert due.due(Call(0, 0, 4, 4, 8)) and not due.due(Call(0, 0, 2, 4, 8))
    stop = StopOnSignal()
    stop.signum = signal.SIGTERM
    stopping = _checkpoints(Store(), stop=stop)
    assert stopping.due(Call(0, 0, 1, 4, 8))


def test_a_stop_request_raises_after_the_save_with_the_resume_command(tmp_path):
    stop = StopOnSignal(tmp_path)
    stop.after(Call(0, 0, 1, 4, 8), None, result([[0, 0]], [[0, 0]]))  # nothing asked: goes on
    stop.signum = signal.SIGTERM
    # decided once per call (Checkpoints asked first): a signal during a call's hooks stops the next
    stop.after(Call(0, 0, 1, 4, 8), None, result([[0, 0]], [[0, 0]]))
    with pytest.raises(
        Preempted,
        match=f"stopped by SIGTERM at step 2; checkpoint saved in {tmp_path}; run the same command",
    ) as err:
        stop.after(Call(0, 1, 1, 4, 8), None, result([[0, 0]], [[0, 0]]))
    assert err.value.exit_code == 128 + signal.SIGTERM
    stop.after(Call(1, 4, 4, 4, 8), None, result([[0, 0]], [[0, 0]]))  # the last call: it ends


class Bar:
    def __init__(self):
        self.n, self.postfix = 0, None

    def update(self, n):
        self.n += n

    def set_postfix(self, postfix, refresh=True):
        self.postfix = postfix
        assert not refresh  # a redraw per call wrote 28 KB of bar for 150 steps into a log file


def test_progress_bar_counts_steps_and_shows_member_zeros_running_means():
    sums, bar = EpochSums(Task(), fresh_counters(Task())), Bar()
    hook = ProgressBar(bar, sums)
    for call, d in ((Call(0, 0, 1, 2, 4), 1.0), (Call(0, 1, 1, 2, 4), 2.0)):
        sums.after(call, None, result([[d, 9.0]], [[0.25, 9.0]]))
        hook.after(call, None, result([[d, 9.0]], [[0.25, 9.0]]))
    assert bar.n == 2 and bar.postfix == {"d_loss": "1.500", "g_loss": "0.250"}


def test_timing_rows_wait_for_their_epochs_outputs_and_split_the_time(tmp_path):
    class Outputs:
        last = None

    class Saves:
        blocked_seconds = 0.0

    writer = MetricWriter(tmp_path, ("timing.jsonl",))
    sums = EpochSums(Task(), fresh_counters(Task()))
    outputs, saves = Outputs(), Saves()
    background = Background()
    with Timing(writer, sums, outputs, saves) as timing, background:
        for epoch in range(2):
            call = Call(epoch, 2 * epoch, 2, 2, 4)
            sums.after(call, None, result([[0, 0]] * 2, [[0, 0]] * 2, started=sums.started or 0.0))
            job = background.submit(lambda: {"eval_seconds": 0.1, "outputs_seconds": 0.2})
            outputs.last = (job, {"epoch": epoch + 1, "seconds": 1.0})
            saves.blocked_seconds += 0.25
            timing.after(call, None, None)
            assert len(read_rows(tmp_path, "timing.jsonl")) == epoch  # the earlier epoch's row
    rows = read_rows(tmp_path, "timing.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["save_seconds"] == 0.25 and r["device_seconds"] == 0.5 for r in rows)
    assert all(r["eval_seconds"] == 0.1 and r["outputs_seconds"] == 0.2 for r in rows)


def test_background_jobs_after_a_failed_one_are_skipped_and_the_failure_surfaces():
    ran = []

    def fail():
        raise OSError(28, "No space left on device")

    background = Background()
    background.submit(ran.append, 1)
    background.submit(fail)
    background.submit(ran.append, 3)  # its rows would follow a gap
    with pytest.raises(OSError, match="No space left"):
        background.wait()
    assert ran == [1]


def test_epoch_outputs_submit_only_at_an_epoch_end():
    sums = EpochSums(Task(), fresh_counters(Task()))
    background = Background()
    outputs = EpochOutputs(None, sums, background, None)
    call = Call(0, 0, 1, 2, 4)
    sums.after(call, None, result([[0, 0]], [[0, 0]]))
    outputs.after(call, None, None)
    assert outputs.last is None and background.jobs == []


def test_loss_rows_every_n_steps_and_at_epoch_ends_whatever_the_calls_and_resumable(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(hooks, "LOSS_ROW_STEPS", 3)
    d = np.arange(16, dtype=float)  # step s has d_loss s for member 0, 100 + s for member 1

    def run(folder, plan, counters=None):
        folder.mkdir(exist_ok=True)
        sums = EpochSums(Task(), counters or fresh_counters(Task()))
        rows = LossRows(Task(), MetricWriter(folder, ("losses.jsonl",)), sums)
        for call in plan:
            losses = d[call.step : call.end]
            r = result(np.stack([losses, 100 + losses], -1), np.zeros((call.steps, 2)))
            sums.after(call, None, r)
            rows.after(call, None, r)
        return sums

    # 2 epochs of 7 steps, run to step 12 of 14: windows end at steps 3, 6, 7 (epoch end), 10 and
    # 12 (the run's end inside a window: partial)
    run(tmp_path / "a", plan_calls(0, 12, steps_per_epoch=7, steps_per_call=1))
    rows = read_rows(tmp_path / "a", "losses.jsonl")
    assert [
        (r["step"], r["steps"], r["data_seed"], r["d_loss"], r.get("partial", False))
        for r in rows[::2]
    ] == [
        (3, 3, 0, 1.0, False),
        (6, 3, 0, 4.0, False),
        (7, 1, 0, 6.0, False),
        (10, 3, 0, 8.0, False),
        (12, 2, 0, 10.5, True),
    ]
    assert rows[1]["data_seed"] == 1 and rows[1]["d_loss"] == 101.0
    # the same rows when each call is 5 steps: the windows are a function of the step only
    run(tmp_path / "b", plan_calls(0, 12, steps_per_epoch=7, steps_per_call=5))
    assert read_rows(tmp_path / "b", "losses.jsonl") == rows
    # stopped at step 8 (a checkpoint holds the counters), resumed to 12, then to the end (14):
    # the same rows as one run, the partial one replaced by the complete window and epoch end
    stopped = run(tmp_path / "c", plan_calls(0, 8, steps_per_epoch=7, steps_per_call=4))
    MetricWriter(tmp_path / "c", ("losses.jsonl",)).keep_complete_up_to(8)
    at_12 = run(
        tmp_path / "c",
        plan_calls(8, 12, steps_per_epoch=7, steps_per_call=4),
        copy.deepcopy(stopped.counters),
    )
    assert read_rows(tmp_path / "c", "losses.jsonl") == rows
    MetricWriter(tmp_path / "c", ("losses.jsonl",)).keep_complete_up_to(12)
    run(
        tmp_path / "c",
        plan_calls(12, 14, steps_per_epoch=7, steps_per_call=4),
        copy.deepcopy(at_12.counters),
    )
    run(tmp_path / "d", plan_calls(0, 14, steps_per_epoch=7, steps_per_call=7))
    assert read_rows(tmp_path / "c", "losses.jsonl") == read_rows(tmp_path / "d", "losses.jsonl")
    assert [r["step"] for r in read_rows(tmp_path / "d", "losses.jsonl")][::2] == (
        [3, 6, 7, 10, 13, 14]
    )


def test_counters_of_a_checkpoint_from_before_the_loss_windows_still_resume():
    sums = EpochSums(
        Task(), {"loss_sums": {"d_loss": [4.0, 0.0], "g_loss": [2.0, 0.0]}, "steps_in_epoch": 2}
    )
    sums.after(Call(0, 2, 2, 4, 8), None, result([[1, 1], [1, 1]], [[0, 0], [0, 0]]))
    assert sums.ended["loss_sums"]["d_loss"] == [6.0, 2.0]
    # the epoch's end closes the window
    assert [(step, n) for step, n, _, _ in sums.windows] == [(4, 2)]


def test_a_bar_on_a_log_file_writes_a_few_lines_not_one_per_step():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    written = {}
    for stream in (io.StringIO(), Terminal()):
        sums = EpochSums(Task(), fresh_counters(Task()))
        with hooks.progress_bar(150, file=stream) as bar:
            hook = ProgressBar(bar, sums)
            for call in plan_calls(0, 150, steps_per_epoch=150, steps_per_call=1):
                sums.after(call, None, result([[1.0, 1.0]], [[0.5, 0.5]]))
                hook.after(call, None, None)
                time.sleep(0.003)
        written[type(stream).__name__] = stream.getvalue()
    log_file = written["StringIO"]
    # first draw, the last (on close)
    assert len(log_file) < 600 and log_file.count("\r") <= 3, log_file
    assert "150/150" in log_file and "d_loss=1.000" in log_file
    # ~10 redraws a second on a terminal
    assert written["Terminal"].count("\r") > log_file.count("\r")
