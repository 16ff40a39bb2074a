"""gan_jax: GANs on small images (MNIST by default; Fashion-MNIST, CIFAR-10) with JAX, Flax linen,
optax and Orbax.

Notebook use::

    from gan_jax import GANConfig, GANTask, load_mnist, make_runner, train
    task = GANTask(GANConfig(batch_size=64))
    state = task.init()                                   # both models, own Adam states
    models, metrics = task.train_step(state.models, images_uint8_batch, key)   # one D+G step
    images = task.sample(state, task.fixed_noise())       # [16, 28, 28, 1] in [-1, 1]
    train(GANConfig(epochs=5), "runs/gan")                # what `gan-jax train gan` calls
    train(GANConfig(dataset="fashion_mnist"), "runs/fashion")   # any `gan_jax.datasets.DATASETS` name

    sgan = SGANTask(SGANConfig(labels=100, data_seeds=(0, 1)))   # two data seeds, one vmapped program
    train(sgan.config, "runs/sgan100"); evaluate_run("runs/sgan100")["test_accuracy"]
"""

from gan_jax import devices as _devices

_devices.deterministic_gpu_ops(_devices.deterministic_by_default())  # before JAX's first computation

from gan_jax import logs, tasks  # noqa: E402
from gan_jax.api import evaluate_run, load_run, sample_images  # noqa: E402
from gan_jax.config import CGANConfig, FeatureNetConfig, GANConfig, SGANConfig, SupervisedConfig  # noqa: E402
from gan_jax.data import Split, load  # noqa: E402
from gan_jax.errors import CheckpointError, ConfigError, DataError, UserError  # noqa: E402
from gan_jax.loop import train  # noqa: E402
from gan_jax.steps import ModelState, TrainState, make_runner  # noqa: E402
from gan_jax.tasks import CGANTask, FeatureTask, GANTask, SGANTask, SupervisedTask  # noqa: E402

__version__ = "0.1.0"

logs.install_default_handler()  # epoch lines from `train()` in a notebook, as from the CLI; see gan_jax.logs

__all__ = [
    "CGANConfig", "CGANTask", "CheckpointError", "ConfigError", "DataError", "FeatureNetConfig", "FeatureTask",
    "GANConfig", "GANTask", "ModelState", "SGANConfig", "SGANTask", "Split", "SupervisedConfig",
    "SupervisedTask", "TrainState", "UserError", "evaluate_run", "load", "load_run", "logs",
    "make_runner", "sample_images", "tasks", "train",
]
