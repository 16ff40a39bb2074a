"""Linen modules only: no losses, optimizers or training logic."""

from gan_jax.models.dcgan import Discriminator, Generator
from gan_jax.models.layers import ConvTranspose, conv_transpose

__all__ = ["ConvTranspose", "Discriminator", "Generator", "conv_transpose"]
