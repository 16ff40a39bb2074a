"""What the training driver does besides compiled calls: a few independent periodic actions.

The driver (`gan_jax.loop`) runs, for each planned call (`plan_calls`), the compiled steps and then
these actions, in this order, written out in its loop:

1. `check_finite`: stops with `Diverged` before anything of a bad call is recorded or saved;
2. `EpochSums.add`: the loss sums, returning the call's `Tally`, which the actions after it read;
3. `write_loss_rows` (`losses.jsonl`) and `show_progress` (the bar);
4. at an epoch's end, `EpochOutputs.submit` (evaluation, rows, PNG, TensorBoard, in the
   `Background` thread) and `CollapseGuard.observe`;
5. `Checkpoints.save_if_due` (after the rows it covers), told whether a stop was requested;
6. `Timing.record` (`timing.jsonl`), given the epoch's outputs job and the seconds saves blocked;
7. `StopOnSignal.stop_if_requested`: `Preempted` once the checkpoint is saved.

Each action gets what it needs as arguments from the loop; none reads another's fields.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import logging
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import autonotebook, std
from tqdm.auto import tqdm

from gan_jax import best, collapse, parallel, plots
from gan_jax.checkpoint import CheckpointStore
from gan_jax.errors import Diverged, Preempted
from gan_jax.tasks import Task
from gan_jax.tensorboard import EventWriter
from gan_jax.workdir import LOSSES_FILE, METRICS_FILE, TIMING_FILE, MetricWriter

log = logging.getLogger("gan_jax")

SAVE_SHARE = 0.02  # the automatic save cadence keeps blocking saves under this share of the time
LOSS_ROW_STEPS = 10  # losses.jsonl: one row per this many steps (and one at each epoch's end)
QUIET_BAR_SECONDS = 60.0  # a progress bar not drawn on a terminal redraws at most this often


@dataclasses.dataclass(frozen=True)
class Call:
    """One compiled call of the plan: `steps` steps from `step`, never across an epoch's end.

    Attributes:
      epoch: 0-based epoch of the call's steps.
      step: the global step the call starts at (steps done before it).
      steps: steps in the call (≥ 1).
      steps_per_epoch: the epoch's steps; epoch `e` spans steps `[e * steps_per_epoch, ...)`.
      total: the step the run ends at.
    """

    epoch: int
    step: int
    steps: int
    steps_per_epoch: int
    total: int

    @property
    def end(self) -> int:
        """The global step after the call."""
        return self.step + self.steps

    @property
    def starts_epoch(self) -> bool:
        return self.step == self.epoch * self.steps_per_epoch

    @property
    def completes_epoch(self) -> bool:
        """The call finishes the epoch's last step."""
        return self.end == (self.epoch + 1) * self.steps_per_epoch

    @property
    def ends_epoch(self) -> bool:
        """The epoch trains no further in this run: it is complete, or the run ends inside it."""
        return self.completes_epoch or self.is_last

    @property
    def is_last(self) -> bool:
        return self.end == self.total


def plan_calls(
    start: int,
    total: int,
    steps_per_epoch: int,
    steps_per_call: int,
    checkpoint_every: int | None = None,
) -> Iterator[Call]:
    """The compiled calls from step `start` to `total`: at most `steps_per_call` steps each, never
    across an epoch's end or a multiple of `checkpoint_every` (so a checkpoint can fall there)."""
    step = start
    while step < total:
        epoch = step // steps_per_epoch
        steps = min(steps_per_call, (epoch + 1) * steps_per_epoch - step, total - step)
        if checkpoint_every:
            steps = min(steps, checkpoint_every - step % checkpoint_every)
        yield Call(epoch, step, steps, steps_per_epoch, total)
        step += steps


def every(step: int, n: int | None) -> bool:
    """Whether `step` is on the schedule "every `n` steps" (never when `n` is None or 0)."""
    return n is not None and n != 0 and step % n == 0


@dataclasses.dataclass(frozen=True)
class CallResult:
    """What a compiled call returned to the host.

    Attributes:
      metrics: each of the task's `loss_keys` → float array `[steps]` or `[steps, members]`.
      finite: every model array of the new state is finite.
      started: `time.perf_counter()` when the call was dispatched.
      seconds: from dispatch until its metrics were on the host (compilation included).
    """

    metrics: dict[str, np.ndarray]
    finite: bool
    started: float
    seconds: float


