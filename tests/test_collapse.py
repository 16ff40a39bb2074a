"""The collapse guard: the pattern on synthetic loss histories, and the loop's one-line warning."""

import json
import logging

import pytest

from gan_jax import SGANConfig, SGANTask, SupervisedConfig, SupervisedTask, collapse
from gan_jax.loop import _warn_on_collapse

# Improved GAN's SGAN with optax's default Adam epsilon, as measured on an H200 (issue 15): the
# real/fake loss reaches ~0 by epoch 5-10 while feature matching climbs into the hundreds.
COLLAPSED_D = [0.17, 0.08, 0.04, 0.02, 0.009, 0.004, 0.002]
COLLAPSED_G = [2.0, 9.0, 27.0, 60.0, 150.0, 300.0, 490.0]
HEALTHY_D = [0.25, 0.31, 0.33, 0.35, 0.34, 0.36, 0.35]  # the real/fake game stays open
HEALTHY_G = [0.8, 0.5, 0.45, 0.41, 0.43, 0.40, 0.39]


def test_fires_when_the_discriminator_has_won_and_the_generator_loss_climbs():
    assert collapse.collapsing(COLLAPSED_D, COLLAPSED_G)
    # first epoch at which 3 epochs in a row are below 0.05 with a rising generator loss: epoch 5
    assert [collapse.newly_collapsing(COLLAPSED_D[:n], COLLAPSED_G[:n]) for n in range(1, 8)] == [
        False, False, False, False, True, False, False]


def test_silent_on_a_healthy_run_and_on_each_half_of_the_pattern():
    assert not any(collapse.collapsing(HEALTHY_D[:n], HEALTHY_G[:n]) for n in range(1, 8))
    assert not collapse.collapsing([0.01, 0.01, 0.01], [5.0, 4.0, 3.0])  # D wins, but G is catching up
    assert not collapse.collapsing([0.3, 0.3, 0.3], [1.0, 2.0, 3.0])  # G rising alone is no collapse
    assert not collapse.collapsing([0.01, 0.2, 0.01], [1.0, 2.0, 3.0])  # not near 0 for 3 epochs
    assert not collapse.collapsing([0.01, 0.01], [1.0, 2.0])  # too few epochs


def test_mismatched_histories_are_an_error():
    with pytest.raises(ValueError, match="one generator loss per discriminator loss"):
        collapse.collapsing([0.1, 0.1], [1.0])


def _write_rows(workdir, rows):
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_loop_warns_once_naming_epoch_data_seed_and_both_losses(tmp_path, caplog):
    task = SGANTask(SGANConfig(data_seeds=(0, 3)))
    rows = []
    for epoch in range(5):  # seed 3 collapses (the pattern completes at epoch 5); seed 0 is healthy
        rows.append({"epoch": epoch + 1, "step": 600 * (epoch + 1), "data_seed": 0,
                     "unsup_loss": HEALTHY_D[epoch], "g_loss": HEALTHY_G[epoch]})
        rows.append({"epoch": epoch + 1, "step": 600 * (epoch + 1), "data_seed": 3,
                     "unsup_loss": COLLAPSED_D[epoch], "g_loss": COLLAPSED_G[epoch]})
    rows.append({"epoch": 6, "step": 3300, "data_seed": 3, "unsup_loss": 0.0, "g_loss": 1e6, "partial": True})
    _write_rows(tmp_path, rows)
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        _warn_on_collapse(task, tmp_path, epoch=4)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("collapse at epoch 5 (data seed 3): unsup_loss 0.0090")
    assert "g_loss rose 27 -> 150" in messages[0]

    caplog.clear()
    _write_rows(tmp_path, rows[:-1] + [{**rows[-2], "epoch": 6, "step": 3600, "g_loss": 200.0}])
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        _warn_on_collapse(task, tmp_path, epoch=5)  # still collapsing: not repeated
    assert caplog.records == []


def test_non_adversarial_tasks_are_not_watched(tmp_path, caplog):
    _write_rows(tmp_path, [{"epoch": e, "step": e, "data_seed": 0, "loss": 0.0} for e in range(1, 6)])
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        _warn_on_collapse(SupervisedTask(SupervisedConfig()), tmp_path, epoch=4)
    assert caplog.records == []
