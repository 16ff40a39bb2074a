"""One small module per training task; each is a few pure functions over `TrainState`."""

from gan_jax.tasks.classifier import SGANTask, SupervisedTask
from gan_jax.tasks.gan import GANTask

__all__ = ["GANTask", "SGANTask", "SupervisedTask"]
