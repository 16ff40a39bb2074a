import dataclasses

import jax
import numpy as np
import pytest

from gan_jax import CheckpointError, ConfigError, train
from gan_jax.checkpoint import CheckpointStore
from gan_jax.loop import read_metrics


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_resumed_run_equals_uninterrupted_run(tiny_config, tiny_data, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=2)  # 5 steps per epoch with 40 images
    straight = train(dataclasses.replace(config, steps=7), tmp_path / "a", data=tiny_data, progress=False)
    expected = _leaves(straight)

    train(dataclasses.replace(config, steps=3), tmp_path / "b", data=tiny_data, progress=False)
    assert CheckpointStore(tmp_path / "b").latest_step() == 3
    resumed = train(dataclasses.replace(config, steps=7), tmp_path / "b", data=tiny_data, progress=False)

    assert int(resumed.step) == 7
    for a, b in zip(_leaves(resumed), expected):
        np.testing.assert_array_equal(a, b)
    # The partial row of the first, capped run is superseded: both files are byte-identical.
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    assert [(r["step"], r.get("partial", False)) for r in read_metrics(tmp_path / "b")] == [(5, False), (7, True)]


def test_outputs_of_a_run(tiny_config, tiny_data, tmp_path):
    train(dataclasses.replace(tiny_config, epochs=2), tmp_path, data=tiny_data, progress=False)
    rows = read_metrics(tmp_path)
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 5), (2, 10)]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    timing = read_metrics(tmp_path, "timing.jsonl")
    assert [(r["epoch"], r["steps"]) for r in timing] == [(1, 5), (2, 5)] and all(r["steps_per_s"] > 0 for r in timing)
    for r in timing:  # the epoch's wall time splits into compiled calls and host work, which includes its parts
        assert 0 < r["device_seconds"] <= r["seconds"] + 1e-3
        parts = r["eval_seconds"] + r["outputs_seconds"] + r["save_seconds"]
        assert r["save_seconds"] > 0 and r["outputs_seconds"] > 0 and parts <= r["host_seconds"] + 3e-3  # rounding
    for name in ("samples/epoch_0001.png", "samples/epoch_0002.png", "real_vs_generated.png", "losses.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert CheckpointStore(tmp_path).latest_step() == 10


def test_rerun_of_a_finished_run_trains_nothing_more(tiny_config, tiny_data, tmp_path):
    first = _leaves(train(tiny_config, tmp_path, data=tiny_data, progress=False))
    again = train(tiny_config, tmp_path, data=tiny_data, progress=False)
    assert int(again.step) == 5
    for a, b in zip(_leaves(again), first):
        np.testing.assert_array_equal(a, b)
    assert len(read_metrics(tmp_path)) == 1


def test_conflicting_config_is_refused_and_nothing_changes(tiny_config, tiny_data, tmp_path):
    train(tiny_config, tmp_path, data=tiny_data, progress=False)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    metrics = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match="batch_size: stored 8 vs requested 4"):
        train(dataclasses.replace(tiny_config, batch_size=4), tmp_path, data=tiny_data, progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert (tmp_path / "metrics.jsonl").read_text() == metrics
    # Run-length options may change: a longer run continues.
    state = train(dataclasses.replace(tiny_config, epochs=2), tmp_path, data=tiny_data, progress=False)
    assert int(state.step) == 10


def test_batch_larger_than_dataset_is_a_config_error(tiny_config, tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="batch_size 64 exceeds the 40"):
        train(dataclasses.replace(tiny_config, batch_size=64), tmp_path, data=tiny_data, progress=False)
