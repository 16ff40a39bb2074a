"""Convolutions through oneDNN on CPU: an optional XLA FFI library built on the user's machine.

XLA:CPU runs convolutions through Eigen at a third of what the same cores reach with oneDNN, the
library TensorFlow and PyTorch use (benchmarks/results/speed_cpu.md). `conv.cc` beside this file
is one FFI handler with oneDNN's three convolution kinds (forward, backward-data,
backward-weights); `gan-jax onednn build` compiles it against the installed oneDNN into the cache
(`build.library_path`). `gan_jax.models.layers` then routes every float32 convolution of every
model through it on CPU (`backend()`), unless `GAN_JAX_CONV=xla`.

`GAN_JAX_CONV`: `auto` (default: oneDNN on CPU when the library is built, else XLA), `xla`, or
`onednn` (an error when the library is missing). The choice is made when a step is traced.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
from collections.abc import Iterator, Sequence

import jax
import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.onednn import build

log = logging.getLogger("gan_jax")

TARGET = "gan_jax_onednn_conv"
CHOICES = ("auto", "xla", "onednn")
FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS = 0, 1, 2
HINT = (
    "convolutions run on XLA:CPU; `gan-jax onednn build` (needs `apt-get install g++ libdnnl-dev`)"
    " makes CPU training about 1.7x as fast"
)

_override: str | None = None
_registered: list = []


def choice() -> str:
    """The requested path: `use(...)`'s, else `$GAN_JAX_CONV`, else `auto`."""
    value = _override or os.environ.get("GAN_JAX_CONV", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ConfigError(f"GAN_JAX_CONV={value!r} is not one of {', '.join(CHOICES)}; unset it")
    return value


@contextlib.contextmanager
def use(path: str) -> Iterator[None]:
    """Within the block, steps traced use `path` (one of `CHOICES`); for tests and `bench`."""
    global _override
    if path not in CHOICES:
        raise ConfigError(f"convolution path {path!r} is not one of {', '.join(CHOICES)}")
    previous, _override = _override, path
    try:
        yield
    finally:
        _override = previous


def backend() -> str:
    """`"onednn"` or `"xla"`: the path the convolutions traced now take."""
    wanted = choice()
    if wanted == "xla" or jax.default_backend() != "cpu":
        if wanted == "onednn":
            raise ConfigError(
                f"GAN_JAX_CONV=onednn needs JAX's CPU backend, not {jax.default_backend()}; "
                "unset GAN_JAX_CONV"
            )
        return "xla"
    if load() is not None:
        return "onednn"
    if wanted == "onednn":
        raise ConfigError(f"GAN_JAX_CONV=onednn but {build.problem()}")
    return "xla"


def log_path(logger: logging.Logger) -> None:
    """At a run's start, on CPU: which path the convolutions take and, on XLA by default, how to
    get the faster one. Raises ConfigError for a `GAN_JAX_CONV` that cannot be honoured."""
    if backend() == "onednn":
        logger.info("convolutions through oneDNN %s", build.onednn_version())
    elif jax.default_backend() == "cpu" and choice() == "auto":
        logger.info(HINT)


def status() -> dict[str, str | bool | None]:
    """JSON-ready: the requested and effective paths, the installed oneDNN, the library."""
    path = build.library_path()
    return {
        "requested": choice(),
        "backend": backend(),
        "onednn": build.onednn_version(),
        "library": str(path) if path else None,
        "built": bool(path and path.exists()),
    }


def build_library(force: bool = False) -> str:
    """`build.build(force)`, then loads the new library in this process; returns its path."""
    path = build.build(force)
    load.cache_clear()
    load()
    return str(path)


@functools.cache
def load() -> ctypes.CDLL | None:
    """The built library, registered with XLA as `TARGET`; None when it is not built here."""
    path = build.library_path()
    if path is None or not path.exists():
        return None
    library = ctypes.CDLL(str(path))
    if not _registered:  # XLA keeps the first handler of a name for the process
        handler = jax.ffi.pycapsule(library.GanJaxOnednnConv)
        jax.ffi.register_ffi_target(TARGET, handler, platform="cpu")
        _registered.append(path)
    log.debug("oneDNN convolutions from %s", path)
    return library


def convolve(
    kind: int,
    a: jax.Array,
    b: jax.Array,
    out_shape: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
) -> jax.Array:
    """One oneDNN convolution of `kind` (float32, NHWC activations, HWIO kernels):
    FORWARD `(src, kernel)` → dst, BACKWARD_DATA `(d_dst, kernel)` → d_src, BACKWARD_WEIGHTS
    `(src, d_dst)` → d_kernel, of shape `out_shape`. `padding` is `((top, bottom), (left, right))`.
    Under `vmap` the members run one after another."""
    (top, bottom), (left, right) = padding
    call = jax.ffi.ffi_call(
        TARGET, jax.ShapeDtypeStruct(tuple(out_shape), np.float32), vmap_method="sequential"
    )
    return call(
        a,
        b,
        kind=np.int64(kind),
        stride_h=np.int64(strides[0]),
        stride_w=np.int64(strides[1]),
        pad_top=np.int64(top),
        pad_left=np.int64(left),
        pad_bottom=np.int64(bottom),
        pad_right=np.int64(right),
    )
