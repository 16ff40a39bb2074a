"""Semi-supervised GAN models: Improved GAN's weight-normalized MLP and the seed's CNN.

Classifiers map images `[B, H, W, C]` to `(class_logits [B, num_classes], features [B, F])`; the
features (the last hidden layer) are what feature matching compares. Generators map noise
`[B, noise_dim]` to images `[B, H, W, C]`, `(H, W, C) = image_shape` (MNIST's 28×28×1 by default).
The task sizes both from its dataset. Random layers (Gaussian noise, dropout) draw from the
'noise' stream.
"""

from __future__ import annotations

import math
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.models.dropout import Dropout
from gan_jax.models.layers import ConvTranspose, conv_general_dilated


def _dot_general_f32(*args, **kwargs):
    """`lax.dot_general` accumulating and returning float32 whatever its input dtype."""
    return lax.dot_general(*args, **kwargs, preferred_element_type=jnp.float32)


class WeightNormDense(nn.Module):
    """Dense layer with weight normalization, W = scale · v / ‖v‖ per output unit (Salimans &
    Kingma 2016).

    With `ddi=True` (data-dependent initialization) the layer normalizes its pre-activations over
    the batch to zero mean and unit variance and writes the `scale` and `bias` that do so into
    the 'ddi' collection; `data_dependent_init` copies them into the parameters.

    Attributes:
      features: output units.
      train_scale: whether `scale` is learned; when False it keeps its initialized value.
      dtype: the matrix product's input dtype (bfloat16 for mixed precision); it accumulates and
        returns float32, and the parameters are float32.
    """

    features: int
    train_scale: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, ddi: bool = False) -> jax.Array:
        v = self.param("kernel", nn.initializers.normal(0.1), (x.shape[-1], self.features))
        scale = self.param("scale", nn.initializers.ones, (self.features,))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if not self.train_scale:
            scale = lax.stop_gradient(scale)
        w = v * (scale / jnp.sqrt(jnp.sum(jnp.square(v), axis=0)))
        y = jnp.dot(x.astype(self.dtype), w.astype(self.dtype), preferred_element_type=jnp.float32)
        if not ddi:
            return y + bias
        mean = jnp.mean(y, axis=0)
        inv_std = 1.0 / jnp.sqrt(jnp.mean(jnp.square(y - mean), axis=0) + 1e-6)
        self.put_variable("ddi", "scale", scale * inv_std)
        self.put_variable("ddi", "bias", -mean * inv_std)
        return (y - mean) * inv_std


class GaussianNoise(nn.Module):
    """Adds N(0, stddev²) noise when `train`; the identity otherwise."""

    stddev: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if not train or self.stddev == 0:
            return x
        return x + self.stddev * jax.random.normal(self.make_rng("noise"), x.shape, x.dtype)


def data_dependent_init(
    module: nn.Module, variables: dict[str, Any], *args, **kwargs
) -> dict[str, Any]:
    """Variables whose weight-norm `scale`/`bias` give unit-variance, zero-mean pre-activations on
    `args`.

    Runs `module.apply(variables, *args, ddi=True, **kwargs)` once; layers are initialized in
    order, each seeing the already-normalized outputs of the layers below it.
    """
    _, found = module.apply(variables, *args, ddi=True, mutable=["ddi"], **kwargs)
    params = flax.traverse_util.flatten_dict(variables["params"])
    params.update(flax.traverse_util.flatten_dict(found["ddi"]))
    return {**variables, "params": flax.traverse_util.unflatten_dict(params)}


class MLPClassifier(nn.Module):
    """Improved GAN's MNIST classifier: images `[B, H, W, C]` in [0, 1] → (logits
    `[B, num_classes]`, features `[B, 250]`).

    Noise σ=0.3 → [WN-Dense → ReLU → noise σ=0.5] for widths 1000, 500, 250, 250, 250 → WN-Dense
    `num_classes` (learned scale). No batch norm, no dropout. Features: the last hidden layer,
    before its noise (Improved GAN's), or with `features_after_noise` after it, i.e. the output
    layer's input (identical when `train` is False).
    `dtype`: the matrix products' input dtype (see `WeightNormDense`).
    """

    num_classes: int
    widths: tuple[int, ...] = (1000, 500, 250, 250, 250)
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    features_after_noise: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array, train: bool, ddi: bool = False):
        x = GaussianNoise(self.input_noise)(images.reshape(images.shape[0], -1), train)
        hidden = x
        for width in self.widths:
            hidden = nn.relu(WeightNormDense(width, dtype=self.dtype)(x, ddi))
            x = GaussianNoise(self.hidden_noise)(hidden, train)
        features = x if self.features_after_noise else hidden
        logits = WeightNormDense(self.num_classes, train_scale=True, dtype=self.dtype)(x, ddi)
        return logits, features


