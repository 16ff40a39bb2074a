"""Training configurations as frozen, validated data.

A config holds everything that decides a run's result. It is stored beside every checkpoint,
so a resumed run can check that it continues the same experiment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from gan_jax.errors import ConfigError

DATA_SOURCES = ("auto", "tfds", "offline")


def _require_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}; pass a value >= 1")


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """The DCGAN of the TensorFlow MNIST tutorial (defaults are the tutorial's).

    Attributes:
      epochs: passes over the training split.
      steps: optional cap on the total number of alternating (D, G) steps; None trains all epochs.
      batch_size: real images per step; the last incomplete batch of an epoch is dropped.
      seed: decides initialization, data order, noise and dropout.
      learning_rate: Adam step size, the same for both models.
      noise_dim: length of the generator's N(0, 1) input vector.
      g_features: generator widths: dense 7x7xg[0], then transposed convs g[1], g[2], then 1.
      d_features: discriminator conv widths, each a stride-2 5x5 conv.
      dropout: discriminator dropout rate, in [0, 1).
      num_samples: fixed noise vectors drawn for the per-epoch sample grid.
      steps_per_call: steps per compiled call; None picks per platform (1 on CPU, an epoch on
        accelerators). It changes speed only, never results.
      data_source: 'auto', 'tfds' or 'offline' (see `gan_jax.data.load_mnist`).
      checkpoint_every: also checkpoint every this many steps; None: at each epoch's end only.
    """

    task: ClassVar[str] = "gan"
    # Fields a resumed run may change: they decide how long or how fast, not what is computed.
    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "epochs", "steps", "steps_per_call", "data_source", "checkpoint_every")

    epochs: int = 50
    steps: int | None = None
    batch_size: int = 256
    seed: int = 0
    learning_rate: float = 1e-4
    noise_dim: int = 100
    g_features: tuple[int, ...] = (256, 128, 64)
    d_features: tuple[int, ...] = (64, 128)
    dropout: float = 0.3
    num_samples: int = 16
    steps_per_call: int | None = None
    data_source: str = "auto"
    checkpoint_every: int | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size", "noise_dim", "num_samples"):
            _require_positive(name, getattr(self, name))
        for name in ("steps", "steps_per_call", "checkpoint_every"):
            if getattr(self, name) is not None:
                _require_positive(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if len(self.g_features) != 3:
            raise ConfigError(f"g_features needs 3 widths (dense, conv, conv), got {self.g_features!r}")
        if len(self.d_features) != 2:
            raise ConfigError(f"d_features needs 2 widths, got {self.d_features!r}")
        for name in ("g_features", "d_features"):
            for width in getattr(self, name):
                _require_positive(f"each of {name}", width)
        if self.data_source not in DATA_SOURCES:
            raise ConfigError(
                f"data_source must be one of {', '.join(DATA_SOURCES)}, got {self.data_source!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples as lists), with the task name."""
        return {"task": self.task, **{k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> GANConfig:
        """Inverse of `to_dict`; unknown keys are a `ConfigError`."""
        stored = dict(stored)
        task = stored.pop("task", cls.task)
        if task != cls.task:
            raise ConfigError(f"config is for task {task!r}, not {cls.task!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(stored) - names)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown} for task {cls.task!r}")
        for name in ("g_features", "d_features"):
            if name in stored:
                stored[name] = tuple(stored[name])
        return cls(**stored)

    def conflicts_with(self, stored: dict[str, Any]) -> list[str]:
        """Names of result-deciding fields whose value differs from a stored config's."""
        mine = self.to_dict()
        keys = sorted((set(mine) | set(stored)) - set(self.RESUMABLE_FIELDS))
        return [k for k in keys if mine.get(k) != stored.get(k)]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


CONFIG_TYPES = {GANConfig.task: GANConfig}


def config_from_dict(stored: dict[str, Any]):
    """The config object a stored `to_dict()` came from, by its `task` key."""
    task = stored.get("task")
    if task not in CONFIG_TYPES:
        raise ConfigError(f"unknown task {task!r} in stored config; known: {', '.join(CONFIG_TYPES)}")
    return CONFIG_TYPES[task].from_dict(stored)
