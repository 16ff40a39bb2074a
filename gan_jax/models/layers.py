"""Shared layers: a transposed convolution whose gradients are ordinary strided convolutions.

`conv_transpose` has TensorFlow's `Conv2DTranspose` semantics: it is the input-gradient of a
strided convolution. XLA:CPU computes the kernel gradient of such a layer (a convolution with
dilated input) about 10x slower than an ordinary convolution's kernel gradient. Because the layer
is the adjoint of a strided conv S_K, both of its gradients can be written through S_K itself:

  out = S_K^T x,   dL/dx = S_K g,   dL/dK = d/dK <S_K g, x>,

which `conv_transpose` does with a `custom_vjp`. It computes the same function as plain autodiff
(`fast_grad=False`), which the tests check.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")


def _strided_conv(y: jax.Array, kernel: jax.Array, strides: tuple[int, int], padding: str) -> jax.Array:
    """S_K y: `[N, H*s, W*s, C_out]` → `[N, H, W, C_in]` with kernel `[kh, kw, C_out, C_in]`."""
    return lax.conv_general_dilated(y, kernel, strides, padding, dimension_numbers=_DIMS)


def _plain_conv_transpose(x, kernel, strides, padding):
    n, h, w, _ = x.shape
    y_shape = (n, h * strides[0], w * strides[1], kernel.shape[2])
    _, adjoint = jax.vjp(lambda y: _strided_conv(y, kernel, strides, padding), jnp.zeros(y_shape, x.dtype))
    return adjoint(x)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _fast_conv_transpose(x, kernel, strides, padding):
    return _plain_conv_transpose(x, kernel, strides, padding)


def _fast_fwd(x, kernel, strides, padding):
    return _plain_conv_transpose(x, kernel, strides, padding), (x, kernel)


def _fast_bwd(strides, padding, residuals, g):
    x, kernel = residuals
    dx = _strided_conv(g, kernel, strides, padding)
    _, kernel_vjp = jax.vjp(lambda k: _strided_conv(g, k, strides, padding), kernel)
    return dx, kernel_vjp(x)[0]


_fast_conv_transpose.defvjp(_fast_fwd, _fast_bwd)


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (1, 1), padding: str = "SAME",
                   fast_grad: bool = True) -> jax.Array:
    """Transposed 2-D convolution, `[N, H, W, C_in]` → `[N, H*s, W*s, C_out]`.

    Args:
      x: NHWC input.
      kernel: `[kh, kw, C_out, C_in]` (TensorFlow's Conv2DTranspose layout).
      strides: the upsampling factors (s_h, s_w).
      padding: padding of the strided convolution this layer is the adjoint of.
      fast_grad: compute the gradients as strided convolutions (same values, faster on CPU).
    """
    strides = tuple(int(s) for s in strides)
    if fast_grad:
        return _fast_conv_transpose(x, kernel, strides, padding)
    return _plain_conv_transpose(x, kernel, strides, padding)


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
        shape = (*self.kernel_size, self.features, x.shape[-1])
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        y = conv_transpose(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, "SAME", self.fast_grad)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(self.dtype)
        return y
