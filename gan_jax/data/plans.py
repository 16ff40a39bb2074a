"""What training makes of a split on the device: pixels scaled, and each epoch's example order.
Labelled subsets are `gan_jax.data.subsets` (NumPy only)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def to_unit_range(images: jax.Array) -> jax.Array:
    """uint8 pixels 0..255 → float32 in [-1, 1] (the tutorial's scaling), same shape."""
    return images.astype(jnp.float32) / 127.5 - 1.0


@functools.partial(jax.jit, static_argnums=2)
def epoch_permutation(data_key: jax.Array, epoch: jax.Array | int, num_examples: int) -> jax.Array:
    """The example order of one epoch, int32 `[num_examples]` on the device, a pure function of
    (key, epoch). Compiled once per `num_examples`."""
    key = jax.random.fold_in(data_key, epoch)
    return jax.random.permutation(key, num_examples).astype(jnp.int32)
