"""Which devices JAX runs on, and whether the machine has an accelerator that JAX does not use.

`gan-jax devices` prints `report()` as one JSON line; `train` logs `unused_accelerator_warning()`
when, say, an NVIDIA GPU is present but the installed jaxlib is the CPU-only build.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any

import jax

# What marks an accelerator's driver on Linux, without asking JAX, and the extra that installs
# the JAX build for it (`pip install -e ".[cuda12]"`, see pyproject.toml).
_HARDWARE = {
    "gpu": (lambda: os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))
            or shutil.which("nvidia-smi") is not None,
            "an NVIDIA GPU", '`pip install -e ".[cuda12]"` (or ".[cuda13]" with a CUDA 13 driver)'),
    "tpu": (lambda: bool(glob.glob("/dev/accel[0-9]*")) or bool(glob.glob("/dev/vfio/[0-9]*")),
            "a TPU", '`pip install -e ".[tpu]"`'),
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
        return (f"this machine has {name} but JAX runs on CPU (the installed jaxlib has no {platform} support): "
                f"install JAX's {platform} build with {install}, then check with `gan-jax devices`")
    return None


def report() -> dict[str, Any]:
    """JSON-ready: JAX's backend and devices, versions, and any accelerator JAX leaves unused."""
    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_count": len(devices),
            "devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in devices],
            "process_count": jax.process_count(), "jax": jax.__version__, "jaxlib": jax.lib.__version__,
            "accelerators_present": accelerators_present(), "warning": unused_accelerator_warning()}
