"""The oneDNN convolutions (`gan_jax.onednn`): XLA's values and gradients to float32 precision,
any order of differentiation, vmap, whole steps, exact resume, and checkpoints across paths.

The module builds the library into the user's cache once; without g++ and oneDNN's headers
(`apt-get install g++ libdnnl-dev`) its oneDNN tests skip with that line. The error tests run
everywhere.
"""

import dataclasses
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax import ConfigError, SGANConfig, UserError, onednn, train
from gan_jax.checkpoint import params_fingerprint
from gan_jax.data import Split
from gan_jax.models import conv, conv_transpose
from gan_jax.models.dcgan import Discriminator64, Generator64
from gan_jax.models.feature_net import FeatureNet
from gan_jax.models.layers import conv_general_dilated
from gan_jax.models.sgan import ConvClassifier
from gan_jax.onednn import build
from gan_jax.steps import TaskStep, make_runner
from gan_jax.tasks import SGANTask
from gan_jax.workdir import read_rows
from tests.feeding import call_batches, on_device


@pytest.fixture(scope="module")
def built():
    """The library, built into the cache (a no-op once there); skips where it cannot be."""
    try:
        return onednn.build_library()
    except UserError as err:
        pytest.skip(f"oneDNN path untested here: {err}")


def _both(fn, *args):
    """`fn(*args)` traced and run on XLA, then on oneDNN (fresh traces)."""
    results = []
    for path in ("xla", "onednn"):
        with onednn.use(path):
            results.append(jax.jit(lambda *a: fn(*a))(*args))
    return results


def _close(a, b, rtol=2e-5):
    """Equal to float32 summation-order error: relative to the largest magnitude."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        np.testing.assert_allclose(x, y, rtol=0, atol=rtol * max(np.abs(y).max(), 1e-6))


def _normal(key, shape):
    return jax.random.normal(jax.random.key(key), shape)


# (batch, input size, input channels, output channels, kernel, stride): the DCGAN's layers, a
# 3×3 SGAN layer, an input the stride does not divide, and the 1-channel cases kept on XLA
SHAPES = [
    (4, 14, 8, 16, 5, 2),
    (4, 7, 16, 8, 5, 1),
    (3, 9, 4, 6, 3, 2),
    (4, 28, 1, 8, 5, 2),
    (2, 8, 6, 1, 3, 2),
]


@pytest.mark.parametrize("n,size,c_in,c_out,k,s", SHAPES)
def test_convolution_and_both_gradients_match_xla(built, n, size, c_in, c_out, k, s):
    y, kernel = _normal(0, (n, size, size, c_in)), _normal(1, (k, k, c_in, c_out)) / k
    loss = lambda y, kernel: jnp.sum(jnp.sin(conv(y, kernel, (s, s))))
    _close(*_both(lambda y, kernel: conv(y, kernel, (s, s)), y, kernel))
    _close(*_both(jax.grad(loss, argnums=(0, 1)), y, kernel))


@pytest.mark.parametrize("n,size,c_in,c_out,k,s", SHAPES[:2] + SHAPES[4:])
def test_transposed_convolution_and_both_gradients_match_xla(built, n, size, c_in, c_out, k, s):
    x, kernel = _normal(2, (n, size, size, c_out)), _normal(3, (k, k, c_in, c_out)) / k
    loss = lambda x, kernel: jnp.sum(jnp.sin(conv_transpose(x, kernel, (s, s))))
    xla, ours = _both(lambda x, kernel: conv_transpose(x, kernel, (s, s)), x, kernel)
    assert ours.shape == (n, size * s, size * s, c_in)
    _close(xla, ours)
    _close(*_both(jax.grad(loss, argnums=(0, 1)), x, kernel))


def test_gradient_of_a_gradient_matches_xla(built):
    """WGAN-GP differentiates the input-gradient's norm in the kernel."""
    y, kernel = _normal(4, (3, 10, 10, 4)), _normal(5, (5, 5, 4, 8)) / 5

    def penalty(kernel, y):
        grads = jax.grad(lambda y: jnp.sum(jnp.tanh(conv(y, kernel, (2, 2)))))(y)
        return jnp.sum(grads**2)

    _close(*_both(jax.grad(penalty, argnums=(0, 1)), kernel, y), rtol=5e-5)


