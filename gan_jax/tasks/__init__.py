"""One small module per training task; each is a few pure functions over `TrainState`."""

from gan_jax.tasks.classifier import SGANTask, SupervisedTask
from gan_jax.tasks.features import FeatureTask
from gan_jax.tasks.gan import CGANTask, GANTask

__all__ = ["CGANTask", "FeatureTask", "GANTask", "SGANTask", "SupervisedTask"]
