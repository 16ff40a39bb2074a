"""`gan_jax.tasks.feature_net`: the feature network's training task (augmentation: random_shift)."""

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.feed import random_shift


def test_random_shift_moves_pixels_within_bounds_and_fills_with_black():
    image = jnp.full((1, 28, 28, 1), -1.0).at[0, 14, 14, 0].set(1.0)  # in [-1, 1], as fed
    shifted = np.asarray(random_shift(jnp.repeat(image, 64, 0), 2, jax.random.PRNGKey(0)))
    rows, cols = np.nonzero(shifted[..., 0].max(axis=0) == 1.0)
    # every offset in [-2, 2] drawn
    assert set(rows) == set(range(12, 17)) and set(cols) == set(range(12, 17))
    # one pixel moved, none lost; the uncovered border is black (-1), as the background
    assert ((shifted == 1.0).reshape(64, -1).sum(-1) == 1).all()
    assert set(np.unique(shifted)) == {-1.0, 1.0}
