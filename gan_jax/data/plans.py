"""What training makes of a split, apart from fetching it: pixels scaled on the device, each
epoch's example order, and class-balanced labeled subsets (with the labels check configs use)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError


def to_unit_range(images: jax.Array) -> jax.Array:
    """uint8 pixels 0..255 → float32 in [-1, 1] (the tutorial's scaling), same shape."""
    return images.astype(jnp.float32) / 127.5 - 1.0


@functools.partial(jax.jit, static_argnums=2)
def epoch_permutation(data_key: jax.Array, epoch: jax.Array | int, num_examples: int) -> jax.Array:
    """The example order of one epoch, int32 `[num_examples]` on the device, a pure function of
    (key, epoch). Compiled once per `num_examples`."""
    key = jax.random.fold_in(data_key, epoch)
    return jax.random.permutation(key, num_examples).astype(jnp.int32)


def require_label_count(count: Any, num_classes: int) -> None:
    """A labeled subset's size must be a positive multiple of the dataset's `num_classes`:
    `count // num_classes` images of each class; else ConfigError."""
    integer = isinstance(count, (int, np.integer)) and not isinstance(count, bool)
    if not integer or count <= 0 or count % num_classes:
        examples = ", ".join(str(n * num_classes) for n in (2, 5, 10))
        raise ConfigError(
            f"labels must be a positive multiple of {num_classes} "
            f"(labels/{num_classes} per class), got {count!r}; "
            f"pass e.g. {examples} or {100 * num_classes}"
        )


def labeled_subset(labels: np.ndarray, count: int, data_seed: int, num_classes: int) -> np.ndarray:
    """Indices of a class-balanced labeled subset: `count // num_classes` images of each class.

    A pure function of (labels, count, data_seed): the same seed picks the same images whatever
    model is trained. Indices are grouped by class, 0 to num_classes-1.

    Args:
      labels: int `[N]` class of each training image, 0..num_classes-1, or -1 (unlabeled: never
        picked).
      count: subset size, a positive multiple of `num_classes`.
      data_seed: non-negative integer.
      num_classes: the dataset's classes (`gan_jax.data.DatasetSpec.num_classes`).
    Returns:
      int64 `[count]` indices into `labels`.
    Raises:
      ConfigError: `count` is not a positive multiple of `num_classes`, or a class has too few
        images.
    """
    labels = np.asarray(labels)
    require_label_count(count, num_classes)
    per_class = count // num_classes
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)
    if counts.min() < per_class:
        fewest = int(np.argmin(counts))
        raise ConfigError(
            f"labels {count} needs {per_class} images of each class but the training "
            f"split has only {counts[fewest]} of class {fewest}; pass at most "
            f"{num_classes * int(counts.min())}"
        )
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(labels))
    return np.concatenate([order[labels[order] == c][:per_class] for c in range(num_classes)])
