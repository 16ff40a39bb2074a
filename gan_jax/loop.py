"""The one host loop: epochs, progress, metrics, sample PNGs, Orbax checkpoints, resume, signals.

It knows nothing of a task's maths: it talks to the task (`gan_jax.tasks.make_task(config)`) only
through the `gan_jax.tasks.Task` protocol (data, plan, init, the pure `step` compiled by
`steps.make_runner`, `evaluate`, `sample_grid`, `loss_keys`, `members`, `adversarial_losses`).
Everything a step draws is a function of (seed, step), so a run killed at any moment and restarted
with the same command ends bit-identical to an uninterrupted one.

Files in WORKDIR: `metrics.jsonl` (per-epoch mean losses and evaluation, one row per member;
deterministic), `timing.jsonl` (per epoch: throughput; `device_seconds` inside the compiled calls
until their metrics arrive, compilation included; `host_seconds` the rest of the epoch's wall time
in the loop's thread, of which `save_seconds`: at an epoch that saves, the wait for that epoch's
outputs (a checkpoint follows the rows it covers) and the blocking part of the asynchronous save;
`eval_seconds` and `outputs_seconds` (rows, samples, PNG, TensorBoard) of the epoch's end, which runs
in a background thread while the next epoch trains; varies; an epoch's timing row is written when
the next epoch ends, so a run killed in between lacks it), `samples/epoch_NNNN.png`,
`checkpoints/`, TensorBoard event files (`gan_jax.tensorboard`), and at the end `real_vs_generated.png`
and `losses.png`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import logging
import os
import pathlib
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from gan_jax import collapse, parallel, plots
from gan_jax.checkpoint import CheckpointStore
from gan_jax.config import require_positive
from gan_jax.devices import warn_once_if_accelerator_unused
from gan_jax.data import Split, check_images, load, to_unit_range
from gan_jax.data import dataset
from gan_jax.errors import CheckpointError, ConfigError, Diverged, Preempted
from gan_jax.steps import TrainState, make_runner
from gan_jax.tasks import Task, make_task
from gan_jax.tensorboard import EventWriter
from gan_jax.workdir import MetricWriter, check_workdir, exclusive_workdir, read_rows

log = logging.getLogger("gan_jax")

METRICS_FILE = "metrics.jsonl"
TIMING_FILE = "timing.jsonl"


def check_resumable(config, stored: dict[str, Any], workdir: pathlib.Path) -> None:
    """Refuses to continue a run whose stored config differs in a result-deciding field."""
    if stored.get("task") != config.task:
        raise CheckpointError(
            f"{workdir} holds checkpoints of task {stored.get('task')!r}, not {config.task!r}; "
            "pass a different --workdir"
        )
    conflicts = config.conflicts_with(stored)
    if conflicts:
        detail = ", ".join(f"{k}: stored {stored.get(k)!r} vs requested {config.to_dict().get(k)!r}"
                           for k in conflicts)
        raise CheckpointError(
            f"{workdir} holds a run with a different configuration ({detail}); "
            "repeat the stored options to resume, or pass a different --workdir"
        )


def read_metrics(workdir: str | os.PathLike, name: str = METRICS_FILE) -> list[dict[str, Any]]:
    """The rows of `WORKDIR/metrics.jsonl` (or another jsonl file there); empty when absent."""
    return read_rows(workdir, name)


def every(step: int, n: int | None) -> bool:
    """Whether `step` is on the schedule "every `n` steps" (never when `n` is None or 0)."""
    return bool(n) and step % n == 0


def steps_to_next(step: int, n: int | None, limit: int) -> int:
    """Steps from `step` to the next multiple of `n`, at most `limit` (`limit` when `n` is None)."""
    return min(limit, n - step % n) if n else limit


class _StopOnSignal:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current compiled call.

    A second signal raises KeyboardInterrupt at once. Handlers are installed only in the main
    thread (elsewhere Python forbids it) and restored on exit.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: finishing the current step and saving a checkpoint "
                    "(Ctrl-C again exits at once)", signal.Signals(signum).name)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def _fresh_counters(task) -> dict[str, Any]:
    """Per-member loss sums of the epoch so far (JSON-serializable: stored in checkpoints)."""
    return {"loss_sums": {k: [0.0] * len(task.members) for k in task.loss_keys}, "steps_in_epoch": 0}


@dataclasses.dataclass(frozen=True)
class Outputs:
    """How a training shows progress and what it keeps besides metrics.jsonl (never results).

    Attributes:
      progress: show a progress bar.
      keep_checkpoints: newest checkpoints kept in `WORKDIR/checkpoints` (older ones are deleted).
      tensorboard: write TensorBoard event files beside metrics.jsonl (`gan_jax.tensorboard`).
      checkpoint_seconds: save at an epoch's end only once this many seconds have passed since the
        last save; 0 saves every epoch. None (default) decides from the last save's duration, so that
        at most `SAVE_SHARE` of the time goes to blocking on saves: every epoch on a CPU (minutes per
        epoch), every dozen or so epochs on a GPU (predicted, not measured). The run's end, a signal and
        `checkpoint_every` always save.
    """

    progress: bool = True
    keep_checkpoints: int = 3
    tensorboard: bool = True
    checkpoint_seconds: float | None = None

    def __post_init__(self):
        require_positive("keep_checkpoints", self.keep_checkpoints)
        if self.checkpoint_seconds is not None and not self.checkpoint_seconds >= 0:
            raise ConfigError(f"checkpoint_seconds must be >= 0, got {self.checkpoint_seconds!r}; pass 0 to save "
                              "every epoch")


SAVE_SHARE = 0.02


class SaveCadence:
    """Whether an epoch's end is time for a checkpoint (see `Outputs.checkpoint_seconds`)."""

    def __init__(self, seconds: float | None, clock=time.perf_counter):
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