@jax.jit
def device_copy(tree: Any) -> Any:
    """A copy of `tree` on its devices, safe to read while the next compiled call donates `tree`."""
    return jax.tree.map(jnp.copy, tree)


class Background:
    """One worker thread for each epoch's host work (evaluation, rows, PNG, TensorBoard), which thus
    overlaps the next compiled calls. Jobs run in submission order; once one fails, later ones are
    skipped (their rows would follow a gap). `wait` blocks until all are done and re-raises the
    first failure; leaving the context waits too."""

    class Skipped(Exception):
        """The job did not run: an earlier one failed."""

    def __init__(self, mesh: Any = None):
        self.mesh = mesh
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gan_jax_outputs")
        self.jobs: list[concurrent.futures.Future] = []
        self.failed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        job = self.pool.submit(self._run, fn, *args)
        self.jobs.append(job)
        return job

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.failed:
            raise self.Skipped("an earlier epoch's outputs failed")
        try:
            with parallel.use_mesh(self.mesh):  # the mesh context is per thread
                return fn(*args)
        except BaseException:
            self.failed = True
            raise

    def wait(self, quietly: bool = False) -> None:
        """Blocks until every job is done; re-raises the first failure, or with `quietly` logs
        it."""
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            if not quietly:
                job.result()
            elif job.exception() is not None and not isinstance(job.exception(), self.Skipped):
                log.error("the outputs of an epoch failed: %s", job.exception())

    def __enter__(self) -> Background:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> Literal[False]:
        if exc_type is KeyboardInterrupt:  # a second Ctrl-C: leave now, losing an epoch's outputs
            self.pool.shutdown(wait=False, cancel_futures=True)
            return False
        try:  # keep finished epochs' rows; report the exception in flight
            self.wait(quietly=exc_type is not None)
        finally:
            self.pool.shutdown(wait=True)
        return False


def check_finite(
    task: Task, call: Call, result: CallResult, store: CheckpointStore, background: Background
) -> None:
    """Raises `Diverged` when a call's losses or new parameters are NaN/Inf, after finishing the
    earlier epochs' rows and saves; the bad state is never saved."""
    bad = [k for k in task.loss_keys if not np.all(np.isfinite(result.metrics[k]))]
    bad += [] if result.finite else ["a parameter"]
    if not bad:
        return
    background.wait(quietly=True)  # the earlier epochs' rows first; their failure would hide this
    store.wait()
    good = store.latest_step()
    kept = (
        "no checkpoint was saved yet"
        if good is None
        else f"the last good checkpoint is step {good}"
    )
    raise Diverged(
        f"{' and '.join(bad)} became NaN/Inf by step {call.end}; the bad state was "
        f"not saved, {kept}; lower --learning-rate or change --seed"
    )


def fresh_counters(task: Task) -> dict[str, Any]:
    """Per-member loss sums of an epoch so far, and of its current `LOSS_ROW_STEPS` window
    (JSON-ready: stored in checkpoints)."""
    return {
        "loss_sums": {k: [0.0] * len(task.members) for k in task.loss_keys},
        "steps_in_epoch": 0,
        **_fresh_window(task),
    }


def _fresh_window(task: Task) -> dict[str, Any]:
    return {
        "window_sums": {k: [0.0] * len(task.members) for k in task.loss_keys},
        "steps_in_window": 0,
    }


Window = tuple[int, int, dict[str, list[float]], bool]  # (end step, steps, loss means, partial)


@dataclasses.dataclass(frozen=True)
class Tally:
    """The loss sums after a call, as the actions after it read them.

    Attributes:
      counters: the running counters a checkpoint of this step stores (fresh after a complete
        epoch).
      ended: at an epoch's end (complete, or the run's end inside it), that epoch's counters;
        else None.
      windows: the `LOSS_ROW_STEPS` windows that ended in the call: `(end step, steps,
        {loss: per-member means}, partial)`; the run's last call adds its unfinished window with
        `partial` True.
      epoch_started: `time.perf_counter()` when this process began the epoch's first call.
      epoch_started_step: the step it began at (a resumed epoch counts this process's steps).
      device_seconds: the epoch's seconds inside compiled calls, in this process.
    """

    counters: dict[str, Any]
    ended: dict[str, Any] | None
    windows: list[Window]
    epoch_started: float
    epoch_started_step: int
    device_seconds: float

    def running_means(self) -> dict[str, float]:
        """Member 0's mean of each loss over the epoch so far (NaN before its first step)."""
        counters = self.ended or self.counters
        steps = counters["steps_in_epoch"]
        return {
            k: sums[0] / steps if steps else float("nan")
            for k, sums in counters["loss_sums"].items()
        }


