"""The DCGAN paper's 64×64 models (`Generator64`, `Discriminator64`), `dcgan_for`'s choice by image
size, their 4×4 fast-gradient layers, and GAN/cGAN training steps at 64×64×3 (issue 25)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax import CGANConfig, CGANTask, ConfigError, GANConfig, GANTask
from gan_jax.losses import discriminator_loss
from gan_jax.models import (
    Discriminator,
    Discriminator64,
    Generator,
    Generator64,
    conv,
    conv_transpose,
    dcgan_architecture,
    dcgan_for,
)
from tests.numerics import assert_one_step_close

SHAPE = (64, 64, 3)
# batch 4, widths f = 8 for both models (the paper's ngf = ndf = 64 is 8× wider)
SMALL = dict(batch_size=4, noise_dim=8, g_features=(8, 8, 8), d_features=(8, 16), num_samples=4)


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def changed(a, b) -> bool:
    return any(
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_paper_generator_maps_noise_to_64px_images_in_tanh_range(channels):
    g = Generator64(8, image_shape=(64, 64, channels))
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 10))
    variables = g.init(jax.random.PRNGKey(1), z, train=False)
    images, updates = g.apply(variables, z, train=True, mutable=["batch_stats"])
    assert images.shape == (3, 64, 64, channels) and images.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(images))) <= 1.0 and float(jnp.std(images)) > 0
    # 4 BatchNorms (4×4×8f, 8×8×4f, 16×16×2f, 32×32×f), each updated by a training pass
    assert len(variables["batch_stats"]) == 4
    assert all(
        changed(variables["batch_stats"][k], updates["batch_stats"][k])
        for k in updates["batch_stats"]
    )
    alone = g.apply(variables, z[:1], train=False)
    np.testing.assert_allclose(alone, g.apply(variables, z, train=False)[:1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_paper_discriminator_gives_one_logit_per_image_normalized_by_its_batch(channels):
    d = Discriminator64(8)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 64, 64, channels), minval=-1, maxval=1)
    variables = d.init(jax.random.PRNGKey(1), x, train=False)
    assert len(variables["batch_stats"]) == 3  # BatchNorm after the 2nd, 3rd and 4th conv
    logits, updates = d.apply(variables, x, train=True, mutable=["batch_stats"])
    assert logits.shape == (4,) and logits.dtype == jnp.float32 and np.all(np.isfinite(logits))
    assert changed(variables["batch_stats"], updates["batch_stats"])
    # training mode: an image's logit depends on its batch; eval mode: it does not
    with_others = d.apply(variables, x, train=True, mutable=["batch_stats"])[0][:2]
    alone = d.apply(variables, x[:2], train=True, mutable=["batch_stats"])[0]
    assert not np.allclose(with_others, alone, atol=1e-6)
    np.testing.assert_allclose(
        d.apply(variables, x[:2], train=False),
        d.apply(variables, x, train=False)[:2],
        rtol=1e-5,
        atol=1e-6,
    )


def test_layer_norm_critic_scores_each_image_on_its_own():
    d = Discriminator64(8, norm="layer")
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 64, 64, 3), minval=-1, maxval=1)
    variables = d.init(jax.random.PRNGKey(1), x, train=False)
    assert set(variables) == {"params"}  # no batch statistics: WGAN-GP's per-example gradients hold
    assert count(variables) == count(
        Discriminator64(8).init(jax.random.PRNGKey(1), x, train=False)["params"]
    )
    np.testing.assert_allclose(
        d.apply(variables, x[:1], train=True),
        d.apply(variables, x, train=True)[:1],
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="norm must be 'batch' or 'layer', got 'group'"):
        Discriminator64(8, norm="group").init(jax.random.PRNGKey(1), x, train=False)


@pytest.mark.parametrize(
    "channels, g_params, d_params", [(3, 3_576_704, 2_765_568), (1, 3_574_656, 2_763_520)]
)
def test_paper_sizes_have_the_pytorch_dcgan_parameter_counts(channels, g_params, d_params):
    # The PyTorch DCGAN example (nz=100, ngf=ndf=64, no biases) has 3,576,704 generator and
    # 2,765,568 discriminator parameters at nc=3 (BatchNorm weight and bias included, its running
    # statistics not); at nc=1 each loses 4·4·2·64 = 2,048 kernel weights.
    g, d = dcgan_for((64, 64, channels))  # the default widths: f = 64 for both
    assert (g.features, d.features) == (64, 64)
    gv = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False))
    dv = jax.eval_shape(
        lambda: d.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, channels)), train=False)
    )
    assert count(gv["params"]) == g_params and count(gv["batch_stats"]) == 2 * (
        512 + 256 + 128 + 64
    )
    assert count(dv["params"]) == d_params and count(dv["batch_stats"]) == 2 * (128 + 256 + 512)


def test_conditional_paper_models_read_the_class():
    g, d = dcgan_for(SHAPE, g_features=(8, 8, 8), d_features=(8, 16), num_classes=10)
    z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
    labels = jnp.array([0, 1])
    gv = g.init(jax.random.PRNGKey(1), z, train=False, labels=labels)
    assert gv["params"]["Dense_0"]["kernel"].shape == (8 + 10, 4 * 4 * 8 * 8)  # one-hot beside z
    images = g.apply(gv, z, train=False, labels=labels)
    assert images.shape == (2, 64, 64, 3)
    assert not np.allclose(images, g.apply(gv, z, train=False, labels=labels + 1))
    dv = d.init(jax.random.PRNGKey(2), images, train=False, labels=labels)
    assert dv["params"]["Embed_0"]["embedding"].shape == (10, 4 * 4 * 8 * 8)  # projection on h
    logits = d.apply(dv, images, train=False, labels=labels)
    assert logits.shape == (2,) and not np.allclose(
        logits, d.apply(dv, images, train=False, labels=labels + 1)
    )


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((28, 28, 1), "tutorial"),
        ((32, 32, 3), "tutorial"),
        ((64, 64, 1), "paper"),
        ((64, 64, 3), "paper"),
        ((128, 96, 3), "paper"),
    ],
)
def test_the_image_size_picks_the_architecture(shape, expected):
    assert dcgan_architecture(shape) == expected
    g, d = dcgan_for(shape, g_features=(8, 8, 8), d_features=(8, 16))
    if expected == "tutorial":
        assert isinstance(g, Generator) and isinstance(d, Discriminator)
        assert (g.features, d.features, d.dropout, g.image_shape) == (
            (8, 8, 8),
            (8, 16),
            0.3,
            shape,
        )
    else:
        assert isinstance(g, Generator64) and isinstance(d, Discriminator64)
        assert (g.features, d.features, d.norm, g.image_shape) == (8, 8, "batch", shape)
        assert dcgan_for(shape, per_example_critic=True)[1].norm == "layer"
    z = jnp.zeros((1, 8))
    out = jax.eval_shape(lambda: g.init_with_output(jax.random.PRNGKey(0), z, train=False)[0])
    assert out.shape == (1, *shape)


@pytest.mark.parametrize("shape", [(30, 30, 1), (65, 65, 3), (28, 64, 1), (80, 72, 3)])
def test_sizes_no_dcgan_fits_are_refused_naming_the_size_and_the_fix(shape):
    message = (
        f"the DCGAN has no architecture for {shape[0]}×{shape[1]} images .*; "
        "pass --image-size 28, 32 or 64"
    )
    with pytest.raises(ConfigError, match=message):
        dcgan_architecture(shape)
    with pytest.raises(ConfigError, match=message):
        dcgan_for(shape)


def test_4x4_stride_2_layers_pad_as_pytorchs_padding_1():
    # The paper's layers are PyTorch's Conv2d / ConvTranspose2d(k=4, s=2, p=1).
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 5))
    k = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 5, 6))
    dims = ("NHWC", "HWIO", "NHWC")
    torch_conv = lax.conv_general_dilated(x, k, (2, 2), [(1, 1), (1, 1)], dimension_numbers=dims)
    np.testing.assert_allclose(conv(x, k, (2, 2)), torch_conv, rtol=1e-5, atol=1e-5)
    # [kh, kw, C_out, C_in], C_out ≥ 32
    kt = jax.random.normal(jax.random.PRNGKey(2), (4, 4, 40, 5))
    # ConvTranspose2d(p=1): the input dilated by 2, padded by k - 1 - p = 2, the flipped kernel
    torch_t = lax.conv_transpose(
        x, kt, (2, 2), [(2, 2), (2, 2)], dimension_numbers=dims, transpose_kernel=True
    )
    assert torch_t.shape == (2, 16, 16, 40)
    for fast in (True, False):
        np.testing.assert_allclose(
            conv_transpose(x, kt, (2, 2), fast_grad=fast), torch_t, rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("c_out", [3, 40], ids=["narrow", "subpixel"])
def test_4x4_fast_gradients_equal_autodiff(c_out):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 6))
    kt = jax.random.normal(jax.random.PRNGKey(1), (4, 4, c_out, 6))
    k = jax.random.normal(jax.random.PRNGKey(2), (4, 4, c_out, 6))  # conv: C_in = c_out, C_out = 6
    y = jax.random.normal(jax.random.PRNGKey(3), (2, 16, 16, c_out))
    w = jax.random.normal(jax.random.PRNGKey(4), (2, 16, 16, c_out))
    v = jax.random.normal(jax.random.PRNGKey(5), (2, 8, 8, 6))

    def losses(fast):
        up = lambda x, kt: jnp.sum(w * jnp.tanh(conv_transpose(x, kt, (2, 2), fast_grad=fast)))
        down = lambda y, k: jnp.sum(v * jnp.tanh(conv(y, k, (2, 2), fast_grad=fast)))
        return jax.grad(up, argnums=(0, 1))(x, kt) + jax.grad(down, argnums=(0, 1))(y, k)

    for a, b in zip(losses(True), losses(False), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))


@dataclasses.dataclass(frozen=True)
class GAN64Task(GANTask):
    """A GANTask on 64×64×3 images (until a dataset of that shape can be named in the config)."""

    @property
    def image_shape(self):
        return SHAPE


@dataclasses.dataclass(frozen=True)
class CGAN64Task(CGANTask):
    @property
    def image_shape(self):
        return SHAPE


def _real_u8(n=4, seed=0):
    return jax.random.randint(jax.random.PRNGKey(seed), (n, *SHAPE), 0, 256).astype(jnp.uint8)


def _fed(task, real_u8, digits=None):
    """The batch the task's feed prepares: images in [-1, 1] (the cGAN: and their classes)."""
    labels = {} if digits is None else {"labels": digits}
    return task.feed.prepare({"images": real_u8, **labels}, jax.random.key(0))


