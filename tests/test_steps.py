"""`gan_jax.steps`: scan runner, steps per call by platform, compilation cache and map_in_chunks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import GANTask
from gan_jax.steps import TaskStep, default_steps_per_call, make_runner, map_in_chunks


def test_scan_runner_equals_one_step_calls(tiny_config, tiny_data):
    task = GANTask(tiny_config)
    feed = task.feed
    data = jax.device_put(feed.arrays(tiny_data))
    plan = feed.epoch_plan(0, 40)
    batches = feed.batches(data, plan, 0, 3)
    assert batches["images"].shape == (3, 8, 28, 28, 1)  # [steps, batch, H, W, C], uint8
    scanned, scan_metrics, finite = make_runner(TaskStep(task), 3)(task.init(), batches)
    assert bool(finite)
    single = make_runner(TaskStep(task), 1)
    state, losses = task.init(), []
    for step in range(3):
        state, m, _ = single(state, feed.batches(data, plan, step, 1))
        losses.append(float(m["d_loss"][0]))
    assert int(scanned.step) == int(state.step) == 3
    np.testing.assert_allclose(scan_metrics["d_loss"], losses, rtol=1e-4)
    for a, b in zip(jax.tree.leaves(scanned), jax.tree.leaves(state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_default_steps_per_call_is_per_platform_and_model_kind():
    assert default_steps_per_call(234, "cpu") == 1
    assert default_steps_per_call(600, "cpu", convolutions=False) == 100
    assert default_steps_per_call(30, "cpu", convolutions=False) == 30
    assert default_steps_per_call(234, "gpu") == 234
    assert default_steps_per_call(234, "tpu", convolutions=False) == 234


def test_compilation_cache_never_overrides_a_user_setting(monkeypatch, tmp_path):
    from gan_jax.steps import enable_compilation_cache

    # set by conftest, like a user's JAX_COMPILATION_CACHE_DIR
    before = jax.config.jax_compilation_cache_dir
    assert before
    enable_compilation_cache(tmp_path)
    assert jax.config.jax_compilation_cache_dir == before


def test_map_in_chunks_equals_the_direct_computation_and_drops_the_padding():
    x = jnp.arange(7 * 4, dtype=jnp.float32).reshape(7, 4)
    fn = lambda rows: (rows * 2, rows.sum(-1))  # a pytree out: a tuple of [chunk, 4] and [chunk]
    for mapped in (map_in_chunks(fn, x, 3), jax.jit(lambda x: map_in_chunks(fn, x, 3))(x)):
        doubled, sums = mapped
        # 7 rows → 3 chunks of 3, 2 padding rows dropped
        assert doubled.shape == (7, 4) and sums.shape == (7,)
        np.testing.assert_array_equal(doubled, x * 2)
        np.testing.assert_array_equal(sums, x.sum(-1))


def test_equal_tasks_share_one_compiled_runner():
    from gan_jax import GANConfig, GANTask

    config = GANConfig(batch_size=8, noise_dim=8, g_features=(8, 4, 4), d_features=(4, 8))
    first = make_runner(TaskStep(GANTask(config)), 1)
    assert make_runner(TaskStep(GANTask(config)), 1) is first  # a new, equal task
    assert make_runner(TaskStep(GANTask(dataclasses.replace(config, seed=1))), 1) is not first
    # Bound methods compare by identity: keyed on them, a second run would compile again.
    assert GANTask(config).train_step != GANTask(config).train_step
    # Built once: a task's modules, optimizers and feed are the same objects on every access.
    task = GANTask(config)
    assert task.generator is task.generator and task.g_tx is task.g_tx and task.feed is task.feed
