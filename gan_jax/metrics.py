"""Sample-quality metrics as pure functions of classifier outputs (numpy, float64).

`frechet_distance` compares two Gaussians fitted to feature sets (FID with MNIST features);
`inception_score` and `confident_share` read class logits of generated images.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[D]` and covariance `[D, D]` (unbiased, float64) of features `[N, D]`, N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be [N >= 2, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues < 0,
    rounding noise, are clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ₁Σ₂) for covariance matrices, computed stably.

    Σ₁Σ₂ is not symmetric, and a general matrix square root of it (`scipy.linalg.sqrtm`) can
    return complex values or fail on singular covariances. It is similar to the symmetric PSD
    matrix √Σ₁ Σ₂ √Σ₁, whose eigenvalues are real and ≥ 0: the trace is Σ √λᵢ of that matrix.
    """
    root = _psd_sqrt(np.asarray(sigma1, np.float64))
    middle = root @ np.asarray(sigma2, np.float64) @ root
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None))))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂): ‖μ₁−μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂).

    ≥ 0 up to rounding; 0 for identical statistics. Units are squared feature units, so values
    are comparable only under the same feature network.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    diff = mu1 - mu2
    return float(
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )


def inception_score(logits: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) from class logits `[N, K]`: in [1, K].

    K when every image is classified with certainty and the classes are used equally; 1 when
    every image gets the same class distribution. Computed in log space.
    """
    log_p = log_softmax(np.asarray(logits, np.float64), axis=-1)
    log_marginal = logsumexp(log_p, axis=0) - np.log(len(log_p))
    return float(np.exp(np.mean(np.sum(np.exp(log_p) * (log_p - log_marginal), axis=-1))))


def confident_share(logits: np.ndarray, threshold: float = 0.9) -> float:
    """Share of images `[N, K]` whose most likely class has probability ≥ `threshold`, in [0, 1]."""
    top = np.max(log_softmax(np.asarray(logits, np.float64), axis=-1), axis=-1)
    return float(np.mean(top >= np.log(threshold)))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows of `logits` `[N, K]` whose argmax equals `labels` `[N]`."""
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> dict:
    """What users of a classifier report, from true labels int `[N]` and class probabilities
    `[N, K]` (scikit-learn's definitions): `accuracy`; `per_class_accuracy` `[K]` (each class's
    recall; None for a class absent from `labels`); `macro_f1` (over the classes that occur in
    `labels` or the predictions); `confusion` `[K, K]` (rows: true
    class, columns: predicted); and, for two classes, `roc_auc` of class 1's probability."""
    from sklearn import metrics as sk

    labels = np.asarray(labels)
    classes = list(range(len(class_names)))
    predicted = np.argmax(probabilities, axis=1)
    confusion = sk.confusion_matrix(labels, predicted, labels=classes)
    totals = confusion.sum(axis=1)
    report = {
        "class_names": list(class_names),
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": [
            float(confusion[k, k] / totals[k]) if totals[k] else None for k in classes
        ],
        "macro_f1": float(  # over the classes present in the labels or the predictions
            sk.f1_score(labels, predicted, average="macro", zero_division=0)
        ),
        "confusion": confusion.tolist(),
    }
    if len(classes) == 2 and len(np.unique(labels)) == 2:
        report["roc_auc"] = float(sk.roc_auc_score(labels, probabilities[:, 1]))
    return report
