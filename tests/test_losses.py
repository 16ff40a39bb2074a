"""`gan_jax.losses`: every loss against hand-computed values, finite at extreme logits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.losses import (
    class_balance_loss,
    conditional_entropy,
    cross_entropy,
    discriminator_loss,
    feature_matching_l1_loss,
    feature_matching_loss,
    generator_loss,
    real_fake_logit,
    sgan_generator_loss,
    unsupervised_loss,
)


def test_losses_at_zero_logits_are_log_two_per_term():
    zeros = jnp.zeros(4)
    np.testing.assert_allclose(discriminator_loss(zeros, zeros), 2 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(generator_loss(zeros), math.log(2), rtol=1e-6)


def test_discriminator_loss_against_hand_computed_bce():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    sig = lambda v: 1 / (1 + math.exp(-v))
    expected = (-math.log(sig(2.0)) - math.log(sig(-1.0))) / 2 + (
        -math.log(1 - sig(0.5)) - math.log(1 - sig(-3.0))
    ) / 2
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
    np.testing.assert_allclose(
        discriminator_loss(jnp.array([1000.0]), jnp.array([-1000.0])), 0.0, atol=1e-6
    )
    np.testing.assert_allclose(generator_loss(jnp.array([-1000.0])), 1000.0, rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(discriminator_loss, argnums=(0, 1))(big, big)))


def test_hinge_and_wasserstein_losses_against_hand_computed_values():
    from gan_jax.losses import (
        critic_generator_loss,
        hinge_discriminator_loss,
        wasserstein_critic_loss,
    )

    real, fake = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 0.5])
    # relu(1 - real) = (0, 0.5, 2), relu(1 + fake) = (0, 1, 1.5): means 2.5/3 each
    np.testing.assert_allclose(hinge_discriminator_loss(real, fake), 5 / 3, rtol=1e-6)
    np.testing.assert_allclose(hinge_discriminator_loss(jnp.zeros(2), jnp.zeros(2)), 2.0)
    np.testing.assert_allclose(wasserstein_critic_loss(real, fake), -0.5 - 0.5, rtol=1e-6)
    np.testing.assert_allclose(critic_generator_loss(fake), 0.5, rtol=1e-6)


def test_least_squares_losses_against_hand_computed_values():
    from gan_jax.losses import least_squares_discriminator_loss, least_squares_generator_loss

    real, fake = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 0.5])
    # (real - 1)² = (1, 0.25, 4): mean 1.75; fake² = (4, 0, 0.25): mean 1.41666…
    np.testing.assert_allclose(
        least_squares_discriminator_loss(real, fake), 0.5 * 1.75 + 0.5 * 4.25 / 3, rtol=1e-6
    )
    np.testing.assert_allclose(least_squares_discriminator_loss(jnp.ones(2), jnp.zeros(2)), 0.0)
    # (fake - 1)² = (9, 1, 0.25): mean 10.25 / 3
    np.testing.assert_allclose(least_squares_generator_loss(fake), 0.5 * 10.25 / 3, rtol=1e-6)
    grad = jax.grad(least_squares_generator_loss)(fake)  # d/df 0.5·mean((f - 1)²) = (f - 1) / B
    np.testing.assert_allclose(grad, (fake - 1.0) / 3, rtol=1e-6)


def _linear_critic(w):
    return lambda x: x.reshape(x.shape[0], -1) @ w


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    from gan_jax.losses import gradient_penalty

    key = jax.random.PRNGKey(0)
    real = jax.random.normal(key, (4, 2, 3, 1))
    fake = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 3, 1))
    unit = jnp.full(6, 1 / math.sqrt(6))  # ‖w‖ = 1: the gradient everywhere has norm 1
    np.testing.assert_allclose(
        gradient_penalty(_linear_critic(unit), real, fake, key), 0.0, atol=1e-10
    )
    w = jnp.array([3.0, 0.0, 4.0, 0.0, 0.0, 0.0])  # ‖w‖ = 5
    np.testing.assert_allclose(
        gradient_penalty(_linear_critic(w), real, fake, key), (5 - 1) ** 2, rtol=1e-6
    )
    # the gradient of the penalty in the critic's weights: d/dw (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖
    grad = jax.grad(lambda v: gradient_penalty(_linear_critic(v), real, fake, key))(w)
    np.testing.assert_allclose(grad, 2 * 4 * w / 5, rtol=1e-5)


def test_gradient_penalty_reads_the_interpolates():
    from gan_jax.losses import gradient_penalty

    # critic x ↦ ½‖x‖²: its gradient at x̂ is x̂; with real = fake = x every interpolate is x
    x = jnp.stack([jnp.full((2, 2, 1), 0.5), jnp.full((2, 2, 1), 1.0)])  # norms 1 and 2
    square = lambda v: 0.5 * jnp.sum(jnp.square(v.reshape(v.shape[0], -1)), axis=-1)
    np.testing.assert_allclose(
        gradient_penalty(square, x, x, jax.random.PRNGKey(0)), (0 + 1) / 2, rtol=1e-6
    )


def test_gan_losses_table():
    from gan_jax.config import G_LOSSES, GAN_LOSS_NAMES, GANConfig, SGANConfig
    from gan_jax.losses import GAN_LOSSES, SGAN_GENERATOR_LOSSES

    assert tuple(GAN_LOSSES) == ("non_saturating", "hinge", "wgan_gp", "least_squares")
    # the configs' names (JAX-free, for the command line) are the tables' rows, defaults first
    assert GAN_LOSS_NAMES == tuple(GAN_LOSSES) and G_LOSSES == tuple(SGAN_GENERATOR_LOSSES)
    assert (GANConfig().loss, SGANConfig().g_loss) == (GAN_LOSS_NAMES[0], G_LOSSES[0])
    default = GAN_LOSSES["non_saturating"]
    assert (default.discriminator, default.generator) == (discriminator_loss, generator_loss)
    assert [name for name, loss in GAN_LOSSES.items() if loss.gradient_penalty] == ["wgan_gp"]
    assert [name for name, loss in GAN_LOSSES.items() if loss.collapse_guard] == ["non_saturating"]


# ---- the semi-supervised GAN's losses


def test_cross_entropy_matches_hand_computation():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    expected = np.mean([-(2 - np.log(np.exp(2) + 2)), np.log(3)])
    np.testing.assert_allclose(cross_entropy(logits, jnp.array([0, 2])), expected, rtol=1e-6)


def test_unsupervised_loss_matches_hand_computation():
    real, fake = jnp.array([[0.0, np.log(3.0)]]), jnp.array([[0.0, 0.0]])  # lse = log 4 and log 2
    # 0.5 * (-log(4/5) - log(1 - 2/3))
    expected = 0.5 * (-np.log(4 / 5) - np.log(1 / 3))
    np.testing.assert_allclose(unsupervised_loss(real, fake), expected, rtol=1e-6)
    np.testing.assert_allclose(real_fake_logit(real), [np.log(4.0)], rtol=1e-6)


@pytest.mark.parametrize("value", [1000.0, -1000.0])
def test_sgan_losses_stay_finite_at_extreme_logits(value):
    logits = jnp.full((4, 10), value)
    for loss in (
        unsupervised_loss(logits, logits),
        sgan_generator_loss(logits),
        cross_entropy(logits, jnp.zeros(4, int)),
    ):
        assert np.isfinite(float(loss))
    grads = jax.grad(unsupervised_loss, argnums=(0, 1))(logits, logits)
    assert all(np.all(np.isfinite(g)) for g in grads)
    # lse = value + log 10: a confident "real" costs nothing on real data and ~lse on fake data
    expected_fake = 0.5 * max(value + np.log(10.0), 0.0)
    np.testing.assert_allclose(
        unsupervised_loss(jnp.full((1, 10), 1000.0), logits[:1]),
        expected_fake,
        rtol=1e-5,
        atol=1e-6,
    )


def test_unsupervised_loss_pushes_real_up_and_fake_down():
    real, fake = jnp.zeros((3, 10)), jnp.zeros((3, 10))
    g_real, g_fake = jax.grad(unsupervised_loss, argnums=(0, 1))(real, fake)
    step = 0.5
    assert np.all(real_fake_logit(real - step * g_real) > real_fake_logit(real))
    assert np.all(real_fake_logit(fake - step * g_fake) < real_fake_logit(fake))


def test_feature_matching_and_generator_loss_hand_values():
    fake = jnp.array([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1)
    real = jnp.array([[0.0, 0.0], [0.0, 0.0], [0.0, 3.0]])  # mean (0, 1)
    np.testing.assert_allclose(feature_matching_loss(fake, real), (4.0 + 0.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(sgan_generator_loss(jnp.zeros((1, 4))), np.log1p(1 / 4), rtol=1e-6)


def test_l1_feature_matching_hand_value_and_bounded_gradient():
    fake = jnp.array([[1.0, 2.0, -1.0], [3.0, 2.0, -1.0]])  # batch means (2, 2, -1)
    # batch means (0, 3, -2): gaps (2, -1, 1)
    real = jnp.array([[0.0, 5.0, -2.0], [0.0, 1.0, -2.0]])
    np.testing.assert_allclose(
        feature_matching_l1_loss(fake, real), (2.0 + 1.0 + 1.0) / 3, rtol=1e-6
    )
    # d/dfake[b, f] = sign(gap_f) / (F · B): bounded however large the gap,
    # unlike the square's 2·gap_f / (F · B)
    grads = jax.grad(feature_matching_l1_loss)(fake + jnp.array([1000.0, -1000.0, 1000.0]), real)
    np.testing.assert_allclose(grads, np.tile([[1 / 6, -1 / 6, 1 / 6]], (2, 1)), atol=1e-7)
    grads_sq = jax.grad(feature_matching_loss)(fake, real)
    np.testing.assert_allclose(grads_sq, np.tile([[4 / 6, -2 / 6, 2 / 6]], (2, 1)), atol=1e-7)


def test_conditional_entropy_matches_hand_computation_and_its_bounds():
    # p = (0.5, 0.5): entropy log 2;
    # p = softmax(0, log 3) = (0.25, 0.75): -(0.25 log 0.25 + 0.75 log 0.75)
    logits = jnp.array([[1.0, 1.0], [0.0, np.log(3.0)]])
    expected = 0.5 * (np.log(2) - (0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    np.testing.assert_allclose(conditional_entropy(logits), expected, rtol=1e-6)
    assert float(conditional_entropy(jnp.array([[0.0, -1e4, -1e4]]))) == 0.0  # certain: no NaN
    np.testing.assert_allclose(conditional_entropy(jnp.zeros((4, 10))), np.log(10), rtol=1e-6)
    grads = jax.grad(lambda x: conditional_entropy(x))(jnp.array([[2.0, 0.0]]))
    assert grads[0, 0] < 0 < grads[0, 1]  # lowering it sharpens the more likely class


def test_class_balance_loss_matches_hand_computation_and_its_bounds():
    # mean of (0.5, 0.5) and (0.25, 0.75) is (0.375, 0.625): KL to uniform = log 2 + Σ p̄ log p̄
    logits = jnp.array([[1.0, 1.0], [0.0, np.log(3.0)]])
    expected = np.log(2) + 0.375 * np.log(0.375) + 0.625 * np.log(0.625)
    # float32: log 2 − 0.66
    np.testing.assert_allclose(class_balance_loss(logits), expected, rtol=1e-5)
    certain_and_balanced = jnp.array([[0.0, -1e4], [-1e4, 0.0]])
    np.testing.assert_allclose(class_balance_loss(certain_and_balanced), 0.0, atol=1e-7)  # no NaN
    one_class = jnp.tile(jnp.array([[0.0, -1e4, -1e4]]), (4, 1))
    np.testing.assert_allclose(class_balance_loss(one_class), np.log(3), rtol=1e-6)  # the maximum
    grads = jax.grad(class_balance_loss)(jnp.array([[2.0, 0.0], [1.0, 0.0]]))
    assert np.all(grads[:, 0] > 0) and np.all(grads[:, 1] < 0)  # lowering it moves mass off class 0


def test_sgan_generator_losses_table_gives_the_hand_values_and_the_config_choices():
    from gan_jax.config import G_LOSSES, SGANConfig
    from gan_jax.losses import SGAN_GENERATOR_LOSSES as table

    logits = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    fake = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # batch means [2, 3]
    real = jnp.array([[0.0, 0.0], [2.0, 2.0]])  # batch means [1, 1]
    # (1+2)/2 and (1+4)/2
    np.testing.assert_allclose(table["feature_matching_l1"].loss(logits, fake, real), 1.5)
    np.testing.assert_allclose(table["feature_matching"].loss(logits, fake, real), 2.5)
    lse = np.log(np.exp([0.5, -1.0]).sum()), np.log(np.exp([2.0, 0.0]).sum())
    # -log sigmoid(logsumexp): fake → real
    expected = np.mean([np.log1p(np.exp(-v)) for v in lse])
    loss = table["non_saturating"].loss(logits, fake, None)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    reading = [name for name, row in table.items() if row.real_features]
    assert reading == ["feature_matching_l1", "feature_matching"]
    assert G_LOSSES == tuple(table) and G_LOSSES[0] == SGANConfig().g_loss


def test_distribution_alignment_moves_pseudo_labels_to_the_under_predicted_class():
    from gan_jax.losses import aligned_log_probs, pseudo_label_loss

    # weak views: p = (0.8, 0.2) and (0.6, 0.4); the batch's mean (0.7, 0.3) over-predicts class 0.
    # Aligned: (0.8/0.7, 0.2/0.3) → (0.6316, 0.3684); (0.6/0.7, 0.4/0.3) → (0.3913, 0.6087)
    weak = jnp.log(jnp.array([[0.8, 0.2], [0.6, 0.4]]))
    np.testing.assert_allclose(
        jnp.exp(aligned_log_probs(weak)),
        [
            [0.8 / 0.7 / (0.8 / 0.7 + 0.2 / 0.3), 0.2 / 0.3 / (0.8 / 0.7 + 0.2 / 0.3)],
            [0.6 / 0.7 / (0.6 / 0.7 + 0.4 / 0.3), 0.4 / 0.3 / (0.6 / 0.7 + 0.4 / 0.3)],
        ],
        rtol=1e-5,
    )
    strong = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    ce_0, ce_1 = math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))  # of classes 0 and 1
    # unaligned, both images are class 0 at threshold 0.6; aligned, image 1 becomes class 1
    plain = (ce_0 + math.log(1 + math.exp(1))) / 2
    np.testing.assert_allclose(pseudo_label_loss(weak, strong, 0.6), plain, rtol=1e-5)
    np.testing.assert_allclose(
        pseudo_label_loss(weak, strong, 0.6, align=True), (ce_0 + ce_1) / 2, rtol=1e-5
    )
    # a batch that already predicts the classes evenly is left as it is
    even = jnp.log(jnp.array([[0.9, 0.1], [0.1, 0.9]]))
    np.testing.assert_allclose(jnp.exp(aligned_log_probs(even)), jnp.exp(even), rtol=1e-5)


def test_pseudo_label_loss_against_hand_values_and_without_gradient_through_the_weak_view():
    from gan_jax.losses import pseudo_label_loss

    weak = jnp.array([[3.0, 0.0], [0.0, 0.0]])  # p = (0.9526, 0.0474): confident; (0.5, 0.5): not
    strong = jnp.array([[1.0, 2.0], [5.0, -5.0]])
    # image 0: pseudo-label 0, CE = log(1 + e) = 1.3133; image 1 adds 0; mean over both images
    expected = math.log(1 + math.e) / 2
    np.testing.assert_allclose(pseudo_label_loss(weak, strong, 0.95), expected, rtol=1e-6)
    assert float(pseudo_label_loss(weak, strong, 0.96)) == 0.0  # nobody confident enough
    np.testing.assert_allclose(
        pseudo_label_loss(weak, strong, 0.5),  # both: image 1's tie goes to class 0
        (math.log(1 + math.e) + math.log(1 + math.exp(-10))) / 2,
        rtol=1e-6,
    )
    grad_weak = jax.grad(lambda w: pseudo_label_loss(w, strong, 0.5))(weak)
    np.testing.assert_array_equal(grad_weak, 0.0)
    grad_strong = jax.grad(lambda s: pseudo_label_loss(weak, s, 0.95))(strong)
    assert np.abs(grad_strong[0]).sum() > 0 and np.all(grad_strong[1] == 0)


def test_consistency_loss_is_the_kl_from_the_weak_view_to_the_strong_one():
    from gan_jax.losses import consistency_loss

    weak = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
    strong = jnp.log(jnp.array([[0.25, 0.75], [0.9, 0.1]]))
    # image 0: 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75); image 1: the views agree, 0
    expected = (0.5 * math.log(2) + 0.5 * math.log(2 / 3)) / 2
    np.testing.assert_allclose(consistency_loss(weak, strong), expected, rtol=1e-5)
    np.testing.assert_allclose(consistency_loss(strong, strong), 0.0, atol=1e-7)
    grad_weak = jax.grad(lambda w: consistency_loss(w, strong))(weak)
    np.testing.assert_array_equal(grad_weak, 0.0)


def test_virtual_adversarial_loss_moves_a_linear_model_along_its_exact_gradient():
    from gan_jax.losses import virtual_adversarial_loss

    images = jax.random.uniform(jax.random.key(0), (3, 4, 4, 1))
    weights = np.asarray(jax.random.normal(jax.random.key(1), (16, 5)), np.float64)

    def logits_fn(x):
        return x.reshape(x.shape[0], -1) @ weights.astype(np.float32)

    key, epsilon, xi = jax.random.key(2), 0.5, 1e-2
    loss = virtual_adversarial_loss(logits_fn, images, key, epsilon, xi)

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    x = np.asarray(images, np.float64).reshape(3, -1)
    d = np.asarray(jax.random.normal(key, images.shape), np.float64).reshape(3, -1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    p = softmax(x @ weights)
    # d/dd of KL(p || softmax(W^T (x + xi d))) is xi W (q - p) per image
    grad = (softmax((x + xi * d) @ weights) - p) @ weights.T
    r = epsilon * grad / np.linalg.norm(grad, axis=1, keepdims=True)
    q = softmax((x + r) @ weights)
    expected = np.mean(np.sum(p * np.log(p / q), axis=1))
    np.testing.assert_allclose(loss, expected, rtol=1e-3)
    # the adversarial direction beats a random one of the same norm
    moved = softmax((x + epsilon * d) @ weights)
    assert float(loss) > np.mean(np.sum(p * np.log(p / moved), axis=1))

    # the parameters' gradient flows only through the perturbed pass: the clean target and the
    # perturbation are constants
    def with_weights(w, perturbation):
        logits = lambda im: im.reshape(im.shape[0], -1) @ w  # noqa: E731
        target = jax.lax.stop_gradient(jax.nn.log_softmax(logits(images)))
        moved = jax.nn.log_softmax(logits(images + perturbation))
        return jnp.mean(jnp.sum(jnp.exp(target) * (target - moved), axis=-1))

    w32 = jnp.asarray(weights, jnp.float32)
    grad = jax.grad(
        lambda w: virtual_adversarial_loss(
            lambda im: im.reshape(im.shape[0], -1) @ w, images, key, epsilon, xi
        )
    )(w32)
    r32 = jnp.asarray(r.reshape(images.shape), jnp.float32)
    np.testing.assert_allclose(grad, jax.grad(with_weights)(w32, r32), rtol=2e-2, atol=1e-4)


def test_virtual_adversarial_perturbations_keep_their_norm_on_confident_predictions():
    from gan_jax.losses import virtual_adversarial_loss

    # logits (20, -20) at pixel 0 = 0: p ≈ (1, 4e-18) and the divergence's gradients are ~1e-19.
    # Only pixel 0 moves the logits, so r is ±epsilon on pixel 0, with the sign of the random
    # direction's pixel 0 (the power iteration keeps it); a key that draws it negative moves the
    # logits to (0, 0): KL = log 2
    images = jnp.zeros((1, 2, 1, 1))
    logits_fn = lambda x: x[:, 0, 0, :1] * jnp.array([20.0, -20.0]) + jnp.array([20.0, -20.0])  # noqa: E731
    key = next(
        k
        for k in map(jax.random.key, range(20))
        if jax.random.normal(k, (1, 2, 1, 1))[0, 0, 0, 0] < 0
    )
    loss = virtual_adversarial_loss(logits_fn, images, key, 1.0)
    np.testing.assert_allclose(loss, math.log(2), rtol=1e-4)


def test_virtual_adversarial_loss_is_zero_for_a_model_that_ignores_its_input():
    from gan_jax.losses import virtual_adversarial_loss

    images = jnp.ones((2, 3, 3, 1))
    const = jnp.array([[1.0, -1.0, 0.5]])
    loss = virtual_adversarial_loss(
        lambda x: jnp.broadcast_to(const, (x.shape[0], 3)), images, jax.random.key(0), 2.0
    )
    assert float(loss) == 0.0
