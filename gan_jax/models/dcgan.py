"""DCGANs as linen modules, sized from the image: the TensorFlow MNIST tutorial's (REFERENCE.md §1;
`Generator`, `Discriminator`) below 64 px, the DCGAN paper's 64×64 one (Radford et al. 2016, as
the PyTorch DCGAN example; `Generator64`, `Discriminator64`) from 64 px. `dcgan_for` picks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models.dropout import Dropout
from gan_jax.models.layers import Conv, ConvTranspose

LEAK = 0.3  # Keras LeakyReLU's default slope, used by the tutorial
PAPER_LEAK = 0.2  # the DCGAN paper's LeakyReLU slope
PAPER_INIT = nn.initializers.normal(0.02)  # the paper's weights: N(0, 0.02²)


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
            x = Dropout(self.dropout, deterministic=not train)(nn.leaky_relu(x, LEAK))
        h = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, kernel_init=init, dtype=self.dtype)(h)[:, 0]
        if self.num_classes:
            embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=init, dtype=self.dtype)
            logits = logits + jnp.sum(embed(labels) * h, -1)
        return logits.astype(jnp.float32)


def _paper_scale_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """BatchNorm scales ~ N(1, 0.02²), as the PyTorch DCGAN example's `weights_init`."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class Generator64(nn.Module):
    """The DCGAN paper's generator: noise `[B, noise_dim]` (and, when `num_classes`, classes int
    `[B]`) → images `[B, H, W, C]` in [-1, 1], `(H, W, C) = image_shape` (64×64×3 by default; H
    and W multiples of 16).

    With f = `features` (the paper's ngf, 64): a conditional generator (`num_classes > 0`) reads
    `concat(z, one_hot(class))`. Then: Dense (H/16)·(W/16)·8f → reshape to 4×4×8f (at 64 px; the
    paper's 4×4 transposed convolution from 1×1, the same map) → BN → ReLU → ConvT(4f, 4×4, s2) →
    BN → ReLU → ConvT(2f) → BN → ReLU → ConvT(f) → BN → ReLU → ConvT(C, 4×4, s2) → tanh, at 8×8,
    16×16, 32×32 and 64×64; no biases. Weights ~ N(0, 0.02²), BatchNorm scales ~ N(1, 0.02²) (the
    paper's initialization); BatchNorm as PyTorch's (momentum 0.1, ε 1e-5), with batch statistics
    when `train`, else the running averages of the `batch_stats` collection. `dtype` is the compute
    dtype (parameters stay float32); the images come back as float32 either way.
    """

    features: int = 64
    fast_grad: bool = True
    num_classes: int = 0
    dtype: Any = jnp.float32
    image_shape: tuple[int, int, int] = (64, 64, 3)

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        f = self.features
        height, width, channels = self.image_shape
        start = (height // 16, width // 16)
        if self.num_classes:
            z = jnp.concatenate(
                [z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1
            )

        def norm_relu(x: jax.Array) -> jax.Array:
            norm = nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,
                epsilon=1e-5,
                scale_init=_paper_scale_init,
                dtype=self.dtype,
            )
            return nn.relu(norm(x))

        x = nn.Dense(
            start[0] * start[1] * 8 * f, use_bias=False, kernel_init=PAPER_INIT, dtype=self.dtype
        )(z)
        x = norm_relu(x.reshape(-1, *start, 8 * f))
        up = lambda features: ConvTranspose(
            features,
            (4, 4),
            strides=(2, 2),
            fast_grad=self.fast_grad,
            kernel_init=PAPER_INIT,
            dtype=self.dtype,
        )
        for features in (4 * f, 2 * f, f):
            x = norm_relu(up(features)(x))
        return jnp.tanh(up(channels)(x).astype(jnp.float32))


class Discriminator64(nn.Module):
    """The DCGAN paper's discriminator: images `[B, H, W, C]` in [-1, 1] (and, when `num_classes`,
    classes int `[B]`) → real/fake logits `[B]` (positive means real); H and W multiples of 16
    (64×64 in the paper).

    With f = `features` (the paper's ndf, 64): Conv(f, 4×4, s2) → LReLU(0.2) → Conv(2f) → norm →
    LReLU → Conv(4f) → norm → LReLU → Conv(8f) → norm → LReLU → h (flattened, 4×4×8f at 64 px) →
    Dense 1 (the paper's 4×4 valid convolution to one logit, the same map); no biases, no dropout,
    weights ~ N(0, 0.02²). A conditional discriminator adds the projection `⟨embed(class), h⟩`
    (Miyato & Koyama 2018), as `Discriminator`.

    `norm` is "batch" (the paper's: BatchNorm as PyTorch's, batch statistics when `train`, else the
    running averages of `batch_stats`; scales ~ N(1, 0.02²)) or "layer" (per-image LayerNorm over
    H, W and channels, per-channel scale and bias; for a critic whose logits must each depend on
    their own image only, as WGAN-GP's gradient penalty needs). `dtype` is the compute dtype
    (parameters stay float32); the logits come back as float32 either way.
    """

    features: int = 64
    num_classes: int = 0
    norm: Literal["batch", "layer"] = "batch"
    fast_grad: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        f = self.features
        for width in (f, 2 * f, 4 * f, 8 * f):
            x = Conv(
                width,
                (4, 4),
                strides=(2, 2),
                use_bias=False,
                fast_grad=self.fast_grad,
                kernel_init=PAPER_INIT,
                dtype=self.dtype,
            )(x)
            if width != f:
                x = self._normalize(x, train)
            x = nn.leaky_relu(x, PAPER_LEAK)
        h = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, use_bias=False, kernel_init=PAPER_INIT, dtype=self.dtype)(h)[:, 0]
        if self.num_classes:
            embed = nn.Embed(
                self.num_classes, h.shape[-1], embedding_init=PAPER_INIT, dtype=self.dtype
            )
            logits = logits + jnp.sum(embed(labels) * h, -1)
        return logits.astype(jnp.float32)

    def _normalize(self, x: jax.Array, train: bool) -> jax.Array:
        if self.norm == "batch":
            return nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,
                epsilon=1e-5,
                scale_init=_paper_scale_init,
                dtype=self.dtype,
            )(x)
        if self.norm == "layer":
            return nn.LayerNorm(
                epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=-1, dtype=self.dtype
            )(x)
        raise ValueError(f"norm must be 'batch' or 'layer', got {self.norm!r}")


