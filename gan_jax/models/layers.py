"""Shared convolution layers whose gradients avoid XLA:CPU's slow convolution kinds.

`conv_transpose` has TensorFlow's `Conv2DTranspose` semantics: it is the input-gradient of a
strided convolution S_K. XLA:CPU runs convolutions with a dilated input (what autodiff makes of
both a transposed convolution and a strided convolution's input-gradient) several times slower
than ordinary ones. With `fast_grad=True` the layers here use two identities instead:

* Adjoints: for `out = S_K^T x`, `dL/dx = S_K g` and `dL/dK = d/dK <S_K g, x>`, both ordinary
  strided convolutions (a `custom_vjp`).
* Sub-pixel form: a stride-s transposed convolution equals one stride-1 convolution with s·s·C_out
  output channels (one kernel phase per output sub-pixel) followed by depth-to-space. It replaces
  the transposed convolution in `conv_transpose`'s forward pass and in `conv`'s input-gradient,
  where it pays: on CPU with C_out ≥ 32 (measured; see `_subpixel_pays`).

Both compute the same function as plain autodiff (`fast_grad=False`), which the tests check.

Where `gan_jax.onednn.backend()` says `"onednn"` (CPU, the library built), float32 convolutions
take oneDNN's three kinds instead, each a `custom_vjp` whose derivatives are the other two, so any
order of differentiation (WGAN-GP's gradient of a gradient) stays on oneDNN.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan_jax import onednn

_DIMS = ("NHWC", "HWIO", "NHWC")
# Below this many output channels the sub-pixel form lost to XLA:CPU's own transposed convolution
# (DCGAN layers at batch 256; benchmarks/results/speed_cpu.md).
_SUBPIXEL_MIN_FEATURES = 32
# oneDNN's backward-data into 1 or 3 channels (images) ran 1.8-3.5x slower than XLA's at batch
# 256 (benchmarks/results/onednn_cpu.md): those stay on XLA.
_ONEDNN_MIN_DATA_CHANNELS = 4


def _strided_conv(
    y: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: str
) -> jax.Array:
    """S_K y: `[N, H*s, W*s, C_out]` → `[N, H, W, C_in]` with kernel `[kh, kw, C_out, C_in]`."""
    return lax.conv_general_dilated(y, kernel, strides, padding, dimension_numbers=_DIMS)


def _upsampled_shape(x: jax.Array, kernel: jax.Array, strides: Sequence[int]) -> tuple[int, ...]:
    """The shape of `conv_transpose(x, kernel, strides)`: `[N, H*s_h, W*s_w, C_out]`."""
    n, h, w, _ = x.shape
    return (n, h * strides[0], w * strides[1], kernel.shape[2])


def _xla_adjoint(g, kernel, strides, padding, y_shape):
    """S_K^T g on XLA (autodiff of the strided convolution over inputs of `y_shape`)."""
    _, adjoint = jax.vjp(
        lambda y: _strided_conv(y, kernel, strides, padding), jnp.zeros(y_shape, g.dtype)
    )
    return adjoint(g)[0]


def _plain_conv_transpose(x, kernel, strides, padding):
    return _xla_adjoint(x, kernel, strides, padding, _upsampled_shape(x, kernel, strides))


def _phase_taps(k: int, s: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Along one axis of a SAME stride-`s` convolution with a `k`-tap kernel over `n·s` inputs:
    output sub-pixel r of its transpose reads kernel tap `taps[r, u]` at window position u of a
    stride-1 convolution over the `n` inputs padded by `pads`, where `valid[r, u]`."""
    lo = max(k - s, 0) // 2  # SAME padding before the input: ((n-1)·s + k - n·s) // 2
    d_min, d_max = -((s - 1 + lo) // s), (k - 1 - lo) // s
    width = d_max - d_min + 1
    taps = np.zeros((s, width), np.int32)
    valid = np.zeros((s, width), bool)
    for r in range(s):
        for u in range(width):
            t = s * (d_max - u) + r + lo
            if 0 <= t < k:
                taps[r, u], valid[r, u] = t, True
    return taps, valid, (d_max, -d_min)


def _subpixel_conv_transpose(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int]
) -> jax.Array:
    """`_plain_conv_transpose(x, kernel, strides, "SAME")` as a stride-1 conv + depth-to-space."""
    n, h, w, _ = x.shape
    kh, kw, c_out, c_in = kernel.shape
    (sh, sw) = strides
    taps_h, valid_h, pads_h = _phase_taps(kh, sh)
    taps_w, valid_w, pads_w = _phase_taps(kw, sw)
    phases = kernel[taps_h[:, :, None, None], taps_w[None, None]]  # [sh, kh', sw, kw', C_out, C_in]
    valid = (valid_h[:, :, None, None] & valid_w[None, None])[..., None, None]
    phases = jnp.where(valid, phases, jnp.zeros((), kernel.dtype)).transpose(1, 3, 5, 0, 2, 4)
    phases = phases.reshape(taps_h.shape[1], taps_w.shape[1], c_in, sh * sw * c_out)
    z = lax.conv_general_dilated(x, phases, (1, 1), [pads_h, pads_w], dimension_numbers=_DIMS)
    z = z.reshape(n, h, w, sh, sw, c_out).transpose(0, 1, 3, 2, 4, 5)
    return z.reshape(n, h * sh, w * sw, c_out)


