"""gan_jax.devices: the device report and the warning for an accelerator JAX does not use."""

import json
import logging
import pathlib
import re
import tomllib

import jax

from gan_jax import devices, train
from gan_jax.cli import main


def test_devices_command_prints_jax_backend_as_json(capsys):
    assert main(["devices"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["backend"] == jax.default_backend()
        and report["device_count"] == len(report["devices"]) >= 1
    )
    assert report["devices"][0].startswith(f"{jax.devices()[0].platform}:0")


def test_warning_names_an_install_extra_that_pyproject_defines(monkeypatch):
    # as on a machine with CPU-only jaxlib
    monkeypatch.setattr(devices.jax, "default_backend", lambda: "cpu")
    extras = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for platform in ("gpu", "tpu"):
        monkeypatch.setattr(devices, "accelerators_present", lambda p=platform: [p])
        warning = devices.unused_accelerator_warning()
        assert "JAX runs on CPU" in warning and "\n" not in warning
        named = re.findall(r'"\.\[(\w+)\]"', warning)
        assert named and all(extra in extras for extra in named), (named, sorted(extras))
        assert all(f"jax[{extra}]" in " ".join(extras[extra]) for extra in named)
    monkeypatch.setattr(devices, "accelerators_present", lambda: [])
    assert devices.unused_accelerator_warning() is None


def test_train_warns_once_when_a_gpu_is_present_but_unused(
    tiny_config, tiny_data, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(devices.jax, "default_backend", lambda: "cpu")
    monkeypatch.setattr(devices, "accelerators_present", lambda: ["gpu"])
    monkeypatch.setattr(devices, "_warned", set())
    config = tiny_config.from_dict({**tiny_config.to_dict(), "steps": 1})
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        train(config, tmp_path / "a", data=tiny_data, progress=False)
        # e.g. the next run of a sweep
        train(config, tmp_path / "b", data=tiny_data, progress=False)
    assert len([r for r in caplog.records if "JAX runs on CPU" in r.getMessage()]) == 1


def test_report_names_a_backend_that_fails_to_start(monkeypatch):
    def broken():
        raise RuntimeError("Unable to initialize backend 'cuda': no CUDA-capable device\nmore")

    monkeypatch.setattr(devices.jax, "devices", broken)
    report = devices.report()
    assert (
        report["backend"] is None
        and report["error"] == "Unable to initialize backend 'cuda': no CUDA-capable device"
    )


def _flags_after_setup(env_value, xla_flags="--xla_force_host_platform_device_count=2"):
    """XLA_FLAGS after `import gan_jax` and after `gan_jax.setup_process()`, and the device count,
    in a fresh process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": xla_flags, "JAX_PLATFORMS": "cpu"}
    env.pop("GAN_JAX_DETERMINISTIC", None)
    if env_value is not None:
        env["GAN_JAX_DETERMINISTIC"] = env_value
    code = (
        "import os, logging, jax, gan_jax; print(os.environ['XLA_FLAGS']); "
        "print(len(logging.getLogger('gan_jax').handlers)); gan_jax.setup_process(); "
        "print(os.environ['XLA_FLAGS']); print(len(jax.devices()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    imported, handlers, flags, count = out.splitlines()
    assert imported == xla_flags and handlers == "0"  # importing changes nothing process-wide
    return flags.split(), int(count)


def test_setup_turns_deterministic_gpu_ops_on_keeping_other_flags_and_zero_turns_it_off():
    flags, count = _flags_after_setup(None)
    assert flags == ["--xla_force_host_platform_device_count=2", devices.DETERMINISTIC_GPU_FLAG]
    assert count == 2
    flags, count = _flags_after_setup("0")
    assert flags == ["--xla_force_host_platform_device_count=2"] and count == 2
    explicit = "--xla_gpu_deterministic_ops=false --xla_force_host_platform_device_count=2"
    assert _flags_after_setup(None, explicit)[0] == explicit.split()  # the caller's choice is kept
