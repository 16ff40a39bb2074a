"""Data parallelism: 8 forced CPU devices compute what 1 device does; sharded checkpoints resume."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import parallel
from gan_jax.errors import ConfigError


@pytest.fixture(scope="module")
def report():
    env = {
        **os.environ,
        "XLA_FLAGS": os.environ["XLA_FLAGS"] + " --xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.parallel_worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_runs_on_eight_devices_with_replicated_states(report):
    assert report["device_count"] == 8
    for name in ("gan", "sgan"):
        assert "'data': 8" in report[name]["sharding"] and "spec=P()" in report[name]["sharding"]


@pytest.mark.parametrize("name", ["gan", "sgan"])
def test_eight_devices_match_one_device(report, name):
    # The 8-device program sums each batch in another order. Losses are continuous in the
    # parameters, which stay within Adam's step bound of each other (tests/numerics.py: the only
    # bound on them that holds across a ReLU kink), so the per-epoch mean losses agree closely.
    # Their first steps start from one state on one batch: every gradient-made leaf (Adam's
    # moments, batch statistics) agrees to rounding.
    result = report[name]
    np.testing.assert_allclose(result["losses_n"], result["losses_1"], rtol=1e-4)
    assert result["max_param_difference"] <= result["adam_bound"]
    ratio, path = result["first_step_excess"]
    assert ratio <= 1, f"{path}: {ratio:.3g} times what one step's rounding allows"


def test_sharded_checkpoint_resumes_exactly(report):
    resume = report["resume"]
    assert resume["max_difference_to_uninterrupted"] == 0.0
    assert resume["max_difference_restored_to_final"] == 0.0
    assert "'data': 8" in resume["restored_sharding"]


def test_one_device_means_no_mesh_and_identity_sharding():
    assert parallel.data_mesh(1) is None
    x = jnp.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(jax.jit(parallel.shard_batch)(x), x)
    assert parallel.replicate({"x": x}, None)["x"] is x


def test_bad_device_count_is_a_config_error():
    with pytest.raises(ConfigError, match="devices must be in 1..1"):
        parallel.data_mesh(2)


@pytest.fixture
def fake_initialize(monkeypatch):
    """Records `jax.distributed.initialize`'s arguments instead of joining a cluster."""
    calls = []
    for env in (
        "JAX_COORDINATOR_ADDRESS",
        "JAX_NUM_PROCESSES",
        "JAX_PROCESS_ID",
        "GAN_JAX_DISTRIBUTED",
        "GAN_JAX_PEER_TIMEOUT",
        "GAN_JAX_WORKER",
    ):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    return calls


def test_distributed_is_joined_only_when_the_environment_asks(fake_initialize, monkeypatch):
    assert parallel.initialize_distributed() is False and fake_initialize == []
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "host0:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    assert parallel.initialize_distributed() is True
    assert fake_initialize == [
        {
            "coordinator_address": "host0:1234",
            "num_processes": 4,
            "process_id": 2,
            "heartbeat_timeout_seconds": 30,
            "shutdown_timeout_seconds": 30,
        }
    ]


def test_distributed_auto_lets_jax_detect_the_cluster(fake_initialize, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DISTRIBUTED", "auto")
    monkeypatch.setenv("GAN_JAX_PEER_TIMEOUT", "12")  # seconds without heartbeats before stopping
    assert parallel.initialize_distributed() is True
    assert fake_initialize == [{"heartbeat_timeout_seconds": 12, "shutdown_timeout_seconds": 12}]


def test_distributed_rejects_a_non_integer_process_id(fake_initialize, monkeypatch):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "host0:1234")
    monkeypatch.setenv("JAX_PROCESS_ID", "first")
    with pytest.raises(
        ConfigError, match="JAX_PROCESS_ID must be a non-negative integer, got 'first'"
    ):
        parallel.initialize_distributed()
    assert fake_initialize == []
