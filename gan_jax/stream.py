"""Training data too large for the device: it stays in host memory, and each compiled call's rows
are streamed to the device ahead of time.

**Where the data lives** (`placement`, logged in one line by `host_feed`): the training arrays stay
on the device, as always, unless they take more than a share of the device's memory
(`$GAN_JAX_DEVICE_DATA_SHARE`, a number from 0 to 1, default `DEFAULT_SHARE` of the memory JAX
may allocate, `Device.memory_stats()["bytes_limit"]`). A CPU reports no device memory: there the
data stays put unless the share is set, and then the share is of the host's physical memory (the
tests stream on a CPU this way). With several devices each holds the whole dataset, so the share
is of one device's memory. Results do not depend on the placement, given the same steps per call
(`HostFeed.cap_steps_per_call`).

**Same pixels, same order** (what makes a streamed run bit-identical to an on-device one): a feed
that can stream (`Streamable`, `gan_jax.feed.ImageFeed`) reads at step `i` of an epoch rows
`plan[i·r : (i+1)·r]` of every array, where `plan` is the epoch's order and `r` its
`rows_per_step`. For a call running steps `first .. first+k-1`, the host fetches the order once
per epoch and gathers those rows of each array into the call's stacked batches `[k, r, ...]`
(`feed.host_batches`): the same uint8 values, in the same layout, that `feed.batches` gathers on
the device, fed to the same compiled call. Everything a chunk holds is a function of (seed, epoch,
first step, steps).

**Prefetching with grain**: the chunks of the run's planned calls are a `grain.MapDataset` over
those calls (`.map` gathers on the host and transfers), read through `to_iter_dataset` with
`PREFETCH` chunks built ahead in `THREADS` threads while the device trains. Grain works at the
level of a call's chunk, not of single images: one NumPy gather per chunk instead of a Python call
per image. Its iterator state (the next call's index) is not checkpointed: the feed starts from the
restored step's call, so a resumed run reads what an uninterrupted one reads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from gan_jax import parallel
from gan_jax.errors import ConfigError

log = logging.getLogger("gan_jax")

SHARE_ENV = "GAN_JAX_DEVICE_DATA_SHARE"
DEFAULT_SHARE = 0.25  # of the device memory JAX may allocate, before the training data streams
PREFETCH = 2  # chunks prepared ahead of the running call (each on the device once ready)
THREADS = 2  # host threads gathering chunks

# A call's place in the run: (epoch, first step within the epoch, steps).
CallKey = tuple[int, int, int]


@runtime_checkable
class Streamable(Protocol):
    """A feed whose batches the host can gather (`gan_jax.feed.ImageFeed`: GAN, cGAN, features):
    each step reads `rows_per_step` consecutive rows of one order per epoch."""

    @property
    def rows_per_step(self) -> int:
        """Rows of each array one step reads."""

    def epoch_plan(self, epoch: int, num_examples: int) -> Any: ...

    def host_batches(self, arrays: Any, order: np.ndarray, first: int, steps: int) -> Any: ...


def can_stream(feed: Any) -> bool:
    """Whether `feed` can stream (`Streamable`, with rows per step)."""
    return isinstance(feed, Streamable) and feed.rows_per_step is not None


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a run's training data lives, and why.

    Attributes:
      stream: the data stays in host memory and streams to the device.
      data_bytes: bytes of the training arrays.
      memory_bytes: the memory the share is of (the device's, or on a CPU with the share set, the
        host's); None: unknown.
      share: the share of `memory_bytes` the data may take on the device.
      device_memory: whether `memory_bytes` is the device's (else the host's, or unknown).
      streamable: whether the task's feed can stream (`Streamable`).
    """

    stream: bool
    data_bytes: int
    memory_bytes: int | None
    share: float
    device_memory: bool
    streamable: bool

    @property
    def limit_bytes(self) -> int | None:
        """Bytes the data may take on the device: `share × memory_bytes` (None: no limit known)."""
        return None if self.memory_bytes is None else int(self.share * self.memory_bytes)

    @property
    def too_large(self) -> bool:
        """Over the limit (whether or not the task can stream)."""
        limit = self.limit_bytes
        return limit is not None and self.data_bytes > limit

    def line(self) -> str:
        """The decision and the bytes, in one line."""
        size = _size(self.data_bytes)
        if self.memory_bytes is None:
            return (
                f"training data ({size}) held whole in memory for the compiled steps (this device "
                f"does not report its memory; {SHARE_ENV}=0.25 streams data larger than a quarter "
                "of host memory instead)"
            )
        whose = "device" if self.device_memory else "host"
        limit = (
            f"{self.share:g} × {_size(self.memory_bytes)} {whose} memory = "
            f"{_size(self.limit_bytes or 0)}, {SHARE_ENV}"
        )
        if self.stream:
            return (
                f"training data ({size}) streams from host memory, each compiled call's rows "
                f"prefetched to the device (over {limit})"
            )
        if self.too_large:
            return (
                f"training data ({size}) stays on the device although over {limit}: this task "
                "cannot stream it (only gan, cgan and features can); expect running out of memory"
            )
        return f"training data ({size}) on the device (limit {limit})"


