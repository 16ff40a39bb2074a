"""DCGAN training-step benchmark: one JSON line per configuration.

    python -m benchmarks.run [--batch-sizes 64,256,1024] [--steps 10] [--plain]

Each line: device, jax/jaxlib versions, XLA flags, batch size, steps per compiled call, compile
time, steps/s, images/s, the step's FLOPs (XLA's cost analysis), achieved GFLOP/s and the float32
matmul peak measured in the same run, and peak memory (device stats where the backend has them,
else the process's max RSS). Data is synthetic uint8 already on the device, so it times the step
(D + G update), not the input pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from gan_jax.config import GANConfig
from gan_jax.data import epoch_permutation
from gan_jax.steps import default_steps_per_call, make_runner
from gan_jax.tasks import GANTask


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of an n×n×n matrix product on the default device (best of `repeats`)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory_bytes() -> int:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_dcgan(batch_size: int, steps: int, fast_grad: bool, steps_per_call: int | None) -> dict:
    config = GANConfig(batch_size=batch_size)
    task = GANTask(config, fast_grad=fast_grad)
    steps_per_epoch = max(steps, 1)
    per_call = steps_per_call or default_steps_per_call(steps_per_epoch)
    num_examples = batch_size * steps_per_epoch
    images = jax.device_put(np.random.default_rng(0).integers(0, 256, (num_examples, 28, 28, 1), np.uint8))
    perm = epoch_permutation(task.data_key(), 0, num_examples)
    run = make_runner(task.step, steps_per_epoch, per_call)
    state = task.init()

    start = time.perf_counter()
    compiled = run.lower(state, images, perm).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops_per_step = float(cost.get("flops", 0.0)) / per_call

    state, metrics, _ = run(state, images, perm)  # warm-up call (reuses the compiled program)
    jax.block_until_ready(metrics)
    calls = max(steps // per_call, 1)
    start = time.perf_counter()
    for _ in range(calls):
        state, metrics, _ = run(state, images, perm)
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
    steps_per_s = calls * per_call / elapsed
    return {
        "model": "dcgan", "batch_size": batch_size, "fast_grad": fast_grad, "steps_per_call": per_call,
        "timed_steps": calls * per_call, "compile_s": round(compile_s, 2),
        "ms_per_step": round(1000 / steps_per_s, 1), "steps_per_s": round(steps_per_s, 3),
        "images_per_s": round(steps_per_s * batch_size, 1),
        "gflop_per_step": round(flops_per_step / 1e9, 2),
        "achieved_gflops": round(flops_per_step * steps_per_s / 1e9, 1),
        "final_d_loss": float(metrics["d_loss"][-1]),
    }


def environment() -> dict:
    device = jax.devices()[0]
    return {
        "platform": device.platform, "device": device.device_kind, "device_count": jax.device_count(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="64,256", help="comma-separated (default 64,256)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (default 5)")
    parser.add_argument("--plain", action="store_true", help="also time plain autodiff transposed convs")
    parser.add_argument("--steps-per-call", type=int, default=None, help="override the per-platform choice")
    args = parser.parse_args(argv)
    env = environment()
    peak = round(matmul_peak_gflops(), 1)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for fast in (True, False) if args.plain else (True,):
            row = bench_dcgan(batch, args.steps, fast, args.steps_per_call)
            print(json.dumps({**row, "matmul_peak_gflops_f32": peak, "peak_memory_bytes": peak_memory_bytes(), **env}),
                  flush=True)


if __name__ == "__main__":
    main()
