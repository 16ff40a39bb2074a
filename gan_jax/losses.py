"""Pure GAN losses on logits (a logit is log D/(1-D); positive means "real").

All are means over the batch, written with softplus so no logit overflows:
-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l). `GAN_LOSSES` is the table
of adversarial objectives a GAN config chooses from (`GANConfig.loss`).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

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


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """The hinge loss of a critic: `mean(relu(1 - real)) + mean(relu(1 + fake))`, ≥ 0.

    Args:
      real_logits: `[B]` critic scores of real images (unbounded reals).
      fake_logits: `[B']` critic scores of generated images.
    Returns:
      scalar, 0 once every real scores ≥ 1 and every fake ≤ -1; 2 at scores 0.
    """
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def wasserstein_critic_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """The WGAN critic loss `mean(fake) - mean(real)`: minus the critic's estimate of the
    Wasserstein-1 distance (a lower bound when the critic is 1-Lipschitz).

    Args:
      real_logits: `[B]` critic scores of real images.
      fake_logits: `[B']` critic scores of generated images.
    Returns:
      scalar, unbounded (negative when the critic scores reals above fakes).
    """
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def critic_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """The generator loss of hinge and WGAN critics: `-mean(fake)` on `[B]` scores; unbounded."""
    return -jnp.mean(fake_logits)


def least_squares_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """LSGAN's discriminator loss (Mao et al. 2017, targets a=0 fake, b=1 real):
    `0.5 * mean((real - 1)²) + 0.5 * mean(fake²)`, ≥ 0.

    Args:
      real_logits: `[B]` raw discriminator outputs on real images (no sigmoid).
      fake_logits: `[B']` on generated images.
    Returns:
      scalar, 0 when reals score 1 and fakes 0; 0.5 at scores 0.
    """
    return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def least_squares_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """LSGAN's generator loss (target c=1): `0.5 * mean((fake - 1)²)` on `[B]` outputs, ≥ 0."""
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, key: jax.Array
) -> jax.Array:
    """WGAN-GP's penalty `mean((‖∇ₓ critic(x̂)‖₂ - 1)²)` at `x̂ = ε·real + (1 - ε)·fake`.

    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs".

    Args:
      critic: maps images `[B, ...]` to scores `[B]`; each score must depend on its own image only
        (no batch statistics), so one gradient of the summed scores holds every example's gradient.
      real: `[B, ...]` real images.
      fake: `[B, ...]` generated images, the same shape.
      key: draws ε ~ U(0, 1), one per example.
    Returns:
      scalar ≥ 0; 0 when every gradient at x̂ has norm 1. Differentiable in the critic's
      parameters (the gradient of a gradient).
    """
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    mixed = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)
    # The tiny floor keeps the norm's own gradient finite where a gradient is exactly 0.
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


class GANLoss(NamedTuple):
    """One adversarial objective of `GAN_LOSSES`: pure functions of logits `[B]`, and what the step
    adds.

    Attributes:
      discriminator: `(real_logits, fake_logits) -> scalar` the discriminator (critic) minimizes.
      generator: `fake_logits -> scalar` the generator minimizes.
      gradient_penalty: the critic's loss also gets `gp_weight · gradient_penalty` (WGAN-GP).
      collapse_guard: the losses are BCE, whose scale the collapse guard's thresholds are
        calibrated for (`gan_jax.collapse`); False turns the guard off.
    """

    discriminator: Callable[[jax.Array, jax.Array], jax.Array]
    generator: Callable[[jax.Array], jax.Array]
    gradient_penalty: bool = False
    collapse_guard: bool = False


GAN_LOSSES: dict[str, GANLoss] = {
    "non_saturating": GANLoss(discriminator_loss, generator_loss, collapse_guard=True),
    "hinge": GANLoss(hinge_discriminator_loss, critic_generator_loss),
    "wgan_gp": GANLoss(wasserstein_critic_loss, critic_generator_loss, gradient_penalty=True),
    "least_squares": GANLoss(least_squares_discriminator_loss, least_squares_generator_loss),
}


# Semi-supervised GAN losses. The classifier has K class logits l; "real" is the union of the
# classes, so D(x) = Z/(Z + 1) with Z = sum(exp(l)), i.e. D(x) = sigmoid(logsumexp(l)).


def real_fake_logit(class_logits: jax.Array) -> jax.Array:
    """The real/fake logit of K class logits `[B, K]`: `logsumexp` over K, `[B]` (never
    overflows)."""
    return jax.nn.logsumexp(class_logits, axis=-1)


def cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of logits `[B, K]` against int `labels` `[B]` in 0..K-1; ≥ 0."""
    log_probs = jax.nn.log_softmax(class_logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))


def aligned_log_probs(logits: jax.Array) -> jax.Array:
    """ReMixMatch's distribution alignment (Berthelot et al. 2020) to a uniform class prior, in
    log space: each row of log-softmax(`logits` `[B, K]`) minus the log of the batch's mean class
    distribution, renormalized; `[B, K]`. A class the batch over-predicts loses probability in
    every row, one it under-predicts gains it."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    log_mean = jax.nn.logsumexp(log_probs, axis=0) - jnp.log(logits.shape[0])
    return jax.nn.log_softmax(log_probs - log_mean, axis=-1)


def pseudo_label_loss(
    weak_logits: jax.Array, strong_logits: jax.Array, threshold: float, align: bool = False
) -> jax.Array:
    """FixMatch's unlabelled term (Sohn et al. 2020): where the class distribution of an image's
    weak view, softmax(`weak_logits` `[B, K]`) (with `align`, `aligned_log_probs`' distribution
    instead), reaches `threshold`, the cross-entropy of its strong view's logits `[B, K]` against
    that argmax class; averaged over all B images (those below the threshold add 0), ≥ 0. No
    gradient flows through the weak view."""
    weak = jnp.exp(aligned_log_probs(weak_logits)) if align else jax.nn.softmax(weak_logits, -1)
    weak = jax.lax.stop_gradient(weak)
    confident = (jnp.max(weak, axis=-1) >= threshold).astype(strong_logits.dtype)
    log_probs = jax.nn.log_softmax(strong_logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, jnp.argmax(weak, axis=-1)[:, None], axis=-1)[:, 0]
    return -jnp.mean(confident * picked)


def kl_from_logits(target_logits: jax.Array, logits: jax.Array) -> jax.Array:
    """Mean KL(softmax(`target_logits`) || softmax(`logits`)) over B rows of `[B, K]`, from
    log-softmax (no log of 0), ≥ 0; no gradient flows through the target."""
    target = jax.lax.stop_gradient(jax.nn.log_softmax(target_logits, axis=-1))
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.mean(jnp.sum(jnp.exp(target) * (target - log_probs), axis=-1))


def consistency_loss(weak_logits: jax.Array, strong_logits: jax.Array) -> jax.Array:
    """UDA's consistency term (Xie et al. 2020) on every unlabelled image, confident or not: the
    KL divergence from the class distribution of its weak view (logits `[B, K]`, no gradient) to
    that of its strong view `[B, K]`; ≥ 0, 0 when the two views agree."""
    return kl_from_logits(weak_logits, strong_logits)


def _unit_rows(x: jax.Array) -> jax.Array:
    """`x` `[B, ...]` with each row scaled to L2 norm 1 (a zero row stays 0). Each row is first
    divided by its largest magnitude, so a row of gradients as small as 1e-19 (a confident
    prediction's, below VAT's reference code's floors of 1e-12 and 1e-6) still comes out at norm
    1."""
    axes = tuple(range(1, x.ndim))
    largest = jnp.max(jnp.abs(x), axis=axes, keepdims=True)
    x = x / jnp.where(largest > 0, largest, 1.0)
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=True))
    return x / jnp.where(norm > 0, norm, 1.0)


def virtual_adversarial_loss(
    logits_fn: Callable[[jax.Array], jax.Array],
    images: jax.Array,
    key: jax.Array,
    epsilon: float,
    xi: float = 1e-2,
) -> jax.Array:
    """Virtual adversarial training's term (Miyato et al. 2018), one power iteration: the KL
    divergence from `logits_fn`'s prediction (images `[B, H, W, C]` → logits `[B, K]`, no
    gradient through this target) on `images` to its prediction on `images + r`, where `r` is the
    perturbation of L2 norm `epsilon` per image that most changes the prediction: the gradient of
    that divergence at a random direction of norm `xi` drawn from `key`, normalized. ≥ 0.
    `logits_fn` must be deterministic (a stochastic model with its noise key fixed). The paper's
    `xi` of 1e-6 drowns the gradient in float32 rounding (on a linear model its direction even
    pointed away from the exact power-iteration step); 1e-2 matches that step."""
    clean = logits_fn(images)
    direction = _unit_rows(jax.random.normal(key, images.shape, images.dtype))

    def divergence(d):
        return kl_from_logits(clean, logits_fn(images + xi * d))

    r_adv = epsilon * _unit_rows(jax.lax.stop_gradient(jax.grad(divergence)(direction)))
    return kl_from_logits(clean, logits_fn(images + r_adv))


