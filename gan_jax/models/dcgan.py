"""The DCGAN of the TensorFlow MNIST tutorial (REFERENCE.md §1), as linen modules."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import Conv, ConvTranspose

LEAK = 0.3  # Keras LeakyReLU's default slope, used by the tutorial


class Generator(nn.Module):
    """Noise `[B, noise_dim]` (and, when `num_classes`, digits int `[B]`) → images `[B, H, W, C]`
    in [-1, 1], `(H, W, C) = image_shape` (the tutorial's 28×28×1 by default; H and W divisible
    by 4).

    A conditional generator (`num_classes > 0`) reads `concat(z, one_hot(digit))`. Then:
    Dense (H/4)·(W/4)·f0 → BN → LReLU → ConvT(f1, 5×5, s1) → BN → LReLU → ConvT(f2, 5×5, s2) → BN →
    LReLU → ConvT(C, 5×5, s2) → tanh; no biases. BatchNorm uses batch statistics when `train`, else
    the running averages kept in the `batch_stats` collection. `dtype` is the compute dtype
    (parameters stay float32); the images come back as float32 either way.
    """

    features: tuple[int, int, int] = (256, 128, 64)
    fast_grad: bool = True
    num_classes: int = 0
    dtype: Any = jnp.float32
    image_shape: tuple[int, int, int] = (28, 28, 1)

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        f0, f1, f2 = self.features
        channels, start = self.image_shape[2], (self.image_shape[0] // 4, self.image_shape[1] // 4)
        if self.num_classes:
            z = jnp.concatenate(
                [z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1
            )
        norm = lambda: nn.BatchNorm(
            use_running_average=not train, momentum=0.99, epsilon=1e-3, dtype=self.dtype
        )
        x = nn.Dense(
            start[0] * start[1] * f0,
            use_bias=False,
            kernel_init=nn.initializers.glorot_uniform(),
            dtype=self.dtype,
        )(z)
        x = nn.leaky_relu(norm()(x), LEAK).reshape(-1, *start, f0)
        for width, stride in ((f1, 1), (f2, 2)):
            x = ConvTranspose(
                width, strides=(stride, stride), fast_grad=self.fast_grad, dtype=self.dtype
            )(x)
            x = nn.leaky_relu(norm()(x), LEAK)
        x = ConvTranspose(channels, strides=(2, 2), fast_grad=self.fast_grad, dtype=self.dtype)(x)
        return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
    """Images `[B, H, W, C]` in [-1, 1] (and, when `num_classes`, digits int `[B]`) → real/fake
    logits `[B]` (positive means real).

    Conv(f0, 5×5, s2) → LReLU → Dropout → Conv(f1, 5×5, s2) → LReLU → Dropout → h → Dense 1.
    A conditional discriminator adds the projection `⟨embed(digit), h⟩` (Miyato & Koyama 2018).
    Dropout is active when `train` and draws from the 'dropout' RNG stream. `fast_grad` computes the
    convolutions' input-gradients in sub-pixel form where that is faster. `dtype` is the compute
    dtype (parameters stay float32); the logits come back as float32 either way.
    """

    features: tuple[int, int] = (64, 128)
    dropout: float = 0.3
    num_classes: int = 0
    fast_grad: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        init = nn.initializers.glorot_uniform()
        for width in self.features:
            x = Conv(
                width, strides=(2, 2), fast_grad=self.fast_grad, kernel_init=init, dtype=self.dtype
            )(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(nn.leaky_relu(x, LEAK))
        h = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, kernel_init=init, dtype=self.dtype)(h)[:, 0]
        if self.num_classes:
            embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=init, dtype=self.dtype)
            logits = logits + jnp.sum(embed(labels) * h, -1)
        return logits.astype(jnp.float32)
