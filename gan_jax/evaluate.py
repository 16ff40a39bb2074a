"""How good are generated images: feature-network metrics of a trained generator.

`sample_quality` draws images from a task's generator with noise of a fixed evaluation seed (so
the same state always scores the same) and compares them with the real test images through
`gan_jax.features.FeatureNetwork`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from gan_jax.features import FeatureNetwork, load_feature_network
from gan_jax.metrics import (
    accuracy,
    confident_share,
    feature_statistics,
    frechet_distance,
    inception_score,
)
from gan_jax.steps import TrainState

EVAL_SEED = 1234
CHUNK = 1000


def generate(
    task, state: TrainState, num: int, seed: int = EVAL_SEED, digits: np.ndarray | None = None
) -> np.ndarray:
    """`num` generated images, float32 `[num, H, W, C]` in [-1, 1], drawn in chunks of `CHUNK`.

    Chunk i's noise is `noise(fold_in(key(seed), i))`. `digits` (cGAN only, int `[num]`) picks each
    image's class; the cGAN's default cycles through the classes.
    """
    root, images = jax.random.key(seed), []
    for i, start in enumerate(range(0, num, CHUNK)):
        n = min(CHUNK, num - start)
        chunk_digits = None if digits is None else digits[start : start + n]
        images.append(task.sample(state, task.noise(jax.random.fold_in(root, i), n), chunk_digits))
    return np.concatenate(images)


def sample_quality(
    task, state: TrainState, num: int = 10_000, network: FeatureNetwork | None = None
) -> dict[str, Any]:
    """Metrics of `num` generated images against the real test images of the task's dataset.

    Returns:
      `fd`: Fréchet distance of the feature network's penultimate features (lower is better);
      `fd_floor`: the same distance between the real training and test images (the best a
      generator can expect); `inception_score`: in [1, num_classes]; `confident`: share of
      samples the classifier labels with probability ≥ 0.9; for the cGAN also `digit_accuracy`,
      the share of samples classified as the class they were asked for (classes cycle 0, 1, ...).
    """
    network = network or load_feature_network(task.feature_net_config())
    digits = np.arange(num) % task.num_classes if task.conditional else None
    logits, features = network.logits_and_features(generate(task, state, num, digits=digits))
    result = {
        "fd": frechet_distance(*feature_statistics(features), *network.test_stats),
        "fd_floor": network.fd_floor,
        "inception_score": inception_score(logits),
        "confident": confident_share(logits),
        "fd_network": network.sha256[:16],
    }
    if digits is not None:
        result["digit_accuracy"] = accuracy(logits, digits)
    return result