def test_vmapped_members_match_xla(built):
    """The data-seed ensembles vmap a model over members: inputs and kernels both batched."""
    y, kernel = _normal(6, (3, 2, 8, 8, 4)), _normal(7, (3, 3, 3, 4, 6))
    fn = jax.vmap(lambda y, kernel: conv(y, kernel, (2, 2)))
    _close(*_both(fn, y, kernel))
    _close(*_both(jax.grad(lambda y, k: jnp.sum(fn(y, k) ** 2), argnums=(0, 1)), y, kernel))


@pytest.mark.parametrize("module", [ConvClassifier(10), FeatureNet(10)], ids=type)
def test_linen_conv_layers_take_the_onednn_path(built, module):
    images = _normal(8, (4, 28, 28, 1))
    variables = module.init({"params": jax.random.key(0)}, images, **_train_arg(module))
    apply = lambda v, x: module.apply(v, x, **_train_arg(module))[0]
    with onednn.use("onednn"):
        hlo = jax.jit(apply).lower(variables, images).as_text()
    assert onednn.TARGET in hlo
    _close(*_both(apply, variables, images))


@pytest.mark.parametrize(
    "options,kernel_shape",
    [
        ({"feature_group_count": 2}, (3, 3, 2, 6)),
        ({"batch_group_count": 2}, (3, 3, 4, 6)),
        ({"rhs_dilation": (2, 2)}, (3, 3, 4, 6)),
    ],
    ids=["groups", "batch_groups", "dilated"],
)
def test_the_linen_hook_leaves_what_onednn_does_not_do_to_lax(built, options, kernel_shape):
    x, kernel = _normal(10, (2, 9, 9, 4)), _normal(11, kernel_shape)
    dims = ("NHWC", "HWIO", "NHWC")
    expected = lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=dims, **options
    )
    hook = lambda x, k: conv_general_dilated(
        x, k, (1, 1), "SAME", dimension_numbers=dims, **options
    )
    with onednn.use("onednn"):
        got = jax.jit(hook)(x, kernel)
        assert onednn.TARGET not in jax.jit(hook).lower(x, kernel).as_text()
    np.testing.assert_array_equal(got, expected)


def _train_arg(module: nn.Module) -> dict:
    return {"train": False} if isinstance(module, ConvClassifier) else {}


@pytest.mark.slow
def test_the_64_px_dcgan_takes_the_onednn_path_with_xlas_values_and_gradients(built):
    """The DCGAN paper's 4×4 stride-2 layers at 64 px, 3 channels (the RGB ends stay on XLA)."""
    generator, discriminator = Generator64(features=4), Discriminator64(features=4)
    z = _normal(9, (2, 8))
    g_vars = generator.init(jax.random.key(0), z, train=False)
    images = generator.apply(g_vars, z, train=False)
    d_vars = discriminator.init(jax.random.key(1), images, train=False)

    def d_of_g(g_vars, d_vars):
        fakes = generator.apply(g_vars, z, train=False)
        return jnp.sum(discriminator.apply(d_vars, fakes, train=False) ** 2)

    with onednn.use("onednn"):
        assert onednn.TARGET in jax.jit(d_of_g).lower(g_vars, d_vars).as_text()
    _close(*_both(lambda g: generator.apply(g, z, train=False), g_vars))
    _close(*_both(jax.grad(d_of_g, argnums=(0, 1)), g_vars, d_vars), rtol=5e-5)


def _steps(config, data, path, tmp_path, name, steps):
    with onednn.use(path):
        return train(
            dataclasses.replace(config, steps=steps), tmp_path / name, data=data, progress=False
        )


