"""Notebook-level helpers over a trained workdir: load it, sample from it, describe it, evaluate it;
and the training of a feature network for the Fréchet distance."""

from __future__ import annotations

import logging
import os
import pathlib
import time
from typing import Any

import jax
import numpy as np

from gan_jax import best, features
from gan_jax import data as data_lib
from gan_jax.checkpoint import CheckpointStore, params_fingerprint
from gan_jax.config import FeatureNetConfig
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.loop import train
from gan_jax.steps import TrainState
from gan_jax.tasks import Generative, config_from_dict, make_task
from gan_jax.workdir import read_dataset_record, training_owner

log = logging.getLogger("gan_jax")


READ_TRIES = 5  # reads of a workdir in training, whose saves may delete what is being read


def load_run(workdir: str | os.PathLike, checkpoint: str = "latest") -> tuple[Any, TrainState]:
    """The task and the newest intact checkpointed state of a workdir (read-only); with
    `checkpoint="best"`, its classifier replaced by the one with the best validation accuracy
    (`gan_jax.best`).

    Beside a training, whose saves delete checkpoints beyond its --keep-checkpoints, perhaps the
    one being read, a failed read is tried again; every state returned matched its checksum.
    Raises:
      CheckpointError: no checkpoint (saying so, and whether a training is running there) or none
        intact.
    """
    if checkpoint not in ("latest", "best"):
        raise ConfigError(f"checkpoint must be 'latest' or 'best', got {checkpoint!r}")
    for attempt in range(READ_TRIES):
        owner = training_owner(workdir)
        if owner is not None and CheckpointStore.latest_in(workdir) is None:
            raise CheckpointError(
                f"{workdir} is being trained by {owner} and has no checkpoint yet; the first is "
                "saved at an epoch's end (or after --checkpoint-every steps): try again then"
            )
        try:
            task, state = _load_run(workdir)
        except (CheckpointError, OSError) as err:
            if owner is None and training_owner(workdir) is None:
                raise
            if attempt == READ_TRIES - 1:
                raise CheckpointError(
                    f"{workdir} is being trained by {owner}, whose saves replaced its checkpoints "
                    f"during {READ_TRIES} reads ({str(err)[:120]}); try again, or when the "
                    "training ends"
                ) from err
            time.sleep(0.1)
            continue
        if checkpoint == "best":
            state = best.restore(pathlib.Path(workdir), state)
        return task, state
    raise AssertionError("unreachable")


def _load_run(workdir: str | os.PathLike) -> tuple[Any, TrainState]:
    with CheckpointStore(workdir, create=False) as store:
        config = config_from_dict(store.read_config())
        recorded = read_dataset_record(workdir)
        if recorded is not None:  # a user dataset: its shape and classes, without its data
            spec = data_lib.DatasetSpec.from_json(recorded)
            data_lib.remember(spec, config.image_size, config.channels)
        task = make_task(config)
        restored = store.restore_latest_good(task.init(), quarantine=False)
        if restored is None:  # a checkpoints folder with no checkpoint in it
            raise CheckpointError(
                f"no checkpoints in {workdir}; train first, e.g. `gan-jax train gan --workdir "
                f"{workdir}`"
            )
        state, _ = restored
    return task, state


