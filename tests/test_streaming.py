"""Streaming training data from host memory (`gan_jax.stream`): where the data lives, each
call's chunk, and streamed runs that end bit-identical to on-device ones (also when resumed)."""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import CGANConfig, ConfigError, GANConfig, stream, train
from gan_jax.checkpoint import params_fingerprint
from gan_jax.config import FeatureNetConfig, SGANConfig, SupervisedConfig
from gan_jax.data import Split
from gan_jax.tasks import make_task

GIB = 1 << 30
SMALL = dict(batch_size=8, noise_dim=8, g_features=(8, 4, 4), d_features=(4, 8), num_samples=4)


@pytest.fixture
def data():
    """64 random uint8 digit-shaped images with labels: 8 steps of 8 per epoch."""
    rng = np.random.default_rng(1)
    return Split(
        rng.integers(0, 256, (64, 28, 28, 1), np.uint8), (np.arange(64) % 10).astype(np.int32)
    )


@pytest.mark.parametrize(
    "data_gib, device_gib, host_gib, share, streamable, streams, limit_gib",
    [
        (3, 16, 64, None, True, False, 4),  # an accelerator, default share 1/4: 3 GiB fits under 4
        (5, 16, 64, None, True, True, 4),  # 5 GiB does not: it streams
        (5, 16, 64, 0.5, True, False, 8),  # a larger share keeps it on the device
        (5, 16, 64, None, False, False, 4),  # too large, but the task cannot stream
        (50, None, 64, None, True, False, None),  # a CPU: device memory unknown, share unset
        (20, None, 64, 0.25, True, True, 16),  # a CPU with the share set: a share of host memory
        (1, None, 64, 0.0, True, True, 0),  # share 0 streams whatever the size
    ],
)
def test_placement_decides_by_a_share_of_the_devices_memory(
    data_gib, device_gib, host_gib, share, streamable, streams, limit_gib
):
    gib = lambda n: None if n is None else n * GIB
    decided = stream.placement(gib(data_gib), gib(device_gib), gib(host_gib), share, streamable)
    assert decided.stream is streams
    assert decided.limit_bytes == gib(limit_gib)
    assert decided.too_large is (limit_gib is not None and data_gib > limit_gib)
    line = decided.line()
    assert "\n" not in line and f"{data_gib}.0 GiB" in line and stream.SHARE_ENV in line
    if streams:
        assert "streams from host memory" in line
    elif decided.too_large:
        assert "cannot stream" in line


@pytest.mark.parametrize("raw", ["half", "-0.1", "1.5", "nan"])
def test_a_bad_share_is_a_one_line_config_error(raw, monkeypatch, data, tmp_path):
    monkeypatch.setenv(stream.SHARE_ENV, raw)
    with pytest.raises(
        ConfigError, match=f"{stream.SHARE_ENV} must be a number from 0 to 1"
    ) as err:
        train(GANConfig(epochs=1, **SMALL), tmp_path, data=data, progress=False)
    assert "\n" not in str(err.value) and "set e.g. 0.25" in str(err.value)
    assert not (tmp_path / "checkpoints").exists()
    monkeypatch.setenv(stream.SHARE_ENV, " 0.3 ")
    assert stream.share_from_env() == 0.3
    monkeypatch.setenv(stream.SHARE_ENV, "")
    assert stream.share_from_env() is None


def test_which_tasks_stream_and_what_the_others_log(monkeypatch, data, caplog):
    assert all(
        stream.can_stream(make_task(config).feed)
        for config in (GANConfig(**SMALL), CGANConfig(**SMALL), FeatureNetConfig())
    )
    monkeypatch.setenv(stream.SHARE_ENV, "0")
    for config in (SGANConfig(labels=20), SupervisedConfig(labels=20)):
        feed = make_task(config).feed
        assert not stream.can_stream(feed)
        with caplog.at_level(logging.INFO, "gan_jax"):
            assert stream.host_feed(feed, feed.arrays(data), 64, None) is None
        assert caplog.records[-1].levelno == logging.WARNING
        assert "cannot stream" in caplog.records[-1].getMessage()