class EpochSums:
    """The current epoch's per-member loss sums and steps (`counters`, saved with each checkpoint,
    so a run resumed inside an epoch reports the same means), each `LOSS_ROW_STEPS` window's sums
    (a window also ends at an epoch's end), and when the epoch started in this process and its
    time inside compiled calls. A complete epoch's sums start again from zero."""

    def __init__(self, task: Task, counters: dict[str, Any]):
        self.task, self.counters = task, counters
        if "window_sums" not in counters:  # a checkpoint written before the windows existed
            counters.update(_fresh_window(task))
        self.started: float | None = None
        self.started_step = 0
        self.device_seconds = 0.0

    def add(self, call: Call, result: CallResult) -> Tally:
        """Adds a call's per-step losses; returns the tally the later actions read."""
        if self.started is None or call.starts_epoch:
            self.started, self.started_step, self.device_seconds = result.started, call.step, 0.0
        values = {  # [steps, members]
            k: np.asarray(result.metrics[k], np.float64).reshape(len(result.metrics[k]), -1)
            for k in self.counters["loss_sums"]
        }
        steps = 0
        for key, sums in self.counters["loss_sums"].items():
            steps = len(values[key])
            self.counters["loss_sums"][key] = (np.asarray(sums) + values[key].sum(axis=0)).tolist()
        self.counters["steps_in_epoch"] += steps
        windows = self._windows(call, values, steps)
        self.device_seconds += result.seconds
        ended = copy.deepcopy(self.counters) if call.ends_epoch else None
        if call.completes_epoch:
            self.counters = fresh_counters(self.task)
        return Tally(
            self.counters, ended, windows, self.started, self.started_step, self.device_seconds
        )

    def _windows(self, call: Call, values: dict[str, np.ndarray], steps: int) -> list[Window]:
        """Adds the call's per-step losses (`values`: `[steps, members]` each) to the window sums;
        returns the windows that ended in it."""
        counters, done, i = self.counters, [], 0
        while i < steps:
            take = min(steps - i, LOSS_ROW_STEPS - counters["steps_in_window"])
            for key, sums in counters["window_sums"].items():
                added = np.asarray(sums) + values[key][i : i + take].sum(axis=0)
                counters["window_sums"][key] = added.tolist()
            counters["steps_in_window"] += take
            i += take
            full = counters["steps_in_window"] >= LOSS_ROW_STEPS
            if full or (i == steps and (call.completes_epoch or call.is_last)):
                n = counters["steps_in_window"]
                means = {k: [v / n for v in sums] for k, sums in counters["window_sums"].items()}
                partial = not full and not call.completes_epoch
                done.append((call.step + i, n, means, partial))
                if not partial:
                    counters.update(_fresh_window(self.task))
        return done


def write_loss_rows(writer: MetricWriter, task: Task, tally: Tally) -> None:
    """Appends to `losses.jsonl` one row per member for each window of the call, `{"step",
    "steps", member, loss means}`, plus `"partial": true` for the run's unfinished last window (so
    that `losses.png` of a short run is a curve), before the checkpoint that covers them."""
    rows = [
        {
            "step": step,
            "steps": steps,
            **member,
            **{k: v[i] for k, v in means.items()},
            **({"partial": True} if partial else {}),
        }
        for step, steps, means, partial in tally.windows
        for i, member in enumerate(task.members)
    ]
    if rows:
        writer.extend(LOSSES_FILE, rows)


def progress_bar(
    total: int, initial: int = 0, enabled: bool = True, file: Any = None, **kwargs: Any
) -> Any:
    """A tqdm bar over a run's steps, on `file` (default: `sys.stderr` of the moment).

    On a terminal, or as a notebook widget, it redraws up to 10 times a second; on any other
    stream (a log file, CI) at most once per `QUIET_BAR_SECONDS`, so a log gets a few hundred
    bytes a minute rather than a redraw per step (the epoch lines come through the logger).
    """
    file = sys.stderr if file is None else file
    interval = 0.1 if _redraws_in_place(file) else QUIET_BAR_SECONDS
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        disable=not enabled,
        dynamic_ncols=True,
        file=file,
        mininterval=interval,
        maxinterval=max(10.0, interval),
        **kwargs,
    )