def _subpixel_pays(c_out: int, strides: tuple[int, int], padding: str) -> bool:
    """Whether the sub-pixel form beats XLA's transposed convolution with `c_out` outputs. Measured
    on XLA:CPU only: other backends keep XLA's own (cuDNN has native transposed convolutions)."""
    return (
        padding == "SAME"
        and max(strides) > 1
        and c_out >= _SUBPIXEL_MIN_FEATURES
        and jax.default_backend() == "cpu"
    )


def _fast_transpose_forward(x, kernel, strides, padding):
    if _subpixel_pays(kernel.shape[2], strides, padding):
        return _subpixel_conv_transpose(x, kernel, strides)
    return _plain_conv_transpose(x, kernel, strides, padding)


def _transpose_backward(strides, padding, x, kernel, g):
    dx = _strided_conv(g, kernel, strides, padding)
    _, kernel_vjp = jax.vjp(lambda k: _strided_conv(g, k, strides, padding), kernel)
    return dx, kernel_vjp(x)[0]


Pads = tuple[tuple[int, int], tuple[int, int]]


def _explicit(padding: str | Sequence[tuple[int, int]], y_shape, kernel_shape, strides) -> Pads:
    """`padding` as ((top, bottom), (left, right)) for a strided conv over inputs `y_shape`."""
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(y_shape[1:3], kernel_shape[:2], strides, padding)
    (top, bottom), (left, right) = padding
    return (int(top), int(bottom)), (int(left), int(right))


