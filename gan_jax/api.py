"""Notebook-level helpers over a trained workdir."""

from __future__ import annotations

import os

import jax
import numpy as np

from gan_jax.checkpoint import CheckpointStore
from gan_jax.config import GANConfig
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.loop import make_task
from gan_jax.steps import TrainState
from gan_jax.tasks import GANTask


def load_run(workdir: str | os.PathLike) -> tuple[GANTask, TrainState]:
    """The task and the latest checkpointed state of a workdir trained by `train`."""
    store = CheckpointStore(workdir, create=False)
    stored = store.read_config()
    if stored.get("task") != GANConfig.task:
        raise CheckpointError(f"{workdir} holds a {stored.get('task')!r} run, which cannot be sampled as a GAN")
    task = make_task(GANConfig.from_dict(stored))
    state, _ = store.restore(task.init())
    store.close()
    return task, state


def sample_images(task: GANTask, state: TrainState, num: int, seed: int = 0) -> np.ndarray:
    """`num` generated digits, float32 `[num, 28, 28, 1]` in [-1, 1], from noise seeded by `seed`."""
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ConfigError(f"num must be a positive integer, got {num!r}")
    noise = jax.random.normal(jax.random.PRNGKey(seed), (num, task.config.noise_dim))
    return task.sample(state, noise)
