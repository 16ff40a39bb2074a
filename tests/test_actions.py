"""The driver's plan and periodic actions, each on its own: no training, no compiled step."""

import copy
import signal
import time

import numpy as np
import pytest

from gan_jax import actions
from gan_jax.actions import (
    Background,
    Call,
    CallResult,
    Checkpoints,
    EpochOutputs,
    EpochSums,
    SaveCadence,
    StopOnSignal,
    Timing,
    check_finite,
    fresh_counters,
    plan_calls,
    show_progress,
    write_loss_rows,
)
from gan_jax.errors import Diverged, Preempted
from gan_jax.workdir import MetricWriter, read_rows


class Task:
    """What the actions read of a task: two losses, two members."""

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
    tally = sums.add(first, result([[1, 2], [3, 4]], [[0, 0], [2, 2]], started=10.0))
    assert tally.ended is None and tally.running_means() == {"d_loss": 2.0, "g_loss": 1.0}
    tally = sums.add(second, result([[5, 6], [7, 8]], [[0, 0], [0, 0]], started=11.0))
    # the window ended with the epoch
    assert tally.ended == {
        "loss_sums": {"d_loss": [16.0, 20.0], "g_loss": [2.0, 2.0]},
        "steps_in_epoch": 4,
        "window_sums": {"d_loss": [0.0, 0.0], "g_loss": [0.0, 0.0]},
        "steps_in_window": 0,
    }
    assert tally.counters == fresh_counters(Task())  # saved with the epoch-end checkpoint
    assert (tally.epoch_started, tally.epoch_started_step, tally.device_seconds) == (10.0, 0, 1.0)
    tally = sums.add(Call(1, 4, 2, 4, 8), result([[0, 0]] * 2, [[0, 0]] * 2, started=20.0))
    assert (tally.epoch_started, tally.epoch_started_step, tally.device_seconds) == (20.0, 4, 0.5)


def test_epoch_sums_continue_from_restored_counters_inside_an_epoch():
    restored = {"loss_sums": {"d_loss": [4.0, 0.0], "g_loss": [2.0, 0.0]}, "steps_in_epoch": 2}
    sums = EpochSums(Task(), restored)
    tally = sums.add(Call(0, 2, 2, 4, 8), result([[1, 1], [1, 1]], [[0, 0], [0, 0]]))
    assert tally.ended["steps_in_epoch"] == 4 and tally.ended["loss_sums"]["d_loss"] == [6.0, 2.0]
    assert tally.epoch_started_step == 2  # the timing row counts this process's steps only


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


def test_check_finite_names_what_diverged_and_the_last_good_checkpoint():
    store, background = Store(), Background()

    def check(call, res):
        check_finite(Task(), call, res, store, background)

    check(Call(0, 0, 2, 4, 8), result([[1, 1], [1, 1]], [[1, 1], [1, 1]]))
    with pytest.raises(Diverged, match="no checkpoint was saved yet"):
        check(Call(0, 0, 2, 4, 8), result([[1, np.nan]], [[1, 1]]))
    store.saved.append((2, {}))
    with pytest.raises(Diverged) as err:
        check(Call(0, 2, 2, 4, 8), result([[1, 1]], [[np.inf, 1]], finite=False))
    assert str(err.value).startswith("g_loss and a parameter became NaN/Inf by step 4;")
    assert "the last good checkpoint is step 2" in str(err.value) and store.waits == 2


def _checkpoints(store, every=None, seconds=3600.0):
    cadence = SaveCadence(seconds, clock=lambda: 0.0)
    return Checkpoints(store, {"task": "gan"}, Background(), cadence, every)


def test_checkpoints_at_the_run_end_every_n_steps_on_a_stop_and_when_the_cadence_is_due():
    store = Store()
    saves = _checkpoints(store, every=3)
    for call in plan_calls(0, 8, steps_per_epoch=4, steps_per_call=4, checkpoint_every=3):
        blocked = saves.save_if_due(call, {"w": np.zeros(1)}, {"steps_in_epoch": call.end})
        assert (blocked > 0) == (call.end in (3, 6, 8))
    assert store.saved == [
        (3, {"steps_in_epoch": 3}),
        (6, {"steps_in_epoch": 6}),
        (8, {"steps_in_epoch": 8}),
    ]

    due = _checkpoints(Store(), seconds=0.0)
    assert due.due(Call(0, 0, 4, 4, 8), False) and not due.due(Call(0, 0, 2, 4, 8), False)
    stopping = _checkpoints(store)
    assert stopping.save_if_due(Call(0, 0, 1, 4, 8), {}, {}, stopping=True) > 0
    assert store.saved[-1][0] == 1 and store.waits == 1  # a stop's save is finished before it


