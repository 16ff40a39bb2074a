"""Checkpoints: round trip, device-side checksum, legacy fingerprints, failed asynchronous saves."""

import errno
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import CheckpointError, GANTask
from gan_jax.checkpoint import _MIX, CheckpointStore, checksum, fingerprint
from gan_jax.steps import TaskStep, make_runner
from tests.feeding import call_batches, on_device


def test_checkpoint_round_trip_restores_identical_state(tiny_config, tiny_data, tmp_path):
    task = GANTask(tiny_config)
    run = make_runner(TaskStep(task), 1)
    state, _, _ = run(task.init(), call_batches(task, on_device(task, tiny_data), 40, 0, 1))
    expected = jax.tree.map(np.asarray, state)  # the runner donates, so keep host copies
    store = CheckpointStore(tmp_path)
    store.save(1, state, tiny_config.to_dict(), {"note": "x"})
    restored, loop = store.restore(task.init())
    assert loop == {"note": "x"}
    assert store.read_config() == tiny_config.to_dict()
    assert tiny_config.to_dict()["g_features"] == [8, 4, 4]
    assert jax.tree.structure(restored) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _reference_words(array: np.ndarray) -> np.ndarray:
    """`checkpoint._leaf_checksum` in numpy's wrapping uint64 arithmetic,
    reduced mod 2**32 by hand."""
    bits = array.reshape(-1).view(f"<u{array.dtype.itemsize}").astype(np.uint64)
    mask = np.uint64(2**32 - 1)
    h = (bits * _MIX[0] + np.arange(bits.size, dtype=np.uint64) * _MIX[1]) & mask
    h = ((h ^ (h >> np.uint64(15))) * _MIX[2]) & mask
    h = h ^ (h >> np.uint64(13))
    return np.array([int(h.sum()) % 2**32, np.bitwise_xor.reduce(h)], "<u4")


def test_checksum_is_the_documented_integer_hash_and_sees_every_bit_and_position():
    import hashlib

    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    tree = {"b": jnp.asarray(x), "a": jnp.arange(4, dtype=jnp.int32)}
    digest = hashlib.sha256()
    for path, value in (("['a']", np.arange(4, dtype=np.int32)), ("['b']", x)):  # sorted key paths
        digest.update(
            f"{path}|{value.dtype.str}|{value.shape}|".encode() + _reference_words(value).tobytes()
        )
    assert checksum(tree) == digest.hexdigest()

    flipped = x.copy()
    flipped.view(np.uint32)[3, 4] ^= 1  # one low mantissa bit
    swapped = x.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]
    others = {checksum({**tree, "b": jnp.asarray(v)}) for v in (flipped, swapped, x.reshape(7, 5))}
    assert checksum(tree) not in others and len(others) == 3


def test_a_checkpoint_without_its_checksum_is_refused_as_corrupted(tmp_path):
    state = {"w": jnp.arange(6.0), "step": jnp.asarray(3)}
    with CheckpointStore(tmp_path) as store:
        store.save(3, state, {}, {"note": "x"})
    item = tmp_path / "checkpoints" / "3" / "loop" / "metadata"
    loop = json.loads(item.read_text())
    with CheckpointStore(tmp_path) as store:
        restored, got = store.restore(state)
        assert got == {"note": "x"} and checksum(restored) == checksum(state)
    del loop["state_checksum"]  # as older releases wrote it (they stored a host-side SHA-256)
    item.write_text(json.dumps({**loop, "state_sha256": fingerprint(state)}))
    with (
        CheckpointStore(tmp_path) as store,
        pytest.raises(CheckpointError, match="does not match its fingerprint"),
    ):
        store.restore(state)


def test_a_failed_background_save_is_reported_with_its_step_and_the_last_good_one(
    tmp_path, monkeypatch
):
    state = {"w": jnp.arange(6.0)}
    store = CheckpointStore(tmp_path)
    store.save(2, state, {}, {})
    store.wait()
    store.save(4, state, {}, {})

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.manager, "wait_until_finished", disk_full)
    with pytest.raises(
        CheckpointError, match="checkpoint of step 4 .*No space left on device.*resume from step"
    ):
        store.wait()
    monkeypatch.undo()
    store.close()


def test_a_save_keeps_the_counters_of_its_step_while_the_caller_changes_them(tmp_path):
    counters = {"loss_sums": {"d_loss": [1.0]}, "steps_in_epoch": 1}
    with CheckpointStore(tmp_path) as store:
        store.save(1, {"w": jnp.arange(3.0)}, {}, counters)
        # what the loop's next step does, while Orbax writes
        counters["loss_sums"]["d_loss"] = [5.0]
        counters["steps_in_epoch"] = 2
    with CheckpointStore(tmp_path, create=False) as store:
        _, loop = store.restore({"w": jnp.zeros(3)})
    assert loop == {"loss_sums": {"d_loss": [1.0]}, "steps_in_epoch": 1}
