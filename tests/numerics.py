"""What two float32 runs of the same training maths can be asked to agree on, on any CPU.

Two programs that compute the same function (jit vs op by op, the fused step vs its parts, 1 vs 8
devices, vmapped members vs one alone, XLA:CPU's vectors of 128 or 512 bits) sum in different
orders, so they round differently. What that bounds:

- **One step from one state** (`assert_one_step_close`). The forward values and gradients differ
  by summation-order rounding, which is relative to the size of the terms summed, not to each
  element: an element near zero is a difference of large terms. So each leaf that is a function of
  one step's gradients or activations (Adam's moments, batch statistics) is compared with
  `atol = ONE_STEP_RTOL · max|leaf|`. Parameters get Adam's bound below: Adam divides by the
  gradient's own size, so a near-zero gradient's rounding can turn into a ±lr step.
- **Several steps** (`assert_params_within_adam`). After the first step, the runs' parameters
  differ, and a ReLU (or leaky ReLU) pre-activation within rounding of 0 can take derivative 0
  in one run and 1 in the other: one image's whole contribution through that unit enters one
  run's gradient and not the other's. No tolerance bounds a gradient across that kink (issue 39:
  on 128-bit vectors a 250-unit layer's pre-activation of 1.2e-7 at step 2 moved an Adam first
  moment by 17 %). What holds for any gradients is Adam's step bound, `adam_step_bound`: the runs'
  parameters are within `2 · lr · Σ_t B_t` of each other, however their gradients differ.
"""

from __future__ import annotations

import math

import jax
import numpy as np

ONE_STEP_RTOL = 1e-4  # float32 ε ≈ 1.2e-7 times the ~10³ terms of these tiny models' largest sums
SLACK = 1.001  # the update itself is computed in float32


def adam_step_bound(step: int, b1: float, b2: float = 0.999) -> float:
    """B_t: the largest `|m̂_t| / sqrt(v̂_t)` any gradients can give at Adam's step t (1-based).

    With `m_t = (1-b1) Σ_i b1^(t-i) g_i` and `v_t = (1-b2) Σ_i b2^(t-i) g_i²`, Cauchy–Schwarz gives
    `|m_t| ≤ (1-b1) · sqrt(S/(1-b2)) · sqrt(v_t)`, `S = Σ_{k<t} (b1²/b2)^k`; the bias corrections
    divide by `1-b1^t` and `1-b2^t`. B_1 = 1. Epsilon (inside or outside the root) only shrinks
    the step, so `lr · B_t` bounds every parameter's move at step t.
    """
    s = sum((b1 * b1 / b2) ** k for k in range(step))
    return (1 - b1) / (1 - b1**step) * math.sqrt((1 - b2**step) * s / (1 - b2))


def adam_bound(lr: float, steps: int, b1: float, b2: float = 0.999) -> float:
    """How far apart two runs' parameters can be after `steps` Adam steps from one start."""
    return 2 * lr * sum(adam_step_bound(t, b1, b2) for t in range(1, steps + 1)) * SLACK


def _pairs(a, b, field: str):
    """(path, a_leaf, b_leaf) of every float leaf under `field` of each `ModelState` in two
    model dicts (or single `ModelState`s)."""
    if hasattr(a, field):
        a, b = {"": a}, {"": b}
    for name in a:
        left = jax.tree_util.tree_leaves_with_path(getattr(a[name], field))
        right = jax.tree.leaves(getattr(b[name], field))
        for (path, x), y in zip(left, right, strict=True):
            if np.size(x) and np.issubdtype(np.asarray(x).dtype, np.floating):
                yield (
                    f"{name}.{field}{jax.tree_util.keystr(path)}",
                    np.asarray(x, np.float64),
                    np.asarray(y, np.float64),
                )


def max_params_difference(a, b) -> float:
    """The largest element difference between two runs' `params` and parameter averages."""
    return max(
        (
            float(np.max(np.abs(x - y)))
            for field in ("params", "ema")
            for _, x, y in _pairs(a, b, field)
        ),
        default=0.0,
    )


def assert_params_within_adam(a, b, lr: float, steps: int, b1: float, b2: float = 0.999) -> None:
    """Two runs' parameters (and their zero-started averages, convex combinations of parameter
    iterates) are within Adam's bound after `steps` steps of step size `lr`."""
    bound = adam_bound(lr, steps, b1, b2)
    for field in ("params", "ema"):
        for path, x, y in _pairs(a, b, field):
            worst = float(np.max(np.abs(x - y)))
            assert worst <= bound, (
                f"{path}: parameters differ by {worst:.3g} > Adam's bound {bound:.3g}"
            )


def one_step_excess(a, b, lr: float, b1: float, b2: float = 0.999) -> tuple[float, str]:
    """`(ratio, path)`: the largest difference between two models' states after one update from
    the same state on the same inputs, as a fraction of what rounding allows (≤ 1: they agree).

    Allowed: parameters, Adam's first-step bound (2 · lr); every leaf of the optimizer state and
    the batch statistics, `ONE_STEP_RTOL` times the leaf's largest magnitude.
    """
    worst = (0.0, "")
    for field in ("params", "ema", "opt_state", "batch_stats"):
        for path, x, y in _pairs(a, b, field):
            if field in ("params", "ema"):
                allowed = adam_bound(lr, 1, b1, b2)
            else:
                allowed = ONE_STEP_RTOL * float(np.max(np.abs(y))) or np.finfo(np.float32).tiny
            worst = max(worst, (float(np.max(np.abs(x - y))) / allowed, path))
    return worst


def assert_one_step_close(a, b, lr: float, b1: float, b2: float = 0.999) -> None:
    """Two models' states after one update from one state on the same inputs agree to rounding
    (see `one_step_excess`)."""
    ratio, path = one_step_excess(a, b, lr, b1, b2)
    assert ratio <= 1, f"{path}: differs by {ratio:.3g} times what one step's rounding allows"