def train(config, workdir: str | os.PathLike, *, data: Split | None = None, test_data: Split | None = None,
          progress: bool = True, devices: int | None = None, keep_checkpoints: int = 3,
          tensorboard: bool = True, checkpoint_seconds: float | None = None) -> TrainState:
    """Trains (or resumes) a run in `workdir` and returns the final state.

    Args:
      config: the run's configuration (`GANConfig`, `SGANConfig` or `SupervisedConfig`).
      workdir: holds checkpoints, metrics and images (see the module docstring).
      data: training images (uint8 `[N, H, W, C]`) and labels; default: the config's dataset's
        training split (`gan_jax.data.load(config.dataset, 'train')`).
      test_data: evaluation split for classifier tasks; default: that dataset's test split.
      progress: show a progress bar. Epoch lines go to the `gan_jax` logger either way.
      devices: data-parallel over the first `devices` devices (default: all of them; see
        `gan_jax.parallel`). Results agree across device counts up to float32 summation order.
      keep_checkpoints: newest checkpoints to keep (each holds both models and their Adam states).
      tensorboard: also write TensorBoard event files into `workdir`.
      checkpoint_seconds: least seconds between epoch-end checkpoints; None: automatic, at most 2 %
        of the time saving (see `Outputs`). Results never depend on it.
    Raises:
      ConfigError, CheckpointError, DataError: user mistakes, with a one-line message.
      Preempted: SIGINT/SIGTERM arrived; a checkpoint of the last finished step was saved.
      Diverged: a loss or parameter became NaN/Inf; the last good checkpoint is kept.
    """
    task = make_task(config)
    outputs = Outputs(progress, keep_checkpoints, tensorboard, checkpoint_seconds)
    mesh = parallel.data_mesh(devices)
    workdir = check_workdir(workdir)
    if (workdir / "checkpoints").is_dir():
        with CheckpointStore(workdir, create=False) as existing:
            if existing.latest_step() is not None:
                check_resumable(config, existing.read_config(), workdir)
    warn_once_if_accelerator_unused(log)
    data = data if data is not None else load(config.dataset, "train", config.data_source)
    if task.needs_test_split and test_data is None:
        test_data = load(config.dataset, "test", config.data_source)
    num_examples = len(data.images)
    steps_per_epoch = task.steps_per_epoch(num_examples)
    if steps_per_epoch == 0:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {num_examples} training images; "
                          "pass a smaller --batch-size")
    total_steps = config.epochs * steps_per_epoch
    if config.steps is not None:
        total_steps = min(total_steps, config.steps)
    run = _Run(task, workdir, mesh, outputs, data, parallel.replicate(task.device_data(data), mesh), test_data,
               steps_per_epoch, total_steps, MetricWriter(workdir, (METRICS_FILE, TIMING_FILE), parallel.is_writer()))

    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create workdir {workdir} ({err.strerror}); pass a writable folder") from err
    with exclusive_workdir(workdir) if run.writer.enabled else contextlib.nullcontext():
        return _train_locked(run)


