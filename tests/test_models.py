import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax.models import ConvTranspose, Discriminator, Generator, conv_transpose


def test_generator_maps_noise_to_images_in_tanh_range():
    g = Generator((8, 4, 4))
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 10))
    variables = g.init(jax.random.PRNGKey(1), z, train=False)
    images, updates = g.apply(variables, z, train=True, mutable=["batch_stats"])
    assert images.shape == (3, 28, 28, 1)
    assert float(jnp.max(jnp.abs(images))) <= 1.0
    assert set(variables) == {"params", "batch_stats"}
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"])
    assert all(jax.tree.leaves(changed)), "training mode must update every BatchNorm statistic"


def test_generator_eval_mode_ignores_batch_composition():
    g = Generator((8, 4, 4))
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 10))
    variables = g.init(jax.random.PRNGKey(1), z, train=False)
    alone = g.apply(variables, z[:1], train=False)
    together = g.apply(variables, z, train=False)[:1]
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)


def test_tutorial_sizes_have_the_tutorial_parameter_counts():
    g, d = Generator(), Discriminator()
    gv = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    dv = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
    count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
    # Keras summary of the tutorial: generator 2,330,944 (incl. BN), discriminator 212,865.
    assert count(gv["params"]) + count(gv["batch_stats"]) == 2_330_944
    assert count(dv["params"]) == 212_865


def test_discriminator_gives_one_logit_per_image_and_dropout_needs_train():
    d = Discriminator((4, 8), dropout=0.5)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 28, 28, 1), minval=-1, maxval=1)
    variables = d.init(jax.random.PRNGKey(1), x, train=False)
    logits = d.apply(variables, x, train=False)
    assert logits.shape == (5,)
    np.testing.assert_array_equal(logits, d.apply(variables, x, train=False))
    noisy = d.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(noisy, logits)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_transpose_is_tensorflows_gradient_of_conv(stride):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 4, 3))
    expected = lax.conv_transpose(x, k, (stride, stride), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)
    out = conv_transpose(x, k, (stride, stride))
    assert out.shape == (2, 7 * stride, 7 * stride, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_fast_conv_transpose_gradients_equal_autodiff(stride):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 6))
    k = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 3, 6))
    w = jax.random.normal(jax.random.PRNGKey(2), (2, 7 * stride, 7 * stride, 3))

    def loss(x, k, fast):
        return jnp.sum(w * jnp.tanh(conv_transpose(x, k, (stride, stride), fast_grad=fast)))

    fast = jax.grad(loss, argnums=(0, 1))(x, k, True)
    plain = jax.grad(loss, argnums=(0, 1))(x, k, False)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))


def test_conv_transpose_module_kernel_layout_and_bias():
    layer = ConvTranspose(5, strides=(2, 2), use_bias=True)
    x = jnp.ones((1, 7, 7, 3))
    variables = layer.init(jax.random.PRNGKey(0), x)
    assert variables["params"]["kernel"].shape == (5, 5, 5, 3)
    assert layer.apply(variables, x).shape == (1, 14, 14, 5)
