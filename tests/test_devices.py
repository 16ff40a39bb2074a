"""gan_jax.devices: the device report and the warning for an accelerator JAX does not use."""

import json
import logging
import tomllib
import pathlib
import re

from gan_jax import devices, train
from gan_jax.cli import main


def test_devices_command_prints_jax_backend_as_json(capsys):
    assert main(["devices"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "cpu" and report["device_count"] == len(report["devices"]) >= 1
    assert report["devices"][0].startswith("cpu:0")


def test_warning_names_an_install_extra_that_pyproject_defines(monkeypatch):
    extras = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]["optional-dependencies"]
    for platform in ("gpu", "tpu"):
        monkeypatch.setattr(devices, "accelerators_present", lambda p=platform: [p])
        warning = devices.unused_accelerator_warning()
        assert "JAX runs on CPU" in warning and "\n" not in warning
        named = re.findall(r'"\.\[(\w+)\]"', warning)
        assert named and all(extra in extras for extra in named), (named, sorted(extras))
        assert all(f"jax[{extra}]" in " ".join(extras[extra]) for extra in named)
    monkeypatch.setattr(devices, "accelerators_present", lambda: [])
    assert devices.unused_accelerator_warning() is None


def test_train_warns_when_a_gpu_is_present_but_unused(tiny_config, tiny_data, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(devices, "accelerators_present", lambda: ["gpu"])
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        train(tiny_config.from_dict({**tiny_config.to_dict(), "steps": 1}), tmp_path, data=tiny_data, progress=False)
    assert [r.getMessage() for r in caplog.records if "JAX runs on CPU" in r.getMessage()]
