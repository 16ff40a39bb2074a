"""What a training task is to the rest of gan_jax: the `Task` protocol, and what all tasks share.

The host loop (`gan_jax.loop`), the API, the sweep and the CLI talk to a task only through
`Task` (and `Generative` for tasks with a generator); they never ask which kind of task it is.
A new task is one module with a class that satisfies `Task`, plus one line in
`gan_jax.tasks.TASKS`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import numpy as np

from gan_jax.steps import Metrics, TrainState, default_steps_per_call


class Stream(enum.IntEnum):
    """A task's fixed random streams: `key(stream)` is a function of the seed alone."""

    INIT = 0  # parameters
    DATA = 1  # epoch orders and labeled subsets
    STEPS = 2  # the step stream (`TrainState.rng`, folded with the step)
    FIXED_NOISE = 3  # the noise of the per-epoch sample grid


@runtime_checkable
class Task(Protocol):
    """A training task: a few pure functions over a `TrainState`, and what the loop records.

    Attributes:
      config: the run's frozen config; `config.task` names the task in `gan_jax.tasks.TASKS`.
      loss_keys: names of the step's scalar metrics (per-epoch means go to metrics.jsonl).
      members: one dict per ensemble member naming it in the rows (`({},)` for one model).
      adversarial_losses: (real/fake loss, generator loss) names the collapse guard watches, or None.
      needs_test_split: `evaluate` reads the test split (the loop loads it when not given).
    """

    config: Any
    loss_keys: tuple[str, ...]
    members: tuple[dict[str, int], ...]
    adversarial_losses: tuple[str, str] | None
    needs_test_split: bool

    def device_data(self, train) -> Any:
        """The training split as the device arrays `step` reads."""

    def steps_per_epoch(self, num_examples: int) -> int:
        """Steps per pass over `num_examples` training images."""

    def steps_per_call(self, steps_per_epoch: int) -> int:
        """Default steps per compiled call on this platform (speed only, never results)."""

    def epoch_plan(self, epoch: int, num_examples: int) -> Any:
        """The epoch's data order (device arrays), a function of the seed and `epoch`."""

    def init(self, data: Any = None) -> TrainState:
        """The fresh state at step 0."""

    def step(self, models: Any, data: Any, plan: Any, index: jax.Array, key: jax.Array) -> tuple[Any, Metrics]:
        """One pure training step on batch `index` of the epoch (compiled by `steps.make_runner`)."""

    def evaluate(self, state: TrainState, test) -> dict[str, list[float]]:
        """Per-epoch evaluation: metric → one value per member (may be empty)."""

    def report(self, state: TrainState, test=None, num_samples: int = 10_000) -> dict[str, Any]:
        """The final evaluation `gan-jax evaluate` prints (JSON-ready)."""

    def sample_grid(self, state: TrainState) -> np.ndarray | None:
        """Images of the per-epoch grid, float32 `[N, H, W, C]` in [-1, 1]; None without a generator."""


@runtime_checkable
class Generative(Task, Protocol):
    """A task with a generator: `gan-jax sample` and sample-quality metrics use these."""

    conditional: bool  # the generator also takes a digit

    def noise(self, key: jax.Array, num: int) -> jax.Array:
        """Generator inputs `[num, noise_dim]`."""

    def sample(self, state: TrainState, noise: jax.Array, *args) -> np.ndarray:
        """Generated images, float32 `[N, H, W, C]` in [-1, 1]."""


@dataclasses.dataclass(frozen=True)
class SeededTask:
    """What every task shares: its config, the fixed key streams of its seed, full batches per epoch."""

    config: Any
    convolutional: ClassVar[bool] = True  # its step has convolution gradients (a slow scan body on CPU)

    def key(self, stream: int) -> jax.Array:
        """One of the run's fixed key streams (`Stream`), a typed key, a function of `config.seed` alone."""
        return jax.random.fold_in(jax.random.key(self.config.seed), stream)

    def steps_per_epoch(self, num_examples: int) -> int:
        """Full batches per epoch; the last incomplete batch is dropped."""
        return num_examples // self.config.batch_size

    def steps_per_call(self, steps_per_epoch: int) -> int:
        return default_steps_per_call(steps_per_epoch, convolutions=self.convolutional)

    def sample_grid(self, state: TrainState) -> np.ndarray | None:
        return None
