"""One DCGAN training step (D + G update) by image size: the tutorial's at 28×28×1, the DCGAN
paper's at 64×64×1 and 64×64×3 (issue 25).

    python -m benchmarks.dcgan64_step [--batch-size 64] [--steps 5] [--shapes 28x28x1,64x64x3]

Prints one JSON object: a row per image shape with `gan_jax.bench.time_task`'s fields (ms/step,
compile seconds, XLA's GFLOP per step, ...), the architecture, parameter counts, and the machine
(device, versions, the 1-minute load average before and after each row). The default config's
widths (g_features (256, 128, 64), d_features (64, 128)) give the paper's ngf = ndf = 64 at 64 px.
Data is random uint8 on the device, as `gan-jax bench`. On a machine shared with other jobs the
times are upper bounds: compare `gflop_per_step`, which does not depend on the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import jax
import numpy as np

from gan_jax import GANConfig, GANTask, Split
from gan_jax.bench import environment, time_task
from gan_jax.models import dcgan_architecture


@dataclasses.dataclass(frozen=True)
class ShapedGANTask(GANTask):
    """GANTask on images of `shape` (the dataset's 28×28×1 by default)."""

    shape: tuple[int, int, int] = (28, 28, 1)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def bench_shape(shape: tuple[int, int, int], batch_size: int, steps: int) -> dict:
    task = ShapedGANTask(GANConfig(batch_size=batch_size), shape=shape)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size * (steps + 1), *shape), np.uint8)
    load_before = os.getloadavg()[0]
    row = time_task(task, Split(images, np.zeros(len(images), np.int32)), steps)
    models = task.init().models
    return {
        "image_shape": list(shape),
        "architecture": dcgan_architecture(shape),
        "batch_size": batch_size,
        "g_params": _count(models["generator"].params),
        "d_params": _count(models["discriminator"].params),
        **row,
        "images_per_s": round(row["steps_per_s"] * batch_size, 1),
        "load_avg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per shape (default 5)")
    parser.add_argument(
        "--shapes", default="28x28x1,64x64x1,64x64x3", help="HxWxC, comma-separated"
    )
    args = parser.parse_args(argv)
    shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    rows = [bench_shape(shape, args.batch_size, args.steps) for shape in shapes]  # type: ignore[arg-type]
    print(json.dumps({"rows": rows, "environment": environment()}, indent=1))


if __name__ == "__main__":
    main()
