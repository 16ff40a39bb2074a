"""Orbax checkpoints of a run: the train state, the config that made it, and the loop's counters.

Layout: `WORKDIR/checkpoints/<step>/{state, config, loop}`. Orbax writes each step into a
temporary folder and renames it when complete, so an interrupted save is never the latest. The
`loop` item also stores `state_checksum`, a checksum of the whole saved state computed on the
device (`checksum`): a restore that does not reproduce it (or a checkpoint without one, from a
release before 0.1) is treated as corrupted, moved to `WORKDIR/corrupt_checkpoints/`, reported,
and the previous good checkpoint is used instead.

Saves are asynchronous (Orbax writes in a background thread while training goes on): `save`
returns once the state is copied, `wait` blocks until the newest save is complete on disk.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import sys
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.errors import CheckpointError

log = logging.getLogger("gan_jax")

_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")


def os_error(err: BaseException | None) -> OSError | None:
    """The operating-system error behind `err`: itself, one in its cause chain, or the errno that
    TensorStore writes into its messages (`... No space left on device [os_error_code='28']`)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError):
            return err
        match = _OS_ERROR_CODE.search(str(err))
        if match:
            code = int(match.group(1))
            return OSError(code, os.strerror(code))
        err = err.__cause__ or err.__context__
    return None


_STORE_DIRS: set[str] = set()  # the checkpoint folders this process opened stores on


def _reported(failure: BaseException | None) -> bool:
    """Whether a store's own call raises `failure` too: a disk error, or an error about one of its
    folders (a save in progress, a checkpoint deleted while read)."""
    text = str(failure)
    return os_error(failure) is not None or any(folder in text for folder in _STORE_DIRS)


class _ReportedByTheStore(logging.Filter):
    """Drops Orbax's and its event loops' logged tracebacks of a failed save or read: the store's
    call raises that failure again and reports it (a disk error as one `CheckpointError` line)."""

    REPORTED = ("background save thread", "Save Finalize thread", "_SignalingThread.run() raised")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info:
            return True
        message = record.getMessage()
        return not _reported(record.exc_info[1]) and not any(
            text in message for text in self.REPORTED
        )


def _quiet_closed_loops(unraisable: Any, previous: Any) -> None:
    """Leaves out the echoes of a failed save or read that the store reports: TensorStore's "Event
    loop is closed" (the rest of its writes or reads finish into the event loop Orbax closed after
    the failure) and Orbax's abandoned coroutines about the store's folders."""
    error = unraisable.exc_value
    closed = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
    if not closed and not _reported(error):
        previous(unraisable)


def quiet_reported_failures() -> None:
    """Leaves out, process-wide, the echoes of a failed save or read that a store reports itself
    (one `CheckpointError` line): Orbax's logged tracebacks (loggers `absl`, `asyncio`) and the
    unraisable exceptions of its abandoned writes. `gan_jax.setup_process()` calls it (the CLI);
    importing gan_jax does not. Calling it again changes nothing."""
    for name in ("absl", "asyncio"):  # Orbax's logger, and its event loops' unretrieved failures
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ReportedByTheStore) for f in logger.filters):
            logger.addFilter(_ReportedByTheStore())
    if not isinstance(sys.unraisablehook, functools.partial):
        sys.unraisablehook = functools.partial(_quiet_closed_loops, previous=sys.unraisablehook)


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 1e5 else f"{num_bytes / 1e3:.0f} kB"