def _losses(workdir):
    return [(row["d_loss"], row["g_loss"]) for row in read_rows(workdir, "losses.jsonl")]


@pytest.mark.slow
def test_gan_training_on_both_paths_agrees_and_resumes_exactly(
    built, tiny_config, tiny_data, tmp_path
):
    config = dataclasses.replace(tiny_config, epochs=2)
    _steps(config, tiny_data, "xla", tmp_path, "xla", 6)
    straight = _steps(config, tiny_data, "onednn", tmp_path, "straight", 6)
    np.testing.assert_allclose(_losses(tmp_path / "straight"), _losses(tmp_path / "xla"), 1e-4)

    _steps(config, tiny_data, "onednn", tmp_path, "resumed", 3)
    resumed = _steps(config, tiny_data, "onednn", tmp_path, "resumed", 6)
    assert params_fingerprint(resumed) == params_fingerprint(straight)

    # a checkpoint of one path resumes on the other
    _steps(config, tiny_data, "xla", tmp_path, "crossed", 3)
    _steps(config, tiny_data, "onednn", tmp_path, "crossed", 6)
    np.testing.assert_allclose(_losses(tmp_path / "crossed"), _losses(tmp_path / "xla"), 1e-4)


@pytest.mark.slow
def test_conv_sgan_steps_match_xla(built):
    """The conv SGAN: linen `nn.Conv` in the classifier, transposed convolutions in the
    generator."""
    task = SGANTask(SGANConfig.recipe("conv", labels=20, batch_size=10, data_seeds=(0,)))
    rng = np.random.default_rng(0)
    digits = Split(rng.integers(0, 256, (60, 28, 28, 1), np.uint8), np.arange(60) % 10)
    data = on_device(task, digits)
    losses = []
    for path in ("xla", "onednn"):
        with onednn.use(path):
            run, state = make_runner(TaskStep(task), 1), task.init(data)
            for step in range(2):  # two calls of one step: XLA:CPU compiles a scan of two slowly
                state, metrics, _ = run(state, call_batches(task, data, 60, step, 1))
                losses.append(metrics)
    losses = [losses[:2], losses[2:]]
    # Adam's first steps move every parameter by ±lr whatever its gradient's size, so a gradient
    # near 0 flips with rounding: the losses of both steps are the comparable numbers
    _close(losses[1], losses[0], rtol=1e-4)


def test_requesting_onednn_without_the_library_names_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_ONEDNN_DIR", str(tmp_path))
    monkeypatch.setenv("GAN_JAX_CONV", "onednn")
    onednn.load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="gan-jax onednn build"):
            onednn.backend()
        monkeypatch.setenv("GAN_JAX_CONV", "auto")
        assert onednn.backend() == "xla"
        monkeypatch.setenv("GAN_JAX_CONV", "fast")
        with pytest.raises(ConfigError, match="not one of auto, xla, onednn; unset it"):
            onednn.backend()
    finally:
        onednn.load.cache_clear()


def test_a_missing_onednn_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_ONEDNN_ROOT", str(tmp_path))  # a prefix with no oneDNN in it
    with pytest.raises(UserError, match="apt-get install g\\+\\+ libdnnl-dev"):
        build.build()
    assert not list(tmp_path.iterdir())


def test_a_cpu_run_without_the_library_says_how_to_get_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GAN_JAX_ONEDNN_DIR", str(tmp_path))
    monkeypatch.setenv("GAN_JAX_CONV", "auto")
    onednn.load.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="gan_jax"):
            onednn.log_path(logging.getLogger("gan_jax"))
        assert caplog.messages == [onednn.HINT] and "gan-jax onednn build" in onednn.HINT
        caplog.clear()
        monkeypatch.setenv("GAN_JAX_CONV", "xla")  # chosen: nothing to say
        onednn.log_path(logging.getLogger("gan_jax"))
        assert caplog.messages == []
    finally:
        onednn.load.cache_clear()
