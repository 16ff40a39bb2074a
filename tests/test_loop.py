import dataclasses

import jax
import numpy as np
import pytest

from gan_jax import CheckpointError, ConfigError, train
from gan_jax.actions import SaveCadence
from gan_jax.checkpoint import CheckpointStore, params_fingerprint
from gan_jax.workdir import read_rows


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_resumed_run_equals_uninterrupted_run(tiny_config, tiny_data, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=2)  # 5 steps per epoch with 40 images
    straight = train(
        dataclasses.replace(config, steps=7), tmp_path / "a", data=tiny_data, progress=False
    )
    expected = _leaves(straight)

    train(dataclasses.replace(config, steps=3), tmp_path / "b", data=tiny_data, progress=False)
    assert CheckpointStore(tmp_path / "b").latest_step() == 3
    resumed = train(
        dataclasses.replace(config, steps=7), tmp_path / "b", data=tiny_data, progress=False
    )

    assert int(resumed.step) == 7
    for a, b in zip(_leaves(resumed), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    # The partial row of the first, capped run is superseded: both files are byte-identical.
    for name in ("metrics.jsonl", "losses.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    assert [(r["step"], r.get("partial", False)) for r in read_rows(tmp_path / "b")] == [
        (5, False),
        (7, True),
    ]


def test_outputs_of_a_run(tiny_config, tiny_data, tmp_path):
    train(dataclasses.replace(tiny_config, epochs=2), tmp_path, data=tiny_data, progress=False)
    rows = read_rows(tmp_path)
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 5), (2, 10)]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    timing = read_rows(tmp_path, "timing.jsonl")
    assert [(r["epoch"], r["steps"]) for r in timing] == [(1, 5), (2, 5)] and all(
        r["steps_per_s"] > 0 for r in timing
    )
    for r in (
        timing
    ):  # the loop's time splits into compiled calls and host work, which includes the save;
        # evaluation and outputs ran beside it
        assert 0 < r["device_seconds"] <= r["seconds"] + 1e-3
        assert 0 < r["save_seconds"] <= r["host_seconds"] + 2e-3  # rounding
        assert r["outputs_seconds"] > 0 and r["eval_seconds"] >= 0
    for name in (
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
        "real_vs_generated.png",
        "losses.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    assert CheckpointStore(tmp_path).latest_step() == 10
    # every 10 steps and at epoch ends: here, each epoch
    losses = read_rows(tmp_path, "losses.jsonl")
    assert [(r["step"], r["steps"]) for r in losses] == [(5, 5), (10, 5)]
    assert [r["d_loss"] for r in losses] == pytest.approx([r["d_loss"] for r in rows])


def test_a_short_run_plots_its_losses_per_few_steps(tiny_config, tiny_data, tmp_path, monkeypatch):
    from gan_jax import plots

    drawn = []
    monkeypatch.setattr(plots, "save_loss_curves", lambda *args: drawn.append(args))
    train(dataclasses.replace(tiny_config, steps=4), tmp_path, data=tiny_data, progress=False)
    ((_, rows, keys, windows),) = drawn
    assert [r["step"] for r in rows] == [4] and keys == ("d_loss", "g_loss")
    assert [(r["step"], r["steps"], r["partial"]) for r in windows] == [(4, 4, True)]


def test_rerun_of_a_finished_run_trains_nothing_more(tiny_config, tiny_data, tmp_path):
    first = _leaves(train(tiny_config, tmp_path, data=tiny_data, progress=False))
    again = train(tiny_config, tmp_path, data=tiny_data, progress=False)
    assert int(again.step) == 5
    for a, b in zip(_leaves(again), first, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(read_rows(tmp_path)) == 1


def test_conflicting_config_is_refused_and_nothing_changes(tiny_config, tiny_data, tmp_path):
    train(tiny_config, tmp_path, data=tiny_data, progress=False)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    metrics = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match="batch_size: stored 8 vs requested 4"):
        train(
            dataclasses.replace(tiny_config, batch_size=4), tmp_path, data=tiny_data, progress=False
        )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert (tmp_path / "metrics.jsonl").read_text() == metrics
    # Run-length options may change: a longer run continues.
    state = train(
        dataclasses.replace(tiny_config, epochs=2), tmp_path, data=tiny_data, progress=False
    )
    assert int(state.step) == 10


def test_batch_larger_than_dataset_is_a_config_error(tiny_config, tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="batch_size 64 exceeds the 40"):
        train(
            dataclasses.replace(tiny_config, batch_size=64),
            tmp_path,
            data=tiny_data,
            progress=False,
        )


def test_save_cadence_keeps_saving_under_two_percent_of_the_time():
    now = [0.0]
    cadence = SaveCadence(None, clock=lambda: now[0])
    assert cadence.due()  # nothing measured yet: the first epoch's end saves
    now[0] = 1.0
    cadence.saved(started=0.5)  # a save of 0.5 s: the next is due 0.5 / 0.02 = 25 s later
    now[0] = 25.9
    assert not cadence.due()
    now[0] = 26.0
    assert cadence.due()
    fixed = SaveCadence(10.0, clock=lambda: now[0])  # a fixed interval, whatever saves cost
    assert not fixed.due()
    now[0] = 36.0
    assert fixed.due() and SaveCadence(0.0).due()


@pytest.mark.parametrize("seconds, saved", [(0.0, [6, 8, 10]), (3600.0, [10])])
def test_epoch_end_checkpoints_follow_checkpoint_seconds_and_results_do_not(
    tiny_config, tiny_data, tmp_path, seconds, saved
):
    config = dataclasses.replace(tiny_config, epochs=5, batch_size=20)  # 2 steps per epoch
    state = train(
        config, tmp_path / "run", data=tiny_data, progress=False, checkpoint_seconds=seconds
    )
    # 3 kept
    assert sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir()) == saved
    timing = read_rows(tmp_path / "run", "timing.jsonl")
    assert len(timing) == 5 and sum(r["save_seconds"] > 0 for r in timing) == (
        5 if seconds == 0 else 1
    )
    reference = train(
        config, tmp_path / "ref", data=tiny_data, progress=False, checkpoint_seconds=0.0
    )
    assert params_fingerprint(state) == params_fingerprint(reference)


