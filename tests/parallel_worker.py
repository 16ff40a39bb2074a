"""Runs tiny GAN and SGAN trainings on 1 and on all (forced) CPU devices; prints one JSON line.

Started by `test_parallel.py` in a subprocess whose XLA_FLAGS force 8 host devices (the flag must
be set before JAX starts, so it cannot run inside the test process).
"""

import dataclasses
import json
import sys
import tempfile

import jax
import numpy as np

from gan_jax import parallel
from gan_jax.checkpoint import CheckpointStore
from gan_jax.config import GANConfig, SGANConfig
from gan_jax.data import Split
from gan_jax.loop import train
from gan_jax.tasks import GANTask
from gan_jax.workdir import read_rows
from tests.numerics import adam_bound, max_params_difference, one_step_excess


def max_difference(a, b) -> float:
    diffs = jax.tree.map(
        lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))),
        jax.device_get(a),
        jax.device_get(b),
    )
    return max(jax.tree.leaves(diffs))


def losses(workdir, keys):
    return [[row[k] for k in keys] for row in read_rows(workdir)]


def main() -> None:
    rng = np.random.default_rng(0)
    data = Split(
        rng.integers(0, 256, (64, 28, 28, 1), np.uint8), (np.arange(64) % 10).astype(np.int32)
    )
    root = tempfile.mkdtemp()
    gan = GANConfig(batch_size=32, epochs=2, noise_dim=8, g_features=(16, 8, 4), d_features=(4, 8))
    # The runs sum in other orders, so after their first step only Adam's step bound ties their
    # parameters (tests/numerics.py): a small lr keeps that bound tight.
    # one step per compiled call: the 1-step runs below reuse the 3-step run's program
    sgan = SGANConfig(
        labels=20,
        batch_size=16,
        epochs=1,
        steps=3,
        data_seeds=(0, 1),
        learning_rate=1e-5,
        steps_per_call=1,
    )
    report = {"device_count": jax.device_count()}
    gan_states = {}
    for name, config, keys in (
        ("gan", gan, ("d_loss", "g_loss")),
        ("sgan", sgan, ("sup_loss", "unsup_loss", "g_loss")),
    ):
        states, rows, first = {}, {}, {}
        for devices in (1, jax.device_count()):
            workdir = f"{root}/{name}_{devices}"
            states[devices] = train(
                config, workdir, data=data, test_data=data, progress=False, devices=devices
            )
            rows[devices] = losses(workdir, keys)
            first[devices] = train(
                dataclasses.replace(config, steps=1, epochs=1),
                f"{workdir}_step1",
                data=data,
                test_data=data,
                progress=False,
                devices=devices,
            )
        one, many = states[1], states[jax.device_count()]
        if name == "gan":
            gan_states = states
        report[name] = {
            "max_param_difference": max_params_difference(one.models, many.models),
            "adam_bound": adam_bound(config.learning_rate, int(one.step), config.beta1),
            "first_step_excess": one_step_excess(
                first[1].models,
                first[jax.device_count()].models,
                config.learning_rate,
                config.beta1,
            ),
            "losses_1": rows[1],
            "losses_n": rows[jax.device_count()],
            "sharding": str(jax.tree.leaves(many.models)[0].sharding),
        }
    # Orbax: a sharded (replicated) state saved after epoch 1 and resumed
    # gives the uninterrupted result.
    workdir = f"{root}/gan_resumed"
    train(dataclasses.replace(gan, epochs=1), workdir, data=data, progress=False)
    resumed = train(gan, workdir, data=data, progress=False)
    mesh = parallel.data_mesh()
    with CheckpointStore(workdir, create=False) as store:
        restored, _ = store.restore(parallel.replicate(GANTask(gan).init(), mesh))
    report["resume"] = {
        "max_difference_to_uninterrupted": max_difference(
            resumed.models, gan_states[jax.device_count()].models
        ),
        "max_difference_restored_to_final": max_difference(restored.models, resumed.models),
        "restored_sharding": str(jax.tree.leaves(restored.models)[0].sharding),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