def placement(
    data_bytes: int,
    device_memory: int | None,
    host_memory: int | None,
    share: float | None,
    streamable: bool,
) -> Placement:
    """Decides where the training data lives (pure; `host_feed` supplies the numbers).

    Args:
      data_bytes: bytes of the training arrays.
      device_memory: bytes JAX may allocate on one device; None where unknown (a CPU).
      host_memory: the host's physical memory in bytes (None: unknown); used only where the device
        memory is unknown and `share` is set.
      share: the user's share (`$GAN_JAX_DEVICE_DATA_SHARE`), 0..1; None: unset.
      streamable: the task can stream.
    Returns:
      A `Placement` that streams iff the task can stream and `data_bytes > share × memory`, where
      the share defaults to `DEFAULT_SHARE` of the device's memory, and where that is unknown
      (a CPU) only a set share counts, of the host's memory.
    """
    memory: int | None = None
    if device_memory is not None:
        memory, on_device = device_memory, True
    else:
        memory, on_device = (None if share is None else host_memory), False
    share = DEFAULT_SHARE if share is None else share
    decided = Placement(False, data_bytes, memory, share, on_device, streamable)
    return dataclasses.replace(decided, stream=streamable and decided.too_large)


def share_from_env() -> float | None:
    """`$GAN_JAX_DEVICE_DATA_SHARE` as a number in [0, 1]; None when unset or empty.

    Raises:
      ConfigError: not a number in [0, 1].
    """
    raw = os.environ.get(SHARE_ENV, "").strip()
    if not raw:
        return None
    try:
        share = float(raw)
    except ValueError:
        share = float("nan")
    if not 0.0 <= share <= 1.0:
        raise ConfigError(
            f"{SHARE_ENV} must be a number from 0 to 1 (the share of device memory the training "
            f"data may take before it streams from the host), got {raw!r}; unset it or set e.g. "
            f"{DEFAULT_SHARE}"
        )
    return share


def device_memory_bytes(device: Any) -> int | None:
    """Bytes JAX may allocate on `device` (`memory_stats()["bytes_limit"]`); None where the
    platform does not say (a CPU)."""
    try:
        stats = device.memory_stats()
    except Exception:  # some platforms raise instead of returning None
        return None
    limit = (stats or {}).get("bytes_limit")
    return int(limit) if limit else None


