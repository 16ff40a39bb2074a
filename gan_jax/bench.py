"""Training-step benchmarks: one JSON line per configuration (`gan-jax bench`,
`python -m benchmarks.run`).

Configurations: the tutorial DCGAN (batch 64, 256, 1024 by default) and the SGAN MLP recipe (batch
100; 1 and 10 data seeds vmapped together). Each line holds steps/s, images/s, the compile time,
the step's FLOPs (XLA's cost analysis of the compiled program), the achieved GFLOP/s beside
float32 and bfloat16 matrix-product peaks measured in the same run, peak memory (the device's
allocator statistics where the backend has them, else the process's max RSS), and the device,
jax/jaxlib versions and XLA flags. Data is synthetic uint8 already on the device and every call
runs through the same compiled runner as training (`gan_jax.steps.make_runner`), so it times the
training step, not the input pipeline. Speed targets live here and in the committed results,
never in unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from gan_jax import onednn
from gan_jax.config import COMPUTE_DTYPES, GANConfig, SGANConfig
from gan_jax.data import Split
from gan_jax.errors import ConfigError
from gan_jax.steps import TaskStep, default_steps_per_call, make_runner

MODELS = ("dcgan", "sgan")
MNIST_TRAIN_EXAMPLES = 60_000  # the recipe's epoch is this many images


def matmul_size(platform: str | None = None) -> int:
    """The matrix side that reaches a platform's matmul peak: 2048 on CPU (larger only takes
    longer), 8192 on GPUs and TPUs (at 2048 an H200 measured 116 bf16 TFLOP/s, far under its dense
    peak, issue 16)."""
    return 2048 if (platform or jax.default_backend()) == "cpu" else 8192


def matmul_peak_gflops(dtype: str = "float32", n: int | None = None, repeats: int = 5) -> float:
    """GFLOP/s of an `n×n×n` matrix product in `dtype` (float32 accumulation), best of `repeats`;
    `n` defaults to `matmul_size()`."""
    n = n or matmul_size()
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.dtype(dtype))
    product = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
    product(a).block_until_ready()
    best = min(_seconds(lambda: product(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory() -> dict:
    """`peak_memory_bytes`: device 0's allocator peak (`peak_memory_kind`
    'device_peak_bytes_in_use'), or the process's max RSS where the backend keeps none
    ('process_max_rss').

    Both are highs of the whole process so far: a later row's value bounds that configuration's
    peak from above (`program_memory_bytes` is per configuration)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {
            "peak_memory_bytes": int(stats["peak_bytes_in_use"]),
            "peak_memory_kind": "device_peak_bytes_in_use",
        }
    return {
        "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_memory_kind": "process_max_rss",
    }


def program_memory_bytes(compiled) -> int | None:
    """XLA's memory plan of one compiled call: arguments + outputs + temporaries − donated aliases
    (per configuration, unlike the process-wide `peak_memory_bytes`); None where unavailable."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    planned = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )
    return int(max(getattr(stats, "peak_memory_in_bytes", 0), planned))


def synthetic_mnist(num_examples: int, seed: int = 0) -> Split:
    """Random uint8 images `[num_examples, 28, 28, 1]` with balanced labels (speed only)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_examples, 28, 28, 1), np.uint8)
    return Split(images, (np.arange(num_examples) % 10).astype(np.int32))


