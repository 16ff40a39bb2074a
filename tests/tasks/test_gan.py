"""`gan_jax.tasks.gan`: the GAN and cGAN tasks' discriminator and generator updates and steps,
the loss table (hinge, WGAN-GP, n critic steps per generator step), seeding, sampling and the
generator EMA."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import CGANConfig, CGANTask, ConfigError, GANConfig, GANTask, train
from gan_jax.checkpoint import CheckpointStore
from gan_jax.data import to_unit_range
from gan_jax.steps import TaskStep, make_runner
from gan_jax.workdir import read_rows
from tests.conftest import TINY
from tests.feeding import call_batches, on_device
from tests.numerics import assert_one_step_close, assert_params_within_adam

# ---- the loss table


def _adam_count(model):
    # optax.adam = chain(scale_by_adam, scale_by_learning_rate)
    return int(model.opt_state[0].count)


def _real(n, seed=0):
    return jax.random.randint(jax.random.PRNGKey(seed), (n, 28, 28, 1), 0, 256).astype(jnp.uint8)


def _fed(real_u8, digits=None):
    """A batch as the feed prepares it: images in [-1, 1] (and the cGAN's classes)."""
    return {"images": to_unit_range(real_u8), **({} if digits is None else {"labels": digits})}


def test_critic_steps_are_discriminator_updates_on_consecutive_batches_then_a_generator_update(
    tiny_config,
):
    task = GANTask(dataclasses.replace(tiny_config, loss="hinge", critic_steps=3))
    assert GANTask(tiny_config).feed.steps_per_epoch(40) == 5
    assert (
        task.images_per_step == task.feed.rows_per_step == 24
        and task.feed.steps_per_epoch(40) == 1
        and task.feed.steps_per_epoch(48) == 2
    )
    models = task.init().models
    real, key = _real(24), jax.random.PRNGKey(7)
    stepped, metrics = jax.jit(task.train_step)(models, _fed(real), key)
    assert _adam_count(stepped["discriminator"]) == 3 and _adam_count(stepped["generator"]) == 1

    def spelled_out(models, real, key):  # the documented key derivation
        critic_key, g_key = jax.random.split(key)
        d_losses = []
        for i, k in enumerate(jax.random.split(critic_key, 3)):
            z_key, d_key = jax.random.split(k)
            fakes, _ = task._generate_train(models["generator"], task.noise(z_key, 8))
            models, d_loss = task.discriminator_update(
                models, real[8 * i : 8 * i + 8] / 127.5 - 1.0, fakes, d_key
            )
            d_losses.append(d_loss)
        z_key, d_key = jax.random.split(g_key)
        models, g_loss = task.generator_update(models, task.noise(z_key, 8), d_key)
        return models, jnp.mean(jnp.stack(d_losses)), g_loss

    expected, d_loss, g_loss = jax.jit(spelled_out)(models, real, key)
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
    # two programs, three D steps: after the first, only Adam's bound holds (tests/numerics.py)
    assert_params_within_adam(stepped, expected, task.config.learning_rate, 3, task.config.beta1)


def test_wgan_gp_adds_the_weighted_penalty_to_the_critic_loss(tiny_config):
    real = _real(8) / 127.5 - 1.0
    fakes = jax.random.uniform(jax.random.PRNGKey(2), (8, 28, 28, 1), minval=-1, maxval=1)
    losses = {}
    for weight in (0.0, 10.0):
        task = GANTask(dataclasses.replace(tiny_config, loss="wgan_gp", gp_weight=weight))
        _, losses[weight] = task.discriminator_update(
            task.init().models, real, fakes, jax.random.PRNGKey(3)
        )
    # same dropout keys, so the difference is 10 × the penalty, which is > 0 for a fresh critic
    assert losses[10.0] > losses[0.0] and np.isfinite(losses[10.0])


@pytest.mark.parametrize("loss, critic_steps", [("hinge", 1), ("wgan_gp", 2)])
def test_train_with_another_loss_gives_finite_losses_and_resumes(
    tiny_config, tiny_data, tmp_path, loss, critic_steps
):
    config = dataclasses.replace(tiny_config, loss=loss, critic_steps=critic_steps, steps=2)
    straight = train(config, tmp_path / "a", data=tiny_data, progress=False)
    train(dataclasses.replace(config, steps=1), tmp_path / "b", data=tiny_data, progress=False)
    resumed = train(config, tmp_path / "b", data=tiny_data, progress=False)
    assert int(resumed.step) == 2 and CheckpointStore(tmp_path / "b").latest_step() == 2
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = read_rows(tmp_path / "b")
    assert rows[-1]["step"] == 2 and all(np.isfinite(rows[-1][k]) for k in ("d_loss", "g_loss"))
    assert CheckpointStore(tmp_path / "b").read_config()["loss"] == loss


def test_cgan_trains_with_wgan_gp(tiny_config):
    task = CGANTask(
        CGANConfig(**{**dataclasses.asdict(tiny_config), "loss": "wgan_gp", "critic_steps": 2})
    )
    state = task.init()
    digits = jnp.arange(16, dtype=jnp.int32) % 10
    models, metrics = jax.jit(task.train_step)(
        state.models, _fed(_real(16), digits), jax.random.PRNGKey(0)
    )
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
    assert _adam_count(models["discriminator"]) == 2 and _adam_count(models["generator"]) == 1
    other, _ = jax.jit(task.train_step)(
        state.models, _fed(_real(16), (digits + 1) % 10), jax.random.PRNGKey(0)
    )
    embed = lambda m: m["discriminator"].params["Embed_0"]["embedding"]
    assert not np.allclose(embed(models), embed(other))  # the real digits reach the critic


def test_collapse_guard_watches_bce_losses_only(tiny_config):
    assert GANTask(tiny_config).adversarial_losses == ("d_loss", "g_loss")
    for loss in ("hinge", "wgan_gp"):
        assert GANTask(dataclasses.replace(tiny_config, loss=loss)).adversarial_losses is None


def test_stored_configs_without_the_loss_fields_read_as_the_default_loss(tiny_config):
    stored = {
        k: v
        for k, v in tiny_config.to_dict().items()
        if k not in ("loss", "critic_steps", "gp_weight")
    }
    assert GANConfig.from_dict(stored) == tiny_config
    assert tiny_config.conflicts_with(stored) == []
    assert dataclasses.replace(tiny_config, loss="hinge").conflicts_with(stored) == ["loss"]
    assert dataclasses.replace(tiny_config, critic_steps=2).conflicts_with(stored) == [
        "critic_steps"
    ]


def test_a_step_larger_than_the_data_is_refused(tiny_config):
    with pytest.raises(
        ConfigError,
        match=r"critic_steps × batch_size 24 exceeds the 20 training images; pass a smaller "
        r"--batch-size or --critic-steps",
    ):
        GANTask(dataclasses.replace(tiny_config, critic_steps=3)).feed.steps_per_epoch(20)


# ---- the steps


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
    fakes = task.generator.apply(
        {"params": models["generator"].params, "batch_stats": models["generator"].batch_stats},
        z,
        train=False,
    )
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


@pytest.mark.parametrize("loss", ["non_saturating", "hinge", "least_squares"])
def test_fused_step_equals_discriminator_then_generator_update(tiny_config, loss):
    task = GANTask(tiny_config.__class__(**{**tiny_config.__dict__, "loss": loss}))
    assert task.fused
    models = task.init().models
    real_u8 = jax.random.randint(jax.random.PRNGKey(0), (8, 28, 28, 1), 0, 256).astype(jnp.uint8)
    key = jax.random.PRNGKey(7)
    fused, metrics = jax.jit(task.train_step)(models, _fed(real_u8), key)

    z_key, d_key, g_key = jax.random.split(key, 3)
    z = task.noise(z_key, 8)
    g = models["generator"]
    fakes, _ = task._generate_train(g, z)
    step1, d_loss = task.discriminator_update(models, real_u8 / 127.5 - 1.0, fakes, d_key)
    # G's reference update starts from the fused step's D: one step from one state (the D
    # updates themselves may differ by Adam's ±lr on near-zero gradients)
    step2, g_loss = task.generator_update(
        {**step1, "discriminator": fused["discriminator"]}, z, g_key
    )
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
    expected = {"discriminator": step1["discriminator"], "generator": step2["generator"]}
    # jit vs op by op
    assert_one_step_close(fused, expected, task.config.learning_rate, task.config.beta1)


def test_same_seed_gives_identical_states_and_other_seeds_differ(tiny_config, tiny_data):
    def two_steps(config):
        task = GANTask(config)
        run = make_runner(TaskStep(task), 2)
        state, _, _ = run(task.init(), call_batches(task, on_device(task, tiny_data), 40, 0, 2))
        return jax.tree.leaves(state)

    a, b = two_steps(tiny_config), two_steps(tiny_config)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = two_steps(tiny_config.__class__(**{**tiny_config.__dict__, "seed": 1}))
    assert any(not np.array_equal(x, y) for x, y in zip(a, other, strict=True))


def test_sample_uses_running_statistics(tiny_config):
    task = GANTask(tiny_config)
    state = task.init()
    noise = task.fixed_noise()
    assert noise.shape == (4, 8)
    images = task.sample(state, noise)
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(task.sample(state, noise[:1]), images[:1], rtol=1e-5, atol=1e-6)


def test_cgan_step_conditions_both_models_and_learns_from_labels():
    task = CGANTask(CGANConfig(**TINY))
    state = task.init()
    d, g = task.discriminator, state.models["discriminator"]
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1), minval=-1, maxval=1)
    logits = [
        d.apply({"params": g.params}, images, train=False, labels=jnp.full(4, k)) for k in (0, 1)
    ]
    # the projection reads the digit
    assert logits[0].shape == (4,) and not np.allclose(logits[0], logits[1])
    real = jnp.zeros((8, 28, 28, 1), jnp.uint8)
    digits = jnp.arange(8, dtype=jnp.int32)
    models, metrics = jax.jit(task.train_step)(
        state.models, _fed(real, digits), jax.random.PRNGKey(0)
    )
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
    # the real digits reach the discriminator's gradient: other digits, other update
    other, _ = jax.jit(task.train_step)(
        state.models, _fed(real, (digits + 1) % 10), jax.random.PRNGKey(0)
    )
    embed = lambda m: m["discriminator"].params["Embed_0"]["embedding"]
    assert not np.allclose(embed(models), embed(other))


def test_generator_ema_is_what_samples_and_starts_at_the_raw_parameters():
    task = GANTask(GANConfig(g_ema_decay=0.9, **TINY))
    state = task.init()
    z = task.fixed_noise()
    # step 0
    np.testing.assert_array_equal(
        task.sample(state, z), GANTask(GANConfig(**TINY)).sample(state, z)
    )
    models, _ = jax.jit(task.train_step)(
        state.models, _fed(jnp.zeros((8, 28, 28, 1), jnp.uint8)), jax.random.PRNGKey(0)
    )
    state = state.replace(step=state.step + 1, models=models)
    g = models["generator"]
    # after one update the bias-corrected EMA (1-0.9)·p / (1-0.9) equals the new parameters
    assert jax.tree.all(
        jax.tree.map(
            lambda a, p: np.allclose(a, p, atol=1e-6), task.generator_params(state), g.params
        )
    )
    with pytest.raises(Exception, match="unconditional"):
        task.sample(state, z, digits=np.zeros(len(z), np.int32))
