"""Process-wide set-up that `import gan_jax` never does: the CLI calls `setup_process()` first, and
a notebook or script may call it too.

Importing a library must leave the caller's logging and XLA flags alone; training deterministically
on a GPU and printing epoch lines above the progress bar are choices made here, explicitly.
"""

from __future__ import annotations

from gan_jax import checkpoint, devices, logs


def setup_process(*, deterministic: bool | None = None, epoch_lines: bool = True) -> None:
    """Sets what `gan-jax` sets before its first computation.

    Args:
      deterministic: add XLA's deterministic-GPU-ops flag to `XLA_FLAGS` (bit-exact resume on a
        GPU; no effect on CPU or TPU; an `XLA_FLAGS` that already sets it is kept). None: on unless
        `$GAN_JAX_DETERMINISTIC` is '0'. Must run before JAX's first computation in the process.
      epoch_lines: give the `gan_jax` logger its handler that prints epoch lines at INFO above the
        progress bar (`gan_jax.logs.install_default_handler`); False leaves logging alone.

    It also leaves out the echoes (Orbax's logged tracebacks) of a failed checkpoint save that the
    store reports as one line itself (`gan_jax.checkpoint.quiet_reported_failures`).
    """
    devices.deterministic_gpu_ops(
        devices.deterministic_by_default() if deterministic is None else deterministic
    )
    checkpoint.quiet_reported_failures()
    if epoch_lines:
        logs.install_default_handler()