def time_task(task, train: Split, steps: int, steps_per_call: int | None = None) -> dict:
    """Compiles `task`'s runner on `train` and times at least `steps` steps after one warm-up call.

    Returns steps/s, ms/step, compile seconds, FLOPs per step and the last step's losses;
    `timed_steps` is `steps` rounded up to whole compiled calls of `steps_per_call`.
    """
    feed = task.feed
    data = jax.device_put(feed.arrays(train))
    steps_per_epoch = feed.steps_per_epoch(len(train.images))
    per_call = steps_per_call or task.steps_per_call(steps_per_epoch)
    per_call = min(per_call, steps_per_epoch)
    plan = feed.epoch_plan(0, len(train.images))
    batches = feed.batches(data, plan, 0, per_call)
    run = make_runner(TaskStep(task), per_call)
    state = task.init(data)

    start = time.perf_counter()
    compiled = run.lower(state, batches).compile()
    compile_s = time.perf_counter() - start
    program_bytes = program_memory_bytes(compiled)
    conv_path = onednn.backend()
    if per_call == 1 and conv_path == "xla":
        one_step = compiled
    else:  # XLA's cost analysis sees no FLOPs in oneDNN's custom calls: count XLA's program
        with onednn.use("xla"):
            step = make_runner(TaskStep(task), 1)
            one_step = step.lower(state, feed.batches(data, plan, 0, 1)).compile()
    flops_per_step = program_flops(one_step)

    state, metrics, _ = compiled(state, batches)  # warm-up
    jax.block_until_ready(metrics)
    calls = max(-(-steps // per_call), 1)
    start = time.perf_counter()
    for call in range(calls):  # each call gathers its batches, as training does
        first = (call * per_call) % (steps_per_epoch - per_call + 1)
        state, metrics, _ = compiled(state, feed.batches(data, plan, first, per_call))
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
    steps_per_s = calls * per_call / elapsed
    return {
        "steps_per_call": per_call,
        "conv_path": conv_path,
        "requested_steps": steps,
        "timed_steps": calls * per_call,
        "compile_s": round(compile_s, 2),
        "ms_per_step": round(1000 / steps_per_s, 2),
        "steps_per_s": round(steps_per_s, 3),
        "gflop_per_step": round(flops_per_step / 1e9, 3),
        "achieved_gflops": round(flops_per_step * steps_per_s / 1e9, 1),
        "final_losses": {k: float(np.asarray(v)[-1].mean()) for k, v in metrics.items()},
        "program_memory_bytes": program_bytes,
    }


def program_flops(compiled) -> float:
    """FLOPs of a compiled program by XLA's cost analysis. Give it a one-step program: a scan's
    loop body is counted once, not once per iteration."""
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
    return float(cost.get("flops", 0.0))


def bench_dcgan(
    batch_size: int,
    steps: int,
    *,
    fast_grad: bool = True,
    compute_dtype: str = "float32",
    steps_per_call: int | None = None,
) -> dict:
    """The tutorial DCGAN's alternating step (D then G) at `batch_size`."""
    from gan_jax.tasks import GANTask

    task = GANTask(
        GANConfig(batch_size=batch_size, compute_dtype=compute_dtype), fast_grad=fast_grad
    )
    steps_per_epoch = max(steps, steps_per_call or 1) + (steps_per_call or 1)
    row = time_task(task, synthetic_mnist(batch_size * steps_per_epoch), steps, steps_per_call)
    return {
        "model": "dcgan",
        "batch_size": batch_size,
        "fast_grad": fast_grad,
        "compute_dtype": compute_dtype,
        **row,
        "images_per_s": round(row["steps_per_s"] * batch_size, 1),
    }


def bench_sgan(
    steps: int,
    *,
    members: int = 1,
    batch_size: int = 100,
    compute_dtype: str = "float32",
    steps_per_call: int | None = None,
) -> dict:
    """The SGAN MLP recipe's step (classifier then generator) for `members` vmapped data seeds.

    Adds `epoch_s` and `recipe_300_epochs_s`: the recipe's epoch (60,000 images; 600 steps at batch
    100) and 300 epochs at the measured rate (the step does not depend on the data, so synthetic
    images time it exactly).
    """
    from gan_jax.tasks import SGANTask

    config = SGANConfig.recipe(
        "mlp", batch_size=batch_size, data_seeds=tuple(range(members)), compute_dtype=compute_dtype
    )
    task = SGANTask(config)
    recipe_epoch_steps = task.feed.steps_per_epoch(MNIST_TRAIN_EXAMPLES)
    per_call = steps_per_call or default_steps_per_call(recipe_epoch_steps, convolutions=False)
    steps_per_epoch = max(steps + 2 * per_call, 2 * per_call)
    row = time_task(task, synthetic_mnist(batch_size * steps_per_epoch), steps, per_call)
    epoch_s = recipe_epoch_steps / row["steps_per_s"]
    return {
        "model": "sgan_mlp",
        "batch_size": batch_size,
        "members": members,
        "compute_dtype": compute_dtype,
        **row,
        "images_per_s": round(row["steps_per_s"] * batch_size * members, 1),
        "epoch_s": round(epoch_s, 2),
        "recipe_300_epochs_s": round(300 * epoch_s, 1),
    }


def environment() -> dict:
    """Where the numbers came from: device, versions, flags."""
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device": device.device_kind,
        "device_count": jax.device_count(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "onednn": onednn.build.onednn_version(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_benchmarks(
    models: Sequence[str],
    dcgan_batch_sizes: Sequence[int],
    steps: int,
    sgan_steps: int,
    sgan_members: Sequence[int],
    compute_dtypes: Sequence[str],
    plain: bool = False,
    steps_per_call: int | None = None,
) -> Iterator[dict]:
    """Yields one row per configuration, each with the environment and the measured peaks."""
    common = {
        **environment(),
        "matmul_n": matmul_size(),
        "matmul_peak_gflops_f32": round(matmul_peak_gflops("float32"), 1),
        "matmul_peak_gflops_bf16": round(matmul_peak_gflops("bfloat16"), 1),
    }
    for dtype in compute_dtypes:
        if "dcgan" in models:
            for batch in dcgan_batch_sizes:
                for fast in (True, False) if plain else (True,):
                    row = bench_dcgan(
                        batch,
                        steps,
                        fast_grad=fast,
                        compute_dtype=dtype,
                        steps_per_call=steps_per_call,
                    )
                    yield {**row, **peak_memory(), **common}
        if "sgan" in models:
            for members in sgan_members:
                row = bench_sgan(
                    sgan_steps, members=members, compute_dtype=dtype, steps_per_call=steps_per_call
                )
                yield {**row, **peak_memory(), **common}


def main(args: argparse.Namespace) -> None:
    """Prints one JSON line per configuration on stdout."""
    models, dtypes = args.models.split(","), args.dtypes.split(",")
    if not models or set(models) - set(MODELS):
        raise ConfigError(
            f"--models must be a comma-separated subset of {','.join(MODELS)}, got {args.models!r}"
        )
    if not dtypes or set(dtypes) - set(COMPUTE_DTYPES):
        raise ConfigError(
            f"--dtypes must be a comma-separated subset of {','.join(COMPUTE_DTYPES)}, got "
            f"{args.dtypes!r}"
        )
    steps = args.steps or (5 if jax.default_backend() == "cpu" else 200)
    rows = run_benchmarks(
        models,
        args.batch_sizes,
        steps,
        args.sgan_steps,
        args.sgan_members,
        dtypes,
        plain=args.plain,
        steps_per_call=args.steps_per_call,
    )
    for row in rows:
        print(json.dumps(row), flush=True)