def _out_shape(y_shape, kernel_shape, strides, pads: Pads) -> tuple[int, ...]:
    h, w = (
        (size + lo + hi - k) // s + 1
        for size, (lo, hi), k, s in zip(y_shape[1:3], pads, kernel_shape[:2], strides, strict=True)
    )
    return (y_shape[0], h, w, kernel_shape[3])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _onednn_forward(y, kernel, strides, pads):
    """S_K y on oneDNN: `[N, H, W, C_in]`, `[kh, kw, C_in, C_out]` → `[N, H', W', C_out]`."""
    out_shape = _out_shape(y.shape, kernel.shape, strides, pads)
    return onednn.convolve(onednn.FORWARD, y, kernel, out_shape, strides, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _onednn_data_grad(g, kernel, strides, pads, y_shape):
    """S_K^T g, of shape `y_shape`; on XLA into fewer than `_ONEDNN_MIN_DATA_CHANNELS`."""
    if y_shape[-1] < _ONEDNN_MIN_DATA_CHANNELS:
        return _xla_adjoint(g, kernel, strides, pads, y_shape)
    return onednn.convolve(onednn.BACKWARD_DATA, g, kernel, y_shape, strides, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _onednn_kernel_grad(y, g, strides, pads, kernel_shape):
    """d/dK <S_K y, g>, of shape `kernel_shape`."""
    return onednn.convolve(onednn.BACKWARD_WEIGHTS, y, g, kernel_shape, strides, pads)


# <S_K y, g> is bilinear in (y, K) and in (g, K): each kind's cotangents are the other two kinds.
_onednn_forward.defvjp(
    lambda y, k, s, p: (_onednn_forward(y, k, s, p), (y, k)),
    lambda s, p, res, c: (
        _onednn_data_grad(c, res[1], s, p, res[0].shape),
        _onednn_kernel_grad(res[0], c, s, p, res[1].shape),
    ),
)
_onednn_data_grad.defvjp(
    lambda g, k, s, p, shape: (_onednn_data_grad(g, k, s, p, shape), (g, k)),
    lambda s, p, shape, res, c: (
        _onednn_forward(c, res[1], s, p),
        _onednn_kernel_grad(c, res[0], s, p, res[1].shape),
    ),
)
_onednn_kernel_grad.defvjp(
    lambda y, g, s, p, shape: (_onednn_kernel_grad(y, g, s, p, shape), (y, g)),
    lambda s, p, shape, res, c: (
        _onednn_data_grad(res[1], c, s, p, res[0].shape),
        _onednn_forward(res[0], c, s, p),
    ),
)


def _on_onednn(*arrays: jax.Array) -> bool:
    return all(a.dtype == jnp.float32 for a in arrays) and onednn.backend() == "onednn"


def _conv_backward(strides, padding, y, kernel, g):
    _, kernel_vjp = jax.vjp(lambda k: _strided_conv(y, k, strides, padding), kernel)
    if all(
        size == out * s for size, out, s in zip(y.shape[1:3], g.shape[1:3], strides, strict=False)
    ):
        dy = _fast_transpose_forward(g, kernel, strides, padding)  # S_K^T g
    else:  # an input size the stride does not divide, which no transposed conv of g has
        _, input_vjp = jax.vjp(lambda y: _strided_conv(y, kernel, strides, padding), y)
        (dy,) = input_vjp(g)
    return dy, kernel_vjp(g)[0]


def _with_backward(forward, backward):
    """`forward(x, kernel, strides, padding)` as a `custom_vjp` whose cotangents for `(x, kernel)`
    are `backward(strides, padding, x, kernel, g)`."""
    op = jax.custom_vjp(forward, nondiff_argnums=(2, 3))
    op.defvjp(
        lambda x, kernel, strides, padding: (forward(x, kernel, strides, padding), (x, kernel)),
        lambda strides, padding, residuals, g: backward(strides, padding, *residuals, g),
    )
    return op


_fast_conv_transpose = _with_backward(_fast_transpose_forward, _transpose_backward)
_fast_conv = _with_backward(_strided_conv, _conv_backward)


def conv_transpose(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: str = "SAME",
    fast_grad: bool = True,
) -> jax.Array:
    """Transposed 2-D convolution, `[N, H, W, C_in]` → `[N, H*s, W*s, C_out]`.

    Args:
      x: NHWC input.
      kernel: `[kh, kw, C_out, C_in]` (TensorFlow's Conv2DTranspose layout).
      strides: the upsampling factors (s_h, s_w).
      padding: padding of the strided convolution this layer is the adjoint of.
      fast_grad: on the XLA path, use the module docstring's identities (same values, faster on
        CPU).
    """
    strides = tuple(int(s) for s in strides)
    if _on_onednn(x, kernel):
        y_shape = _upsampled_shape(x, kernel, strides)
        pads = _explicit(padding, y_shape, kernel.shape, strides)
        return _onednn_data_grad(x, kernel, strides, pads, y_shape)
    if fast_grad:
        return _fast_conv_transpose(x, kernel, strides, padding)
    return _plain_conv_transpose(x, kernel, strides, padding)


def conv(
    y: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: str = "SAME",
    fast_grad: bool = True,
) -> jax.Array:
    """2-D convolution (cross-correlation, as `lax.conv_general_dilated`), `[N, H, W, C_in]` →
    `[N, ceil(H/s_h), ceil(W/s_w), C_out]` with kernel `[kh, kw, C_in, C_out]`.

    `fast_grad` computes the input-gradient in sub-pixel form where that pays (same values), on
    the XLA path.
    """
    strides = tuple(int(s) for s in strides)
    if _on_onednn(y, kernel):
        return _onednn_forward(
            y, kernel, strides, _explicit(padding, y.shape, kernel.shape, strides)
        )
    if fast_grad:
        return _fast_conv(y, kernel, strides, padding)
    return _strided_conv(y, kernel, strides, padding)


def conv_general_dilated(lhs, rhs, window_strides, padding, **options) -> jax.Array:
    """`lax.conv_general_dilated` for `nn.Conv(conv_general_dilated=...)`: on oneDNN where it
    applies (NHWC/HWIO, no dilation, one group, float32), else exactly lax's."""
    dims = options.get("dimension_numbers")
    plain = (
        lhs.ndim == 4
        and dims is not None
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dims)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMS)
        and all(
            options.get(name) in (None, 1) for name in ("feature_group_count", "batch_group_count")
        )
        and all(
            tuple(options.get(name) or (1, 1)) == (1, 1)
            for name in ("lhs_dilation", "rhs_dilation")
        )
        and options.get("precision") is None
        and options.get("preferred_element_type") is None
    )
    if plain and _on_onednn(lhs, rhs):
        strides = tuple(int(s) for s in window_strides)
        pads = _explicit(padding, lhs.shape, rhs.shape, strides)
        return _onednn_forward(lhs, rhs, strides, pads)
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **options)


