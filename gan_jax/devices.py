"""Which devices JAX runs on, and whether the machine has an accelerator that JAX does not use.

`gan-jax devices` prints `report()` as one JSON line; `train` logs `unused_accelerator_warning()`
when, say, an NVIDIA GPU is present but the installed jaxlib is the CPU-only build.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import jax

# What marks an accelerator's driver on Linux, without asking JAX, and the extra that installs
# the JAX build for it (`pip install -e ".[cuda12]"`, see pyproject.toml).
_HARDWARE = {
    "gpu": (
        lambda: (
            os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))
        ),
        "an NVIDIA GPU",
        '`pip install -e ".[cuda12]"` (or ".[cuda13]" with a CUDA 13 driver)',
    ),
    "tpu": (lambda: bool(glob.glob("/dev/accel[0-9]*")), "a TPU", '`pip install -e ".[tpu]"`'),
}


def accelerators_present() -> list[str]:
    """Platforms ('gpu', 'tpu') whose hardware this machine's drivers show, whatever JAX uses."""
    return [platform for platform, (present, _, _) in _HARDWARE.items() if present()]


def unused_accelerator_warning() -> str | None:
    """One line when the machine has an accelerator and JAX runs on CPU; None otherwise."""
    if jax.default_backend() != "cpu":
        return None
    for platform in accelerators_present():
        _, name, install = _HARDWARE[platform]
        return (
            f"this machine has {name} but JAX runs on CPU (the installed jaxlib has no {platform} "
            f"support): install JAX's {platform} build with {install}, then check with `gan-jax "
            "devices`"
        )
    return None


_warned: set[str] = set()


def warn_once_if_accelerator_unused(log) -> None:
    """Logs `unused_accelerator_warning()` on `log`, once per process."""
    warning = unused_accelerator_warning()
    if warning and warning not in _warned:
        _warned.add(warning)
        log.warning(warning)


def report() -> dict[str, Any]:
    """JSON-ready: JAX's backend and devices, versions, and any accelerator JAX leaves unused.

    When JAX cannot start a backend (say `JAX_PLATFORMS=cuda` with a broken CUDA install), the
    report says so in `error` instead of raising.
    """
    try:
        devices = jax.devices()
    except RuntimeError as err:
        return {
            "backend": None,
            "error": str(err).splitlines()[0] if str(err) else type(err).__name__,
            "jax": jax.__version__,
            "accelerators_present": accelerators_present(),
        }
    return {
        "backend": jax.default_backend(),
        "device_count": len(devices),
        "devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in devices],
        "process_count": jax.process_count(),
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__,
        "accelerators_present": accelerators_present(),
        "warning": unused_accelerator_warning(),
    }


DETERMINISTIC_GPU_FLAG = "--xla_gpu_deterministic_ops=true"


def deterministic_gpu_ops(enabled: bool) -> None:
    """Adds XLA's deterministic-GPU-ops flag to `XLA_FLAGS` when `enabled`, unless `XLA_FLAGS`
    already sets that flag (either way): an explicit choice is kept.

    With it, XLA:GPU picks deterministic reductions, scatters and convolution algorithms, so a
    resumed GPU run ends bit-identical to an uninterrupted one (without it the resume test fails on
    an H200). It has no effect on CPU or TPU. XLA reads `XLA_FLAGS` once, when JAX creates its
    backends (the first computation), so this must run before that: `gan_jax.setup_process()`
    (which the CLI calls first) calls it with `enabled` from `$GAN_JAX_DETERMINISTIC` ('0' turns
    it off for speed; default on).
    """
    flags = os.environ.get("XLA_FLAGS", "").split()
    if any(f.startswith("--xla_gpu_deterministic_ops") for f in flags):
        return  # the caller chose: leave it
    if enabled:
        os.environ["XLA_FLAGS"] = " ".join(flags + [DETERMINISTIC_GPU_FLAG])


def deterministic_by_default() -> bool:
    """`$GAN_JAX_DETERMINISTIC` read as a switch: on unless it is '0', 'false' or 'no'."""
    return os.environ.get("GAN_JAX_DETERMINISTIC", "1").strip().lower() not in ("0", "false", "no")
