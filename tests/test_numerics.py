"""The comparison rules of tests/numerics.py: Adam's step bound against optax's Adam."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.numerics import adam_bound, adam_step_bound


@pytest.mark.parametrize("b1", [0.5, 0.9])
@pytest.mark.parametrize("eps, eps_root", [(1e-8, 0.0), (0.0, 1e-8)])
def test_no_gradients_move_an_adam_parameter_beyond_lr_times_the_step_bound(b1, eps, eps_root):
    lr, steps = 1e-3, 6
    tx = optax.adam(lr, b1=b1, eps=eps, eps_root=eps_root)
    rng = np.random.default_rng(0)
    # 2,000 parameters, each with its own gradient history spanning 11 orders of magnitude
    grads = rng.standard_normal((steps, 2000)) * np.exp(rng.uniform(-20, 5, (steps, 2000)))
    # and one with the history that meets the bound with equality: g_i ∝ (b1 / b2)^(t - i)
    grads[:, 0] = (b1 / 0.999) ** (steps - np.arange(1, steps + 1))
    state = tx.init(jnp.zeros(2000))
    for t in range(1, steps + 1):
        updates, state = tx.update(jnp.asarray(grads[t - 1], jnp.float32), state)
        moves = np.abs(np.asarray(updates))
        assert np.max(moves) <= lr * adam_step_bound(t, b1) * 1.0001
    # the bound is tight
    assert moves[0] == pytest.approx(lr * adam_step_bound(steps, b1), rel=1e-4)


def test_the_first_step_moves_at_most_lr_and_later_steps_a_little_more():
    assert adam_step_bound(1, 0.5) == 1.0 and adam_step_bound(1, 0.9) == 1.0
    # hand: 4/7 · √2.997 · √1.3129
    assert adam_step_bound(3, 0.5) == pytest.approx(1.1335, abs=1e-4)
    assert adam_bound(1e-5, 3, 0.5) == pytest.approx(2e-5 * (1 + 1.0539 + 1.1335) * 1.001, rel=1e-4)
