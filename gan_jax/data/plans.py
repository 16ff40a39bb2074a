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


def require_label_count(count: Any) -> None:
    """A labeled subset's size must be a positive multiple of 10: `count // 10` images of each
    digit; else ConfigError."""
    integer = isinstance(count, (int, np.integer)) and not isinstance(count, bool)
    if not integer or count <= 0 or count % 10:
        raise ConfigError(f"labels must be a positive multiple of 10 (labels/10 per class), "
                          f"got {count!r}; pass e.g. 20, 50, 100 or 1000")


def labeled_subset(labels: np.ndarray, count: int, data_seed: int) -> np.ndarray:
    """Indices of a class-balanced labeled subset: `count // 10` images of each digit.

    A pure function of (labels, count, data_seed): the same seed picks the same images whatever
    model is trained. Indices are grouped by class, 0 to 9.

    Args:
      labels: int `[N]` class of each training image, 0..9.
      count: subset size, a positive multiple of 10.
      data_seed: non-negative integer.
    Returns:
      int64 `[count]` indices into `labels`.
    Raises:
      ConfigError: `count` is not a positive multiple of 10, or a class has too few images.
    """
    labels = np.asarray(labels)
    require_label_count(count)
    per_class = count // 10
    counts = np.bincount(labels, minlength=10)
    if counts.min() < per_class:
        fewest = int(np.argmin(counts))
        raise ConfigError(f"labels {count} needs {per_class} images of each digit but the training "
                          f"split has only {counts[fewest]} of digit {fewest}; pass at most "
                          f"{10 * int(counts.min())}")
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(labels))
    return np.concatenate([order[labels[order] == c][:per_class] for c in range(10)])
