"""gan_jax: GANs on small images (MNIST by default; Fashion-MNIST, CIFAR-10) with JAX, Flax linen,
optax and Orbax.

Importing it changes nothing process-wide; `gan_jax.setup_process()` turns on what the CLI does
(deterministic GPU ops, epoch lines above the progress bar). Notebook use::

    import gan_jax
    gan_jax.setup_process()                               # before JAX's first computation
    from gan_jax import GANConfig, GANTask, make_runner, train
    task = GANTask(GANConfig(batch_size=64))
    state = task.init()                                   # both models, own Adam states
    batch = task.feed.prepare({"images": images_uint8})  # [B, 28, 28, 1] → float in [-1, 1]
    models, metrics = task.train_step(state.models, batch, key)   # one D+G step
    images = task.sample(state, task.fixed_noise())       # [16, 28, 28, 1] in [-1, 1]
    train(GANConfig(epochs=5), "runs/gan")                # what `gan-jax train gan` calls
    train(GANConfig(dataset="fashion_mnist"), "runs/fashion")   # any `gan_jax.data.DATASETS` name

    # two data seeds, one vmapped program:
    sgan = SGANTask(SGANConfig(labels=100, data_seeds=(0, 1)))
    train(sgan.config, "runs/sgan100"); evaluate_run("runs/sgan100")["test_accuracy"]
    predict("runs/sgan100", images_uint8)["classes"]     # or "folder:scans/"; export_classifier
"""

from gan_jax import logs, tasks
from gan_jax.api import evaluate_run, export_classifier, load_run, predict, sample_images
from gan_jax.config import CGANConfig, FeatureNetConfig, GANConfig, SGANConfig, SupervisedConfig
from gan_jax.data import Split, load
from gan_jax.errors import CheckpointError, ConfigError, DataError, UserError
from gan_jax.loop import train
from gan_jax.process import setup_process
from gan_jax.steps import ModelState, TrainState, make_runner
from gan_jax.tasks import CGANTask, FeatureTask, GANTask, SGANTask, SupervisedTask

__version__ = "0.1.0"

__all__ = [
    "CGANConfig",
    "CGANTask",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FeatureNetConfig",
    "FeatureTask",
    "GANConfig",
    "GANTask",
    "ModelState",
    "SGANConfig",
    "SGANTask",
    "Split",
    "SupervisedConfig",
    "SupervisedTask",
    "TrainState",
    "UserError",
    "evaluate_run",
    "export_classifier",
    "load",
    "load_run",
    "logs",
    "make_runner",
    "predict",
    "sample_images",
    "setup_process",
    "tasks",
    "train",
]
