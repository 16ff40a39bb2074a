"""Kill real `gan-jax train` processes with SIGKILL at random points, resume, compare bit for bit.

    python -m scripts.kill_resume_check --points 20 [--steps 12] [--seed 0]

A reference run trains a tiny DCGAN for `--steps` steps on MNIST with a checkpoint every step.
Each point starts the same command in a fresh workdir, waits until a random step has been
checkpointed, sleeps a random 0-0.2 s (so the kill lands inside a step or inside a save), sends
SIGKILL, and runs the same command again to completion. A point passes when `params_sha256` (see
`gan-jax info`), metrics.jsonl and losses.jsonl equal the reference's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import subprocess
import sys
import tempfile
import time

from gan_jax.api import run_info
from gan_jax.checkpoint import CheckpointStore

# The tiny DCGAN on the command line; the tests use the same arguments.
TINY = "--batch-size 8 --noise-dim 8 --g-features 8,4,4 --d-features 4,8 --no-progress".split()


def train_command(workdir: pathlib.Path, *extra: object) -> list[str]:
    """`gan-jax train gan` of the tiny DCGAN in `workdir`, then `extra` (each made a string)."""
    cli = [sys.executable, "-m", "gan_jax.cli", "train", "gan", "--workdir", str(workdir)]
    return [*cli, *TINY, *map(str, extra)]


def checkpointed_command(workdir: pathlib.Path, steps: int) -> list[str]:
    """`steps` steps of the tiny DCGAN, checkpointed after every step."""
    return train_command(workdir, "--steps", steps, "--checkpoint-every", 1)


def latest_step(workdir: pathlib.Path) -> int:
    return CheckpointStore.latest_in(workdir) or 0


def kill_and_resume(
    workdir: pathlib.Path, steps: int, after_step: int, delay_s: float, timeout_s: float = 300
) -> None:
    """SIGKILLs a run `delay_s` after step `after_step` is checkpointed; reruns it to the end."""
    cmd = checkpointed_command(workdir, steps)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout_s
    while latest_step(workdir) < after_step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay_s)
    proc.kill()
    proc.wait()
    subprocess.run(cmd, check=True, capture_output=True)


def check(points: int, steps: int = 12, seed: int = 0, root: pathlib.Path | None = None) -> dict:
    root = pathlib.Path(root or tempfile.mkdtemp(prefix="kill_resume_"))
    reference = root / "reference"
    subprocess.run(checkpointed_command(reference, steps), check=True, capture_output=True)
    expected = run_info(reference)["params_sha256"]
    expected_metrics = [
        (reference / name).read_text() for name in ("metrics.jsonl", "losses.jsonl")
    ]
    rng = random.Random(seed)
    results = []
    for point in range(points):
        workdir = root / f"point{point}"
        after, delay = rng.randint(1, steps - 2), round(rng.uniform(0, 0.2), 3)
        kill_and_resume(workdir, steps, after, delay)
        same = run_info(workdir)["params_sha256"] == expected
        same_metrics = [
            (workdir / n).read_text() for n in ("metrics.jsonl", "losses.jsonl")
        ] == expected_metrics
        results.append(
            {
                "after_step": after,
                "delay_s": delay,
                "bit_exact": same,
                "metrics_equal": same_metrics,
            }
        )
    return {
        "points": points,
        "steps": steps,
        "bit_exact": sum(r["bit_exact"] and r["metrics_equal"] for r in results),
        "details": results,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(check(args.points, args.steps, args.seed)))


if __name__ == "__main__":
    main()
