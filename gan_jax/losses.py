"""Pure GAN losses on logits (a logit is log D/(1-D); positive means "real").

All are means over the batch, written with softplus so no logit overflows:
-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
"""

import jax
import jax.numpy as jnp


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Binary cross-entropy with real → 1 and fake → 0, summed over the two halves.

    Args:
      real_logits: `[B]` discriminator logits on real images.
      fake_logits: `[B']` discriminator logits on generated images.
    Returns:
      scalar `mean(softplus(-real)) + mean(softplus(fake))`, ≥ 0; 2·log 2 at logits 0.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss: BCE with fake → 1, i.e. `mean(softplus(-fake))`, ≥ 0."""
    return jnp.mean(jax.nn.softplus(-fake_logits))
