"""TensorBoard events: the epoch's scalars equal metrics.jsonl, the sample grid, members, resume."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from gan_jax import SupervisedConfig, train
from gan_jax.workdir import read_rows


def read_events(folder):
    """Every Event in `folder`'s event files (TFRecord: u64 length, u32 crc, data, u32 crc)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12 : i + 12 + length])
            events.append(event)
            i += 12 + length + 4
    return events


def scalars(events):
    return {
        (v.tag, e.step): v.simple_value
        for e in events
        for v in e.summary.value
        if v.HasField("simple_value")
    }


def test_gan_epochs_write_metrics_as_scalars_and_the_sample_grid(tiny_config, tiny_data, tmp_path):
    train(
        tiny_config.from_dict({**tiny_config.to_dict(), "epochs": 2}),
        tmp_path,
        data=tiny_data,
        progress=False,
    )
    events = read_events(tmp_path)
    values = scalars(events)
    for row in read_rows(tmp_path):
        for key in ("d_loss", "g_loss"):
            # stored as float32
            assert values[(key, row["step"])] == pytest.approx(row[key], rel=1e-6)
    assert {step for tag, step in values if tag == "speed/steps_per_s"} == {5, 10}
    images = [(e.step, v.image) for e in events for v in e.summary.value if v.HasField("image")]
    assert [step for step, _ in images] == [5, 10]
    logged = np.asarray(Image.open(io.BytesIO(images[1][1].encoded_image_string)))
    # the PNG is enlarged 3x
    saved = np.asarray(Image.open(tmp_path / "samples" / "epoch_0002.png"))[::3, ::3]
    # 2x2 images of 28 px with 2 px padding
    assert logged.shape[:2] == saved.shape == (2 * 30 + 2,) * 2
    np.testing.assert_array_equal(logged.reshape(*saved.shape, -1)[..., 0], saved)


def test_members_write_one_folder_each(tmp_path):
    rng = np.random.default_rng(0)
    from gan_jax import Split

    data = Split(
        rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8),
        np.tile(np.arange(10, dtype=np.int32), 10),
    )
    config = SupervisedConfig(labels=20, batch_size=10, epochs=1, data_seeds=(0, 3))
    train(config, tmp_path, data=data, test_data=data, progress=False)
    rows = {row["data_seed"]: row for row in read_rows(tmp_path)}
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    for seed in (0, 3):
        values = scalars(read_events(tmp_path / f"data_seed_{seed}"))
        assert values[("test_accuracy", rows[seed]["step"])] == pytest.approx(
            rows[seed]["test_accuracy"], rel=1e-6
        )
        assert ("data_seed", rows[seed]["step"]) not in values


def purge_steps(folder):
    from tensorboardX.proto import event_pb2

    return [
        e.step for e in read_events(folder) if e.session_log.status == event_pb2.SessionLog.START
    ]


def test_resume_hides_only_the_events_trained_again_and_can_be_turned_off(
    tiny_config, tiny_data, tmp_path
):
    config = tiny_config.from_dict({**tiny_config.to_dict(), "epochs": 3, "steps": 7})
    # epoch 1 complete (step 5), epoch 2 partial (step 7)
    train(config, tmp_path, data=tiny_data, progress=False)
    train(
        tiny_config.from_dict({**config.to_dict(), "steps": 10}),
        tmp_path,
        data=tiny_data,
        progress=False,
    )
    # the partial epoch's events at step 7 are hidden; epoch 1's stay
    assert purge_steps(tmp_path) == [7]
    train(
        tiny_config.from_dict({**config.to_dict(), "steps": None}),
        tmp_path,
        data=tiny_data,
        progress=False,
    )
    assert purge_steps(tmp_path) == [7, 11]  # resumed at epoch 2's end (step 10): its events stay
    train(
        tiny_config.from_dict({**config.to_dict(), "steps": None}),
        tmp_path,
        data=tiny_data,
        progress=False,
    )
    # nothing to train
    assert (
        purge_steps(tmp_path) == [7, 11] and len(list(tmp_path.glob("events.out.tfevents.*"))) == 3
    )
    train(tiny_config, tmp_path / "quiet", data=tiny_data, progress=False, tensorboard=False)
    assert not list((tmp_path / "quiet").glob("events.out.tfevents.*"))