def _redraws_in_place(stream: Any) -> bool:
    """Whether a bar on `stream` redraws in place: a terminal, or tqdm's notebook widget."""
    if autonotebook.tqdm is not std.tqdm:  # in a Jupyter kernel: a widget, not text
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def show_progress(bar: Any, call: Call, tally: Tally) -> None:
    """Advances the bar by the call's steps, showing member 0's running loss means of the epoch;
    it redraws when the bar's own interval allows (`progress_bar`), never on every call."""
    means = tally.running_means()
    bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
    bar.update(call.steps)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What an epoch's outputs read: the task, where rows go, and the evaluation split."""

    task: Task
    workdir: pathlib.Path
    writer: MetricWriter
    test_data: Any
    val_data: Any = None  # a classifier's validation split: scored each epoch, its best kept


class EpochOutputs:
    """At each epoch's end (also a partial one at the run's end), submits to the background thread:
    the evaluation, one metrics row and one log line per member, the epoch's speed line, the
    sample grid PNG and TensorBoard events."""

    def __init__(self, run: RunContext, background: Background, events: EventWriter | None):
        self.run, self.background, self.events = run, background, events

    def submit(
        self, call: Call, state: Any, tally: Tally
    ) -> tuple[concurrent.futures.Future, dict[str, Any]]:
        """Submits the outputs of the epoch `call` ends; returns the job (its result: the seconds
        of evaluation and of the rest) and the epoch's timing."""
        assert tally.ended is not None
        seconds = time.perf_counter() - tally.epoch_started
        steps = call.end - tally.epoch_started_step
        timing = {
            "epoch": call.epoch + 1,
            "step": call.end,
            "steps": steps,
            "seconds": round(seconds, 3),
            "steps_per_s": steps / seconds,
            "device": jax.devices()[0].device_kind,
            **({} if call.completes_epoch else {"partial": True}),
        }
        job = self.background.submit(
            write_epoch_outputs,
            self.run,
            device_copy(state),
            call,
            tally.ended,
            self.events,
            dict(timing),
        )
        return job, timing


def write_epoch_outputs(
    run: RunContext,
    state: Any,
    call: Call,
    counters: dict[str, Any],
    events: EventWriter | None,
    timing: dict[str, Any],
) -> dict[str, float]:
    """The host work of an epoch's end (in the background thread): evaluation, rows, log lines,
    sample grid, TensorBoard. Returns its seconds of evaluation and of the rest."""
    task, started = run.task, time.perf_counter()
    evaluation = task.evaluate(state, run.test_data)
    if run.val_data is not None:
        scores = task.evaluate(state, run.val_data)
        evaluation.update({k.replace("test_", "val_", 1): v for k, v in scores.items()})
        if run.writer.enabled and call.completes_epoch:
            mean = float(np.mean(evaluation["val_accuracy"]))
            best.record(run.workdir, state, mean, call.epoch + 1)
    eval_seconds = time.perf_counter() - started
    rows = _metrics_rows(task, call, counters, evaluation)
    for member, row in zip(task.members, rows, strict=True):
        run.writer.append(METRICS_FILE, row)
        names = "".join(f" {k} {v}" for k, v in member.items())
        values = " ".join(
            f"{k} {_number(v)}" for k, v in row.items() if k in task.loss_keys or k in evaluation
        )
        log.info(
            "epoch %d step %d%s%s: %s",
            call.epoch + 1,
            call.end,
            names,
            "" if call.completes_epoch else " (partial)",
            values,
        )
    log.info(
        "epoch %d: %d steps in %.1f s (%.2f steps/s), evaluation %.1f s",
        call.epoch + 1,
        timing["steps"],
        timing["seconds"],
        timing["steps_per_s"],
        eval_seconds,
    )
    if run.writer.enabled:
        samples = task.sample_grid(state)
        if samples is not None:
            plots.save_grid(run.workdir / "samples" / f"epoch_{call.epoch + 1:04d}.png", samples)
        if events is not None:
            events.epoch(call.end, rows, timing, samples)
    return {
        "eval_seconds": round(eval_seconds, 3),
        "outputs_seconds": round(time.perf_counter() - started - eval_seconds, 3),
    }