@dataclasses.dataclass(frozen=True)
class DCGANArchitecture:
    """One row of `ARCHITECTURES`: which image sizes a DCGAN serves and how it builds its pair.

    Attributes:
      sizes: the image sizes it serves, in words (error messages list them).
      fits: `(H, W) -> bool`, whether it serves images of that size.
      build: `(image_shape, g_features, d_features, dropout, **shared) -> (generator,
        discriminator)`: the row decides how the config's widths and dropout size its modules.
        `shared` holds `num_classes`, `fast_grad`, `dtype` and `per_example_critic` (each logit
        from its own image only: WGAN-GP's gradient penalty).
    """

    sizes: str
    fits: Callable[[int, int], bool]
    build: Callable[..., tuple[nn.Module, nn.Module]]


def _tutorial_pair(
    image_shape: tuple[int, int, int],
    g_features: Sequence[int],
    d_features: Sequence[int],
    dropout: float,
    per_example_critic: bool,
    **shared: Any,
) -> tuple[nn.Module, nn.Module]:
    """The tutorial's pair: 3 generator widths and 2 discriminator widths as given, `dropout`; no
    normalization in D, so every logit already depends on its own image only."""
    del per_example_critic
    generator = Generator(
        (g_features[0], g_features[1], g_features[2]), image_shape=image_shape, **shared
    )
    return generator, Discriminator((d_features[0], d_features[1]), dropout, **shared)


def _paper_pair(
    image_shape: tuple[int, int, int],
    g_features: Sequence[int],
    d_features: Sequence[int],
    dropout: float,
    per_example_critic: bool,
    **shared: Any,
) -> tuple[nn.Module, nn.Module]:
    """The paper's pair: f = `g_features[-1]` for G (8f, 4f, 2f, f), f = `d_features[0]` for D
    (f, 2f, 4f, 8f): 64 and 64 with the defaults, the paper's ngf and ndf; no dropout. D
    normalizes with LayerNorm for a per-example critic, else BatchNorm."""
    del dropout
    norm: Literal["batch", "layer"] = "layer" if per_example_critic else "batch"
    return (
        Generator64(g_features[-1], image_shape=image_shape, **shared),
        Discriminator64(d_features[0], norm=norm, **shared),
    )


# The GAN's architectures, tried in order: a new one is its modules plus one row here.
ARCHITECTURES: dict[str, DCGANArchitecture] = {
    "tutorial": DCGANArchitecture(
        "multiples of 4 below 64 px",
        lambda h, w: h < 64 and w < 64 and h % 4 == 0 and w % 4 == 0,
        _tutorial_pair,
    ),
    "paper": DCGANArchitecture(
        "multiples of 16 from 64 px",
        lambda h, w: h >= 64 and w >= 64 and h % 16 == 0 and w % 16 == 0,
        _paper_pair,
    ),
}


def dcgan_architecture(image_shape: Sequence[int]) -> str:
    """The name of the first `ARCHITECTURES` row that fits images `(H, W, C)`: "tutorial"
    (`Generator`, `Discriminator`) for 28 and 32 px, "paper" (`Generator64`, `Discriminator64`)
    for 64 px. Raises ConfigError for any other size (e.g. 30 or 65 px)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    for name, architecture in ARCHITECTURES.items():
        if architecture.fits(h, w):
            return name
    served = ", ".join(f"the {name}'s takes {a.sizes}" for name, a in ARCHITECTURES.items())
    raise ConfigError(
        f"the DCGAN has no architecture for {h}×{w} images ({served}); "
        "pass --image-size 28, 32 or 64"
    )


def dcgan_for(
    image_shape: tuple[int, int, int],
    *,
    g_features: Sequence[int] = (256, 128, 64),
    d_features: Sequence[int] = (64, 128),
    dropout: float = 0.3,
    num_classes: int = 0,
    fast_grad: bool = True,
    dtype: Any = jnp.float32,
    per_example_critic: bool = False,
) -> tuple[nn.Module, nn.Module]:
    """The (generator, discriminator) DCGAN for images `image_shape` `(H, W, C)` in [-1, 1]: the
    `ARCHITECTURES` row `dcgan_architecture` picks (a ConfigError for a size none fits), built from
    the config's widths (each row reads them its own way). `num_classes > 0` makes both
    conditional; `dtype` is their compute dtype."""
    architecture = ARCHITECTURES[dcgan_architecture(image_shape)]
    return architecture.build(
        image_shape,
        g_features,
        d_features,
        dropout,
        per_example_critic,
        num_classes=num_classes,
        fast_grad=fast_grad,
        dtype=dtype,
    )
