"""The DCGAN step on CPU, side by side in one run: gan_jax on XLA's and on oneDNN's convolutions,
and TensorFlow's alternating and tutorial steps. Prints one JSON line per measurement, then a
summary line (median ms per step of each).

    gan-jax onednn build                       # the oneDNN path (apt-get install g++ libdnnl-dev)
    python -m benchmarks.cpu_peers [--batch-size 256] [--steps 10] [--repeats 3] \\
        [--tf-python PATH]                     # a Python with tensorflow (omit: no TF rows)

The configurations alternate within each repeat, so a busy neighbour slows all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def _last_json(command: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tf-python", help="a Python interpreter that has tensorflow")
    args = parser.parse_args(argv)
    bench = [sys.executable, "-m", "gan_jax.cli", "bench", "--models", "dcgan"]
    bench += ["--batch-sizes", str(args.batch_size), "--steps", str(args.steps)]
    runs = {f"gan_jax {path}": (bench, {"GAN_JAX_CONV": path}) for path in ("xla", "onednn")}
    if args.tf_python:
        tf = [args.tf_python, "-m", "benchmarks.peers.tf_dcgan"]
        tf += ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
        runs["tensorflow alternating"] = ([*tf, "--alternating"], {})
        runs["tensorflow tutorial"] = (tf, {})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, (command, extra) in runs.items():
            row = _last_json(command, {**os.environ, **extra})
            times[name].append(row["ms_per_step"])
            print(json.dumps({"run": name, "repeat": repeat, **row}), flush=True)
    summary = {name: statistics.median(ms) for name, ms in times.items()}
    print(json.dumps({"summary_median_ms_per_step": summary, "all_ms_per_step": times}))


if __name__ == "__main__":
    main()