class MLPGenerator(nn.Module):
    """Improved GAN's MNIST generator: z `[B, noise_dim]` ~ U(0, 1) → images `[B, H, W, C]` in
    [0, 1].

    [Dense → BN (shift only) → softplus] × widths → WN-Dense H·W·C (learned scale) → sigmoid.
    `dtype`: the matrix products' input dtype (see `WeightNormDense`); outputs are float32.
    """

    widths: tuple[int, ...] = (500, 500)
    dtype: Any = jnp.float32
    image_shape: tuple[int, int, int] = (28, 28, 1)

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        x = z
        for width in self.widths:
            x = nn.Dense(
                width,
                use_bias=False,
                kernel_init=nn.initializers.glorot_uniform(),
                dtype=self.dtype,
                dot_general=_dot_general_f32,
            )(x)
            x = nn.BatchNorm(
                use_running_average=not train, use_scale=False, momentum=0.9, epsilon=1e-6
            )(x)
            x = nn.softplus(x)
        x = WeightNormDense(math.prod(self.image_shape), train_scale=True, dtype=self.dtype)(x)
        return nn.sigmoid(x).reshape(-1, *self.image_shape)


CONV_LEAK = 0.01  # the book's LeakyReLU slope


class ConvClassifier(nn.Module):
    """The seed's SGAN discriminator: images `[B, H, W, C]` in [-1, 1] → (logits `[B, num_classes]`,
    features `[B, 128·⌈H/8⌉·⌈W/8⌉]`, 2048 for MNIST).

    Conv(32, 3×3, s2) → LReLU → Conv(64, s2) → BN → LReLU → Conv(128, s2) → BN → LReLU → Dropout 0.5
    → Flatten → Dense `num_classes`. No data-dependent initialization (`ddi`): BatchNorm normalizes.
    """

    num_classes: int
    dropout: float = 0.5

    @nn.compact
    def __call__(self, images: jax.Array, train: bool):
        x = images
        for i, width in enumerate((32, 64, 128)):
            x = nn.Conv(
                width,
                (3, 3),
                strides=(2, 2),
                padding="SAME",
                kernel_init=nn.initializers.glorot_uniform(),
                conv_general_dilated=conv_general_dilated,
            )(x)
            if i:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = nn.leaky_relu(x, CONV_LEAK)
        x = Dropout(self.dropout, deterministic=not train, rng_collection="noise")(x)
        features = x.reshape(x.shape[0], -1)
        logits = nn.Dense(self.num_classes, kernel_init=nn.initializers.glorot_uniform())(features)
        return logits, features


class ConvGenerator(nn.Module):
    """The seed's SGAN generator: z `[B, noise_dim]` ~ N(0, 1) → images `[B, H, W, C]` in [-1, 1]
    (H and W divisible by 4).

    Dense (H/4)·(W/4)·256 → ConvT(128, 3×3, s2) → BN → LReLU → ConvT(64, s1) → BN → LReLU →
    ConvT(C, s2) → tanh.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        start = (self.image_shape[0] // 4, self.image_shape[1] // 4)
        x = nn.Dense(start[0] * start[1] * 256, kernel_init=nn.initializers.glorot_uniform())(z)
        x = x.reshape(-1, *start, 256)
        for width, stride in ((128, 2), (64, 1)):
            x = ConvTranspose(width, (3, 3), (stride, stride), use_bias=True)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = nn.leaky_relu(x, CONV_LEAK)
        return jnp.tanh(ConvTranspose(self.image_shape[2], (3, 3), (2, 2), use_bias=True)(x))
