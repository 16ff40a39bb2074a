"""Test helpers: a task's feed on a split, and its batches for a compiled call."""

import jax

from gan_jax.data import Split


def on_device(task, split: Split):
    """The task's feed arrays of `split`, on the device (what the loop passes to `init`)."""
    return jax.device_put(task.feed.arrays(split))


def call_batches(task, data, num_examples: int, first: int, steps: int, epoch: int = 0):
    """The stacked batches of steps `first .. first+steps-1` of `epoch` (`feed.batches`)."""
    feed = task.feed
    return feed.batches(data, feed.epoch_plan(epoch, num_examples), first, steps)
