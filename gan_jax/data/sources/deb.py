"""Images and labels as gzipped idx files inside a Debian package, which `apt-get download`
fetches (nothing is installed). The files are checked as the package ships them: Debian's gzip
headers differ from upstream's, the deflate data and thus the decompressed idx bytes do not."""

from __future__ import annotations

import dataclasses
import gzip
import io
import pathlib
import tarfile

import numpy as np

from gan_jax.data.download import fetch_once, verified
from gan_jax.data.spec import Arrays, DatasetSpec
from gan_jax.errors import DataError


@dataclasses.dataclass(frozen=True)
class DebIdx:
    """A `.deb` holding one gzipped idx images file and one labels file per split.

    Attributes:
      package: what `apt-get download` fetches, pinned (`name=version`).
      sha256: the `.deb`'s SHA-256.
      folder: the files' folder inside the package's `data.tar.xz` (`./usr/share/...`).
      files: split → ((images file, its SHA-256), (labels file, its SHA-256)), as shipped (.gz).
    """

    package: str
    sha256: str
    folder: str
    files: dict[str, tuple[tuple[str, str], tuple[str, str]]]

    @property
    def file(self) -> str:
        """The `.deb`'s name in the cache folder: `<package name>.deb`."""
        return self.package.split("=")[0] + ".deb"

    def read(self, folder: pathlib.Path, spec: DatasetSpec) -> Arrays:
        """The four arrays (images uint8 `[N, *spec.shape]`, labels int32 `[N]`) from the package,
        fetched into `folder` once."""
        path = folder / self.file
        deb = fetch_once(
            path,
            self.sha256,
            ["apt-get", "download", self.package],
            found="*.deb",
            unavailable=f"{spec.title} is not available: TFDS has no prepared '{spec.name}' and "
            f"`apt-get download {self.package}`",
            fix=f"run `apt-get update` first (Debian 12), prepare TFDS {spec.name}, or put the "
            f".deb into {path}",
        )
        members = _ar_members(deb.read_bytes())
        if "data.tar.xz" not in members:
            raise DataError(f"{deb} has no data.tar.xz; delete it and retry")
        tar = tarfile.open(fileobj=io.BytesIO(members["data.tar.xz"]))
        arrays = {}
        for split, pair in self.files.items():
            images, labels = (
                read_idx(gzip.decompress(self._member(tar, deb, *file))) for file in pair
            )
            arrays[f"{split}_images"] = images.reshape(-1, *spec.shape)
            arrays[f"{split}_labels"] = labels.astype(np.int32)
        return arrays

    def _member(self, tar: tarfile.TarFile, deb: pathlib.Path, name: str, sha256: str) -> bytes:
        try:
            member = tar.extractfile(self.folder + name)
        except KeyError:
            member = None
        # missing from the package (or not a regular file): fails the checksum
        data = b"" if member is None else member.read()
        return verified(data, sha256, name, deb)


def read_idx(data: bytes) -> np.ndarray:
    """An uncompressed idx file (big-endian header: magic 0x0803 images / 0x0801 labels, then the
    sizes) as uint8 of its shape, e.g. `[N, 28, 28]` images or `[N]` labels."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError("not an idx file of unsigned bytes")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if array.size != int(np.prod(shape)):
        raise DataError(f"idx file holds {array.size} bytes for shape {shape}")
    return array.reshape(shape)


def _ar_members(archive: bytes) -> dict[str, bytes]:
    """The members of an `ar` archive (the format of a .deb), by name."""
    if archive[:8] != b"!<arch>\n":
        raise DataError("not a .deb (ar) archive")
    members, offset = {}, 8
    while offset + 60 <= len(archive):
        header = archive[offset : offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        members[name] = archive[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size & 1)
    return members
