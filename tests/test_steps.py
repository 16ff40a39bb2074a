import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import GANTask
from gan_jax.data import epoch_permutation
from gan_jax.steps import default_steps_per_call, make_runner


def _changed(before, after):
    leaves = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after))
    return any(leaves), all(leaves)


def _batch(task, n=8, seed=0):
    real = jax.random.uniform(jax.random.PRNGKey(seed), (n, 28, 28, 1), minval=-1, maxval=1)
    z = task.noise(jax.random.PRNGKey(seed + 1), n)
    return real, z


def test_discriminator_update_changes_only_the_discriminator(tiny_config):
    task = GANTask(tiny_config)
    models = task.init().models
    real, z = _batch(task)
    fakes = task.generator.apply({"params": models["generator"].params,
                                  "batch_stats": models["generator"].batch_stats}, z, train=False)
    new, loss = task.discriminator_update(models, real, fakes, jax.random.PRNGKey(3))
    assert new["generator"] is models["generator"]
    assert _changed(models["discriminator"].params, new["discriminator"].params) == (True, True)
    assert np.isfinite(loss) and loss > 0


def test_generator_update_changes_only_the_generator_through_the_discriminator(tiny_config):
    task = GANTask(tiny_config)
    models = task.init().models
    _, z = _batch(task)
    new, loss = task.generator_update(models, z, jax.random.PRNGKey(3))
    assert new["discriminator"] is models["discriminator"]
    assert _changed(models["generator"].params, new["generator"].params) == (True, True)
    assert _changed(models["generator"].batch_stats, new["generator"].batch_stats)[0]

    # The gradient reaches G only through D: scaling D's last layer to zero must stop it.
    d = models["discriminator"]
    silent = jax.tree.map(jnp.zeros_like, d.params)
    silent_models = {**models, "discriminator": d.replace(params=silent)}
    new_silent, _ = task.generator_update(silent_models, z, jax.random.PRNGKey(3))
    assert not _changed(models["generator"].params, new_silent["generator"].params)[0]


@pytest.mark.parametrize("loss", ["non_saturating", "hinge"])
def test_fused_step_equals_discriminator_then_generator_update(tiny_config, loss):
    task = GANTask(tiny_config.__class__(**{**tiny_config.__dict__, "loss": loss}))
    assert task.fused
    models = task.init().models
    real_u8 = jax.random.randint(jax.random.PRNGKey(0), (8, 28, 28, 1), 0, 256).astype(jnp.uint8)
    key = jax.random.PRNGKey(7)
    fused, metrics = jax.jit(task.train_step)(models, real_u8, key)

    z_key, d_key, g_key = jax.random.split(key, 3)
    z = task.noise(z_key, 8)
    g = models["generator"]
    fakes, _ = task._generate_train(g, z)
    step1, d_loss = task.discriminator_update(models, real_u8 / 127.5 - 1.0, fakes, d_key)
    step2, g_loss = task.generator_update(step1, z, g_key)
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(step2)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_same_seed_gives_identical_states_and_other_seeds_differ(tiny_config, tiny_data):
    def two_steps(config):
        task = GANTask(config)
        run = make_runner(task.step, 5, 2)
        perm = epoch_permutation(task.data_key(), 0, 40)
        state, _, _ = run(task.init(), jnp.asarray(tiny_data.images), perm)
        return jax.tree.leaves(state)

    a, b = two_steps(tiny_config), two_steps(tiny_config)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    other = two_steps(tiny_config.__class__(**{**tiny_config.__dict__, "seed": 1}))
    assert any(not np.array_equal(x, y) for x, y in zip(a, other))


def test_scan_runner_equals_one_step_calls(tiny_config, tiny_data):
    task = GANTask(tiny_config)
    images = jnp.asarray(tiny_data.images)
    perm = epoch_permutation(task.data_key(), 0, 40)
    scanned, scan_metrics, finite = make_runner(task.step, 5, 3)(task.init(), images, perm)
    assert bool(finite)
    single = make_runner(task.step, 5, 1)
    state, losses = task.init(), []
    for _ in range(3):
        state, m, _ = single(state, images, perm)
        losses.append(float(m["d_loss"][0]))
    assert int(scanned.step) == int(state.step) == 3
    np.testing.assert_allclose(scan_metrics["d_loss"], losses, rtol=1e-4)
    for a, b in zip(jax.tree.leaves(scanned), jax.tree.leaves(state)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_epoch_permutation_is_a_permutation_and_depends_on_epoch():
    key = jax.random.PRNGKey(0)
    p0, p1 = np.asarray(epoch_permutation(key, 0, 100)), np.asarray(epoch_permutation(key, 1, 100))
    assert sorted(p0.tolist()) == list(range(100))
    assert not np.array_equal(p0, p1)
    np.testing.assert_array_equal(p0, epoch_permutation(key, 0, 100))


def test_default_steps_per_call_is_per_platform_and_model_kind():
    assert default_steps_per_call(234, "cpu") == 1
    assert default_steps_per_call(600, "cpu", convolutions=False) == 100
    assert default_steps_per_call(30, "cpu", convolutions=False) == 30
    assert default_steps_per_call(234, "gpu") == 234
    assert default_steps_per_call(234, "tpu", convolutions=False) == 234


def test_sample_uses_running_statistics(tiny_config):
    task = GANTask(tiny_config)
    state = task.init()
    noise = task.fixed_noise()
    assert noise.shape == (4, 8)
    images = task.sample(state, noise)
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(task.sample(state, noise[:1]), images[:1], rtol=1e-5, atol=1e-6)


def test_compilation_cache_never_overrides_a_user_setting(monkeypatch, tmp_path):
    from gan_jax.steps import enable_compilation_cache

    before = jax.config.jax_compilation_cache_dir  # set by conftest, like a user's JAX_COMPILATION_CACHE_DIR
    assert before
    enable_compilation_cache(tmp_path)
    assert jax.config.jax_compilation_cache_dir == before