@dataclasses.dataclass(frozen=True)
class _Run:
    """What one training's loop works with: the task, where it writes, and its data on the device."""

    task: Task
    workdir: pathlib.Path
    mesh: Any
    outputs: Outputs
    data: Split
    device_data: Any
    test_data: Split | None
    steps_per_epoch: int
    total_steps: int
    writer: MetricWriter

    @property
    def config(self):
        return self.task.config


def _train_locked(run: _Run) -> TrainState:
    """The part of `train` that runs while holding the workdir lock."""
    task, config, workdir, mesh = run.task, run.config, run.workdir, run.mesh
    num_examples, steps_per_epoch, total_steps = len(run.data.images), run.steps_per_epoch, run.total_steps
    if mesh is not None:
        log.info("data parallel over %d devices (batch %d sharded along '%s')", mesh.size, config.batch_size,
                 parallel.DATA_AXIS)
    store = CheckpointStore(workdir, max_to_keep=run.outputs.keep_checkpoints)
    state, counters = parallel.replicate(task.init(run.device_data), mesh), _fresh_counters(task)
    restored = store.restore_latest_good(state)
    if restored is not None:
        state, counters = restored
        run.writer.keep_complete_up_to(int(state.step))
        log.info("resuming %s from step %d", workdir, int(state.step))
    step = int(state.step)
    steps_per_call = config.steps_per_call or task.steps_per_call(steps_per_epoch)

    cadence = SaveCadence(run.outputs.checkpoint_seconds)
    background = _Background(mesh)
    timing_rows: list[tuple[concurrent.futures.Future, dict[str, Any]]] = []  # waiting for their epoch's outputs

    def save(snapshot, reason_signum: int | None = None) -> None:
        """Saves `snapshot`, a device copy of the state at `step` (the next compiled call donates `state`)."""
        background.wait()  # a checkpoint is written only after the rows it covers
        started = time.perf_counter()  # the cadence weighs the save alone
        store.save(step, snapshot, config.to_dict(), counters)
        cadence.saved(started)
        if reason_signum is not None:
            store.wait()
            raise Preempted(f"stopped by {signal.Signals(reason_signum).name} at step {step}; checkpoint saved in "
                            f"{workdir}; run the same command to resume", reason_signum)

    def write_timing_rows(finished_only: bool = False) -> None:
        """Writes the rows whose epoch outputs are done; `finished_only` skips failed, cancelled or unfinished ones."""
        while timing_rows:
            job, row = timing_rows.pop(0)
            if finished_only and not (job.done() and not job.cancelled() and job.exception() is None):
                continue
            run.writer.append(TIMING_FILE, {**row, **job.result()})

    if step >= total_steps:
        log.info("%s is already at step %d (asked for %d); nothing to train", workdir, step, total_steps)
    else:
        log.info("training %s from step %d to step %d (%d steps per epoch, %d per compiled call)",
                 workdir, step, total_steps, steps_per_epoch, steps_per_call)
    bar = tqdm(total=max(total_steps, step), initial=step, disable=not run.outputs.progress, unit="step",
               dynamic_ncols=True)
    with contextlib.ExitStack() as stack:
        for context in (store, parallel.use_mesh(mesh), bar):
            stack.enter_context(context)
        stop = stack.enter_context(_StopOnSignal())
        events = None
        if run.outputs.tensorboard and run.writer.enabled and step < total_steps:
            # Events at the checkpoint's step stay when it ends an epoch; a partial segment's are redone.
            purge_from = None if step == 0 else step + 1 if step % steps_per_epoch == 0 else step
            events = stack.enter_context(contextlib.closing(EventWriter(workdir, task.members, purge_from)))
        stack.callback(write_timing_rows, finished_only=True)
        stack.enter_context(background)
        while step < total_steps:
            epoch = step // steps_per_epoch
            plan = parallel.replicate(task.epoch_plan(epoch, num_examples), mesh)
            epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
            started, first_step, device_seconds = time.perf_counter(), step, 0.0
            while step < epoch_end:
                n = steps_to_next(step, config.checkpoint_every, min(steps_per_call, epoch_end - step))
                compiled = make_runner(task.step, steps_per_epoch, n, mesh)
                call_started = time.perf_counter()
                state, metrics, finite = compiled(state, run.device_data, plan)
                metrics, finite = jax.device_get((metrics, finite))
                device_seconds += time.perf_counter() - call_started
                bad = _nonfinite(task, metrics, finite)
                if bad:
                    background.wait(quietly=True)  # the earlier epochs' rows; their failure would hide this one
                    store.wait()
                    raise _diverged(bad, step + n, store.latest_step())
                step += n
                _accumulate(counters, metrics)
                bar.update(n)
                bar.set_postfix({k: f"{v[0] / counters['steps_in_epoch']:.3f}" for k, v in counters["loss_sums"].items()})
                if step < epoch_end and (stop.signum or every(step, config.checkpoint_every)):
                    save(_device_copy(state), stop.signum)
            seconds, epoch_done = time.perf_counter() - started, step == (epoch + 1) * steps_per_epoch
            timing = {"epoch": epoch + 1, "step": step, "steps": step - first_step, "seconds": round(seconds, 3),
                      "steps_per_s": (step - first_step) / seconds, "device": jax.devices()[0].device_kind,
                      **({} if epoch_done else {"partial": True})}
            write_timing_rows()  # the previous epoch's: its outputs had this whole epoch to finish
            snapshot = _device_copy(state)
            job = background.submit(_epoch_outputs, run, snapshot, epoch, step, copy.deepcopy(counters), events,
                                    dict(timing))
            if epoch_done:
                counters = _fresh_counters(task)
            save_started = time.perf_counter()
            try:
                if step >= total_steps or stop.signum or every(step, config.checkpoint_every) or cadence.due():
                    save(snapshot, stop.signum if step < total_steps else None)
            finally:  # the timing row, with what the host spent outside the compiled calls this epoch
                ended = time.perf_counter()
                timing_rows.append((job, {**timing, "save_seconds": round(ended - save_started, 3),
                                          "device_seconds": round(device_seconds, 3),
                                          "host_seconds": round(ended - started - device_seconds, 3)}))
    _final_figures(run, state)
    return state


