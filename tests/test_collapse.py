"""The collapse guard: the pattern on synthetic loss histories, and the loop's one-line warning."""

import logging

import numpy as np
import pytest

from gan_jax import SGANConfig, SGANTask, SupervisedConfig, SupervisedTask, collapse
from gan_jax.actions import Call, CallResult, CollapseGuard, EpochSums, fresh_counters

# Improved GAN's SGAN with optax's default Adam epsilon, as measured on an H200 (issue 15): the
# real/fake loss reaches ~0 by epoch 5-10 while feature matching climbs into the hundreds.
COLLAPSED_D = [0.17, 0.08, 0.04, 0.02, 0.009, 0.004, 0.002]
COLLAPSED_G = [2.0, 9.0, 27.0, 60.0, 150.0, 300.0, 490.0]
HEALTHY_D = [0.25, 0.31, 0.33, 0.35, 0.34, 0.36, 0.35]  # the real/fake game stays open
HEALTHY_G = [0.8, 0.5, 0.45, 0.41, 0.43, 0.40, 0.39]


def test_fires_when_the_discriminator_has_won_and_the_generator_loss_climbs():
    assert collapse.collapsing(COLLAPSED_D, COLLAPSED_G)
    # first epoch at which 3 epochs in a row are below 0.05 with a rising generator loss: epoch 5
    assert [collapse.newly_collapsing(COLLAPSED_D[:n], COLLAPSED_G[:n]) for n in range(1, 8)] == (
        [False, False, False, False, True, False, False]
    )


def test_silent_on_a_healthy_run_and_on_each_half_of_the_pattern():
    assert not any(collapse.collapsing(HEALTHY_D[:n], HEALTHY_G[:n]) for n in range(1, 8))
    # D wins, but G is catching up
    assert not collapse.collapsing([0.01, 0.01, 0.01], [5.0, 4.0, 3.0])
    # G rising alone is no collapse
    assert not collapse.collapsing([0.3, 0.3, 0.3], [1.0, 2.0, 3.0])
    assert not collapse.collapsing([0.01, 0.2, 0.01], [1.0, 2.0, 3.0])  # not near 0 for 3 epochs
    assert not collapse.collapsing([0.01, 0.01], [1.0, 2.0])  # too few epochs


def test_mismatched_histories_are_an_error():
    with pytest.raises(ValueError, match="one generator loss per discriminator loss"):
        collapse.collapsing([0.1, 0.1], [1.0])


def _epoch_end(task, guard_rows, epoch, losses):
    """Runs a CollapseGuard over the rows of earlier epochs, then one epoch whose per-member means
    are `losses` (loss → one value per member); returns the log records."""
    counters = fresh_counters(task)
    sums = EpochSums(task, counters)
    guard = CollapseGuard(task, guard_rows)
    metrics = {k: np.asarray([losses.get(k, [0.0] * len(task.members))]) for k in task.loss_keys}
    call = Call(epoch=epoch, step=epoch, steps=1, steps_per_epoch=1, total=10**6)
    result = CallResult(metrics, True, 0.0, 0.0)
    guard.observe(call, sums.add(call, result))


def test_loop_warns_once_naming_epoch_data_seed_and_both_losses(caplog):
    task = SGANTask(SGANConfig(data_seeds=(0, 3)))
    rows = []
    for epoch in range(4):  # seed 3 collapses (the pattern completes at epoch 5); seed 0 is healthy
        rows.append(
            {
                "epoch": epoch + 1,
                "step": 600 * (epoch + 1),
                "data_seed": 0,
                "unsup_loss": HEALTHY_D[epoch],
                "g_loss": HEALTHY_G[epoch],
            }
        )
        rows.append(
            {
                "epoch": epoch + 1,
                "step": 600 * (epoch + 1),
                "data_seed": 3,
                "unsup_loss": COLLAPSED_D[epoch],
                "g_loss": COLLAPSED_G[epoch],
            }
        )
    # a partial row is no epoch of the history
    rows.append(
        {
            "epoch": 5,
            "step": 2700,
            "data_seed": 3,
            "unsup_loss": 0.0,
            "g_loss": 1e6,
            "partial": True,
        }
    )
    fifth = {"unsup_loss": [HEALTHY_D[4], COLLAPSED_D[4]], "g_loss": [HEALTHY_G[4], COLLAPSED_G[4]]}
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        _epoch_end(task, rows, 4, fifth)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("collapse at epoch 5 (data seed 3): unsup_loss 0.0090")
    assert "g_loss rose 27 -> 150" in messages[0]

    caplog.clear()
    rows = rows[:-1] + [
        {"epoch": 5, "step": 3000, "data_seed": s, "unsup_loss": d, "g_loss": g}
        for s, d, g in zip((0, 3), fifth["unsup_loss"], fifth["g_loss"], strict=True)
    ]
    with caplog.at_level(logging.WARNING, logger="gan_jax"):  # still collapsing: not repeated
        _epoch_end(task, rows, 5, {"unsup_loss": [0.3, 0.0], "g_loss": [0.4, 200.0]})
    assert caplog.records == []


def test_non_adversarial_tasks_are_not_watched(caplog):
    task = SupervisedTask(SupervisedConfig())
    rows = [{"epoch": e, "step": e, "data_seed": 0, "loss": 0.0} for e in range(1, 6)]
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        _epoch_end(task, rows, 5, {"loss": [0.0]})
    assert caplog.records == []