def test_a_stop_request_raises_after_the_save_with_the_resume_command(tmp_path):
    stop = StopOnSignal(tmp_path)
    assert stop.requested(Call(0, 0, 1, 4, 8)) == 0
    stop.stop_if_requested(Call(0, 0, 1, 4, 8))  # nothing asked: goes on
    stop.signum = signal.SIGTERM
    # decided once per call (the loop asks before saving): a signal during a call's actions stops
    # the next
    stop.stop_if_requested(Call(0, 0, 1, 4, 8))
    assert stop.requested(Call(0, 1, 1, 4, 8)) == signal.SIGTERM
    with pytest.raises(
        Preempted,
        match=f"stopped by SIGTERM at step 2; checkpoint saved in {tmp_path}; run the same command",
    ) as err:
        stop.stop_if_requested(Call(0, 1, 1, 4, 8))
    assert err.value.exit_code == 128 + signal.SIGTERM
    stop.stop_if_requested(Call(1, 4, 4, 4, 8))  # the last call: it ends


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
    for call, d in ((Call(0, 0, 1, 2, 4), 1.0), (Call(0, 1, 1, 2, 4), 2.0)):
        show_progress(bar, call, sums.add(call, result([[d, 9.0]], [[0.25, 9.0]])))
    assert bar.n == 2 and bar.postfix == {"d_loss": "1.500", "g_loss": "0.250"}


def test_timing_rows_wait_for_their_epochs_outputs_and_split_the_time(tmp_path):
    writer = MetricWriter(tmp_path, ("timing.jsonl",))
    sums = EpochSums(Task(), fresh_counters(Task()))
    background = Background()
    with Timing(writer) as timing, background:
        for epoch in range(2):
            for step in (2 * epoch, 2 * epoch + 1):  # two calls, the first saving for 0.25 s
                call = Call(epoch, step, 1, 2, 4)
                started = time.perf_counter() - 1.0  # the epoch's 1.0 s of compiled calls
                tally = sums.add(call, result([[0, 0]], [[0, 0]], started=started))
                outputs = None
                if call.ends_epoch:
                    job = background.submit(lambda: {"eval_seconds": 0.1, "outputs_seconds": 0.2})
                    outputs = (job, {"epoch": epoch + 1, "seconds": 1.0})
                timing.record(call, tally, outputs, 0.25 if step % 2 == 0 else 0.0)
            assert len(read_rows(tmp_path, "timing.jsonl")) == epoch  # the earlier epoch's row
    rows = read_rows(tmp_path, "timing.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["save_seconds"] == 0.25 and r["device_seconds"] == 1.0 for r in rows)
    assert all(0 <= r["host_seconds"] < 10 for r in rows)  # the rest of the epoch's wall time
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


def test_epoch_outputs_time_the_epoch_from_its_first_call_in_this_process():
    sums = EpochSums(Task(), fresh_counters(Task()))
    background = Background()
    submitted = []
    background.submit = lambda fn, *args: submitted.append(args) or "job"
    outputs = EpochOutputs(None, background, None)
    sums.add(Call(0, 0, 1, 2, 4), result([[0, 0]], [[0, 0]], started=time.perf_counter() - 2))
    call = Call(0, 1, 1, 2, 4)
    tally = sums.add(call, result([[4, 0]], [[0, 0]]))
    job, timing = outputs.submit(call, {"w": np.zeros(1)}, tally)
    assert job == "job" and (timing["epoch"], timing["step"], timing["steps"]) == (1, 2, 2)
    assert 2 <= timing["seconds"] < 60 and "partial" not in timing
    ((context, state, ended_call, counters, events, row),) = submitted
    assert ended_call == call and counters["loss_sums"]["d_loss"] == [4.0, 0.0]


def test_loss_rows_every_n_steps_and_at_epoch_ends_whatever_the_calls_and_resumable(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(actions, "LOSS_ROW_STEPS", 3)
    d = np.arange(16, dtype=float)  # step s has d_loss s for member 0, 100 + s for member 1

    def run(folder, plan, counters=None):
        folder.mkdir(exist_ok=True)
        sums = EpochSums(Task(), counters or fresh_counters(Task()))
        writer = MetricWriter(folder, ("losses.jsonl",))
        for call in plan:
            losses = d[call.step : call.end]
            r = result(np.stack([losses, 100 + losses], -1), np.zeros((call.steps, 2)))
            write_loss_rows(writer, Task(), sums.add(call, r))
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
    tally = sums.add(Call(0, 2, 2, 4, 8), result([[1, 1], [1, 1]], [[0, 0], [0, 0]]))
    assert tally.ended["loss_sums"]["d_loss"] == [6.0, 2.0]
    # the epoch's end closes the window
    assert [(step, n) for step, n, _, _ in tally.windows] == [(4, 2)]


def test_a_bar_on_a_log_file_writes_a_few_lines_not_one_per_step():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    written = {}
    for stream in (io.StringIO(), Terminal()):
        sums = EpochSums(Task(), fresh_counters(Task()))
        with actions.progress_bar(150, file=stream) as bar:
            for call in plan_calls(0, 150, steps_per_epoch=150, steps_per_call=1):
                show_progress(bar, call, sums.add(call, result([[1.0, 1.0]], [[0.5, 0.5]])))
                time.sleep(0.003)
        written[type(stream).__name__] = stream.getvalue()
    log_file = written["StringIO"]
    # first draw, the last (on close)
    assert len(log_file) < 600 and log_file.count("\r") <= 3, log_file
    assert "150/150" in log_file and "d_loss=1.000" in log_file
    # ~10 redraws a second on a terminal
    assert written["Terminal"].count("\r") > log_file.count("\r")