@jax.jit
def _device_copy(tree: Any) -> Any:
    """A copy of `tree` on its devices, safe to read while the next compiled call donates `tree`."""
    return jax.tree.map(jnp.copy, tree)


class _Background:
    """One worker thread for each epoch's host work (evaluation, rows, PNG, TensorBoard), which thus
    overlaps the next compiled calls. Jobs run in submission order; `wait` blocks until all are done
    and re-raises the first failure; leaving the context waits too."""

    def __init__(self, mesh):
        self.mesh = mesh
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gan_jax_outputs")
        self.jobs: list[concurrent.futures.Future] = []

    def submit(self, fn, *args) -> concurrent.futures.Future:
        job = self.pool.submit(self._in_mesh, fn, *args)
        self.jobs.append(job)
        return job

    def _in_mesh(self, fn, *args):
        with parallel.use_mesh(self.mesh):  # the mesh context is per thread
            return fn(*args)

    def wait(self, quietly: bool = False) -> None:
        """Blocks until every job is done; re-raises the first failure, or with `quietly` logs it."""
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            if not quietly:
                job.result()
            elif job.exception() is not None:
                log.error("the outputs of an epoch failed: %s", job.exception())

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        if exc_type is KeyboardInterrupt:  # a second Ctrl-C: leave now, an epoch's outputs may be lost
            self.pool.shutdown(wait=False, cancel_futures=True)
            return False
        try:
            self.wait(quietly=exc_type is not None)  # keep finished epochs' rows; report the exception in flight
        finally:
            self.pool.shutdown(wait=True)
        return False


def _nonfinite(task, metrics: dict[str, np.ndarray], finite: bool) -> list[str]:
    """What became NaN/Inf in a compiled call: loss names, and "a parameter"; empty when all is finite."""
    return [k for k in task.loss_keys if not np.all(np.isfinite(metrics[k]))] + ([] if finite else ["a parameter"])


