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

import hashlib
import json
import logging
import os
import pathlib
import shutil
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.errors import CheckpointError

log = logging.getLogger("gan_jax")


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
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self._pending_step: int | None = None

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
        try:
            self.manager.save(step, args=args, force=True)
        except OSError as err:
            raise self._failed(step, err) from err
        self._pending_step = step

    def wait(self) -> None:
        """Blocks until the newest save is complete on disk.

        Raises:
          CheckpointError: it failed; older checkpoints are untouched.
        """
        step, self._pending_step = self._pending_step, None
        try:
            self.manager.wait_until_finished()
        except OSError as err:
            raise self._failed(step, err) from err

    def _failed(self, step: int | None, err: OSError) -> CheckpointError:
        self.manager.reload()
        return CheckpointError(
            f"could not save the checkpoint of step {step} in {self.directory} "
            f"({err.strerror or err}); free space or fix permissions, then run the same command to "
            f"resume from step {self.latest_step()}"
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
        for step in steps:
            try:
                return self.restore(target, step)
            except CheckpointError as err:
                where = f"moved it to {self._quarantine(step)}" if quarantine else "skipping it"
                log.warning("%s; %s and trying the previous checkpoint", err, where)
        if steps:
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
            self.manager.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.close()
        return False
