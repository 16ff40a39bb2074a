"""The task registry and protocol, and the import layering that keeps the loop above the tasks."""

import ast
import pathlib

import numpy as np
import pytest

import gan_jax
from gan_jax import CGANConfig, FeatureNetConfig, GANConfig, SGANConfig, SupervisedConfig
from gan_jax.errors import ConfigError
from gan_jax.tasks import TASKS, Generative, Task, config_from_dict, make_task

CONFIGS = (GANConfig(), CGANConfig(), SGANConfig(), SupervisedConfig(), FeatureNetConfig())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.task)
def test_every_registered_task_satisfies_the_protocol_and_round_trips_its_config(config):
    task = make_task(config)
    assert type(task) is TASKS[config.task] and task.config is config and isinstance(task, Task)
    assert config_from_dict(config.to_dict()) == config
    assert isinstance(task, Generative) == (config.task in ("gan", "cgan", "sgan"))
    assert task.feed.steps_per_epoch(1000) == 1000 // config.batch_size
    assert task.feed is task.feed  # built once


def test_tasks_without_a_generator_have_no_sample_grid(tiny_config):
    supervised = make_task(SupervisedConfig(labels=20, batch_size=10))
    assert supervised.sample_grid(supervised.init()) is None
    gan = make_task(tiny_config)
    grid = gan.sample_grid(gan.init())
    assert grid.shape == (tiny_config.num_samples, 28, 28, 1) and np.abs(grid).max() <= 1.0


def test_unknown_tasks_are_refused_naming_the_known_ones():
    with pytest.raises(
        ConfigError, match="unknown task 'vae'; known: gan, cgan, sgan, supervised, features"
    ):
        config_from_dict({"task": "vae"})


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_tasks_evaluation_and_features_never_import_the_loop_or_the_api():
    """The old circle loop → tasks → gan → evaluate → features → loop is gone: an evaluation loads
    the feature network and never trains one, so nothing below the loop reaches back up to it."""
    root = pathlib.Path(gan_jax.__file__).parent
    below = [
        *root.glob("tasks/*.py"),
        root / "evaluate.py",
        root / "features.py",
        *root.glob("data/**/*.py"),
        root / "steps.py",
        root / "losses.py",
        root / "metrics.py",
        *root.glob("models/*.py"),
    ]
    for path in below:
        assert not _imports(path) & {
            "gan_jax.loop",
            "gan_jax.api",
            "gan_jax.cli",
            "gan_jax.sweep",
        }, path
