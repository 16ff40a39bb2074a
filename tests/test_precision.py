"""Fast paths and mixed precision: the same function as the plain float32 path, within tolerance."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import GANConfig, GANTask, SGANConfig
from gan_jax.config import SupervisedConfig
from gan_jax.errors import ConfigError
from gan_jax.models import Discriminator, Generator, MLPClassifier
from gan_jax.steps import TaskStep, make_runner
from tests.feeding import call_batches, on_device
from tests.numerics import assert_one_step_close, assert_params_within_adam


def _run_steps(task, split, steps=3):
    data = on_device(task, split)
    run = make_runner(TaskStep(task), 1)
    state, losses, first = task.init(), [], None
    for step in range(steps):
        state, metrics, _ = run(state, call_batches(task, data, len(split.images), step, 1))
        first = jax.tree.map(np.asarray, state) if first is None else first  # the runner donates
        losses.append([float(metrics["d_loss"][0]), float(metrics["g_loss"][0])])
    return state, np.asarray(losses), first


# 32 channels reach the sub-pixel forms (layers._SUBPIXEL_MIN_FEATURES) on CPU; 4 and 8 do not.
@pytest.mark.parametrize(
    "features", [{}, {"g_features": (8, 8, 32), "d_features": (32, 8)}], ids=["narrow", "wide"]
)
def test_fast_conv_step_equals_plain_autodiff_step(tiny_config, tiny_data, features):
    config = dataclasses.replace(tiny_config, **features)
    fast, fast_losses, fast_first = _run_steps(GANTask(config, fast_grad=True), tiny_data)
    plain, plain_losses, plain_first = _run_steps(GANTask(config, fast_grad=False), tiny_data)
    # The first step starts from one state: its losses and gradients (Adam's moments) agree to
    # rounding. After it only Adam's step bound ties the parameters (tests/numerics.py).
    np.testing.assert_allclose(fast_losses[0], plain_losses[0], rtol=1e-5)
    assert_one_step_close(fast_first.models, plain_first.models, config.learning_rate, config.beta1)
    assert_params_within_adam(fast.models, plain.models, config.learning_rate, 3, config.beta1)


def test_bfloat16_models_keep_float32_parameters_and_outputs_close_to_float32():
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 10))
    g32, g16 = Generator((8, 4, 4)), Generator((8, 4, 4), dtype=jnp.bfloat16)
    variables = g32.init(jax.random.PRNGKey(1), z, train=False)
    assert {x.dtype for x in jax.tree.leaves(g16.init(jax.random.PRNGKey(1), z, train=False))} == {
        jnp.dtype("float32")
    }
    images32, images16 = g32.apply(variables, z, train=False), g16.apply(variables, z, train=False)
    assert images16.dtype == jnp.float32
    np.testing.assert_allclose(images16, images32, atol=0.05)

    d32, d16 = Discriminator((4, 8)), Discriminator((4, 8), dtype=jnp.bfloat16)
    d_vars = d32.init(jax.random.PRNGKey(2), images32, train=False)
    logits32, logits16 = (
        d32.apply(d_vars, images32, train=False),
        d16.apply(d_vars, images32, train=False),
    )
    assert logits16.dtype == jnp.float32
    np.testing.assert_allclose(
        logits16, logits32, atol=0.05 * float(jnp.max(jnp.abs(logits32))) + 1e-3
    )


def test_bfloat16_mlp_classifier_accumulates_in_float32():
    x = jax.random.uniform(jax.random.PRNGKey(0), (6, 28, 28, 1))
    c32, c16 = MLPClassifier(10), MLPClassifier(10, dtype=jnp.bfloat16)
    variables = c32.init(jax.random.PRNGKey(1), x, train=False)
    (logits32, _), (logits16, feats16) = (
        c32.apply(variables, x, train=False),
        c16.apply(variables, x, train=False),
    )
    assert logits16.dtype == feats16.dtype == jnp.float32
    assert not np.array_equal(logits16, logits32)  # bf16 inputs really were used
    np.testing.assert_allclose(logits16, logits32, rtol=0.05, atol=0.05)


def test_bfloat16_gan_step_trains_float32_state(tiny_config, tiny_data):
    state, losses, _ = _run_steps(
        GANTask(dataclasses.replace(tiny_config, compute_dtype="bfloat16")), tiny_data
    )
    _, losses32, _ = _run_steps(GANTask(tiny_config), tiny_data)
    assert {x.dtype for x in jax.tree.leaves(state.models)} <= {
        jnp.dtype("float32"),
        jnp.dtype("int32"),
    }
    np.testing.assert_allclose(losses, losses32, rtol=0.05)


def test_compute_dtype_is_validated():
    with pytest.raises(ConfigError, match="compute_dtype must be one of float32, bfloat16"):
        GANConfig(compute_dtype="float16")
    with pytest.raises(ConfigError, match="mlp model only"):
        SupervisedConfig.recipe("conv", compute_dtype="bfloat16")
    assert SGANConfig(compute_dtype="bfloat16").compute_dtype == "bfloat16"


def test_runs_stored_before_compute_dtype_existed_still_resume():
    stored = GANConfig().to_dict()
    del stored["compute_dtype"]
    assert GANConfig().conflicts_with(stored) == []
    assert GANConfig(compute_dtype="bfloat16").conflicts_with(stored) == ["compute_dtype"]
