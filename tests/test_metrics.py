"""Sample-quality metrics against hand-computed and directly computed values."""

import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics import (
    accuracy,
    confident_share,
    feature_statistics,
    frechet_distance,
    inception_score,
    trace_sqrt_product,
)


def random_covariance(rng, dim, rank=None):
    a = rng.normal(size=(dim, rank or dim))
    return a @ a.T / dim


def direct_fd(mu1, s1, mu2, s2):
    """The textbook formula with a general matrix square root (scipy.linalg.sqrtm)."""
    return float(
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    )


@pytest.mark.parametrize("dim", [1, 3, 8])
def test_frechet_distance_matches_the_direct_computation(dim):
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    s1, s2 = random_covariance(rng, dim), random_covariance(rng, dim)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        direct_fd(mu1, s1, mu2, s2), rel=1e-9, abs=1e-9
    )


def test_frechet_distance_of_one_dimensional_gaussians_is_hand_computed():
    # (m1 - m2)² + (σ1 - σ2)² for N(1, 2²) and N(-2, 5²): 9 + 9
    assert frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[25.0]])
    ) == pytest.approx(18.0)


def test_frechet_distance_of_identical_sets_is_zero_and_of_a_shift_is_its_square():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    shift = np.full(16, 0.5)
    assert frechet_distance(*feature_statistics(features + shift), mu, sigma) == pytest.approx(
        16 * 0.25, rel=1e-6
    )


def test_trace_sqrt_is_stable_for_singular_covariances():
    # Rank-2 covariances in 6 dimensions (fewer samples than features): still real and exact.
    rng = np.random.default_rng(3)
    s1, s2 = random_covariance(rng, 6, rank=2), random_covariance(rng, 6, rank=2)
    value = trace_sqrt_product(s1, s2)
    eig = np.linalg.eigvals(s1 @ s2)
    assert np.isfinite(value) and value == pytest.approx(
        np.sum(np.sqrt(np.clip(eig.real, 0, None))), rel=1e-6
    )
    # diagonal case by hand: tr √(diag(a)·diag(b)) = Σ √(a_i b_i)
    assert trace_sqrt_product(np.diag([4.0, 0.0, 9.0]), np.diag([1.0, 5.0, 4.0])) == pytest.approx(
        2 + 0 + 6
    )


def test_feature_statistics_rejects_too_few_rows():
    with pytest.raises(ValueError, match=r"\[N >= 2, D\]"):
        feature_statistics(np.zeros((1, 4)))


def test_inception_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10] * 50.0  # certain, all classes equally used
    assert inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    # one class only
    assert inception_score(np.tile(confident[:1], (1000, 1))) == pytest.approx(1.0)
    assert inception_score(np.zeros((100, 10))) == pytest.approx(1.0)  # no confidence at all
    # half the images certain of class 0, half of class 1: exp(log 2) = 2
    assert inception_score(np.eye(10)[np.arange(100) % 2] * 50.0) == pytest.approx(2.0, rel=1e-6)
    assert np.isfinite(inception_score(np.full((4, 10), 1e4) * np.eye(10)[:4]))


def test_confident_share_and_accuracy_by_hand():
    logits = np.log(np.array([[0.95, 0.05], [0.6, 0.4], [0.08, 0.92], [0.02, 0.98]]))
    assert confident_share(logits, 0.9) == pytest.approx(0.75)  # 0.95, 0.92, 0.98
    assert confident_share(logits, 0.97) == pytest.approx(0.25)
    assert accuracy(logits, np.array([0, 1, 1, 1])) == pytest.approx(0.75)