def host_memory_bytes() -> int | None:
    """The host's physical memory in bytes; None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def host_feed(feed: Any, arrays: Any, num_examples: int, mesh: Any) -> HostFeed | None:
    """Decides where a feed's `arrays` (NumPy, `feed.arrays(train)`) live (one log line: the
    decision and the bytes) and returns the feed that streams them, or None when they go on the
    device.

    Raises:
      ConfigError: `$GAN_JAX_DEVICE_DATA_SHARE` is not a number in [0, 1].
    """
    share = share_from_env()
    streamable = can_stream(feed)
    data_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(arrays))
    device = mesh.devices.flat[0] if mesh is not None else jax.local_devices()[0]
    decided = placement(
        data_bytes, device_memory_bytes(device), host_memory_bytes(), share, streamable
    )
    (log.warning if decided.too_large and not decided.stream else log.info)(decided.line())
    if not decided.stream:
        return None
    return HostFeed(feed, arrays, num_examples, mesh, decided.limit_bytes or 0)


class HostFeed:
    """A `Streamable` feed's arrays in host memory, and the stacked batches of its compiled calls.

    Args:
      feed: the run's feed (`task.feed`).
      arrays: `feed.arrays(train)`: NumPy arrays, N rows each.
      num_examples: N.
      mesh: the run's mesh (batches are replicated on it), or None for one device.
      budget_bytes: device bytes the prefetched chunks and the running one may take together.
    """

    def __init__(
        self, feed: Streamable, arrays: Any, num_examples: int, mesh: Any, budget_bytes: int
    ):
        self.feed, self.arrays, self.mesh = feed, arrays, mesh
        self.num_examples = num_examples
        self.rows = feed.rows_per_step
        self.row_bytes = sum(np.asarray(x)[:1].nbytes for x in jax.tree.leaves(arrays))
        self.budget_bytes = budget_bytes
        self._orders: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def max_steps_per_call(self) -> int:
        """Most steps per call whose chunks (`PREFETCH` ahead plus the running one) fit the
        budget; at least 1. Used where `steps_per_call` is not set."""
        return max(1, self.budget_bytes // (PREFETCH + 1) // (self.rows * self.row_bytes))

    def cap_steps_per_call(self, steps_per_call: int) -> int:
        """The platform's default `steps_per_call`, capped at `max_steps_per_call` (logged when it
        caps: on an accelerator, whose default is a whole epoch per call, it always does)."""
        capped = min(steps_per_call, self.max_steps_per_call)
        if capped < steps_per_call:
            log.info(
                "streamed: %d steps per compiled call instead of %d, so that %d chunks of %s fit "
                "the share; the same --steps-per-call on the device gives bit-identical results",
                capped,
                steps_per_call,
                PREFETCH + 1,
                _size(capped * self.rows * self.row_bytes),
            )
        return capped

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's example order on the host, int32 `[N]`: `feed.epoch_plan` computed on the
        device as the on-device path does, fetched once per epoch (the last two are kept)."""
        with self._lock:
            if epoch not in self._orders:
                plan = np.asarray(jax.device_get(self.feed.epoch_plan(epoch, self.num_examples)))
                self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
                self._orders[epoch] = plan
            return self._orders[epoch]

    def host_chunk(self, epoch: int, first: int, steps: int) -> Any:
        """The stacked batches of steps `first .. first+steps-1` of `epoch`, `[steps, r, ...]`
        (NumPy): `feed.host_batches`."""
        return self.feed.host_batches(self.arrays, self.order(epoch), first, steps)

    def chunk(self, epoch: int, first: int, steps: int) -> Any:
        """`host_chunk` on the device (replicated on the mesh)."""
        batches = self.host_chunk(epoch, first, steps)
        return (
            jax.device_put(batches) if self.mesh is None else parallel.replicate(batches, self.mesh)
        )

    def stream(self, calls: Sequence[CallKey]) -> ChunkStream:
        """The chunks of `calls` in order, prepared ahead in background threads (grain)."""
        return ChunkStream(self, calls)


class ChunkStream:
    """The chunks of a run's planned calls, built `PREFETCH` ahead by a grain pipeline.

    `take(key)` returns the next call's batches and checks that `key` is that call; `close`
    stops the threads (chunks being built are finished and dropped).
    """

    def __init__(self, feed: HostFeed, calls: Sequence[CallKey]):
        import grain  # imported only when a run streams

        keys = [tuple(int(v) for v in key) for key in calls]
        dataset = grain.MapDataset.source(keys).map(lambda key: (key, feed.chunk(*key)))
        options = grain.ReadOptions(num_threads=THREADS, prefetch_buffer_size=PREFETCH)
        self._iterator = iter(dataset.to_iter_dataset(options))
        self._iterator.start_prefetch()  # the first chunks build while the first call compiles

    def take(self, key: CallKey) -> Any:
        """The stacked batches of call `key` = (epoch, first step in the epoch, steps), which must
        be the next planned call."""
        got, batches = next(self._iterator)
        if got != tuple(key):
            raise RuntimeError(f"streamed chunk for call {got} arrived for call {tuple(key)}")
        return batches

    def close(self) -> None:
        self._iterator.close()


def _size(num_bytes: int) -> str:
    """`num_bytes` in binary units, e.g. '47.0 MiB'."""
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value, power = float(num_bytes), 0
    while value >= 1024 and power < 4:
        value, power = value / 1024, power + 1
    return f"{value:.1f} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[power]}"
