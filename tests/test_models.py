import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax import onednn
from gan_jax.models import Conv, ConvTranspose, Discriminator, Generator, conv, conv_transpose
from gan_jax.models.dropout import Dropout, bernoulli


def test_generator_maps_noise_to_images_in_tanh_range():
    g = Generator((8, 4, 4))
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 10))
    variables = g.init(jax.random.PRNGKey(1), z, train=False)
    images, updates = g.apply(variables, z, train=True, mutable=["batch_stats"])
    assert images.shape == (3, 28, 28, 1)
    assert float(jnp.max(jnp.abs(images))) <= 1.0
    assert set(variables) == {"params", "batch_stats"}
    changed = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"]
    )
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
    expected = lax.conv_transpose(
        x,
        k,
        (stride, stride),
        "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        transpose_kernel=True,
    )
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
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))


@pytest.fixture
def xla_convolutions():
    """The sub-pixel and adjoint forms are the XLA path's (a run with the oneDNN library built and
    `GAN_JAX_CONV=onednn` would trace these convolutions as oneDNN calls instead)."""
    with onednn.use("xla"):
        yield


def _dilated_convolutions(fn, *args) -> int:
    """How many convolutions with a dilated input (XLA:CPU's slow kind) `fn` runs, compiled."""
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    return sum("lhs_dilate=" in line for line in hlo.splitlines() if " convolution(" in line)


# (input HW, kernel HW, strides): odd kernels, an even kernel, unequal strides, stride 3.
SUBPIXEL_CASES = [
    ((7, 7), (5, 5), (2, 2)),
    ((5, 6), (4, 3), (2, 3)),
    ((4, 4), (3, 3), (3, 3)),
    ((3, 5), (1, 2), (2, 2)),
]


@pytest.mark.parametrize("size,kernel_size,strides", SUBPIXEL_CASES)
def test_wide_conv_transpose_runs_in_subpixel_form_with_the_same_values(
    size, kernel_size, strides, xla_convolutions
):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, *size, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (*kernel_size, 32, 3))  # 32 output channels
    expected = conv_transpose(x, k, strides, fast_grad=False)
    assert expected.shape == (2, size[0] * strides[0], size[1] * strides[1], 32)
    np.testing.assert_allclose(conv_transpose(x, k, strides), expected, rtol=1e-5, atol=1e-5)
    assert _dilated_convolutions(lambda x: conv_transpose(x, k, strides, fast_grad=False), x) == 1
    assert _dilated_convolutions(lambda x: conv_transpose(x, k, strides), x) == 0


@pytest.mark.parametrize(
    "channels,size,strides",
    [(32, 14, 2), (4, 14, 2), (32, 15, 2), (32, 9, 1)],
    ids=["subpixel", "narrow", "uneven", "stride1"],
)
def test_fast_conv_gradients_equal_autodiff(channels, size, strides, xla_convolutions):
    y = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, channels))
    k = jax.random.normal(jax.random.PRNGKey(1), (5, 5, channels, 6))
    out = -(-size // strides)
    w = jax.random.normal(jax.random.PRNGKey(2), (2, out, out, 6))

    def loss(y, k, fast):
        return jnp.sum(w * jnp.tanh(conv(y, k, (strides, strides), fast_grad=fast)))

    np.testing.assert_array_equal(
        conv(y, k, (strides, strides)), conv(y, k, (strides, strides), fast_grad=False)
    )
    fast = jax.grad(loss, argnums=(0, 1))(y, k, True)
    plain = jax.grad(loss, argnums=(0, 1))(y, k, False)
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))
    subpixel = channels >= 32 and size % strides == 0
    grad_y = lambda y: jax.grad(loss)(y, k, True)
    assert _dilated_convolutions(grad_y, y) == (0 if subpixel or strides == 1 else 1)


def test_conv_module_matches_linen_conv_with_the_same_variables():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 14, 14, 3))
    ours, linen = Conv(8, strides=(2, 2)), nn.Conv(8, (5, 5), strides=(2, 2), padding="SAME")
    variables = linen.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
        jnp.shape, variables
    )
    np.testing.assert_allclose(
        ours.apply(variables, x), linen.apply(variables, x), rtol=1e-5, atol=1e-5
    )


def test_conv_transpose_module_kernel_layout_and_bias():
    layer = ConvTranspose(5, strides=(2, 2), use_bias=True)
    x = jnp.ones((1, 7, 7, 3))
    variables = layer.init(jax.random.PRNGKey(0), x)
    assert variables["params"]["kernel"].shape == (5, 5, 5, 3)
    assert layer.apply(variables, x).shape == (1, 14, 14, 5)


@pytest.mark.parametrize("shape", [(3, 5), (64, 7, 7, 16), (1,)])
def test_fast_bernoulli_draws_jaxs_bits_exactly(shape):
    key = jax.random.key(7)
    for p in (0.3, 0.5, 0.7):
        expected = jax.random.bernoulli(key, p, shape)
        np.testing.assert_array_equal(jax.jit(bernoulli, static_argnums=2)(key, p, shape), expected)
    raw = jax.random.PRNGKey(3)  # a raw uint32 key
    np.testing.assert_array_equal(bernoulli(raw, 0.7, shape), jax.random.bernoulli(raw, 0.7, shape))
    rbg = jax.random.key(3, impl="rbg")  # another implementation: JAX's own draw
    np.testing.assert_array_equal(bernoulli(rbg, 0.7, shape), jax.random.bernoulli(rbg, 0.7, shape))


def test_dropout_equals_linens_dropout():
    x = jax.random.normal(jax.random.key(0), (8, 6, 6, 4))
    rngs = {"dropout": jax.random.key(1)}
    expected = nn.Dropout(0.3, deterministic=False).apply({}, x, rngs=rngs)
    np.testing.assert_array_equal(
        Dropout(0.3, deterministic=False).apply({}, x, rngs=rngs), expected
    )
    assert Dropout(0.3, deterministic=True).apply({}, x) is x
    np.testing.assert_array_equal(Dropout(1.0).apply({}, x, deterministic=False, rngs=rngs), 0)