def conditional_entropy(class_logits: jax.Array) -> jax.Array:
    """Mean entropy of the class distributions softmax(logits `[B, K]`), in [0, log K]:
    `-mean_b sum_k p_bk log p_bk`, from log-softmax (no log of 0).

    Minimized on unlabeled images it pushes the classifier to confident decisions there (Bad GAN,
    Dai et al. 2017, after Grandvalet & Bengio 2005).
    """
    log_probs = jax.nn.log_softmax(class_logits, axis=-1)
    return -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1))


def class_balance_loss(class_logits: jax.Array) -> jax.Array:
    """KL divergence from the uniform distribution to the batch's mean class distribution, in
    [0, log K]: `log K - H(mean_b softmax(logits_b))` for logits `[B, K]`, from log-softmax and
    logsumexp (no log of 0).

    Minimized on unlabeled images it spreads the batch's decisions over the K classes, so that no
    class takes the images of another (CatGAN's marginal-entropy term, Springenberg 2016). It is 0
    when the batch's mean prediction is uniform, whatever each image's own confidence: a uniform
    prediction for every image meets it too, which is why CatGAN pairs it with
    `conditional_entropy`.
    """
    log_probs = jax.nn.log_softmax(class_logits, axis=-1)
    num_classes = class_logits.shape[-1]
    log_mean = jax.nn.logsumexp(log_probs, axis=0) - jnp.log(class_logits.shape[0])
    return jnp.log(num_classes) + jnp.sum(jnp.exp(log_mean) * log_mean)


def unsupervised_loss(real_class_logits: jax.Array, fake_class_logits: jax.Array) -> jax.Array:
    """Improved GAN's real/fake loss: half the BCE of D(x) = sigmoid(logsumexp(logits)).

    Args:
      real_class_logits: `[B, K]` on unlabeled real images (target real).
      fake_class_logits: `[B', K]` on generated images (target fake).
    Returns:
      scalar `0.5 * (mean softplus(-lse(real)) + mean softplus(lse(fake)))`, ≥ 0.
    """
    return 0.5 * discriminator_loss(
        real_fake_logit(real_class_logits), real_fake_logit(fake_class_logits)
    )


def feature_matching_loss(fake_features: jax.Array, real_features: jax.Array) -> jax.Array:
    """Mean over features of the squared difference of batch means:
    `mean((E f(G(z)) - E f(x))²)`, ≥ 0.

    Improved GAN's form (Salimans et al. 2016). Its gradient grows with the gap, so a generator
    that falls behind a winning discriminator gets ever larger updates.

    Args:
      fake_features: `[B, F]` classifier features of generated images.
      real_features: `[B', F]` of real images (Improved GAN: a second unlabeled batch).
    """
    return jnp.mean(jnp.square(jnp.mean(fake_features, axis=0) - jnp.mean(real_features, axis=0)))


def feature_matching_l1_loss(fake_features: jax.Array, real_features: jax.Array) -> jax.Array:
    """Mean over features of the absolute difference of batch means:
    `mean(|E f(G(z)) - E f(x)|)`, ≥ 0.

    Bad GAN's form (Dai et al. 2017, its MNIST code): each feature's gradient is bounded by 1/F
    whatever the gap. Arguments as in `feature_matching_loss`.
    """
    return jnp.mean(jnp.abs(jnp.mean(fake_features, axis=0) - jnp.mean(real_features, axis=0)))


def sgan_generator_loss(fake_class_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss through D(x) = sigmoid(logsumexp(logits)): fake → real."""
    return generator_loss(real_fake_logit(fake_class_logits))


class SGANGeneratorLoss(NamedTuple):
    """One generator objective of `SGAN_GENERATOR_LOSSES`.

    Attributes:
      loss: `(fake_class_logits [B, K], fake_features [B, F], real_features [B', F] or None)
        -> scalar` the generator minimizes, through the classifier just updated.
      real_features: it reads `real_features`: the step then embeds a second unlabeled batch.
    """

    loss: Callable[[jax.Array, jax.Array, Any], jax.Array]  # real features: an array or None
    real_features: bool


SGAN_GENERATOR_LOSSES: dict[str, SGANGeneratorLoss] = {
    "feature_matching_l1": SGANGeneratorLoss(
        lambda logits, fake, real: feature_matching_l1_loss(fake, real), real_features=True
    ),
    "feature_matching": SGANGeneratorLoss(
        lambda logits, fake, real: feature_matching_loss(fake, real), real_features=True
    ),
    "non_saturating": SGANGeneratorLoss(
        lambda logits, fake, real: sgan_generator_loss(logits), real_features=False
    ),
}
