"""Orbax checkpoints of a run: the train state, the config that made it, and the loop's counters.

Layout: `WORKDIR/checkpoints/<step>/{state, config, loop}`. Orbax writes each step into a
temporary folder and renames it when complete, so an interrupted save is never the latest.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from gan_jax.errors import CheckpointError


class CheckpointStore:
    """The checkpoints under `WORKDIR/checkpoints`.

    Args:
      workdir: the run's folder.
      max_to_keep: newest checkpoints kept; older ones are deleted after each save.
      create: make the folder if missing (training); when False a missing folder is an error.
    """

    def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int = 3, create: bool = True):
        self.directory = pathlib.Path(workdir).absolute() / "checkpoints"
        if not create and not self.directory.is_dir():
            raise CheckpointError(
                f"no checkpoints in {workdir}; train first, e.g. `gan-jax train gan --workdir {workdir}`"
            )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self.manager.latest_step()

    def save(self, step: int, state: Any, config: dict[str, Any], loop: dict[str, Any]) -> None:
        """Saves synchronously; returns once the checkpoint is complete on disk."""
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(config),
            loop=ocp.args.JsonSave(loop),
        )
        self.manager.save(step, args=args, force=True)
        self.manager.wait_until_finished()

    def read_config(self, step: int | None = None) -> dict[str, Any]:
        """The config stored with a checkpoint (the latest by default)."""
        step = self._existing(step)
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores `(state, loop)`; `target` is a state of the same structure (e.g. a fresh init)."""
        step = self._existing(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()))
        return restored["state"], restored["loop"]

    def _existing(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no complete checkpoint in {self.directory}; train first")
        return step

    def close(self) -> None:
        self.manager.close()
