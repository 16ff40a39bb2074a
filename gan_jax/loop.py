"""The one host loop: epochs, progress, metrics.jsonl, sample PNGs, Orbax checkpoints, resume.

It knows nothing of GAN maths: a task gives it `init`, `train_step`, `data_key`, `fixed_noise` and
`sample`. Everything the loop draws is a function of (seed, step), so running the same command
again in the same workdir continues exactly where the last checkpoint left off.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import time
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from gan_jax import plots
from gan_jax.checkpoint import CheckpointStore
from gan_jax.config import GANConfig
from gan_jax.data import MNIST, check_images, epoch_permutation, load_mnist
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.steps import TrainState, default_steps_per_call, make_runner
from gan_jax.tasks import GANTask

log = logging.getLogger("gan_jax")

METRICS_FILE = "metrics.jsonl"
LOSS_KEYS = ("d_loss", "g_loss")


def make_task(config: GANConfig) -> GANTask:
    """The task object for a config."""
    if isinstance(config, GANConfig):
        return GANTask(config)
    raise ConfigError(f"no task for config type {type(config).__name__}")


def prepare_workdir(workdir: str | os.PathLike) -> pathlib.Path:
    """Creates `workdir` if needed; refuses a file or a folder it cannot write into."""
    path = pathlib.Path(workdir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"workdir {path} is a file; pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create workdir {path} ({err.strerror}); pass a writable folder") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"workdir {path} is not writable; pass a writable folder")
    return path


def check_resumable(config: GANConfig, stored: dict[str, Any], workdir: pathlib.Path) -> None:
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


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of `WORKDIR/metrics.jsonl` (empty when absent)."""
    path = pathlib.Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _keep_metrics_up_to(workdir: pathlib.Path, step: int) -> None:
    """Drops rows written after the checkpoint a run resumes from (they will be written again)."""
    rows = read_metrics(workdir)
    kept = [row for row in rows if row["step"] <= step]
    if len(kept) != len(rows):
        tmp = workdir / (METRICS_FILE + ".tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
        os.replace(tmp, workdir / METRICS_FILE)


def _append_metrics(workdir: pathlib.Path, row: dict[str, Any]) -> None:
    with open(workdir / METRICS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")


def train(config: GANConfig, workdir: str | os.PathLike, *, data: MNIST | None = None,
          progress: bool = True, log_every: int = 10) -> TrainState:
    """Trains (or resumes) a run in `workdir` and returns the final state.

    Args:
      config: the run's configuration.
      workdir: holds `checkpoints/`, `metrics.jsonl`, `samples/` and the final PNGs.
      data: training images (uint8 `[N, 28, 28, 1]`); default: `load_mnist('train')`.
      progress: show a progress bar.
      log_every: steps between progress-bar loss updates (each one waits for the device).
    Raises:
      ConfigError, CheckpointError, DataError: user mistakes, with a one-line message.
    """
    task = make_task(config)
    workdir = prepare_workdir(workdir)
    store = CheckpointStore(workdir)
    latest = store.latest_step()
    if latest is not None:
        check_resumable(config, store.read_config(latest), workdir)
    data = data if data is not None else load_mnist("train", config.data_source)
    images = check_images(data.images)
    num_examples = len(images)
    steps_per_epoch = num_examples // config.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {num_examples} training images; "
                          "pass a smaller --batch-size")
    total_steps = config.epochs * steps_per_epoch
    if config.steps is not None:
        total_steps = min(total_steps, config.steps)

    state = task.init()
    counters = {"loss_sums": {k: 0.0 for k in LOSS_KEYS}, "steps_in_epoch": 0}
    if latest is not None:
        state, counters = store.restore(state, latest)
        _keep_metrics_up_to(workdir, latest)
        log.info("resuming %s from step %d", workdir, latest)
    step = int(state.step)

    examples = jax.device_put(images)
    permutation = jax.jit(epoch_permutation, static_argnums=2)
    steps_per_call = config.steps_per_call or default_steps_per_call(steps_per_epoch)
    runners: dict[int, Any] = {}
    sample_noise = task.fixed_noise()

    bar = tqdm(total=total_steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    while step < total_steps:
        epoch = step // steps_per_epoch
        perm = permutation(task.data_key(), epoch, num_examples)
        segment_end = min((epoch + 1) * steps_per_epoch, total_steps)
        started, first_step = time.perf_counter(), step
        pending, last_fetch = [], step
        while step < segment_end:
            n = min(steps_per_call, segment_end - step)
            if n not in runners:
                runners[n] = make_runner(task.train_step, config.batch_size, steps_per_epoch, n)
            state, metrics = runners[n](state, examples, perm)
            pending.append(metrics)
            step += n
            if step - last_fetch >= log_every or step == segment_end:
                _accumulate(counters, jax.device_get(pending))
                pending, last_fetch = [], step
                bar.update(step - bar.n)
                bar.set_postfix({k: f"{v / counters['steps_in_epoch']:.3f}" for k, v in counters["loss_sums"].items()})
        elapsed = time.perf_counter() - started
        epoch_done = step == (epoch + 1) * steps_per_epoch
        row = {"epoch": epoch + 1, "step": step,
               **{k: v / counters["steps_in_epoch"] for k, v in counters["loss_sums"].items()},
               "steps_per_s": (step - first_step) / elapsed}
        if not epoch_done:
            row["partial"] = True
        _append_metrics(workdir, row)
        log.info("epoch %d step %d: d_loss %.4f g_loss %.4f (%.2f steps/s)",
                 row["epoch"], step, row["d_loss"], row["g_loss"], row["steps_per_s"])
        plots.save_grid(workdir / "samples" / f"epoch_{epoch + 1:04d}.png", task.sample(state, sample_noise))
        if epoch_done:
            counters = {"loss_sums": {k: 0.0 for k in LOSS_KEYS}, "steps_in_epoch": 0}
        store.save(step, state, config.to_dict(), counters)
    bar.close()
    store.close()
    _final_figures(task, state, workdir, images)
    return state


def _accumulate(counters: dict[str, Any], fetched: list[dict[str, np.ndarray]]) -> None:
    for metrics in fetched:
        for key in LOSS_KEYS:
            counters["loss_sums"][key] += float(np.sum(metrics[key], dtype=np.float64))
        counters["steps_in_epoch"] += len(metrics[LOSS_KEYS[0]])


def _final_figures(task: GANTask, state: TrainState, workdir: pathlib.Path, images: np.ndarray) -> None:
    num = task.config.num_samples
    real = images[np.random.default_rng(task.config.seed).choice(len(images), num, replace=False)]
    real = real.astype(np.float32) / 127.5 - 1.0
    plots.save_real_vs_generated(workdir / "real_vs_generated.png", real, task.sample(state, task.fixed_noise()))
    rows = [row for row in read_metrics(workdir) if not row.get("partial")] or read_metrics(workdir)
    if rows:
        plots.save_loss_curves(workdir / "losses.png", rows, LOSS_KEYS)