def _metrics_rows(
    task: Task, call: Call, counters: dict[str, Any], evaluation: dict[str, list[float]]
) -> list[dict[str, Any]]:
    """metrics.jsonl's rows of the epoch `call` ends, one per member: its mean losses (from the
    epoch's `counters`) and its evaluation."""
    partial = {} if call.completes_epoch else {"partial": True}
    return [
        {
            "epoch": call.epoch + 1,
            "step": call.end,
            **member,
            **{k: v[i] / counters["steps_in_epoch"] for k, v in counters["loss_sums"].items()},
            **{k: v[i] for k, v in evaluation.items()},
            **partial,
        }
        for i, member in enumerate(task.members)
    ]


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class CollapseGuard:
    """Warns (one line per member, once per episode) when an adversarial task's per-epoch losses
    show the collapse pattern of `gan_jax.collapse`; silent for other tasks.

    Args:
      task: its `adversarial_losses` name the (real/fake, generator) losses watched.
      rows: the run's metrics rows so far (a resumed run's history; partial rows are skipped).
      background: where the warning is logged, after the epoch's rows; None: at once.
    """

    def __init__(
        self,
        task: Task,
        rows: list[dict[str, Any]],
        background: Background | None = None,
    ):
        self.task, self.background = task, background
        self.keys = task.adversarial_losses
        self.history: list[dict[str, list[float]]] = []  # per member: loss → per-epoch means
        for member in task.members:
            mine = [
                r
                for r in rows
                if not r.get("partial") and all(r.get(k) == v for k, v in member.items())
            ]
            self.history.append({k: [r[k] for r in mine] for k in self.keys or ()})

    def observe(self, call: Call, tally: Tally) -> None:
        """Adds a complete epoch's means (`tally.ended`) to the history and warns if due."""
        counters = tally.ended
        if self.keys is None or not call.completes_epoch or counters is None:
            return
        for i, losses in enumerate(self.history):
            for key in self.keys:
                losses[key].append(counters["loss_sums"][key][i] / counters["steps_in_epoch"])
        if self.background is None:
            self.warn(call.epoch, self.history)
        else:
            self.background.submit(self.warn, call.epoch, copy.deepcopy(self.history))

    def warn(self, epoch: int, history: list[dict[str, list[float]]]) -> None:
        """Logs `collapse.warning` for each member whose losses just began the pattern."""
        assert self.keys is not None
        d_key, g_key = self.keys
        for member, losses in zip(self.task.members, history, strict=False):
            d, g = losses[d_key], losses[g_key]
            if collapse.newly_collapsing(d, g):
                log.warning(collapse.warning(epoch + 1, member, d_key, g_key, d, g))


class SaveCadence:
    """Whether an epoch's end is time for a checkpoint (see `loop.Outputs.checkpoint_seconds`):
    every `seconds`, or with None, once `SAVE_SHARE` of the time since the last save covers it."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.last_end, self.last_cost = clock(), 0.0

    def due(self) -> bool:
        since = self.clock() - self.last_end
        if self.seconds is not None:
            return since >= self.seconds
        return since * SAVE_SHARE >= self.last_cost

    def saved(self, started: float) -> None:
        """Records a save that began at `started` (this clock) and has just ended."""
        self.last_end = self.clock()
        self.last_cost = self.last_end - started


class StopOnSignal:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current compiled call
    (the loop saves a checkpoint, then `stop_if_requested` raises `Preempted`). A second SIGINT
    (Ctrl-C again) raises KeyboardInterrupt at once; a repeated SIGTERM changes nothing (a
    scheduler may signal both a supervisor and its worker, and it follows a SIGTERM with SIGKILL
    when it means it).

    In a multi-host run the processes agree after every call whether any of them was signalled
    (one tiny all-gather), so all of them save the same step and stop together, wherever the
    signal arrived first. Handlers are installed only in the main thread (elsewhere Python forbids
    it) and restored on exit."""

    def __init__(self, workdir: pathlib.Path | None = None):
        self.workdir = workdir
        self.signum: int | None = None  # the signal this process received
        self._previous: dict[int, Any] = {}
        self._agreed: tuple[int, int] | None = None  # (call.end, signal of any process or 0)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signum = signum
        log.warning(
            "%s received: finishing the current step and saving a checkpoint "
            "(Ctrl-C again exits at once)",
            signal.Signals(signum).name,
        )

    def __exit__(self, *exc: Any) -> Literal[False]:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def requested(self, call: Call) -> int:
        """The signal that stops the run after `call` (0: none): this process's, or in a
        multi-host run any process's (the same answer in every process)."""
        if self._agreed is None or self._agreed[0] != call.end:
            signum = self.signum or 0
            if jax.process_count() > 1:
                from jax.experimental import multihost_utils

                signum = int(np.max(multihost_utils.process_allgather(np.int32(signum))))
            self._agreed = (call.end, signum)
        return self._agreed[1]

    def stop_if_requested(self, call: Call) -> None:
        """Raises `Preempted` after `call` when a stop was requested, unless the run ends anyway."""
        signum = self.requested(call)
        if signum and not call.is_last:
            raise Preempted(
                f"stopped by {signal.Signals(signum).name} at step {call.end}; "
                f"checkpoint saved in {self.workdir}; run the same command to resume",
                signum,
            )


