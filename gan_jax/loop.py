"""The one training driver: a plan of compiled calls, and the periodic actions after each
(`gan_jax.actions`), in the order `_drive` writes out.

It knows nothing of a task's maths: it talks to the task (`gan_jax.tasks.make_task(config)`) only
through the `gan_jax.tasks.Task` protocol. Everything a step draws is a function of (seed, step),
so a run killed at any moment and restarted with the same command ends bit-identical to an
uninterrupted one.

Files in WORKDIR: `metrics.jsonl` (per-epoch mean losses and evaluation, one row per member;
deterministic), `timing.jsonl` (per epoch: speed and where the loop's time went, see
`gan_jax.actions.Timing`; varies; an epoch's row is written when a later epoch ends, so a run killed
in between lacks it), `losses.jsonl` (mean losses every `actions.LOSS_ROW_STEPS` steps and at epoch
ends, one row per member; deterministic), `samples/epoch_NNNN.png`, `checkpoints/`, TensorBoard
event files (`gan_jax.tensorboard`), and at the end `real_vs_generated.png` and `losses.png`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import pathlib
import time
from collections.abc import Sequence
from typing import Any, cast

import jax
import numpy as np

from gan_jax import actions, onednn, parallel, plots
from gan_jax.checkpoint import WRITE_ERRNOS, CheckpointStore, write_failure
from gan_jax.config import TrainingConfig, require_positive
from gan_jax.data import Split, check_images, has_val_split, load_for, to_unit_range
from gan_jax.data.user import is_user_dataset
from gan_jax.devices import warn_once_if_accelerator_unused
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.steps import TaskStep, TrainState, make_runner
from gan_jax.stream import HostFeed, host_feed
from gan_jax.tasks import Task, make_task
from gan_jax.tensorboard import EventWriter
from gan_jax.workdir import (
    MetricWriter,
    check_workdir,
    deleted_under_training,
    exclusive_workdir,
    read_rows,
    record_dataset,
)

log = logging.getLogger("gan_jax")


@dataclasses.dataclass(frozen=True)
class Outputs:
    """How a training shows progress and what it keeps besides metrics.jsonl (never results).

    Attributes:
      progress: show a progress bar.
      keep_checkpoints: newest checkpoints kept in `WORKDIR/checkpoints` (older ones are deleted).
      tensorboard: write TensorBoard event files beside metrics.jsonl (`gan_jax.tensorboard`).
      checkpoint_seconds: save at an epoch's end only once this many seconds have passed since the
        last save; 0 saves every epoch. None (default) decides from the last save's duration, so
        that at most `actions.SAVE_SHARE` of the time goes to blocking on saves: every epoch on a
        CPU (minutes per epoch), every dozen or so epochs on a GPU (predicted, not measured). The
        run's end, a signal and `checkpoint_every` always save.
    """

    progress: bool = True
    keep_checkpoints: int = 3
    tensorboard: bool = True
    checkpoint_seconds: float | None = None

    def __post_init__(self) -> None:
        require_positive("keep_checkpoints", self.keep_checkpoints)
        if self.checkpoint_seconds is not None and not self.checkpoint_seconds >= 0:
            raise ConfigError(
                f"checkpoint_seconds must be >= 0, got {self.checkpoint_seconds!r}; "
                "pass 0 to save every epoch"
            )


@dataclasses.dataclass(frozen=True)
class Run:
    """What one training works with: the task, where it writes, and its data: the arrays of the
    task's feed on the device (`device_data`), or when too large for it in host memory, streamed by
    `host_feed` (`gan_jax.stream`; `device_data` is then None)."""

    task: Task
    config: TrainingConfig
    workdir: pathlib.Path
    mesh: Any
    outputs: Outputs
    data: Split
    device_data: Any
    test_data: Split | None
    steps_per_epoch: int
    total_steps: int
    writer: MetricWriter
    host_feed: HostFeed | None = None
    val_data: Split | None = None


def train(
    config: TrainingConfig,
    workdir: str | os.PathLike,
    *,
    data: Split | None = None,
    test_data: Split | None = None,
    progress: bool = True,
    devices: int | None = None,
    keep_checkpoints: int = 3,
    tensorboard: bool = True,
    checkpoint_seconds: float | None = None,
) -> TrainState:
    """Trains (or resumes) a run in `workdir` and returns the final state.

    Args:
      config: the run's configuration (`GANConfig`, `SGANConfig`, `SupervisedConfig`, ...).
      workdir: holds checkpoints, metrics and images (see the module docstring).
      data: training images (uint8 `[N, H, W, C]`) and labels; default: the config's dataset's
        training split (`gan_jax.data.load(config.dataset, 'train')`).
      test_data: evaluation split for classifier tasks; default: that dataset's test split.
      progress: show a progress bar. Epoch lines go to the `gan_jax` logger either way.
      devices: data-parallel over the first `devices` devices (default: all of them; see
        `gan_jax.parallel`). Results agree across device counts up to float32 summation order.
      keep_checkpoints: newest checkpoints to keep (each holds both models and their Adam states).
      tensorboard: also write TensorBoard event files into `workdir`.
      checkpoint_seconds: least seconds between epoch-end checkpoints; None: automatic, at most
        2 % of the time saving (see `Outputs`). Results never depend on it.
    Raises:
      ConfigError, CheckpointError, DataError: user mistakes, with a one-line message.
      Preempted: SIGINT/SIGTERM arrived; a checkpoint of the last finished step was saved.
      Diverged: a loss or parameter became NaN/Inf; the last good checkpoint is kept.
    """
    run = _prepare(
        config,
        workdir,
        data,
        test_data,
        devices,
        Outputs(progress, keep_checkpoints, tensorboard, checkpoint_seconds),
    )
    try:
        run.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot create workdir {run.workdir} ({err.strerror}); pass a writable folder"
        ) from err
    with exclusive_workdir(run.workdir) if run.writer.enabled else contextlib.nullcontext():
        try:
            if run.writer.enabled and is_user_dataset(config.dataset):
                record_dataset(run.workdir, run.task.dataset_spec.to_json())
            state = _drive(run)
            _final_figures(run, state)
        except OSError as err:  # rows, images or events: a full, failing or vanished disk
            deleted = deleted_under_training(run.workdir) if run.writer.enabled else None
            if err.errno not in WRITE_ERRNOS or (err.errno == errno.ENOENT and not deleted):
                raise
            what = "write the run's files"
            raise write_failure(run.workdir, err, what, "resume", deleted=deleted) from err
    return state


def _drive(run: Run) -> TrainState:
    """Restores or initializes the state, then runs the plan's compiled calls, each followed by
    the periodic actions in the order of `gan_jax.actions`; leaving (however it leaves) finishes
    the outputs and saves in flight."""
    config, task = run.config, run.task
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(
            CheckpointStore(run.workdir, max_to_keep=run.outputs.keep_checkpoints)
        )
        state, counters = _restore_or_init(run, store)
        start = int(state.step)
        steps_per_call = config.steps_per_call or task.steps_per_call(run.steps_per_epoch)
        if run.host_feed is not None and config.steps_per_call is None:  # chunks must fit
            steps_per_call = run.host_feed.cap_steps_per_call(steps_per_call)
        _log_plan(run, start, steps_per_call)
        stack.enter_context(parallel.use_mesh(run.mesh))
        act = _Actions.open(run, store, counters, start, stack)
        calls = list(
            actions.plan_calls(
                start, run.total_steps, run.steps_per_epoch, steps_per_call, config.checkpoint_every
            )
        )
        runner = Runner(run, calls)
        stack.callback(runner.close)
        for call in calls:
            state, result = runner(state, call)
            actions.check_finite(task, call, result, store, act.background)
            tally = act.sums.add(call, result)
            actions.write_loss_rows(run.writer, task, tally)
            actions.show_progress(act.bar, call, tally)
            outputs = act.outputs.submit(call, state, tally) if call.ends_epoch else None
            if act.collapse is not None:
                act.collapse.observe(call, tally)
            stopping = bool(act.stop.requested(call))
            saved = act.checkpoints.save_if_due(call, state, tally.counters, stopping)
            act.timing.record(call, tally, outputs, saved)
            act.stop.stop_if_requested(call)
    return state


@dataclasses.dataclass(frozen=True)
class _Actions:
    """The stateful periodic actions of one run (`gan_jax.actions`)."""

    bar: Any
    stop: actions.StopOnSignal
    background: actions.Background
    sums: actions.EpochSums
    outputs: actions.EpochOutputs
    collapse: actions.CollapseGuard | None
    checkpoints: actions.Checkpoints
    timing: actions.Timing

    @classmethod
    def open(
        cls,
        run: Run,
        store: CheckpointStore,
        counters: dict[str, Any],
        start: int,
        stack: contextlib.ExitStack,
    ) -> _Actions:
        """Builds them; their contexts join `stack` (exits in reverse: background outputs first,
        then timing rows, events, signals, the bar)."""
        task, workdir, writer = run.task, run.workdir, run.writer
        # One voice per job: of a multi-host run's processes, process 0 alone shows the bar.
        shown = run.outputs.progress and parallel.is_writer()
        bar = stack.enter_context(actions.progress_bar(max(run.total_steps, start), start, shown))
        stop = stack.enter_context(actions.StopOnSignal(workdir))
        events = None
        if run.outputs.tensorboard and writer.enabled and start < run.total_steps:
            # Events at the checkpoint's step stay when it ends an epoch; a partial segment's are
            # redone.
            purge_from = None if start == 0 else start + (start % run.steps_per_epoch == 0)
            events = stack.enter_context(
                contextlib.closing(EventWriter(workdir, task.members, purge_from))
            )
        background = actions.Background(run.mesh)
        context = actions.RunContext(task, workdir, writer, run.test_data, run.val_data)
        cadence = actions.SaveCadence(run.outputs.checkpoint_seconds)
        checkpoints = actions.Checkpoints(
            store, run.config.to_dict(), background, cadence, run.config.checkpoint_every
        )
        timing = stack.enter_context(actions.Timing(writer))
        stack.enter_context(background)
        # One process warns.
        collapse = (
            actions.CollapseGuard(task, read_rows(workdir), background) if writer.enabled else None
        )
        return cls(
            bar,
            stop,
            background,
            actions.EpochSums(task, counters),
            actions.EpochOutputs(context, background, events),
            collapse,
            checkpoints,
            timing,
        )


class Runner:
    """`runner(state, call) -> (state, result)`: runs one planned call's steps compiled on the
    batches the feed stacks for it (the epoch's order made once per epoch) and brings its metrics
    to the host.

    A streamed run (`run.host_feed`) takes instead each call's batches gathered on the host,
    prefetched in `calls`' order (`gan_jax.stream`); the wait for them counts into the call's
    seconds. `close` stops the prefetching.
    """

    plan: Any  # the device path's current epoch order

    def __init__(self, run: Run, calls: Sequence[actions.Call] = ()):
        self.task, self.device_data, self.mesh = run.task, run.device_data, run.mesh
        self.feed, self.num_examples = run.task.feed, len(run.data.images)
        self.epoch, self.plan = -1, None
        streamed = run.host_feed
        self.chunks = None if streamed is None else streamed.stream([_key(c) for c in calls])

    def __call__(
        self, state: TrainState, call: actions.Call
    ) -> tuple[TrainState, actions.CallResult]:
        started = time.perf_counter()
        if self.chunks is not None:
            batches = self.chunks.take(_key(call))
        else:
            if call.epoch != self.epoch:
                epoch_plan = self.feed.epoch_plan(call.epoch, self.num_examples)
                self.plan = parallel.replicate(epoch_plan, self.mesh)
                self.epoch = call.epoch
            _, first, steps = _key(call)
            batches = self.feed.batches(self.device_data, self.plan, first, steps)
        compiled = make_runner(TaskStep(self.task), call.steps, self.mesh)
        state, metrics, finite = compiled(state, batches)
        metrics, finite = jax.device_get((metrics, finite))
        return state, actions.CallResult(
            metrics, bool(finite), started, time.perf_counter() - started
        )

    def close(self) -> None:
        if self.chunks is not None:
            self.chunks.close()


def _key(call: actions.Call) -> tuple[int, int, int]:
    """(epoch, first step within the epoch, steps): what a streamed call reads."""
    return call.epoch, call.step - call.epoch * call.steps_per_epoch, call.steps


def _prepare(
    config: TrainingConfig,
    workdir: str | os.PathLike,
    data: Split | None,
    test_data: Split | None,
    devices: int | None,
    outputs: Outputs,
) -> Run:
    """Checks the request against the workdir, loads the data, has the task's feed shape it and
    puts it on the device (or, when too large for it, readies its streaming from host memory:
    `gan_jax.stream`)."""
    task = make_task(config)
    mesh = parallel.data_mesh(devices)
    workdir = check_workdir(workdir)
    # Every process of a job decides alike: only a step already saved opens a store here (a
    # folder another process's store has just made must not, its barriers would then differ).
    if CheckpointStore.latest_in(workdir) is not None:
        with CheckpointStore(workdir, create=False) as existing:
            if existing.latest_step() is not None:
                check_resumable(config, existing.read_config(), workdir)
    warn_once_if_accelerator_unused(log)
    onednn.log_path(log)
    task.check_ready()
    data = data if data is not None else load_for(config, "train")
    steps_per_epoch = task.feed.steps_per_epoch(len(data.images))
    total_steps = config.epochs * steps_per_epoch
    if config.steps is not None:
        total_steps = min(total_steps, config.steps)
    arrays = task.feed.arrays(data)
    streamed = host_feed(task.feed, arrays, len(data.images), mesh)
    device_data = None if streamed else parallel.replicate(jax.device_put(arrays), mesh)
    if task.needs_test_split and test_data is None:  # after the data's labels were checked
        test_data = load_for(config, "test")
    val_data = load_for(config, "val") if task.needs_test_split and has_val_split(config) else None
    writer = MetricWriter(
        workdir,
        (actions.METRICS_FILE, actions.TIMING_FILE, actions.LOSSES_FILE),
        parallel.is_writer(),
    )
    return Run(
        task,
        config,
        workdir,
        mesh,
        outputs,
        data,
        device_data,
        test_data,
        steps_per_epoch,
        total_steps,
        writer,
        streamed,
        val_data,
    )


def check_resumable(config: TrainingConfig, stored: dict[str, Any], workdir: pathlib.Path) -> None:
    """Refuses to continue a run whose stored config differs in a result-deciding field."""
    if stored.get("task") != config.task:
        raise CheckpointError(
            f"{workdir} holds checkpoints of task {stored.get('task')!r}, not "
            f"{config.task!r}; pass a different --workdir"
        )
    conflicts = config.conflicts_with(stored)
    if conflicts:
        requested = config.to_dict()
        detail = ", ".join(
            f"{k}: stored {stored.get(k)!r} vs requested {requested.get(k)!r}" for k in conflicts
        )
        raise CheckpointError(
            f"{workdir} holds a run with a different configuration ({detail}); "
            "repeat the stored options to resume, or pass a different --workdir"
        )


def _restore_or_init(run: Run, store: CheckpointStore) -> tuple[TrainState, dict[str, Any]]:
    """The newest good checkpoint's state and loss sums, or a fresh state at step 0."""
    # A streamed run's task reads no data to initialize (only `FewLabelFeed` tasks do; they
    # never stream).
    state = parallel.replicate(run.task.init(run.device_data), run.mesh)
    restored = store.restore_latest_good(state)
    if restored is None:
        return state, actions.fresh_counters(run.task)
    state, counters = restored
    run.writer.keep_complete_up_to(int(state.step))
    log.info("resuming %s from step %d", run.workdir, int(state.step))
    return state, counters


def _log_plan(run: Run, start: int, steps_per_call: int) -> None:
    if run.mesh is not None:
        log.info(
            "data parallel over %d devices (batch %d sharded along '%s')",
            run.mesh.size,
            run.config.batch_size,
            parallel.DATA_AXIS,
        )
    if start >= run.total_steps:
        log.info(
            "%s is already at step %d (asked for %d); nothing to train",
            run.workdir,
            start,
            run.total_steps,
        )
    else:
        log.info(
            "training %s from step %d to step %d (%d steps per epoch, %d per compiled call)",
            run.workdir,
            start,
            run.total_steps,
            run.steps_per_epoch,
            steps_per_call,
        )


def _final_figures(run: Run, state: TrainState) -> None:
    """`real_vs_generated.png` (generative tasks) and `losses.png`, written by one process."""
    if not run.writer.enabled:
        return
    task, workdir = run.task, run.workdir
    generated = task.sample_grid(state)
    if generated is not None:
        images = check_images(run.data.images, task.image_shape)
        rng = np.random.default_rng(run.config.seed)
        real = images[rng.choice(len(images), len(generated), replace=False)]
        plots.save_real_vs_generated(
            # `to_unit_range` scales a host (NumPy) array the same way, on the host
            workdir / "real_vs_generated.png",
            np.asarray(to_unit_range(cast(jax.Array, real))),
            generated,
        )
    first = task.members[0]
    rows = [row for row in read_rows(workdir) if all(row.get(k) == v for k, v in first.items())]
    rows = [row for row in rows if not row.get("partial")] or rows
    windows = [
        row
        for row in read_rows(workdir, actions.LOSSES_FILE)
        if all(row.get(k) == v for k, v in first.items())
    ]
    if rows:
        plots.save_loss_curves(workdir / "losses.png", rows, task.loss_keys, windows)
