"""What a training task is to the rest of gan_jax: the `Task` protocol, and what all tasks share.

The host loop (`gan_jax.loop`), the API, the sweep and the CLI talk to a task only through
`Task` (and `Generative` for tasks with a generator); they never ask which kind of task it is.
A task is maths: models, losses, the step on a batch, evaluation, sampling. Its `feed`
(`gan_jax.feed`) owns the data between the dataset and the step. A new task is one module with a
class that satisfies `Task`, plus one line in `gan_jax.tasks.TASKS`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data as data_lib
from gan_jax.config import RunConfig, TrainingConfig
from gan_jax.errors import ConfigError
from gan_jax.steps import (
    Metrics,
    ModelState,
    Stream,
    TrainState,
    default_steps_per_call,
    stream_key,
)


@runtime_checkable
class Task(Protocol):
    """A training task: a few pure functions over a `TrainState`, and what the loop records.

    Attributes:
      config: the run's frozen config; `config.task` names the task in `gan_jax.tasks.TASKS`.
      feed: what feeds its step (`gan_jax.feed.ImageFeed` or `FewLabelFeed`).
      loss_keys: names of the step's scalar metrics (per-epoch means go to metrics.jsonl).
      members: one dict per ensemble member naming it in the rows (`({},)` for one model).
      adversarial_losses: (real/fake loss, generator loss) names the collapse guard watches, or
        None.
      needs_test_split: `evaluate` reads the test split (the loop loads it when not given).
    """

    # Read-only members: a task may hold each as a field, a class attribute or a property.
    @property
    def config(self) -> TrainingConfig: ...

    @property
    def feed(self) -> Any: ...

    @property
    def loss_keys(self) -> tuple[str, ...]: ...

    @property
    def members(self) -> tuple[dict[str, int], ...]: ...

    @property
    def adversarial_losses(self) -> tuple[str, str] | None: ...

    @property
    def needs_test_split(self) -> bool: ...

    @property
    def dataset_spec(self) -> data_lib.DatasetSpec: ...

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    def check_ready(self) -> None:
        """Fails now, in one line, when something the run needs later is missing."""

    def steps_per_call(self, steps_per_epoch: int) -> int:
        """Default steps per compiled call on this platform (speed only, never results)."""

    def init(self, data: Any = None) -> TrainState:
        """The fresh state at step 0; `data`: the feed's arrays on the device (None: shapes only,
        a restore target)."""

    def train_step(self, models: Any, batch: Any, key: jax.Array) -> tuple[Any, Metrics]:
        """One pure step on a batch the feed prepared (compiled by `steps.make_runner`)."""

    def evaluate(self, state: TrainState, test) -> dict[str, list[float]]:
        """Per-epoch evaluation: metric → one value per member (may be empty)."""

    def report(self, state: TrainState, test=None, num_samples: int = 10_000) -> dict[str, Any]:
        """The final evaluation `gan-jax evaluate` prints (JSON-ready)."""

    def sample_grid(self, state: TrainState) -> np.ndarray | None:
        """Images of the per-epoch grid, float32 `[N, H, W, C]` in [-1, 1]; None without a
        generator."""


@runtime_checkable
class Generative(Task, Protocol):
    """A task with a generator: `gan-jax sample` and sample-quality metrics use these."""

    @property
    def conditional(self) -> bool:
        """The generator also takes a class."""

    @property
    def num_classes(self) -> int:
        """Classes of the dataset."""

    def noise(self, key: jax.Array, num: int) -> jax.Array:
        """Generator inputs `[num, noise_dim]`."""

    def sample(
        self, state: TrainState, noise: jax.Array, digits=None, member: int = 0
    ) -> np.ndarray:
        """Generated images, float32 `[N, H, W, C]` in [-1, 1]; `digits` int `[N]`: conditional."""


@dataclasses.dataclass(frozen=True)
class SeededTask:
    """What every task shares: its config, the fixed key streams of its seed, its dataset's sizes,
    the fresh state and the test split.

    A task module adds `feed`, `init_models` and what differs (its models, losses, step,
    evaluation). Derived pieces (the dataset's spec, modules, optimizers, the feed) are built once
    per task object (`functools.cached_property`).
    """

    config: Any  # the task's own config class (`config_type`); the loop reads `TrainingConfig`
    config_type: ClassVar[type[RunConfig]]  # the config class of the task (`config.task` names it)

    @property
    def convolutional(self) -> bool:
        """Whether its step has convolution gradients (a slow scan body on CPU)."""
        return True

    def key(self, stream: int) -> jax.Array:
        """One of the run's fixed key streams (`Stream`): a typed key, a function of `config.seed`
        alone."""
        return stream_key(self.config.seed, stream)

    @functools.cached_property
    def dataset_spec(self) -> data_lib.DatasetSpec:
        """The config's dataset as shaped by its `image_size` and `channels`
        (`gan_jax.data.describe`)."""
        c = self.config
        return data_lib.describe(c.dataset, c.image_size, c.channels, test_fraction=c.test_fraction)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(H, W, C)` of the config's dataset, as shaped."""
        return self.dataset_spec.shape

    @property
    def num_classes(self) -> int:
        """Classes of the config's dataset: labels are 0..num_classes-1."""
        return self.dataset_spec.num_classes

    @property
    def run_names(self) -> tuple[str, str]:
        """(dataset, task), as a feed's error messages name the run."""
        return str(self.config.dataset), str(self.config.task)

    def check_ready(self) -> None:
        return None

    def steps_per_call(self, steps_per_epoch: int) -> int:
        return default_steps_per_call(steps_per_epoch, convolutions=self.convolutional)

    def init(self, data: Any = None) -> TrainState:
        """The fresh state at step 0 (one compiled call): `init_models`, and the step stream's key.

        `data` is the feed's arrays on the device (the loop passes them), or None for a restore
        target (shapes only); `init_models` reads only its `init_data`.
        """
        return _init(self, None if data is None else self.init_data(data))

    def init_data(self, data: Any) -> Any:
        """What of the feed's arrays `init_models` reads; nothing by default."""
        return None

    def init_models(self, data: Any) -> dict[str, ModelState]:
        """Each model's fresh state by name, from `key(Stream.INIT)` (and `init_data`, or None)."""
        raise NotImplementedError

    def test_split(self, test: data_lib.Split | None) -> data_lib.Split:
        """`test`, or by default the test split of the config's dataset through its data source."""
        if test is not None:
            return test
        return data_lib.load_for(self.config, "test")

    def sample_grid(self, state: TrainState) -> np.ndarray | None:
        return None


class GenerativeTask:
    """What every task with a generator shares, mixed into a `SeededTask` (listed first:
    `class GANTask(GenerativeTask, SeededTask)`): its noise, the run's fixed noise and sample grid,
    and the generator in training mode (a step's) and in eval mode (`sample`).

    A task module adds `generator` (a linen module: noise `[N, noise_dim]`, and when `conditional`
    classes int `[N]` as `labels`, to images `[N, H, W, C]`) and `generator_variables`.
    """

    conditional: ClassVar[bool] = False  # the generator also takes a class
    config: Any

    if TYPE_CHECKING:  # `SeededTask`'s, which the task also is

        def key(self, stream: int) -> jax.Array: ...

        @property
        def num_classes(self) -> int: ...

    @property
    def zero_one_pixels(self) -> bool:
        """Whether the generator's images are in [0, 1], else in [-1, 1]."""
        return False

    @property
    def generator(self) -> nn.Module:
        raise NotImplementedError

    def generator_variables(self, state: TrainState, member: int = 0) -> dict[str, Any]:
        """`{"params", "batch_stats"}` of the generator `sample` draws from (ensemble `member`)."""
        raise NotImplementedError

    def noise(self, key: jax.Array, num: int) -> jax.Array:
        """Generator input float32 `[num, noise_dim]`, z ~ N(0, 1)."""
        return jax.random.normal(key, (num, self.config.noise_dim), jnp.float32)

    def fixed_noise(self, num: int | None = None) -> jax.Array:
        """The run's fixed noise `[num, noise_dim]` (default `config.num_samples` vectors), for
        comparable sample grids."""
        return self.noise(self.key(Stream.FIXED_NOISE), num or self.config.num_samples)

    def _generate_train(self, g: ModelState, z: jax.Array, digits=None, params=None):
        """G(z) in training mode with `params` (default `g.params`): `(images [B, H, W, C], updated
        batch_stats)`; `digits` int `[B]` for a conditional generator."""
        labels = {} if digits is None else {"labels": digits}
        images, updates = self.generator.apply(
            {"params": g.params if params is None else params, "batch_stats": g.batch_stats},
            z,
            train=True,
            mutable=["batch_stats"],
            **labels,
        )
        return images, updates["batch_stats"]

    def sample(
        self, state: TrainState, noise: jax.Array, digits=None, member: int = 0
    ) -> np.ndarray:
        """Generated images of `noise` `[N, noise_dim]`, float32 `[N, H, W, C]` in [-1, 1],
        BatchNorm in eval mode, from ensemble `member`'s generator.

        `digits` (int `[N]`, each in 0..num_classes-1) is for a conditional task only; its default
        cycles through the classes.
        """
        if digits is not None and not self.conditional:
            raise ConfigError(
                f"a {self.config.task} run is unconditional and cannot draw chosen "
                "digits; train a conditional one with `gan-jax train cgan`"
            )
        if self.conditional and digits is None:
            digits = np.arange(len(noise)) % self.num_classes
        if digits is not None:
            digits = jnp.asarray(digits, jnp.int32)
        variables = self.generator_variables(state, member)
        images = np.asarray(_generate(self.generator, variables, noise, digits))
        return images * 2.0 - 1.0 if self.zero_one_pixels else images

    def sample_grid(self, state: TrainState) -> np.ndarray:
        """Images of the run's fixed noise, float32 `[num_samples, H, W, C]` in [-1, 1] (the first
        member's)."""
        return self.sample(state, self.fixed_noise())


@functools.partial(jax.jit, static_argnums=0)
def _init(task: SeededTask, data: Any) -> TrainState:
    rng = jax.random.key_data(task.key(Stream.STEPS))  # raw key data: what checkpoints store
    return TrainState(step=jnp.zeros((), jnp.int32), rng=rng, models=task.init_models(data))


@functools.partial(jax.jit, static_argnums=0)
def _generate(
    generator: nn.Module, variables: dict[str, Any], noise: jax.Array, digits: jax.Array | None
) -> jax.Array:
    labels: dict[str, Any] = {} if digits is None else {"labels": digits}
    return cast(jax.Array, generator.apply(variables, noise, train=False, **labels))