def folder_bytes(path: pathlib.Path) -> int:
    """Total size of the files under `path` (0 if it is missing)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


# Disk errors a user fixes: full (ENOSPC, EDQUOT), failing (EIO), unwritable, or deleted (ENOENT).
WRITE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOENT,
)


def write_failure(
    workdir: pathlib.Path,
    err: OSError,
    what: str,
    resume: str,
    need: int = 0,
    deleted: bool | None = None,
) -> CheckpointError:
    """The one-line `CheckpointError` for `what` (e.g. "save the checkpoint of step 4") failing in
    `workdir` on a disk error: the problem, its fix, and `resume` (what running again does).
    `need` (bytes) is the free space to ask for on a full disk; `deleted` (default: whether the
    workdir is gone) names a workdir deleted under the run."""
    if deleted if deleted is not None else not workdir.is_dir():
        return CheckpointError(
            f"could not {what}: {workdir} was deleted during training, so nothing more is written "
            "there; restore the folder and run the same command to resume, or run it as is to "
            "start over"
        )
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        space = f"about {_size(need)} more is needed, one checkpoint's size" if need else ""
        problem, fix = f"{reason}: {space}" if space else reason, "free space there"
    elif err.errno == errno.EIO:
        problem, fix = f"{reason}: the disk failed a read or write", "check the disk"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        problem, fix = f"{reason}: it cannot be written", "make it writable"
    else:
        problem, fix = reason, "fix that"
    return CheckpointError(
        f"could not {what} in {workdir} ({problem}); {fix}, then run the same command to {resume}"
    )


def fingerprint(tree: Any) -> str:
    """SHA-256 of a pytree's arrays in a stable order: sorted key paths, then dtype, shape, bytes.

    Bytes are little-endian and C-ordered, so equal arrays give equal digests on any machine.
    """
    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.asarray(jax.device_get(leaf))
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


_MIX = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D)


def _leaf_checksum(x: jax.Array) -> jax.Array:
    """Two uint32 words from a leaf's bits and positions; integer arithmetic, so exact on any
    device."""
    if x.dtype == jnp.bool_:
        bits = x.astype(jnp.uint32)
    elif x.dtype.itemsize == 8:  # both 32-bit halves (a trailing axis of 2)
        bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    else:
        bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * x.dtype.itemsize}")).astype(
            jnp.uint32
        )
    bits = bits.reshape(-1)
    h = bits * jnp.uint32(_MIX[0]) + jnp.arange(bits.size, dtype=jnp.uint32) * jnp.uint32(_MIX[1])
    h = (h ^ (h >> 15)) * jnp.uint32(_MIX[2])
    h = h ^ (h >> 13)
    return jnp.stack(
        [jnp.sum(h, dtype=jnp.uint32), jax.lax.reduce(h, jnp.uint32(0), jax.lax.bitwise_xor, (0,))]
    )


@jax.jit
def _leaf_checksums(leaves: list[jax.Array]) -> jax.Array:
    return (
        jnp.stack([_leaf_checksum(x) for x in leaves]) if leaves else jnp.zeros((0, 2), jnp.uint32)
    )


def checksum(tree: Any) -> str:
    """A checksum of a pytree's arrays computed where they live: only 8 bytes per array reach the
    host.

    Each array's bits (positions included) are mixed and reduced with wrapping uint32 sums and xors,
    which no reduction order changes, so equal arrays give equal checksums on any machine. The
    words are then hashed on the host with each array's key path, dtype and shape (SHA-256, hex).
    It detects damaged or mismatched checkpoints; unlike `fingerprint` it is not cryptographic.
    """
    leaves = sorted(
        jax.tree_util.tree_flatten_with_path(tree)[0],
        key=lambda item: jax.tree_util.keystr(item[0]),
    )
    arrays = [jnp.asarray(leaf) for _, leaf in leaves]
    words = np.asarray(jax.device_get(_leaf_checksums(arrays)), "<u4")
    digest = hashlib.sha256()
    for (path, _), array, pair in zip(leaves, arrays, words, strict=False):
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(pair.tobytes())
    return digest.hexdigest()


def params_fingerprint(state: Any) -> str:
    """`fingerprint` of every model's parameters and normalization statistics (not optimizer
    state)."""
    return fingerprint(
        {
            name: {"params": m.params, "batch_stats": m.batch_stats}
            for name, m in state.models.items()
        }
    )


class CheckpointStore:
    """The checkpoints under `WORKDIR/checkpoints`.

    Args:
      workdir: the run's folder.
      max_to_keep: newest checkpoints kept; older ones are deleted after each save.
      create: training mode: make the folder if missing and clean up interrupted saves; when False
        (reading) a missing folder is an error and nothing on disk is touched.
    """

    def __init__(self, workdir: str | os.PathLike, *, max_to_keep: int = 3, create: bool = True):
        self.workdir = pathlib.Path(workdir).absolute()
        self.directory = self.workdir / "checkpoints"
        if not create and not self.directory.is_dir():
            raise CheckpointError(
                f"no checkpoints in {workdir}; train first, e.g. `gan-jax train gan --workdir "
                f"{workdir}`"
            )
        # Only a training store removes leftovers of interrupted saves: a reader (`info`, `sample`)
        # running beside a training process must not delete that process's save in progress.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=create,
            enable_async_checkpointing=create,
            cleanup_tmp_directories=create,
            # Folders made in the caller's thread: a folder that cannot be made fails the save at
            # once, instead of leaving Orbax's writer threads waiting for it until their timeout.
            async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        _STORE_DIRS.add(str(self.directory))
        self._pending_step: int | None = None
        self._state_bytes = 0
        # The training's lock file (`gan_jax.workdir`): gone means the workdir was deleted under us.
        self._lock = (
            self.workdir / ".lock" if create and (self.workdir / ".lock").exists() else None
        )

    @staticmethod
    def latest_in(workdir: str | os.PathLike) -> int | None:
        """The newest complete checkpoint's step in `workdir`, or None; reads without opening a
        store."""
        directory = pathlib.Path(workdir) / "checkpoints"
        steps = (
            [int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit()]
            if directory.is_dir()
            else []
        )
        return max(steps, default=None)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self.manager.latest_step()

    def save(self, step: int, state: Any, config: dict[str, Any], loop: dict[str, Any]) -> None:
        """Starts saving `state` (with its checksum in `loop`) and returns once Orbax holds a copy.

        The state's arrays must stay alive (not donated) until the next `save` or `wait`; the loop
        passes a device copy. An earlier save still in progress is finished first.
        Raises:
          CheckpointError: this or the previous save failed (e.g. a full disk); older checkpoints
            are untouched.
        """
        # A deep copy: Orbax writes it in the background while the loop goes on changing its
        # counters.
        loop = json.loads(json.dumps({**loop, "state_checksum": checksum(state)}))
        config = json.loads(json.dumps(config))
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(config),
            loop=ocp.args.JsonSave(loop),
        )
        self.wait()
        if self._deleted():  # during training: Orbax would write a new checkpoints folder
            gone = OSError(errno.ENOENT, os.strerror(errno.ENOENT))
            raise write_failure(
                self.workdir, gone, f"save the checkpoint of step {step}", "resume", deleted=True
            )
        self._state_bytes = sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state))
        try:
            self.manager.save(step, args=args, force=True)
        except Exception as err:  # TensorStore reports disk errors as ValueError
            failure = self._failed(step, err)
            if failure is None:
                raise
            raise failure from err
        self._pending_step = step

    def wait(self) -> None:
        """Blocks until the newest save is complete on disk.

        Raises:
          CheckpointError: it failed; older checkpoints are untouched.
        """
        step, self._pending_step = self._pending_step, None
        try:
            self.manager.wait_until_finished()
        except Exception as err:  # TensorStore reports disk errors as ValueError
            failure = self._failed(step, err)
            if failure is None:
                raise
            raise failure from err

    def _deleted(self) -> bool:
        """Whether the workdir (or its checkpoints folder) was deleted while this store wrote it."""
        return not self.directory.is_dir() or (self._lock is not None and not self._lock.exists())

    def _failed(self, step: int | None, err: Exception) -> CheckpointError | None:
        """A disk error, or any error once the workdir was deleted, as a one-line
        `CheckpointError`; None for any other error."""
        cause, deleted = os_error(err), self._deleted()
        if deleted:
            cause = cause or OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if cause is None:
            return None
        latest = None
        if not deleted:
            self.manager.reload()
            latest = self.latest_step()
        need = folder_bytes(self.directory / str(latest)) if latest is not None else 0
        return write_failure(
            self.workdir,
            cause,
            f"save the checkpoint of step {step}",
            "start again" if latest is None else f"resume from step {latest}",
            need or self._state_bytes,
            deleted=deleted,
        )

    def read_config(self, step: int | None = None) -> dict[str, Any]:
        """The config stored with a checkpoint (the latest by default)."""
        step = self._existing(step)
        try:
            return self.manager.restore(
                step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
            )["config"]
        except Exception as err:  # orbax raises many types for unreadable items
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} has no readable config ({err})"
            ) from err

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores `(state, loop)` of one step and verifies its fingerprint.

        Args:
          target: a state of the same structure (e.g. a fresh init), giving shapes and dtypes.
          step: which checkpoint; default the latest.
        Raises:
          CheckpointError: the checkpoint is unreadable or its fingerprint does not match.
        """
        step = self._existing(step)
        try:
            state, loop = self._restore_item(step, target)
        except Exception as err:  # orbax/tensorstore raise many types for damaged files
            raise CheckpointError(
                f"checkpoint {step} is unreadable ({type(err).__name__}: {str(err)[:200]})"
            ) from err
        if loop.pop("state_checksum", None) != checksum(state):
            raise CheckpointError(f"checkpoint {step} does not match its fingerprint (corrupted)")
        return state, loop

    def _restore_item(self, step: int, item: Any) -> tuple[Any, dict[str, Any]]:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, item)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], dict(restored["loop"])

    def restore_latest_good(
        self, target: Any, *, quarantine: bool = True
    ) -> tuple[Any, dict[str, Any]] | None:
        """The newest checkpoint that restores and verifies, skipping (and reporting) damaged ones.

        With `quarantine`, a damaged checkpoint is moved to `WORKDIR/corrupt_checkpoints/` so that
        training can save that step again; without it, nothing on disk changes.
        Returns None when there is no checkpoint at all.
        Raises:
          CheckpointError: checkpoints exist but none is usable.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        tries, damaged = 0, False
        while steps:
            step = steps.pop(0)
            try:
                return self.restore(target, step)
            except CheckpointError as err:
                if not (self.directory / str(step)).exists() and tries < 100:
                    # A training beside this reader deleted it (beyond its --keep-checkpoints)
                    # while it was read: read the newer ones instead.
                    tries += 1
                    self.manager.reload()
                    steps = sorted(self.manager.all_steps(), reverse=True)
                    continue
                damaged = True
                where = f"moved it to {self._quarantine(step)}" if quarantine else "skipping it"
                log.warning("%s; %s and trying the previous checkpoint", err, where)
        if damaged:
            where = (
                f"damaged ones are in {self.workdir / 'corrupt_checkpoints'}"
                if quarantine
                else "all are damaged"
            )
            raise CheckpointError(
                f"no usable checkpoint in {self.directory} ({where}); pass a new --workdir to "
                "start over"
            )
        return None

    def _quarantine(self, step: int) -> pathlib.Path:
        target = self.workdir / "corrupt_checkpoints" / str(step)
        suffix = 0
        while target.exists():
            suffix += 1
            target = self.workdir / "corrupt_checkpoints" / f"{step}.{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.directory / str(step)), target)
        self.manager.reload()
        return target

    def _existing(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no complete checkpoint in {self.directory}; train first")
        return step

    def close(self) -> None:
        """Finishes a save in progress and releases the manager."""
        try:
            self.wait()
        finally:
            try:
                self.manager.close()
            except Exception as err:  # Orbax raises a failed save's error again: reported once
                if self._failed(None, err) is None:
                    raise

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.close()
        return False
