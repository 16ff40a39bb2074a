"""Linen modules only: no losses, optimizers or training logic."""

from gan_jax.models.dcgan import (
    ARCHITECTURES,
    Discriminator,
    Discriminator64,
    Generator,
    Generator64,
    dcgan_architecture,
    dcgan_for,
)
from gan_jax.models.feature_net import FeatureNet
from gan_jax.models.layers import Conv, ConvTranspose, conv, conv_transpose
from gan_jax.models.sgan import (
    ConvClassifier,
    ConvGenerator,
    GaussianNoise,
    MLPClassifier,
    MLPGenerator,
    WeightNormDense,
    data_dependent_init,
)

__all__ = [
    "ARCHITECTURES",
    "Conv",
    "ConvClassifier",
    "ConvGenerator",
    "ConvTranspose",
    "Discriminator",
    "Discriminator64",
    "FeatureNet",
    "GaussianNoise",
    "Generator",
    "Generator64",
    "MLPClassifier",
    "MLPGenerator",
    "WeightNormDense",
    "conv",
    "conv_transpose",
    "data_dependent_init",
    "dcgan_architecture",
    "dcgan_for",
]
