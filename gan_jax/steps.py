"""Train states as plain pytrees, and the compiled runner that applies a task's step N times.

A task supplies one pure function, `train_step(models, batch, key) -> (models, metrics)`, on a
batch its feed (`gan_jax.feed`) prepared. This module wraps it into
`run(state, batches) -> (state, metrics, finite)`, compiled once per number of steps, over the
call's batches stacked along a leading axis; each step derives its typed key as
`fold_in(wrap_key_data(state.rng), state.step)` (so a resumed run draws exactly what an
uninterrupted one would), and advances `state.step`. Several steps run inside one `lax.scan` on
accelerators; on CPU one step per call is faster for convolutional models (XLA:CPU runs
convolution gradients inside a while loop many times slower), which `default_steps_per_call`
decides.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax import onednn

Metrics = dict[str, jax.Array]


class Stream(enum.IntEnum):
    """A run's fixed random streams: `stream_key(seed, stream)` is a function of the seed alone."""

    INIT = 0  # parameters
    DATA = 1  # epoch orders and labeled subsets (`gan_jax.feed`)
    STEPS = 2  # the step stream (`TrainState.rng`, folded with the step)
    FIXED_NOISE = 3  # the noise of the per-epoch sample grid
    FEED = 4  # folded into a step's key: the feed's augmentations (`TaskStep`)


def stream_key(seed: int, stream: int) -> jax.Array:
    """The typed key of one of a run's streams (`Stream`): `fold_in(key(seed), stream)`."""
    return jax.random.fold_in(jax.random.key(seed), stream)


@flax.struct.dataclass
class ModelState:
    """One model's trainable state: parameters, BatchNorm statistics, its own optimizer state.

    `ema`, when used, is a zero-initialized exponential moving average of `params` (see
    `update_ema`); an empty dict otherwise.
    """

    params: Any
    opt_state: Any
    batch_stats: Any = flax.struct.field(default_factory=dict)
    ema: Any = flax.struct.field(default_factory=dict)


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue: the step count, the root key, each model's state.

    Attributes:
      step: int32 scalar, number of completed steps.
      rng: the run's root key as raw key data (uint32 `[2]`, what Orbax stores and the checksums
        read); step t uses the typed key `fold_in(wrap_key_data(rng), t)`.
      models: model name → `ModelState`.
    """

    step: jax.Array
    rng: jax.Array
    models: dict[str, ModelState]


def create_model_state(
    variables: Mapping[str, Any], tx: optax.GradientTransformation, ema: bool = False
) -> ModelState:
    """Splits linen `variables` into params and batch stats, and starts `tx` on the params; with
    `ema`, also a zero-initialized moving average of the params (see `update_ema`)."""
    params = variables["params"]
    return ModelState(
        params=params,
        opt_state=tx.init(params),
        batch_stats=variables.get("batch_stats", {}),
        ema=jax.tree.map(jnp.zeros_like, params) if ema else {},
    )


def apply_gradients(
    state: ModelState, grads: Any, tx: optax.GradientTransformation, batch_stats: Any = None
) -> ModelState:
    """One optimizer update; `batch_stats`, when given, replaces the stored statistics."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return dataclasses.replace(
        state,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        batch_stats=state.batch_stats if batch_stats is None else batch_stats,
    )


def update_ema(state: ModelState, decay: float) -> ModelState:
    """`ema ← decay · ema + (1 - decay) · params`; read it through `ema_params`."""
    return dataclasses.replace(
        state, ema=jax.tree.map(lambda a, p: decay * a + (1.0 - decay) * p, state.ema, state.params)
    )


def ema_params(state: ModelState, decay: float, num_updates: jax.Array) -> Any:
    """The bias-corrected average `ema / (1 - decay^t)` after `t = num_updates` updates.

    That is the decay-weighted mean of all parameter iterates (the zero start removed); with
    `decay == 0` or before the first update it is `params`.
    """
    if decay == 0:
        return state.params
    correction = 1.0 - jnp.power(jnp.float32(decay), jnp.asarray(num_updates, jnp.float32))
    return jax.tree.map(
        lambda a, p: jnp.where(num_updates > 0, a / jnp.maximum(correction, 1e-12), p),
        state.ema,
        state.params,
    )


StepFn = Callable[[dict[str, ModelState], Any, jax.Array], tuple[dict[str, ModelState], Metrics]]


@dataclasses.dataclass(frozen=True)
class TaskStep:
    """A task's step on one batch of its feed: `task.train_step(models, task.feed.prepare(batch,
    feed_key), key)`, where `feed_key = fold_in(key, Stream.FEED)` draws the feed's augmentations.
    Compared by the task's value: equal frozen tasks give equal `TaskStep`s, so `make_runner`
    returns them one compiled program (bound methods compare by identity)."""

    task: Any

    def __call__(self, models, batch, key):
        feed_key = jax.random.fold_in(key, Stream.FEED)
        return self.task.train_step(models, self.task.feed.prepare(batch, feed_key), key)