def _conv_layer(module: nn.Module, op, kernel_shape: tuple[int, ...], x: jax.Array) -> jax.Array:
    """The body both linen layers share: float32 parameters, `op` in `module.dtype`, optional
    bias."""
    kernel = module.param("kernel", module.kernel_init, kernel_shape, jnp.float32)
    y = op(
        x.astype(module.dtype),
        kernel.astype(module.dtype),
        module.strides,
        "SAME",
        module.fast_grad,
    )
    if module.use_bias:
        y = y + module.param("bias", nn.initializers.zeros, (module.features,), jnp.float32).astype(
            module.dtype
        )
    return y


class ConvTranspose(nn.Module):
    """Linen transposed convolution with TF `Conv2DTranspose(padding='same')` semantics."""

    features: int
    kernel_size: tuple[int, int] = (5, 5)
    strides: tuple[int, int] = (1, 1)
    use_bias: bool = False
    fast_grad: bool = True
    kernel_init: Any = nn.initializers.glorot_uniform()
    dtype: Any = jnp.float32  # compute dtype; the parameters are float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _conv_layer(self, conv_transpose, (*self.kernel_size, self.features, x.shape[-1]), x)


class Conv(nn.Module):
    """Linen SAME convolution with `nn.Conv`'s parameters (`kernel` `[kh, kw, C_in, C_out]`,
    `bias`) and `conv`'s fast input-gradient."""

    features: int
    kernel_size: tuple[int, int] = (5, 5)
    strides: tuple[int, int] = (1, 1)
    use_bias: bool = True
    fast_grad: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32  # compute dtype; the parameters are float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _conv_layer(self, conv, (*self.kernel_size, x.shape[-1], self.features), x)
