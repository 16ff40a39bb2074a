"""One small module per training task, and the one registry of tasks by name.

A task is a class satisfying `gan_jax.tasks.base.Task`; `TASKS` maps each config's `task` name
to it. Adding a task = one new module + one line here.
"""

from __future__ import annotations

from typing import Any, cast

from gan_jax.errors import ConfigError
from gan_jax.tasks.base import Generative, GenerativeTask, SeededTask, Stream, Task
from gan_jax.tasks.feature_net import FeatureTask
from gan_jax.tasks.gan import CGANTask, GANTask
from gan_jax.tasks.sgan import SGANTask, SupervisedTask

TASKS: dict[str, type[SeededTask]] = {
    cls.config_type.task: cls for cls in (GANTask, CGANTask, SGANTask, SupervisedTask, FeatureTask)
}


def task_class(name: str | None) -> type[SeededTask]:
    """The task class registered as `name` ('gan', 'cgan', 'sgan', 'supervised', 'features')."""
    if name is None or name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def make_task(config) -> Task:
    """The task object of a config (`GANConfig` → `GANTask`, `SGANConfig` → `SGANTask`, ...)."""
    cls = task_class(getattr(config, "task", type(config).__name__))
    if not isinstance(config, cls.config_type):
        raise ConfigError(f"no task for config type {type(config).__name__}")
    return cast(Task, cls(config))  # every registered class satisfies `Task`


def config_from_dict(stored: dict[str, Any]):
    """The config object a stored `config.to_dict()` came from, by its `task` key."""
    return task_class(stored.get("task")).config_type.from_dict(stored)


__all__ = [
    "CGANTask",
    "FeatureTask",
    "GANTask",
    "Generative",
    "GenerativeTask",
    "SGANTask",
    "SeededTask",
    "Stream",
    "SupervisedTask",
    "TASKS",
    "Task",
    "config_from_dict",
    "make_task",
    "task_class",
]
