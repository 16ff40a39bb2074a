"""Data parallelism: one mesh axis `data` over every device, batches sharded along it, states
replicated.

Training runs one global program (`jax.jit` with the mesh set): the loop places the dataset, the
epoch plan and the train state replicated on the mesh (`replicate`), and the tasks mark each batch
and its noise with `shard_batch`, so each device computes its slice of the batch. Everything that
reduces over the batch (losses, gradients, BatchNorm means and variances) reduces over the global
batch, which XLA implements with all-reduces across devices. An 8-device run therefore computes
the 1-device function, up to float32 summation order (tested with 8 CPU devices).

Multi-host: start one process per host with the same command and workdir (a shared filesystem)
and set, before it starts,

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=<hosts> JAX_PROCESS_ID=<0..hosts-1>

or `GAN_JAX_DISTRIBUTED=auto` where JAX detects the cluster itself (Cloud TPU pods, SLURM, Open
MPI). `initialize_distributed` then calls `jax.distributed.initialize`, and the mesh spans the
devices of every host. Every process loads the same dataset; only process 0 writes metrics and
figures, and Orbax writes checkpoints collectively. The CLI runs each host's training as a
supervised worker (`gan_jax.multihost`): library output goes to `WORKDIR/logs/process_<i>.log`,
and when a peer dies or hangs every other process stops within `GAN_JAX_PEER_TIMEOUT` seconds
(default 30: JAX's heartbeat timeout) with one line saying how to resume. `gan-jax launch
--processes N -- train ...` starts N such processes on one machine (`gan_jax.launch`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.errors import ConfigError

DATA_AXIS = "data"
log = logging.getLogger("gan_jax")


def initialize_distributed() -> bool:
    """Joins a multi-host run when the environment asks for one (see the module docstring).

    Returns whether `jax.distributed.initialize` was called. Call it before anything touches a
    device; calling it again is harmless.
    Raises:
      ConfigError: JAX_NUM_PROCESSES or JAX_PROCESS_ID is set but not an integer.
    """
    from gan_jax.multihost import WORKER_ENV, peer_timeout, requested

    if not requested() or jax.distributed.is_initialized():
        return False
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    kwargs: dict[str, Any] = {}
    if address:
        kwargs["coordinator_address"] = address
        for name, env in (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID")):
            value = os.environ.get(env, "")
            if value:
                if not value.isdigit():
                    raise ConfigError(
                        f"{env} must be a non-negative integer, got {value!r}; fix or unset it"
                    )
                kwargs[name] = int(value)
    timeout = peer_timeout()
    jax.distributed.initialize(
        **kwargs, heartbeat_timeout_seconds=timeout, shutdown_timeout_seconds=timeout
    )
    where = os.environ.get(WORKER_ENV, "")
    log.info(
        "process %d of %d joined (pid %d, %d devices in all)%s",
        jax.process_index(),
        jax.process_count(),
        os.getpid(),
        jax.device_count(),
        f"; library output in {where}" if where else "",
    )
    if jax.process_index() != 0:  # one voice: process 0 prints the run's lines and warnings
        log.setLevel(logging.ERROR)
    return True


def data_mesh(num_devices: int | None = None) -> Mesh | None:
    """A 1-D mesh `data` over the first `num_devices` devices (default: all), or None for one
    device."""
    devices = jax.devices()
    count = len(devices) if num_devices is None else num_devices
    if not 1 <= count <= len(devices):
        raise ConfigError(
            f"devices must be in 1..{len(devices)} (this machine's count), got {num_devices}"
        )
    if count == 1:
        return None
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """`tree`'s arrays placed whole on every device of `mesh` (unchanged when `mesh` is None)."""
    if mesh is None:
        return tree
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def place(x):  # each process holds the same host value; build the global array from it
        host = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def use_mesh(mesh: Mesh | None):
    """Context in which compiled steps see `mesh` (so `shard_batch` applies); no-op for None."""
    return jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext()


def shard_batch(tree: Any) -> Any:
    """Marks the leading (batch) axis of `tree`'s arrays as split along `data`.

    Inside a step traced under `use_mesh` with more than one device; the identity otherwise (and
    under `jax.vmap` the spec applies to the unbatched shape, so ensemble members stay whole).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA_AXIS not in mesh.axis_names or mesh.shape[DATA_AXIS] == 1:
        return tree
    return jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, PartitionSpec(DATA_AXIS)), tree
    )


def is_writer() -> bool:
    """Whether this process writes host-side files (metrics, figures): process 0 only."""
    return jax.process_index() == 0