def make_runner(step_fn: StepFn, num_steps: int, mesh: Mesh | None = None):
    """Compiles `num_steps` consecutive steps of `step_fn` into one call.

    Memoized: equal arguments (e.g. `TaskStep`s of equal frozen tasks) under the same convolution
    path (`gan_jax.onednn.backend()`) return the same jitted function, so a second run in the
    same process reuses its compiled program.

    Args:
      step_fn: a pure step, `(models, batch, key) -> (models, metrics)` (`TaskStep(task)`).
      num_steps: steps per call (static).
      mesh: for data parallelism (`gan_jax.parallel.data_mesh`): the new state comes back
        replicated on it. Call the runner inside `parallel.use_mesh(mesh)`, with its inputs
        replicated on the mesh (`parallel.replicate`); the feed's `prepare` shards each batch.
    Returns:
      `run(state, batches) -> (state, metrics, finite)`: `batches` holds the call's batches
      stacked along a leading `[num_steps]` axis (a feed's `batches`); metrics come back stacked
      the same way; `finite` is a bool scalar, whether every model array of the new state is
      finite. `state` is donated. Step t's key is `fold_in(wrap_key_data(state.rng), t)`.
    """
    return _make_runner(step_fn, num_steps, mesh, onednn.backend())


@functools.lru_cache(maxsize=32)
def _make_runner(step_fn: StepFn, num_steps: int, mesh: Mesh | None, conv_path: str):

    def one_step(state: TrainState, batch: Any):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        models, metrics = step_fn(state.models, batch, key)
        return dataclasses.replace(state, step=state.step + 1, models=models), metrics

    def run(state: TrainState, batches: Any):
        if num_steps == 1:
            state, metrics = one_step(state, jax.tree.map(lambda b: b[0], batches))
            metrics = jax.tree.map(lambda m: m[None], metrics)
        else:
            state, metrics = lax.scan(one_step, state, batches, length=num_steps)
        return state, metrics, all_finite(state.models)

    if mesh is None:
        return jax.jit(run, donate_argnums=0)
    return jax.jit(run, donate_argnums=0, out_shardings=NamedSharding(mesh, PartitionSpec()))


def map_in_chunks(fn: Callable, x: jax.Array, chunk: int) -> Any:
    """`fn` over `x`'s leading axis `chunk` rows at a time (`lax.map`), for traced code whose
    intermediate values must stay bounded: `x` `[N, ...]` (whole on the device) is zero-padded to a
    multiple of `chunk`, and every output leaf `[chunk, ...]` comes back as `[N, ...]` (the
    padding's rows dropped). Compiled once per N."""
    num = x.shape[0]
    padded = jnp.pad(x, ((0, -num % chunk),) + ((0, 0),) * (x.ndim - 1))
    out = lax.map(fn, padded.reshape(-1, chunk, *x.shape[1:]))
    return jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:])[:num], out)


def over_members(fn: Callable, num_members: int, in_axes: Any = 0) -> Callable:
    """`jax.vmap(fn, in_axes)` over independent ensemble members (e.g. one per data seed).

    With one member the function runs unbatched on member 0 and its outputs get a leading axis of
    1, so a single run compiles to exactly the program it would have without the member axis.
    """
    if num_members > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        args = [
            arg if axis is None else jax.tree.map(lambda x, a=axis: jnp.take(x, 0, axis=a), arg)
            for arg, axis in zip(args, axes, strict=False)
        ]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return single


def all_finite(tree: Any) -> jax.Array:
    """Bool scalar: no NaN or Inf in any floating-point array of `tree`."""
    checks = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


def enable_compilation_cache(
    path: str | os.PathLike | None = None, max_bytes: int = 2 << 30
) -> None:
    """Keeps compiled XLA programs on disk, so a resumed or repeated run skips recompiling.

    Defaults to `<gan_jax cache>/xla` (see `gan_jax.data.cache_dir`), capped at `max_bytes`. A
    `JAX_COMPILATION_CACHE_DIR` set by the user wins. Programs compiled in under a second are
    not stored.
    """
    if (
        os.environ.get("JAX_COMPILATION_CACHE_DIR")
        or jax.config.values["jax_compilation_cache_dir"]
    ):
        return
    from gan_jax.data import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(path or cache_dir() / "xla"))
    jax.config.update("jax_compilation_cache_max_size", max_bytes)


def default_steps_per_call(
    steps_per_epoch: int, platform: str | None = None, convolutions: bool = True
) -> int:
    """Steps per compiled call: a whole epoch on accelerators; on CPU 1 for convolutional models
    (no while loop around convolution gradients) and up to 100 for dense ones (a scan is ~20%
    faster than one call per step for the SGAN MLP on a 2-core CPU)."""
    platform = platform or jax.default_backend()
    if platform != "cpu":
        return steps_per_epoch
    return 1 if convolutions else min(steps_per_epoch, 100)
