"""Fingerprints of short real-MNIST runs of every task, to check that a refactor changed no result.

    python -m scripts.fingerprints [--out FOLDER]   # one JSON line

Trains, through the CLI of this checkout, 3 steps each of the tutorial DCGAN (batch 16), the cGAN,
the SGAN mlp recipe with data seeds 0 and 1 (batch 10, 20 labels), the conv supervised
baseline and the SGAN with the pseudo-labels' views (issue 38's options), then prints each
run's `params_sha256` (every parameter and normalization statistic), its metrics.jsonl rows
and `gan-jax evaluate` (2,000 samples for the generators). Run it in a worktree of the old
revision and in the new one on the same machine: equal output means bit-identical training and
evaluation.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

SGAN = "train sgan --labels 20 --data-seeds 0,1 --steps 3 --batch-size 10"
VIEWS = "--augment-shift 2 --pseudo-label-weight 1 --pseudo-label-threshold 0.1 --strong-rotate 20"
RUNS = {
    name: command.split()
    for name, command in {
        "gan": "train gan --steps 3 --batch-size 16",
        "cgan": "train cgan --steps 3 --batch-size 16",
        "sgan": SGAN,
        "supervised": "train supervised --labels 20 --model conv --steps 3",
        # the SGAN with the pseudo-labels' weak and strong views (issue 38)
        "sgan_views": f"{SGAN} {VIEWS} --strong-cutout 8 --pseudo-label-align",
    }.items()
}


def _cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", *args], check=True, capture_output=True, text=True
    ).stdout


def fingerprints(out: pathlib.Path) -> dict:
    result = {}
    for name, command in RUNS.items():
        workdir = out / name
        _cli(*command, "--workdir", str(workdir), "--no-progress", "--no-tensorboard")
        info = json.loads(_cli("info", "--workdir", str(workdir)))
        report = json.loads(_cli("evaluate", "--workdir", str(workdir), "--samples", "2000"))
        rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
        result[name] = {
            "params_sha256": info["params_sha256"],
            "rows": rows,
            "evaluate": {k: v for k, v in report.items() if k != "workdir"},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="folder for the runs (default: a temporary one)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(fingerprints(args.out or pathlib.Path(tmp))))


if __name__ == "__main__":
    main()
