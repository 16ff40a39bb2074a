"""Train states as plain pytrees, and the compiled runner that applies a task's step N times.

A task supplies one pure function, `step(models, batch, key) -> (models, metrics)`. This module
wraps it into `run(state, images, perm) -> (state, metrics)`, compiled once per number of steps:
each step gathers its batch from the device-resident dataset through the epoch's permutation,
derives its key as `fold_in(state.rng, state.step)` (so a resumed run draws exactly what an
uninterrupted one would), and advances `state.step`. Several steps run inside one `lax.scan` on
accelerators; on CPU one step per call is faster (XLA:CPU runs convolution gradients inside a
while loop many times slower), which `default_steps_per_call` decides.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class ModelState:
    """One model's trainable state: parameters, BatchNorm statistics, its own optimizer state."""

    params: Any
    opt_state: Any
    batch_stats: Any = flax.struct.field(default_factory=dict)


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue: the step count, the root key, each model's state.

    Attributes:
      step: int32 scalar, number of completed steps.
      rng: the run's root key (uint32 `[2]`); step t uses `fold_in(rng, t)`.
      models: model name → `ModelState`.
    """

    step: jax.Array
    rng: jax.Array
    models: dict[str, ModelState]


def create_model_state(variables: dict[str, Any], tx: optax.GradientTransformation) -> ModelState:
    """Splits linen `variables` into params and batch stats, and starts `tx` on the params."""
    params = variables["params"]
    return ModelState(params=params, opt_state=tx.init(params), batch_stats=variables.get("batch_stats", {}))


def apply_gradients(state: ModelState, grads: Any, tx: optax.GradientTransformation,
                    batch_stats: Any = None) -> ModelState:
    """One optimizer update; `batch_stats`, when given, replaces the stored statistics."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return ModelState(
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        batch_stats=state.batch_stats if batch_stats is None else batch_stats,
    )


StepFn = Callable[[dict[str, ModelState], jax.Array, jax.Array], tuple[dict[str, ModelState], Metrics]]


@functools.lru_cache(maxsize=32)
def make_runner(step_fn: StepFn, batch_size: int, steps_per_epoch: int, num_steps: int):
    """Compiles `num_steps` consecutive steps of `step_fn` into one call.

    Memoized: equal arguments (e.g. the bound `train_step` of equal frozen tasks) return the same
    jitted function, so a second run in the same process reuses its compiled program.

    Args:
      step_fn: the task's pure step, `(models, batch, key) -> (models, metrics)`.
      batch_size: examples per step.
      steps_per_epoch: steps before the permutation is exhausted; the caller never lets one call
        cross an epoch boundary.
      num_steps: steps per call (static).
    Returns:
      `run(state, examples, perm) -> (state, metrics, finite)`: `examples` `[N, ...]` on the device,
      `perm` int32 `[N]` the epoch's order; metrics are stacked, each `[num_steps]`; `finite` is a
      bool scalar, whether every model array of the new state is finite. `state` is donated.
    """

    def one_step(state: TrainState, examples: jax.Array, perm: jax.Array):
        offset = (state.step % steps_per_epoch) * batch_size
        batch = jnp.take(examples, lax.dynamic_slice_in_dim(perm, offset, batch_size), axis=0)
        models, metrics = step_fn(state.models, batch, jax.random.fold_in(state.rng, state.step))
        return state.replace(step=state.step + 1, models=models), metrics

    def run(state: TrainState, examples: jax.Array, perm: jax.Array):
        if num_steps == 1:
            state, metrics = one_step(state, examples, perm)
            metrics = jax.tree.map(lambda m: m[None], metrics)
        else:
            state, metrics = lax.scan(lambda s, _: one_step(s, examples, perm), state, length=num_steps)
        return state, metrics, all_finite(state.models)

    return jax.jit(run, donate_argnums=0)


def all_finite(tree: Any) -> jax.Array:
    """Bool scalar: no NaN or Inf in any floating-point array of `tree`."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


def enable_compilation_cache(path: str | os.PathLike | None = None, max_bytes: int = 2 << 30) -> None:
    """Keeps compiled XLA programs on disk, so a resumed or repeated run skips recompiling.

    Defaults to `<gan_jax cache>/xla` (see `gan_jax.data.cache_dir`), capped at `max_bytes`. A
    `JAX_COMPILATION_CACHE_DIR` set by the user wins. Programs compiled in under a second are
    not stored.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return
    from gan_jax.data import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(path or cache_dir() / "xla"))
    jax.config.update("jax_compilation_cache_max_size", max_bytes)


def default_steps_per_call(steps_per_epoch: int, platform: str | None = None) -> int:
    """1 on CPU (no while loop around convolution gradients), a whole epoch on accelerators."""
    platform = platform or jax.default_backend()
    return 1 if platform == "cpu" else steps_per_epoch
