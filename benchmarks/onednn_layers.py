"""Each oneDNN convolution kind against XLA's, per layer: relative error and milliseconds.

    gan-jax onednn build && python -m benchmarks.onednn_layers [--repeats 5]

Prints one JSON line per (layer, kind): the DCGAN's layers at batch 256 (the discriminator's
concatenated real+fake batch at 512), and the 1- and 3-channel cases that decide
`models.layers._ONEDNN_MIN_DATA_CHANNELS`. Kinds: `forward` (S_K y), `backward_data` (S_K^T g)
and `backward_weights` (d/dK <S_K y, g>), each as its own jitted program on both paths.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax import onednn

_DIMS = ("NHWC", "HWIO", "NHWC")
# (batch, input side, input channels, output channels, kernel, stride)
LAYERS = [
    (512, 28, 1, 64, 5, 2),
    (512, 14, 64, 128, 5, 2),
    (256, 7, 256, 128, 5, 1),
    (256, 14, 128, 64, 5, 2),
    (256, 28, 64, 1, 5, 2),
    (256, 28, 1, 64, 5, 2),
    (256, 28, 3, 64, 5, 2),
]


def _ms(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return 1000 * (time.perf_counter() - start) / repeats


def layer_rows(n: int, size: int, c_in: int, c_out: int, k: int, s: int, repeats: int):
    """The three kinds of one layer on both paths, one JSON-ready row each."""
    keys = jax.random.split(jax.random.key(0), 3)
    y = jax.random.normal(keys[0], (n, size, size, c_in))
    kernel = jax.random.normal(keys[1], (k, k, c_in, c_out)) / k
    strides, pads = (s, s), lax.padtype_to_pads((size, size), (k, k), (s, s), "SAME")

    def xla_conv(y, kernel):
        return lax.conv_general_dilated(y, kernel, strides, pads, None, None, _DIMS)

    g = jax.random.normal(keys[2], xla_conv(y, kernel).shape)
    kinds = {
        "forward": (
            xla_conv,
            lambda y, k: onednn.convolve(onednn.FORWARD, y, k, g.shape, strides, pads),
            (y, kernel),
        ),
        "backward_data": (
            lambda g, k: jax.vjp(lambda y: xla_conv(y, k), y)[1](g)[0],
            lambda g, k: onednn.convolve(onednn.BACKWARD_DATA, g, k, y.shape, strides, pads),
            (g, kernel),
        ),
        "backward_weights": (
            lambda y, g: jax.vjp(lambda k: xla_conv(y, k), kernel)[1](g)[0],
            lambda y, g: onednn.convolve(
                onednn.BACKWARD_WEIGHTS, y, g, kernel.shape, strides, pads
            ),
            (y, g),
        ),
    }
    for kind, (xla_fn, onednn_fn, operands) in kinds.items():
        xla_fn, onednn_fn = jax.jit(xla_fn), jax.jit(onednn_fn)
        expected, got = xla_fn(*operands), onednn_fn(*operands)
        error = float(jnp.max(jnp.abs(expected - got)) / jnp.max(jnp.abs(expected)))
        yield {
            "layer": f"{n}x{size}x{size}x{c_in} -> {c_out}, {k}x{k}, stride {s}",
            "kind": kind,
            "relative_error": float(f"{error:.2e}"),
            "xla_ms": round(_ms(xla_fn, operands, repeats), 2),
            "onednn_ms": round(_ms(onednn_fn, operands, repeats), 2),
            "onednn": onednn.build.onednn_version(),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    onednn.build_library()
    for layer in LAYERS:
        for row in layer_rows(*layer, args.repeats):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
