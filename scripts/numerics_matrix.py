"""The suite's numerical comparisons under the code paths other CPUs take (issue 39).

    python -m scripts.numerics_matrix [--variants NAME,...]   # one JSON line per variant

XLA:CPU picks its kernels and vector width from the CPU it runs on. This runs the tests that
compare two computations of the same maths (1 vs 8 devices, fused vs separate steps, vmapped vs
alone, fast vs plain convolution gradients) under `XLA_FLAGS` that force another CPU's choices
(`--xla_cpu_max_isa`: SSE4_2's 128-bit vectors are what an AVX-512 Intel Xeon's optimization
level 0 reproduced, see tests/numerics.py) at the suite's optimization level 0 and at XLA's
default, 3, the level the library runs at. Each line: the variant, its flags, pytest's counts, the
seconds and this machine's CPU (`lscpu`'s model name).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

TESTS = [
    "tests/test_numerics.py",
    "tests/test_parallel.py",
    "tests/test_precision.py",
    "tests/tasks/test_gan.py",
    "tests/test_dcgan64.py",
    "tests/tasks/test_sgan.py::test_vmapped_seeds_equal_seed_by_seed_runs",
]
VARIANTS = {
    f"level{level}_{isa or 'native'}": f"--xla_backend_optimization_level={level}"
    + (f" --xla_cpu_max_isa={isa}" if isa else "")
    for level in (0, 3)
    for isa in (None, "AVX2", "SSE4_2")
}


def cpu_model() -> str:
    try:
        found = re.search(
            r"Model name:\s*(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        )
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor()


def run(name: str, flags: str) -> dict:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        env={**os.environ, "XLA_FLAGS": flags},
        capture_output=True,
        text=True,
    )
    counts = {
        k: int(n)
        for n, k in re.findall(r"(\d+) (passed|failed|error)", done.stdout.splitlines()[-1])
    }
    failed = [line.split(" ")[1] for line in done.stdout.splitlines() if line.startswith("FAILED")]
    return {
        "variant": name,
        "xla_flags": flags,
        **counts,
        "failed_tests": failed,
        "seconds": round(time.monotonic() - start),
        "cpu": cpu_model(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)"
    )
    args = parser.parse_args()
    for name in args.variants.split(","):
        print(json.dumps(run(name, VARIANTS[name])), flush=True)


if __name__ == "__main__":
    main()
