"""gan_jax: GANs on small images (MNIST by default; Fashion-MNIST, CIFAR-10) with JAX, Flax linen,
optax and Orbax.

Importing it changes nothing process-wide; `gan_jax.setup_process()` turns on what the CLI does
(deterministic GPU ops, epoch lines above the progress bar). Notebook use::

    import gan_jax
    gan_jax.setup_process()                               # before JAX's first computation
    from gan_jax import GANConfig, GANTask, make_runner, train
    task = GANTask(GANConfig(batch_size=64))
    state = task.init()                                   # both models, own Adam states
    batch = task.feed.prepare({"images": images_uint8}, key)  # [B, 28, 28, 1] → [-1, 1]
    models, metrics = task.train_step(state.models, batch, key)   # one D+G step
    images = task.sample(state, task.fixed_noise())       # [16, 28, 28, 1] in [-1, 1]
    train(GANConfig(epochs=5), "runs/gan")                # what `gan-jax train gan` calls
    train(GANConfig(dataset="fashion_mnist"), "runs/fashion")   # any `gan_jax.data.DATASETS` name

    # two data seeds, one vmapped program:
    sgan = SGANTask(SGANConfig(labels=100, data_seeds=(0, 1)))
    train(sgan.config, "runs/sgan100"); evaluate_run("runs/sgan100")["test_accuracy"]
    predict("runs/sgan100", images_uint8)["classes"]     # or "folder:scans/"; export_classifier
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what `__getattr__` returns, for type checkers and editors
    from gan_jax import logs, tasks
    from gan_jax.api import evaluate_run, export_classifier, load_run, predict, sample_images
    from gan_jax.config import (
        CGANConfig,
        FeatureNetConfig,
        GANConfig,
        SGANConfig,
        SupervisedConfig,
    )
    from gan_jax.data import Split, load
    from gan_jax.errors import CheckpointError, ConfigError, DataError, UserError
    from gan_jax.loop import train
    from gan_jax.process import setup_process
    from gan_jax.steps import ModelState, TrainState, make_runner
    from gan_jax.tasks import CGANTask, FeatureTask, GANTask, SGANTask, SupervisedTask

# Each public name → the module that defines it, imported on first use (PEP 562): `import
# gan_jax` and the command line's parsing load no JAX.
_EXPORTS = {
    "evaluate_run": "gan_jax.api",
    "export_classifier": "gan_jax.api",
    "load_run": "gan_jax.api",
    "predict": "gan_jax.api",
    "sample_images": "gan_jax.api",
    "CGANConfig": "gan_jax.config",
    "FeatureNetConfig": "gan_jax.config",
    "GANConfig": "gan_jax.config",
    "SGANConfig": "gan_jax.config",
    "SupervisedConfig": "gan_jax.config",
    "Split": "gan_jax.data",
    "load": "gan_jax.data",
    "CheckpointError": "gan_jax.errors",
    "ConfigError": "gan_jax.errors",
    "DataError": "gan_jax.errors",
    "UserError": "gan_jax.errors",
    "train": "gan_jax.loop",
    "setup_process": "gan_jax.process",
    "ModelState": "gan_jax.steps",
    "TrainState": "gan_jax.steps",
    "make_runner": "gan_jax.steps",
    "CGANTask": "gan_jax.tasks",
    "FeatureTask": "gan_jax.tasks",
    "GANTask": "gan_jax.tasks",
    "SGANTask": "gan_jax.tasks",
    "SupervisedTask": "gan_jax.tasks",
}
_SUBMODULES = ("logs", "tasks")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"gan_jax.{name}")
    else:
        raise AttributeError(f"module 'gan_jax' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


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
