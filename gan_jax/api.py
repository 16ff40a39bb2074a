"""Notebook-level helpers over a trained workdir: load it, sample from it, describe it."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from gan_jax.checkpoint import CheckpointStore, params_fingerprint
from gan_jax.config import config_from_dict
from gan_jax.errors import ConfigError
from gan_jax.loop import make_task
from gan_jax.steps import TrainState
from gan_jax.tasks import GANTask


def load_run(workdir: str | os.PathLike) -> tuple[GANTask, TrainState]:
    """The task and the newest intact checkpointed state of a workdir (read-only).

    Raises:
      CheckpointError: no checkpoint (`read_config` says so) or none intact.
    """
    with CheckpointStore(workdir, create=False) as store:
        task = make_task(config_from_dict(store.read_config()))
        state, _ = store.restore_latest_good(task.init(), quarantine=False)
    return task, state


def sample_images(task: GANTask, state: TrainState, num: int, seed: int = 0) -> np.ndarray:
    """`num` generated digits, float32 `[num, 28, 28, 1]` in [-1, 1], from noise seeded by `seed`."""
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ConfigError(f"num must be a positive integer, got {num!r}")
    noise = jax.random.normal(jax.random.PRNGKey(seed), (num, task.config.noise_dim))
    return task.sample(state, noise)


def run_info(workdir: str | os.PathLike) -> dict[str, Any]:
    """Task, latest intact step, stored config and `params_sha256` of a workdir's latest checkpoint.

    `params_sha256` fingerprints every parameter and normalization statistic (not optimizer
    states) in a stable byte order: equal digests mean bit-identical models.
    """
    task, state = load_run(workdir)
    return {"workdir": str(workdir), "task": task.config.task, "step": int(state.step),
            "config": task.config.to_dict(), "params_sha256": params_fingerprint(state)}
