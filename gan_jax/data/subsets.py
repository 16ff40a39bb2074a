"""Class-balanced labelled subsets, and the label-count check configs use (NumPy only, so a
config and the command line need no JAX)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gan_jax.errors import ConfigError


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
