"""`gan_jax.tasks.feature_net`: the feature network's training task (augmentation: random_shift)."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.tasks.feature_net import random_shift


def test_random_shift_moves_pixels_within_bounds():
    image = jnp.zeros((1, 28, 28, 1), jnp.uint8).at[0, 14, 14, 0].set(255)
    shifted = random_shift(jnp.repeat(image, 64, 0), 2, jax.random.PRNGKey(0))
    rows, cols = np.nonzero(np.asarray(shifted)[..., 0].max(axis=0))
    # every offset in [-2, 2] drawn
    assert set(rows) == set(range(12, 17)) and set(cols) == set(range(12, 17))
    assert (np.asarray(shifted).reshape(64, -1).sum(-1) == 255).all()  # one pixel moved, none lost
