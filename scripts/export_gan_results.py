"""Copy a finished GAN run's figures into benchmarks/results/ with a JSON summary of its scores.

    python -m scripts.export_gan_results WORKDIR --name gan_cpu [--out benchmarks/results]

Writes NAME_real_vs_generated.png, NAME_losses.png, NAME_samples.png (the last epoch's grid) and
NAME.json (config, per-epoch losses and throughput, machine), and prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil

import jax

from gan_jax.checkpoint import CheckpointStore
from gan_jax.workdir import TIMING_FILE, read_rows


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export(workdir: pathlib.Path, name: str, out: pathlib.Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    grids = sorted((workdir / "samples").glob("epoch_*.png"))
    for source, target in (
        (workdir / "real_vs_generated.png", "real_vs_generated"),
        (workdir / "losses.png", "losses"),
        (grids[-1], "samples"),
    ):
        shutil.copy(source, out / f"{name}_{target}.png")
    metrics = read_rows(workdir)
    timing = read_rows(workdir, TIMING_FILE) or metrics  # early runs kept steps_per_s in metrics
    with CheckpointStore(workdir, create=False) as store:
        config, final_step = store.read_config(), store.latest_step()
    summary = {
        "name": name,
        "config": config,
        "final_step": final_step,
        "epochs": [{k: row[k] for k in ("epoch", "step", "d_loss", "g_loss")} for row in metrics],
        "steps_per_s_by_epoch": [round(row["steps_per_s"], 3) for row in timing],
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": jax.devices()[0].platform,
            "jax": jax.__version__,
        },
    }
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=pathlib.Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)
    print(json.dumps(export(args.workdir, args.name, args.out)))


if __name__ == "__main__":
    main()