@pytest.mark.parametrize(
    "config, rows",
    [
        (GANConfig(**SMALL, critic_steps=2, loss="wgan_gp"), 16),  # a step reads 2 batches of 8
        (FeatureNetConfig(batch_size=4), 4),
    ],
)
def test_a_chunk_holds_the_batches_the_device_path_gathers(config, rows, data):
    feed = make_task(config).feed
    arrays = feed.arrays(data)
    host = stream.HostFeed(feed, arrays, 64, None, budget_bytes=0)
    assert host.rows == rows and host.max_steps_per_call == 1  # no room: one step per call
    epoch, first, steps = 1, 1, 2  # steps 1 and 2 of the second epoch
    chunk = host.chunk(epoch, first, steps)
    order = np.asarray(feed.epoch_plan(epoch, 64))
    assert sorted(order.tolist()) == list(range(64))
    on_device = feed.batches(jax.device_put(arrays), jnp.asarray(order), first, steps)
    for name, x in arrays.items():
        assert chunk[name].shape == (steps, rows, *x.shape[1:])
        np.testing.assert_array_equal(chunk[name], on_device[name])
        for j in range(steps):  # step first+j reads rows order[(first+j)·r : (first+j+1)·r]
            rows_read = order[(first + j) * rows : (first + j + 1) * rows]
            np.testing.assert_array_equal(np.asarray(chunk[name][j]), x[rows_read])


def test_the_chunk_budget_caps_the_default_steps_per_call(data, caplog):
    feed = make_task(CGANConfig(**SMALL)).feed  # 8 rows of 784 + 4 bytes per step
    step_bytes = 8 * (784 + 4)
    room = lambda steps: (stream.PREFETCH + 1) * steps * step_bytes
    for steps in (1, 3, 40):
        host = stream.HostFeed(feed, feed.arrays(data), 64, None, budget_bytes=room(steps))
        assert host.max_steps_per_call == steps
        host = stream.HostFeed(feed, feed.arrays(data), 64, None, budget_bytes=room(steps) - 1)
        assert host.max_steps_per_call == max(1, steps - 1)
    with caplog.at_level(logging.INFO, "gan_jax"):
        assert host.cap_steps_per_call(8) == 8 and not caplog.records  # under the cap: unchanged
        assert host.cap_steps_per_call(100) == 39
    assert "39 steps per compiled call instead of 100" in caplog.records[-1].getMessage()


def _fingerprint_and_rows(config, workdir, data):
    state = train(config, workdir, data=data, progress=False, tensorboard=False)
    return params_fingerprint(state), (workdir / "metrics.jsonl").read_text()


def test_a_streamed_cgan_trains_to_the_device_paths_parameters_also_when_resumed(
    monkeypatch, data, tmp_path, caplog
):
    """Images and labels stream; 2 epochs of 8 one-step calls on a CPU (the GAN's bare image array
    and multi-step chunks: the chunk tests above)."""
    config = CGANConfig(epochs=2, **SMALL)
    on_device = _fingerprint_and_rows(config, tmp_path / "device", data)
    monkeypatch.setenv(stream.SHARE_ENV, "1e-9")  # a tiny share of host memory: the data streams
    with caplog.at_level(logging.INFO, "gan_jax"):
        streamed = _fingerprint_and_rows(config, tmp_path / "streamed", data)
    assert any("streams from host memory" in r.getMessage() for r in caplog.records)
    assert streamed == on_device
    interrupted = dataclasses.replace(config, steps=5)
    train(interrupted, tmp_path / "resumed", data=data, progress=False, tensorboard=False)
    resumed = _fingerprint_and_rows(config, tmp_path / "resumed", data)  # from step 5, mid-epoch
    assert resumed == streamed