def test_gan_task_at_64px_trains_the_paper_models_with_finite_losses():
    task = GAN64Task(GANConfig(**SMALL))
    assert isinstance(task.generator, Generator64) and isinstance(
        task.discriminator, Discriminator64
    )
    models = task.init().models
    assert models["discriminator"].batch_stats  # the paper's D keeps BatchNorm statistics
    step = jax.jit(task.train_step)
    for i in range(2):
        new, metrics = step(models, _fed(task, _real_u8(seed=i)), jax.random.PRNGKey(i))
        assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
        for name in ("generator", "discriminator"):
            assert changed(models[name].params, new[name].params)
            assert changed(models[name].batch_stats, new[name].batch_stats)
        models = new
    images = task.sample(task.init().replace(models=models), task.fixed_noise())
    assert images.shape == (4, *SHAPE) and np.abs(images).max() <= 1.0


def test_batch_norm_discriminator_scores_real_and_fake_batches_apart():
    task = GAN64Task(GANConfig(**SMALL))
    models = task.init().models
    d = models["discriminator"]
    real = _real_u8() / 127.5 - 1.0
    fakes, _ = task._generate_train(models["generator"], task.noise(jax.random.PRNGKey(1), 4))
    key = jax.random.PRNGKey(3)
    new, loss = task.discriminator_update(models, real, fakes, key)

    d_module = task.discriminator

    def train_logits(images, stats):
        variables = {"params": d.params, "batch_stats": stats}
        return d_module.apply(variables, images, train=True, mutable=["batch_stats"])

    real_logits, after_real = train_logits(real, d.batch_stats)
    fake_logits, after_fake = train_logits(fakes, after_real["batch_stats"])
    np.testing.assert_allclose(loss, discriminator_loss(real_logits, fake_logits), rtol=1e-5)
    mixed = d_module.apply(
        {"params": d.params, "batch_stats": d.batch_stats},
        jnp.concatenate([real, fakes]),
        train=True,
        mutable=["batch_stats"],
    )[0]
    assert not np.isclose(loss, discriminator_loss(mixed[:4], mixed[4:]), rtol=1e-3)
    # the running statistics are those of the real pass, then the fake pass
    for a, b in zip(
        jax.tree.leaves(new["discriminator"].batch_stats),
        jax.tree.leaves(after_fake["batch_stats"]),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_step_at_64px_equals_discriminator_then_generator_update():
    task = GAN64Task(GANConfig(**SMALL))
    assert task.fused
    models = task.init().models
    real_u8, key = _real_u8(), jax.random.PRNGKey(7)
    fused, metrics = jax.jit(task.train_step)(models, _fed(task, real_u8), key)

    z_key, d_key, g_key = jax.random.split(key, 3)
    z = task.noise(z_key, 4)
    fakes, _ = task._generate_train(models["generator"], z)
    step1, d_loss = task.discriminator_update(models, real_u8 / 127.5 - 1.0, fakes, d_key)
    # G's reference update starts from the fused step's D: one step from one state (the D
    # updates themselves may differ by Adam's ±lr on near-zero gradients)
    step2, g_loss = task.generator_update(
        {**step1, "discriminator": fused["discriminator"]}, z, g_key
    )
    # G's pass through D leaves D (its statistics included) as the D update left it
    assert step2["discriminator"] is fused["discriminator"]
    np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-5)
    # jit vs op by op: the same maths summed in another order (see tests/numerics.py)
    expected = {"discriminator": step1["discriminator"], "generator": step2["generator"]}
    # jit vs op by op
    assert_one_step_close(fused, expected, task.config.learning_rate, task.config.beta1)


def test_cgan_and_wgan_gp_at_64px_step_with_finite_losses():
    cgan = CGAN64Task(CGANConfig(**SMALL))
    state = cgan.init()
    assert cgan.discriminator.num_classes == 10 and cgan.generator.num_classes == 10
    _, metrics = jax.jit(cgan.train_step)(
        state.models, _fed(cgan, _real_u8(), jnp.arange(4) % 10), jax.random.PRNGKey(0)
    )
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])

    wgan = GAN64Task(GANConfig(**{**SMALL, "loss": "wgan_gp", "critic_steps": 2}))
    assert wgan.discriminator.norm == "layer"  # the gradient penalty needs per-image scores
    state = wgan.init()
    assert not state.models["discriminator"].batch_stats
    _, metrics = jax.jit(wgan.train_step)(
        state.models, _fed(wgan, _real_u8(8)), jax.random.PRNGKey(0)
    )
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
