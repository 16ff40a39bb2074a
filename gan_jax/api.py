"""Notebook-level helpers over a trained workdir: load it, sample from it, describe it, evaluate it."""

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


def load_run(workdir: str | os.PathLike) -> tuple[Any, TrainState]:
    """The task and the newest intact checkpointed state of a workdir (read-only).

    Raises:
      CheckpointError: no checkpoint (`read_config` says so) or none intact.
    """
    with CheckpointStore(workdir, create=False) as store:
        task = make_task(config_from_dict(store.read_config()))
        state, _ = store.restore_latest_good(task.init(), quarantine=False)
    return task, state


def sample_images(task, state: TrainState, num: int, seed: int = 0) -> np.ndarray:
    """`num` generated digits, float32 `[num, 28, 28, 1]` in [-1, 1], from noise seeded by `seed`."""
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ConfigError(f"num must be a positive integer, got {num!r}")
    if not task.generates:
        raise ConfigError(f"a {task.config.task} run has no generator; sample from a gan or sgan workdir")
    return task.sample(state, task.noise(jax.random.PRNGKey(seed), num))


def run_info(workdir: str | os.PathLike) -> dict[str, Any]:
    """Task, latest intact step, stored config and `params_sha256` of a workdir's latest checkpoint.

    `params_sha256` fingerprints every parameter and normalization statistic (not optimizer
    states) in a stable byte order: equal digests mean bit-identical models.
    """
    task, state = load_run(workdir)
    return {"workdir": str(workdir), "task": task.config.task, "step": int(state.step),
            "config": task.config.to_dict(), "params_sha256": params_fingerprint(state)}


def evaluate_run(workdir: str | os.PathLike, test: Any = None) -> dict[str, Any]:
    """Test accuracy of a classifier workdir (`sgan` or `supervised`) from its latest checkpoint.

    Uses the final parameters (the EMA when the run keeps one), never the best accuracy seen
    during training, on `test` (default: the 10,000 MNIST test images).

    Returns:
      A JSON-ready dict: task, model, labels, step, data_seeds, num_test, and `test_accuracy` (a
      number for one data seed; a list in data-seed order, with mean and std, for several).
    Raises:
      ConfigError: the workdir holds a GAN run (no classifier).
    """
    from gan_jax.data import load_mnist

    task, state = load_run(workdir)
    if not task.needs_test_split:
        raise ConfigError(f"{workdir} holds a {task.config.task} run; evaluate measures classifiers: "
                          "pass a workdir of `gan-jax train sgan` or `gan-jax train supervised`")
    test = test if test is not None else load_mnist("test", task.config.data_source)
    accuracy = task.evaluate(state, test)["test_accuracy"]
    result = {"workdir": str(workdir), "task": task.config.task, "model": task.config.model,
              "labels": task.config.labels, "step": int(state.step), "data_seeds": list(task.config.data_seeds),
              "num_test": len(test.images)}
    if len(accuracy) == 1:
        result["test_accuracy"] = accuracy[0]
    else:
        result.update(test_accuracy=accuracy, test_accuracy_mean=float(np.mean(accuracy)),
                      test_accuracy_std=float(np.std(accuracy, ddof=1)))
    return result