def test_checkpoint_every_saves_at_epoch_ends_too_whatever_the_cadence(
    tiny_config, tiny_data, tmp_path
):
    # = steps per epoch
    config = dataclasses.replace(tiny_config, epochs=3, batch_size=20, checkpoint_every=2)
    train(
        config,
        tmp_path,
        data=tiny_data,
        progress=False,
        checkpoint_seconds=3600.0,
        keep_checkpoints=5,
    )
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 4, 6]


def test_a_failure_in_the_background_outputs_surfaces_and_keeps_earlier_rows(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    from gan_jax.tasks import GANTask

    calls = []

    def evaluate(self, state, test):
        calls.append(int(state.step))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return {}

    monkeypatch.setattr(GANTask, "evaluate", evaluate)
    # A disk error is the user's to fix: one line naming the workdir
    # (gan_jax.checkpoint.write_failure).
    with pytest.raises(
        CheckpointError, match=f"in {tmp_path} \\(No space left on device\\); free space"
    ):
        train(dataclasses.replace(tiny_config, epochs=3), tmp_path, data=tiny_data, progress=False)
    # epoch 1's row; epoch 2's outputs failed
    assert [r["step"] for r in read_rows(tmp_path)] == [5]
    assert CheckpointStore.latest_in(tmp_path) == 5  # never a checkpoint past the rows on disk


def test_an_empty_checkpoints_folder_opens_no_store_before_training(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    """In a multi-process job, process 0's store makes `checkpoints/` while another process is
    still preparing: that process must not open a reading store (its Orbax barriers would then
    differ from process 0's and the job crash), whatever the folder's timing."""
    from gan_jax import loop

    (tmp_path / "w" / "checkpoints").mkdir(parents=True)
    opened = []

    class Recording(CheckpointStore):
        def __init__(self, workdir, *args, **kwargs):
            opened.append(kwargs.get("create", True))
            super().__init__(workdir, *args, **kwargs)

    monkeypatch.setattr(loop, "CheckpointStore", Recording)
    train(dataclasses.replace(tiny_config, steps=2), tmp_path / "w", data=tiny_data, progress=False)
    assert opened == [True]  # the training's own store, and no reading one before it
    train(dataclasses.replace(tiny_config, steps=3), tmp_path / "w", data=tiny_data, progress=False)
    assert opened == [True, False, True]  # a saved step: its config is checked first
