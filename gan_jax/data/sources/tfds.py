"""A dataset prepared by TensorFlow Datasets, read by `tfds.data_source` (no TensorFlow needed)."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from gan_jax.data.spec import DatasetSpec, Split
from gan_jax.errors import DataError


def root(data_dir: str | os.PathLike | None) -> pathlib.Path:
    """The TFDS data folder: `data_dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    default = pathlib.Path.home() / "tensorflow_datasets"
    return pathlib.Path(data_dir or os.environ.get("TFDS_DATA_DIR") or default)


def prepared(name: str, data_dir: str | os.PathLike | None) -> bool:
    """Cheap check (no tfds import) for a prepared dataset in the TFDS data folder."""
    return any(root(data_dir).glob(f"{name}/*/dataset_info.json"))


def read(
    spec: DatasetSpec, split: str, data_dir: str | os.PathLike | None, download: bool
) -> Split:
    """One split: images uint8 `[N, *spec.shape]` 0..255, labels int32 `[N]`. With `download`,
    TFDS prepares the dataset first if needed (that needs TensorFlow and the web).

    Raises:
      DataError: TFDS failed in any way; the message names the offline route or hint.
    """
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(spec.name, split=split, data_dir=data_dir, download=download)
        records = [source[i] for i in range(len(source))]
    except Exception as err:  # tfds raises many types; all mean "this route failed"
        offline = (
            "source='offline' (needs only a package registry)"
            if spec.offline is not None
            else spec.offline_hint
        )
        raise DataError(
            f"{spec.name} via tensorflow-datasets failed ({type(err).__name__}: {str(err)[:200]}); "
            f"use {offline}, or prepare TFDS '{spec.name}' in array_record format"
        ) from err
    images = np.stack([np.asarray(r["image"], np.uint8).reshape(spec.shape) for r in records])
    labels = np.asarray([r["label"] for r in records], np.int32)
    return Split(images, labels)


def read_named(name: str, split: str, data_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Split `split` of any prepared TFDS image dataset `name` (`--dataset tfds:NAME[:SPLIT]`):
    `images` uint8 `[N, H, W, C]` (sizes must agree unless resized later; see `shaping`),
    `labels` int32 `[N]` or None, `class_names`. Never downloads.

    Raises:
      DataError: TFDS has no prepared `name`/`split`, or its records have no image.
    """
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        features = source.dataset_info.features
        records = [source[i] for i in range(len(source))]
    except Exception as err:  # tfds raises many types; all mean "not prepared here"
        raise DataError(
            f"tfds:{name}:{split} could not be read ({type(err).__name__}: {str(err)[:200]}); "
            f"prepare it with `tfds build {name}` (array_record format) where the web is "
            "reachable, or pass folder:PATH / npz:PATH"
        ) from err
    image_key = next((k for k in ("image", "img") if k in features), None)
    if image_key is None or not records:
        raise DataError(
            f"tfds:{name}:{split} has no 'image' feature or no records; pass an image dataset"
        )
    label = features["label"] if "label" in features else None
    images = [np.asarray(r[image_key], np.uint8) for r in records]
    images = [i[..., None] if i.ndim == 2 else i for i in images]
    return {
        "images": images,
        "labels": None if label is None else np.asarray([r["label"] for r in records], np.int32),
        "class_names": () if label is None else tuple(label.names),
    }
