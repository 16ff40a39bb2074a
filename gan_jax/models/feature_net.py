"""The small CNN whose penultimate features define the Fréchet distance (`gan_jax.features`)."""

from __future__ import annotations

import flax.linen as nn
import jax

from gan_jax.models.layers import conv_general_dilated


class FeatureNet(nn.Module):
    """Images `[B, H, W, C]` in [-1, 1] → (class logits `[B, num_classes]`, features
    `[B, hidden]` ≥ 0).

    (Conv 3×3 → ReLU → max-pool 2×2) per width → Dense `hidden` → ReLU (the features) → Dense
    `num_classes` (the dataset's classes).
    """

    num_classes: int
    widths: tuple[int, ...] = (32, 64)
    hidden: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for width in self.widths:
            x = nn.max_pool(
                nn.relu(
                    nn.Conv(
                        width, (3, 3), padding="SAME", conv_general_dilated=conv_general_dilated
                    )(x)
                ),
                (2, 2),
                strides=(2, 2),
            )
        features = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features