def sample_images(
    task, state: TrainState, num: int, seed: int = 0, digit: int | None = None
) -> np.ndarray:
    """`num` generated images, float32 `[num, H, W, C]` in [-1, 1], from noise seeded by `seed`.

    `digit` (0..num_classes-1 of the run's dataset) asks a cGAN for that class only; a cGAN's
    default cycles through the classes.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ConfigError(f"num must be a positive integer, got {num!r}")
    if not isinstance(task, Generative):
        raise ConfigError(
            f"a {task.config.task} run has no generator; sample from a gan, cgan or sgan workdir"
        )
    if digit is None:
        return task.sample(state, task.noise(jax.random.key(seed), num))
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit < task.num_classes:
        raise ConfigError(f"digit must be an integer 0..{task.num_classes - 1}, got {digit!r}")
    if not task.conditional:
        raise ConfigError(
            f"a {task.config.task} run is unconditional and cannot draw a chosen digit; "
            "pass a workdir of `gan-jax train cgan`, or leave out --digit"
        )
    return task.sample(state, task.noise(jax.random.key(seed), num), np.full(num, digit))


def run_info(workdir: str | os.PathLike) -> dict[str, Any]:
    """Task, latest intact step, stored config and `params_sha256` of a workdir's latest checkpoint.

    `params_sha256` fingerprints every parameter and normalization statistic (not optimizer
    states) in a stable byte order: equal digests mean bit-identical models.
    """
    task, state = load_run(workdir)
    return {
        "workdir": str(workdir),
        "task": task.config.task,
        "step": int(state.step),
        "config": task.config.to_dict(),
        "params_sha256": params_fingerprint(state),
    }


def evaluate_run(
    workdir: str | os.PathLike,
    test: Any = None,
    num_samples: int = 10_000,
    checkpoint: str = "latest",
    classification_metrics: bool = True,
) -> dict[str, Any]:
    """Evaluates a workdir's latest checkpoint (its final parameters, the EMA when kept), or with
    `checkpoint="best"` its best-validation classifier: the task's `report`, with the workdir,
    task and step.

    - A classifier (`sgan`, `supervised`): test accuracy on `test` (default: the test split of its
      dataset): a number for one data seed; a list in data-seed order, with mean and std, for
      several; and under `predict`, `gan_jax.metrics.classification_report` of what `predict`
      gives (the members' mean probability): per-class accuracy, macro-F1, the confusion matrix
      (also drawn to `workdir/confusion.png`, `confusion_best.png` for the best checkpoint) and,
      for two classes, ROC AUC (`classification_metrics=False` leaves them out).
    - A generator (`gan`, `cgan`): `gan_jax.evaluate.sample_quality` of `num_samples` generated
      images against the test images (`fd`, `fd_floor`, `inception_score`, `confident`, and the
      cGAN's `digit_accuracy`, and `fd_network`), with the packaged feature network.

    Returns:
      A JSON-ready dict.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ConfigError(f"num_samples must be an integer >= 2, got {num_samples!r}")
    task, state = load_run(workdir, checkpoint)
    result = {"workdir": str(workdir), "task": task.config.task, "step": int(state.step)}
    if not hasattr(task, "eval_params") or not classification_metrics:  # a generator, or asked
        return {**result, **task.report(state, test, num_samples)}
    from gan_jax import classify, metrics, plots

    test = task.test_split(test)
    names = list(classify.class_names(task))
    report = metrics.classification_report(
        test.labels, classify.probabilities(task, state, test.images), names
    )
    try:
        name = "confusion.png" if checkpoint == "latest" else f"confusion_{checkpoint}.png"
        plots.save_confusion(pathlib.Path(workdir) / name, report["confusion"], names)
    except OSError as err:  # a read-only workdir still gets its numbers
        log.warning("confusion.png not written (%s)", err)
    return {**result, **task.report(state, test, num_samples), "predict": report}


def train_feature_network(
    config: FeatureNetConfig | None = None, *, progress: bool = True
) -> features.FeatureNetwork:
    """Trains the feature network of `config` (default `features.FEATURE_NET`) on this machine and
    caches it where `features.load_feature_network(config, trained_here=True)` finds it.

    An intact cache is returned as is. Otherwise the loop trains (or, when its checkpoints are
    complete, only reloads) in `cache_folder(config)/train`, a few minutes on a CPU with
    `config.dataset` read through `config.data_source`; training is deterministic on one machine.
    """
    config = config or features.FEATURE_NET
    folder = features.cache_folder(config)
    if features.read_cached(config, folder) is None:
        train_split, test_split = (data_lib.load_for(config, split) for split in ("train", "test"))
        log.info(
            "training the Fréchet-distance feature network on this machine (a few minutes on a "
            "CPU) in %s",
            folder / "train",
        )
        state = train(
            config, folder / "train", data=train_split, test_data=test_split, progress=progress
        )
        features.write_cached(
            config, folder, state.models["classifier"].params, train_split, test_split
        )
    return features.load_feature_network(config, trained_here=True)


def predict(
    workdir: str | os.PathLike,
    images: Any,
    member: int | None = None,
    split: str | None = None,
    checkpoint: str = "latest",
) -> dict[str, Any]:
    """Classifies images with a trained `sgan` or `supervised` workdir's classifier.

    Args:
      workdir: the trained run.
      images: uint8 `[N, H, W, C]` shaped as the run trained, or a dataset spec: `folder:PATH`
        (every PNG/JPEG under it), an image file, or a `gan_jax.data.load` name (its `split`;
        see `gan_jax.classify.read_images`).
      member: one data seed's classifier (0-based index into its `data_seeds`); None: the mean of
        their probabilities.
      checkpoint: "latest", or "best" (the best validation accuracy's classifier).
    Returns:
      `ids` (file paths, or indices), `class_names` `[K]`, `probabilities` float32 `[N, K]`,
      `classes` (each image's most probable class name) and `confidence` float32 `[N]`.
    """
    from gan_jax import classify

    task, state = load_run(workdir, checkpoint)
    classify.probabilities_fn(task, state, member)  # a GAN workdir or a bad member: one line
    if isinstance(images, str | os.PathLike):
        ids, images = classify.read_images(task, str(images), split)
    else:
        ids = [str(i) for i in range(len(images))]
    probs = classify.probabilities(task, state, np.asarray(images), member)
    names = classify.class_names(task)
    return {
        "ids": ids,
        "class_names": list(names),
        "probabilities": probs,
        "classes": [names[k] for k in np.argmax(probs, axis=1)],
        "confidence": np.max(probs, axis=1),
    }


def export_classifier(
    workdir: str | os.PathLike,
    out: str | os.PathLike,
    member: int | None = None,
    checkpoint: str = "latest",
) -> dict[str, Any]:
    """Writes a trained classifier's `jax.export` artifact to `out` and its description to
    `out.json` (`gan_jax.classify.export`); returns the description."""
    from gan_jax import classify

    task, state = load_run(workdir, checkpoint)
    return classify.export(task, state, out, member)
