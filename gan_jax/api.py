"""Notebook-level helpers over a trained workdir: load it, sample from it, describe it, evaluate it."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from gan_jax.checkpoint import CheckpointStore, params_fingerprint
from gan_jax.config import config_from_dict
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.loop import make_task
from gan_jax.steps import TrainState
from gan_jax.workdir import training_owner


def load_run(workdir: str | os.PathLike) -> tuple[Any, TrainState]:
    """The task and the newest intact checkpointed state of a workdir (read-only).

    Raises:
      CheckpointError: no checkpoint (saying so, and whether a training is running there) or none intact.
    """
    owner = training_owner(workdir)
    if owner is not None and CheckpointStore.latest_in(workdir) is None:
        raise CheckpointError(f"{workdir} is being trained by {owner} and has no checkpoint yet; the first is saved "
                              "at an epoch's end (or after --checkpoint-every steps): try again then")
    with CheckpointStore(workdir, create=False) as store:
        task = make_task(config_from_dict(store.read_config()))
        state, _ = store.restore_latest_good(task.init(), quarantine=False)
    return task, state


def sample_images(task, state: TrainState, num: int, seed: int = 0, digit: int | None = None) -> np.ndarray:
    """`num` generated digits, float32 `[num, 28, 28, 1]` in [-1, 1], from noise seeded by `seed`.

    `digit` (0..9) asks a cGAN for that digit only; a cGAN's default cycles 0..9.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ConfigError(f"num must be a positive integer, got {num!r}")
    if not task.generates:
        raise ConfigError(f"a {task.config.task} run has no generator; sample from a gan, cgan or sgan workdir")
    if digit is None:
        return task.sample(state, task.noise(jax.random.PRNGKey(seed), num))
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
        raise ConfigError(f"digit must be an integer 0..9, got {digit!r}")
    if not task.conditional:
        raise ConfigError(f"a {task.config.task} run is unconditional and cannot draw a chosen digit; "
                          "pass a workdir of `gan-jax train cgan`, or leave out --digit")
    return task.sample(state, task.noise(jax.random.PRNGKey(seed), num), np.full(num, digit))


def run_info(workdir: str | os.PathLike) -> dict[str, Any]:
    """Task, latest intact step, stored config and `params_sha256` of a workdir's latest checkpoint.

    `params_sha256` fingerprints every parameter and normalization statistic (not optimizer
    states) in a stable byte order: equal digests mean bit-identical models.
    """
    task, state = load_run(workdir)
    return {"workdir": str(workdir), "task": task.config.task, "step": int(state.step),
            "config": task.config.to_dict(), "params_sha256": params_fingerprint(state)}


def evaluate_run(workdir: str | os.PathLike, test: Any = None, num_samples: int = 10_000) -> dict[str, Any]:
    """Evaluates a workdir's latest checkpoint (its final parameters, the EMA when kept).

    - A classifier (`sgan`, `supervised`): test accuracy on `test` (default: the 10,000 MNIST test
      images): a number for one data seed; a list in data-seed order, with mean and std, for several.
    - A generator (`gan`, `cgan`): `gan_jax.evaluate.sample_quality` of `num_samples` generated
      images against the test images (`fd`, `fd_floor`, `inception_score`, `confident`, and the
      cGAN's `digit_accuracy`, and `fd_network`), with the packaged feature network.

    Returns:
      A JSON-ready dict that also names the workdir, task and step.
    """
    from gan_jax.data import load_mnist

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ConfigError(f"num_samples must be an integer >= 2, got {num_samples!r}")
    task, state = load_run(workdir)
    result = {"workdir": str(workdir), "task": task.config.task, "step": int(state.step)}
    if not task.needs_test_split:
        from gan_jax.evaluate import sample_quality

        return {**result, "num_samples": num_samples, **sample_quality(task, state, num_samples)}
    test = test if test is not None else load_mnist("test", task.config.data_source)
    accuracy = task.evaluate(state, test)["test_accuracy"]
    result.update(model=task.config.model, labels=task.config.labels, data_seeds=list(task.config.data_seeds),
                  num_test=len(test.images))
    if len(accuracy) == 1:
        result["test_accuracy"] = accuracy[0]
    else:
        result.update(test_accuracy=accuracy, test_accuracy_mean=float(np.mean(accuracy)),
                      test_accuracy_std=float(np.std(accuracy, ddof=1)))
    return result
