"""What the host loop spends outside the compiled calls per epoch, for the real models.

    python -m benchmarks.host_overhead [--tasks gan,sgan] [--epochs 3] [--out FILE.jsonl]

Trains the tutorial DCGAN and the SGAN mlp recipe through `gan_jax.train` on a small slice of the
real MNIST (10 steps per epoch at their own batch sizes), so every epoch ends with the loop's full
host work at its real size: the checkpoint save (its device checksum included), the sample grid PNG,
TensorBoard events, the metrics rows, and for the SGAN the test-set evaluation. Prints one JSON
line per epoch from `timing.jsonl` (`save_seconds`, `eval_seconds`, `outputs_seconds`,
`host_seconds`, `device_seconds`) with the task and machine, and `device_share`, the share of the
epoch's wall time spent in compiled calls. Since the evaluation, rows, PNG and TensorBoard run in a
background thread beside the next epoch's calls, `host_seconds` is what the loop itself waited:
the snapshot, the blocking part of the save, and any wait for the previous epoch's outputs. With a
device's compiled rate it predicts the share of a whole run spent waiting on the host:
`host / (host + steps_per_epoch / steps_per_s)`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile

import jax

from gan_jax import GANConfig, SGANConfig, Split, load, train
from gan_jax.workdir import TIMING_FILE, read_rows

STEPS_PER_EPOCH = 10


def measure(task: str, epochs: int) -> list[dict]:
    config = GANConfig(epochs=epochs) if task == "gan" else SGANConfig(labels=100, epochs=epochs)
    full = load("mnist", "train")
    n = STEPS_PER_EPOCH * config.batch_size
    data = Split(full.images[:n], full.labels[:n])
    with tempfile.TemporaryDirectory() as workdir:
        train(config, workdir, data=data, progress=False)
        rows = read_rows(workdir, TIMING_FILE)
        latest = pathlib.Path(workdir, "checkpoints", str(rows[-1]["step"]))
        size = sum(f.stat().st_size for f in latest.rglob("*") if f.is_file())
    return [{"task": task, "checkpoint_mb": round(size / 2**20, 1), **r,
             "device_share": round(r["device_seconds"] / (r["device_seconds"] + r["host_seconds"]), 3)} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="gan,sgan")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    lines = []
    for task in args.tasks.split(","):
        for row in measure(task, args.epochs):
            lines.append(json.dumps({**row, "backend": jax.default_backend()}))
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