def _diverged(bad: list[str], step: int, good: int | None) -> Diverged:
    kept = "no checkpoint was saved yet" if good is None else f"the last good checkpoint is step {good}"
    return Diverged(f"{' and '.join(bad)} became NaN/Inf by step {step}; the bad state was not saved, {kept}; "
                    "lower --learning-rate or change --seed")


def _accumulate(counters: dict[str, Any], metrics: dict[str, np.ndarray]) -> None:
    """Adds a call's metrics (`[n]`, or `[n, members]`) to the per-member sums."""
    steps = 0
    for key, sums in counters["loss_sums"].items():
        values = np.asarray(metrics[key], np.float64)
        steps = len(values)
        counters["loss_sums"][key] = (np.asarray(sums) + values.reshape(steps, -1).sum(axis=0)).tolist()
    counters["steps_in_epoch"] += steps


def _epoch_outputs(run: _Run, state, epoch: int, step: int, counters, events: EventWriter | None,
                   timing: dict[str, Any]) -> dict[str, float]:
    """The host work of an epoch's (or the run's last, partial) end, in the background thread: the
    evaluation, one metrics row and one labelled log line per member, the epoch's speed line, the
    collapse check, the sample grid and TensorBoard events. Returns its seconds for the timing row."""
    task, started = run.task, time.perf_counter()
    evaluation = task.evaluate(state, run.test_data)
    eval_seconds = time.perf_counter() - started
    epoch_done = not timing.get("partial")
    partial = {} if epoch_done else {"partial": True}
    rows = []
    for i, member in enumerate(task.members):
        row = {"epoch": epoch + 1, "step": step, **member,
               **{k: v[i] / counters["steps_in_epoch"] for k, v in counters["loss_sums"].items()},
               **{k: v[i] for k, v in evaluation.items()}, **partial}
        rows.append(row)
        run.writer.append(METRICS_FILE, row)
        log.info("epoch %d step %d%s%s: %s", epoch + 1, step, "".join(f" {k} {v}" for k, v in member.items()),
                 "" if epoch_done else " (partial)",
                 " ".join(f"{k} {_number(v)}" for k, v in row.items() if k in task.loss_keys or k in evaluation))
    log.info("epoch %d: %d steps in %.1f s (%.2f steps/s), evaluation %.1f s", epoch + 1, timing["steps"],
             timing["seconds"], timing["steps_per_s"], eval_seconds)
    if run.writer.enabled:
        if epoch_done:
            _warn_on_collapse(task, run.workdir, epoch)
        samples = task.sample_grid(state)
        if samples is not None:
            plots.save_grid(run.workdir / "samples" / f"epoch_{epoch + 1:04d}.png", samples)
        if events is not None:
            events.epoch(step, rows, timing, samples)
    return {"eval_seconds": round(eval_seconds, 3),
            "outputs_seconds": round(time.perf_counter() - started - eval_seconds, 3)}


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _warn_on_collapse(task: Task, workdir: pathlib.Path, epoch: int) -> None:
    """Logs `collapse.warning` for each member whose losses just started the collapse pattern."""
    keys = task.adversarial_losses
    if keys is None:
        return
    rows = [row for row in read_metrics(workdir) if not row.get("partial")]
    for member in task.members:
        mine = [row for row in rows if all(row.get(k) == v for k, v in member.items())]
        d, g = ([row[key] for row in mine] for key in keys)
        if collapse.newly_collapsing(d, g):
            log.warning(collapse.warning(epoch + 1, member, *keys, d, g))


def _final_figures(run: _Run, state: TrainState) -> None:
    if not run.writer.enabled:
        return
    task, workdir = run.task, run.workdir
    generated = task.sample_grid(state)
    if generated is not None:
        images = check_images(run.data.images, dataset(task.config.dataset).shape)
        real = images[np.random.default_rng(task.config.seed).choice(len(images), len(generated), replace=False)]
        plots.save_real_vs_generated(workdir / "real_vs_generated.png", np.asarray(to_unit_range(real)), generated)
    first = task.members[0]
    rows = [row for row in read_metrics(workdir) if all(row.get(k) == v for k, v in first.items())]
    rows = [row for row in rows if not row.get("partial")] or rows
    if rows:
        plots.save_loss_curves(workdir / "losses.png", rows, task.loss_keys)
