"""TensorBoard event files of a run, written with tensorboardX (no TensorFlow needed).

Per epoch: every number of the epoch's metrics row (losses, FD, test accuracy, ...) as a scalar,
throughput as `speed/steps_per_s`, and the fixed-noise sample grid as the image `samples`, all at
the global step. One member (one data seed) writes into `WORKDIR`; several write into
`WORKDIR/data_seed_<S>/` each, so `tensorboard --logdir runs/` draws them as separate runs. A
resumed run hides the events after its checkpoint (and a partial epoch's at it), as it rewrites the
jsonl files.
"""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import numpy as np

from gan_jax.plots import image_grid

# Row entries that label a row rather than measure something.
_NOT_SCALARS = ("epoch", "step", "partial")


def member_folder(workdir: pathlib.Path, member: dict[str, Any], num_members: int) -> pathlib.Path:
    """The event folder of one member: `workdir` itself, or `workdir/data_seed_3` among several."""
    if num_members == 1:
        return workdir
    return workdir.joinpath("_".join(f"{k}_{v}" for k, v in member.items()))


class EventWriter:
    """One tensorboardX `SummaryWriter` per member.

    Args:
      workdir: the run's folder.
      members: the task's members (`({},)`, or `({"data_seed": 0}, ...)`).
      purge_from: hide the events an earlier process wrote at this step and later (TensorBoard's
        purge), since that stretch is trained again; None hides nothing.
    """

    def __init__(
        self, workdir: pathlib.Path, members: tuple[dict[str, Any], ...], purge_from: int | None
    ):
        from tensorboardX import SummaryWriter

        self._labels = {key for member in members for key in member} | set(_NOT_SCALARS)
        self.writers = []
        try:
            for member in members:
                self.writers.append(
                    SummaryWriter(
                        str(member_folder(workdir, member, len(members))),
                        purge_step=purge_from,
                        flush_secs=3600,
                        # tensorboardX names files by the second: keep a restart
                        # within the same second from overwriting the last file
                        filename_suffix=f".{os.getpid()}.{time.time_ns()}",
                    )
                )
        except BaseException:
            self.close()
            raise

    def epoch(
        self,
        step: int,
        rows: list[dict[str, Any]],
        timing: dict[str, Any],
        samples: np.ndarray | None,
    ) -> None:
        """Writes one epoch: `rows[i]` is member i's metrics row, `samples` the first member's grid
        images (`[N, H, W, C]` in [-1, 1]) or None."""
        for writer, row in zip(self.writers, rows, strict=False):
            for key, value in row.items():
                if (
                    key not in self._labels
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    writer.add_scalar(key, value, step)
            writer.add_scalar("speed/steps_per_s", timing["steps_per_s"], step)
        if samples is not None:
            grid = image_grid(samples)
            self.writers[0].add_image(
                "samples", grid if grid.ndim == 3 else grid[..., None], step, dataformats="HWC"
            )
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
