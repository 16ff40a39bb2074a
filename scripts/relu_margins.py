"""The smallest |ReLU input| of each step of the parallel test's SGAN (issue 39's diagnosis).

    XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_max_isa=SSE4_2" \
        python -m scripts.relu_margins

Trains `tests/parallel_worker.py`'s SGAN (64 random images, 20 labels, data seeds 0 and 1,
batch 16, lr 1e-5) for 3 steps on one device and prints, per step, the ReLU inputs nearest 0 (their
size, how many lie within 1e-5 of 0, the layer's width). An input within float32 rounding of 0
takes derivative 0 or 1 depending on the summation order, so two programs that sum in different
orders (1 vs 8 devices, another CPU's vectors) can differ there by a whole image's gradient
through that unit.
"""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import SGANConfig
from gan_jax.data import Split
from gan_jax.steps import TaskStep, make_runner
from gan_jax.tasks import SGANTask

records: list[tuple[float, int, int]] = []


def recorded_relu(x: jax.Array) -> jax.Array:
    jax.debug.callback(
        lambda m, n, w: records.append((float(m), int(n), int(w))),
        jnp.min(jnp.abs(x)),
        jnp.sum(jnp.abs(x) < 1e-5),
        x.shape[-1],
    )
    return jax.nn.relu(x)


def main() -> None:
    nn.relu = recorded_relu  # type: ignore[assignment]  # the MLP calls nn.relu when traced
    rng = np.random.default_rng(0)
    data = Split(
        rng.integers(0, 256, (64, 28, 28, 1), np.uint8), (np.arange(64) % 10).astype(np.int32)
    )
    task = SGANTask(
        SGANConfig(
            labels=20, batch_size=16, epochs=1, steps=3, data_seeds=(0, 1), learning_rate=1e-5
        )
    )
    device_data = jax.device_put(task.feed.arrays(data))
    state = task.init(device_data)
    run = make_runner(TaskStep(task), 1)
    plan = task.feed.epoch_plan(0, 64)
    for step in range(1, 4):
        records.clear()
        state, _, _ = run(state, task.feed.batches(device_data, plan, step - 1, 1))
        jax.block_until_ready(state)
        nearest = sorted(records)[:3]
        print(
            json.dumps(
                {
                    "step": step,
                    "nearest_relu_inputs": [
                        {"abs": m, "within_1e-5": n, "width": w} for m, n, w in nearest
                    ],
                }
            )
        )


if __name__ == "__main__":
    main()