class Checkpoints:
    """Saves a device copy of the state: every `checkpoint_every` steps, at the run's end, when a
    stop is requested, and at epoch ends when the cadence says so. A save waits for the rows it
    covers (the background's jobs) first; the save's wait for an earlier one is all that blocks."""

    def __init__(
        self,
        store: CheckpointStore,
        config: dict[str, Any],
        background: Background,
        cadence: SaveCadence,
        checkpoint_every: int | None,
    ):
        self.store, self.config, self.background = store, config, background
        self.cadence, self.checkpoint_every = cadence, checkpoint_every

    def due(self, call: Call, stopping: bool) -> bool:
        if stopping or every(call.end, self.checkpoint_every):
            return True
        return call.ends_epoch and (call.is_last or self.cadence.due())

    def save_if_due(
        self, call: Call, state: Any, counters: dict[str, Any], stopping: bool = False
    ) -> float:
        """Saves `state` and the loss `counters` of step `call.end` when due (`stopping`: a stop
        was requested, so the save is also finished); returns the seconds it blocked (0 if none)."""
        if not self.due(call, stopping):
            return 0.0
        started = time.perf_counter()
        self.background.wait()  # a checkpoint is written only after the rows it covers
        saving = time.perf_counter()  # the cadence weighs the save alone
        self.store.save(call.end, device_copy(state), self.config, counters)
        self.cadence.saved(saving)
        if stopping:
            self.store.wait()
        return time.perf_counter() - started


class Timing:
    """Writes one `timing.jsonl` row per epoch: its steps and speed, and its wall time in the
    loop's thread split into compiled calls (`device_seconds`) and the rest (`host_seconds`, of
    which `save_seconds` blocked on checkpoints), with the background's `eval_seconds` and
    `outputs_seconds`. A row waits for its epoch's outputs, so it is written at a later epoch's
    end (or at exit, if they finished)."""

    def __init__(self, writer: MetricWriter):
        self.writer = writer
        self.pending: list[tuple[concurrent.futures.Future, dict[str, Any]]] = []
        self.save_seconds = 0.0  # the current epoch's, in this process

    def record(
        self,
        call: Call,
        tally: Tally,
        outputs: tuple[concurrent.futures.Future, dict[str, Any]] | None,
        save_seconds: float,
    ) -> None:
        """Adds the call's blocked `save_seconds`; at an epoch's end, queues its row with the
        epoch's `outputs` (`EpochOutputs.submit`'s job and timing)."""
        self.save_seconds += save_seconds
        if not call.ends_epoch:
            return
        assert outputs is not None
        self.write(done_only=False)  # the earlier epochs': their outputs had this epoch to finish
        job, timing = outputs
        host = time.perf_counter() - tally.epoch_started - tally.device_seconds
        row = {
            **timing,
            "save_seconds": round(self.save_seconds, 3),
            "device_seconds": round(tally.device_seconds, 3),
            "host_seconds": round(host, 3),
        }
        self.pending.append((job, row))
        self.save_seconds = 0.0

    def write(self, done_only: bool = True) -> None:
        """Writes the pending rows (waiting for their outputs); `done_only` skips failed,
        cancelled or unfinished ones instead."""
        while self.pending:
            job, row = self.pending.pop(0)
            if done_only and not (job.done() and not job.cancelled() and job.exception() is None):
                continue
            self.writer.append(TIMING_FILE, {**row, **job.result()})

    def __enter__(self) -> Timing:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.write(done_only=True)
        return False
