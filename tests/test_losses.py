import math

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.losses import discriminator_loss, generator_loss


def test_losses_at_zero_logits_are_log_two_per_term():
    zeros = jnp.zeros(4)
    np.testing.assert_allclose(discriminator_loss(zeros, zeros), 2 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(generator_loss(zeros), math.log(2), rtol=1e-6)


def test_discriminator_loss_against_hand_computed_bce():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    sig = lambda v: 1 / (1 + math.exp(-v))
    expected = (-math.log(sig(2.0)) - math.log(sig(-1.0))) / 2 + (-math.log(1 - sig(0.5)) - math.log(1 - sig(-3.0))) / 2
    np.testing.assert_allclose(discriminator_loss(real, fake), expected, rtol=1e-6)


def test_generator_loss_is_non_saturating_bce_with_target_one():
    fake = jnp.array([1.0, -2.0, 0.0])
    expected = np.mean([math.log1p(math.exp(-v)) for v in (1.0, -2.0, 0.0)])
    np.testing.assert_allclose(generator_loss(fake), expected, rtol=1e-6)
    # Non-saturating: when D confidently rejects a fake, G still gets a gradient of about -1/B.
    grad = jax.grad(generator_loss)(jnp.array([-30.0]))
    np.testing.assert_allclose(grad, [-1.0], rtol=1e-6)


def test_losses_stay_finite_at_extreme_logits():
    big = jnp.array([1000.0, -1000.0])
    assert np.isfinite(discriminator_loss(big, big))
    np.testing.assert_allclose(discriminator_loss(jnp.array([1000.0]), jnp.array([-1000.0])), 0.0, atol=1e-6)
    np.testing.assert_allclose(generator_loss(jnp.array([-1000.0])), 1000.0, rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(discriminator_loss, argnums=(0, 1))(big, big)))
