"""A dataset prepared by TensorFlow Datasets, read by `tfds.data_source` (no TensorFlow needed)."""

from __future__ import annotations

import os
import pathlib

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
