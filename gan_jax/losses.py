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


# Semi-supervised GAN losses. The classifier has K class logits l; "real" is the union of the
# classes, so D(x) = Z/(Z + 1) with Z = sum(exp(l)), i.e. D(x) = sigmoid(logsumexp(l)).


def real_fake_logit(class_logits: jax.Array) -> jax.Array:
    """The real/fake logit of K class logits `[B, K]`: `logsumexp` over K, `[B]` (never overflows)."""
    return jax.nn.logsumexp(class_logits, axis=-1)


def cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of logits `[B, K]` against int `labels` `[B]` in 0..K-1; ≥ 0."""
    log_probs = jax.nn.log_softmax(class_logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def unsupervised_loss(real_class_logits: jax.Array, fake_class_logits: jax.Array) -> jax.Array:
    """Improved GAN's real/fake loss: half the BCE of D(x) = sigmoid(logsumexp(logits)).

    Args:
      real_class_logits: `[B, K]` on unlabeled real images (target real).
      fake_class_logits: `[B', K]` on generated images (target fake).
    Returns:
      scalar `0.5 * (mean softplus(-lse(real)) + mean softplus(lse(fake)))`, ≥ 0.
    """
    return 0.5 * discriminator_loss(real_fake_logit(real_class_logits), real_fake_logit(fake_class_logits))


def feature_matching_loss(fake_features: jax.Array, real_features: jax.Array) -> jax.Array:
    """Mean over features of the squared difference of batch means: `mean((E f(G(z)) - E f(x))²)`, ≥ 0.

    Improved GAN's form (Salimans et al. 2016). Its gradient grows with the gap, so a generator
    that falls behind a winning discriminator gets ever larger updates.

    Args:
      fake_features: `[B, F]` classifier features of generated images.
      real_features: `[B', F]` of real images (Improved GAN: a second unlabeled batch).
    """
    return jnp.mean(jnp.square(jnp.mean(fake_features, axis=0) - jnp.mean(real_features, axis=0)))


def feature_matching_l1_loss(fake_features: jax.Array, real_features: jax.Array) -> jax.Array:
    """Mean over features of the absolute difference of batch means: `mean(|E f(G(z)) - E f(x)|)`, ≥ 0.

    Bad GAN's form (Dai et al. 2017, its MNIST code): each feature's gradient is bounded by 1/F
    whatever the gap. Arguments as in `feature_matching_loss`.
    """
    return jnp.mean(jnp.abs(jnp.mean(fake_features, axis=0) - jnp.mean(real_features, axis=0)))


def sgan_generator_loss(fake_class_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss through D(x) = sigmoid(logsumexp(logits)): fake → real."""
    return generator_loss(real_fake_logit(fake_class_logits))
