"""A run's folder: checks before writing, the one-writer lock, and its jsonl row files.

`WORKDIR/.lock` holds an advisory `flock` while a training writes the folder, with the owner's
process id inside; readers (`info`, `sample`, `evaluate`) never take it, but may ask who holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from typing import Any

from gan_jax.errors import CheckpointError, ConfigError

LOCK_FILE = ".lock"
METRICS_FILE = "metrics.jsonl"  # per-epoch mean losses and evaluation, one row per member
TIMING_FILE = "timing.jsonl"  # per-epoch speed and where the time went (see gan_jax.actions.Timing)
LOSSES_FILE = (
    "losses.jsonl"  # mean losses every few steps, per member (gan_jax.actions.write_loss_rows)
)
DATASET_FILE = "dataset.json"  # a user dataset's spec: sampling needs no data, resuming checks it

try:
    import fcntl
except ImportError:  # no flock on this platform: runs are not locked
    fcntl = None  # type: ignore[assignment]


def check_workdir(workdir: str | os.PathLike) -> pathlib.Path:
    """Refuses a workdir that is a file or cannot be created or written; creates nothing."""
    path = pathlib.Path(workdir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"workdir {path} is a file; pass a folder path")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot create workdir {path}: {existing} is a file; pass a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"workdir {path} is not writable; pass a writable folder")
    return path


def record_dataset(workdir: pathlib.Path, spec: dict[str, Any]) -> None:
    """Writes `spec` (a `DatasetSpec.to_json()`) as the run's dataset, or checks it against the one
    recorded when the run started.

    Raises:
      CheckpointError: the dataset's shape, classes or class counts changed since then.
    """
    path = workdir / DATASET_FILE
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != spec:
            changed = sorted(k for k in spec if stored.get(k) != spec[k])
            raise CheckpointError(
                f"{spec['name']} changed since {workdir} started ({', '.join(changed)} differ "
                f"from {path}); restore the data, or pass a different --workdir"
            )
        return
    write_atomically(path, (json.dumps(spec, indent=1) + "\n").encode())


def write_atomically(path: pathlib.Path, content: bytes) -> None:
    """Writes `content` to a temporary file beside `path`, then renames it over `path`: a reader
    sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def read_dataset_record(workdir: str | os.PathLike) -> dict[str, Any] | None:
    """The dataset spec `record_dataset` wrote, or None."""
    path = pathlib.Path(workdir) / DATASET_FILE
    return json.loads(path.read_text()) if path.exists() else None


@contextlib.contextmanager
def exclusive_workdir(workdir: pathlib.Path):
    """Holds the advisory lock on `WORKDIR/.lock` so two trainings never write one workdir at once.

    The operating system releases it when the process ends, however it ends (SIGKILL included).
    Raises:
      CheckpointError: another process holds it.
    """
    if fcntl is None:
        yield
        return
    with open(workdir / LOCK_FILE, "a+") as handle:
        try:
            _lock_exclusive(handle)
        except BlockingIOError:
            raise CheckpointError(
                f"{workdir} is being trained by {_owner(handle)}; wait for it to finish or pass "
                "a different --workdir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_exclusive(handle) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # perhaps a reader's `training_owner` probe, which lets go at once
        time.sleep(0.2)
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def deleted_under_training(workdir: pathlib.Path) -> bool:
    """Whether a workdir that a training holds (`exclusive_workdir`) was deleted: it or its lock
    file is gone (a save in flight may have made the folder again)."""
    return not workdir.is_dir() or (fcntl is not None and not (workdir / LOCK_FILE).exists())


def training_owner(workdir: str | os.PathLike) -> str | None:
    """'process N' while a training holds `workdir`'s lock, else None. Creates and changes
    nothing."""
    path = pathlib.Path(workdir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _owner(handle)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except PermissionError:  # not ours to read: we cannot tell
        return None
    return None


def _owner(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


def read_rows(workdir: str | os.PathLike, name: str = METRICS_FILE) -> list[dict[str, Any]]:
    """The rows of the jsonl file `WORKDIR/name` (default `metrics.jsonl`); empty when absent. A
    last line without its newline that is not JSON (a write cut short by a kill) is left out."""
    path = pathlib.Path(workdir) / name
    if not path.exists():
        return []
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1 or text.endswith("\n"):
                raise
    return rows


def append_row(workdir: pathlib.Path, name: str, row: dict[str, Any]) -> None:
    """Appends one JSON line to `WORKDIR/name`."""
    append_rows(workdir, name, [row])


def append_rows(workdir: pathlib.Path, name: str, rows: list[dict[str, Any]]) -> None:
    """Appends one JSON line per row to `WORKDIR/name`, in one write."""
    with open(workdir / name, "a") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))


def keep_rows(workdir: pathlib.Path, name: str, keep) -> None:
    """Rewrites `WORKDIR/name` atomically with the rows for which `keep(row)` is true."""
    rows = read_rows(workdir, name)
    kept = [row for row in rows if keep(row)]
    text = (workdir / name).read_text() if (workdir / name).exists() else ""
    cut = text != "" and not text.endswith("\n")  # its last line was cut by a kill
    if len(kept) != len(rows) or cut:
        text = "".join(json.dumps(row) + "\n" for row in kept)
        write_atomically(workdir / name, text.encode())


class MetricWriter:
    """The run's jsonl files (`metrics.jsonl`, `timing.jsonl`, `losses.jsonl`): rows are written
    only by the writer process (`enabled`; see `gan_jax.parallel.is_writer`), so no caller checks
    which process it is."""

    def __init__(self, workdir: pathlib.Path, names: tuple[str, ...], enabled: bool = True):
        self.workdir, self.names, self.enabled = workdir, names, enabled

    def append(self, name: str, row: dict[str, Any]) -> None:
        if self.enabled:
            append_row(self.workdir, name, row)

    def extend(self, name: str, rows: list[dict[str, Any]]) -> None:
        if self.enabled:
            append_rows(self.workdir, name, rows)

    def keep_complete_up_to(self, step: int) -> None:
        """Keeps complete rows up to `step`: later ones are written again on resume, partial ones
        superseded."""
        if self.enabled:
            for name in self.names:
                keep_rows(
                    self.workdir, name, lambda row: row["step"] <= step and not row.get("partial")
                )
